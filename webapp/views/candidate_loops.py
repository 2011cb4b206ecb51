"""The candidate's pages for a self-scheduling link that offers an interview loop. They answer
the candidate blueprint's own URLs (``/c/<token>``, ``/reschedule``, ``/cancel``,
``/interview.ics``): ``candidate.py`` hands a request over here when its link offers a loop, after
the app's checks (access policy, CSRF, rate limit) ran for the endpoint.

The offer page shows each start time with the loop's total span and its itinerary (in the
candidate's zone: detected by the browser, changeable); booking posts and redirects to the
confirmation page, which lists every session, the .ics of the whole itinerary and, when the link
allows it, reschedule (the whole loop) and cancel (the whole loop or one session)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from models import SchedulingLink
from webapp import deps, security
from webapp.db import db_session
from webapp.mail import ics
from webapp.public_urls import external_url
from webapp.services import zones
from webapp.services.availability import model, roster
from webapp.services.errors import LinkUnusable, ServiceError, SlotTaken
from webapp.services.loops import availability
from webapp.services.loops import candidate as loops_candidate
from webapp.services.loops import candidate_changes as loops_changes
from webapp.views.schedule import zone_options

#: What the confirmation page says after the candidate's own change (``?done=``).
DONE = {"moved", "cancelled", "session_cancelled", "session_moved"}


def offers_loop(token: str) -> bool:
    """Whether ``token`` is a link's that offers a loop (the loop pages then answer)."""
    if not token or len(token) > 2048:
        return False
    loop_id = db_session().scalar(
        select(SchedulingLink.loop_id).where(
            SchedulingLink.token_hash == security.token_hash(token)
        )
    )
    return loop_id is not None


def dispatch(endpoint: str | None, token: str):
    """The loop page answering ``endpoint`` of the candidate blueprint (None: not one of them)."""
    method = "GET" if request.method == "HEAD" else request.method
    handler = _handlers().get((endpoint or "", method))
    return handler(token) if handler is not None else None


def _tzid(default: str) -> str:
    wanted = request.values.get("tz")
    return wanted if model.valid_zone(wanted) else default


def _unusable(exc: LinkUnusable):
    return render_template("candidate/unusable.html", message=exc.message), (
        404 if exc.state == "unknown" else 410
    )


def _days(options, tz) -> dict[dt.date, list]:
    days: dict[dt.date, list] = {}
    for option in options:
        days.setdefault(option.start.astimezone(tz).date(), []).append(option)
    return days


def _offer_page(
    token: str,
    title: str,
    candidate_name: str,
    default_tz: str,
    loop,
    options,
    *,
    problem: str | None = None,
    status: int = 200,
    change: loops_changes.Change | None = None,
):
    tzid = _tzid(default_tz)
    tz = model.zone(tzid)
    days = _days(options, tz)
    wanted = request.values.get("day", "")
    chosen_value = request.form.get("option") if request.method == "POST" else None
    chosen = next(
        (d for d, opts in days.items() if any(o.value == chosen_value for o in opts)), None
    )
    if chosen is None:
        try:
            chosen = dt.date.fromisoformat(wanted) if len(wanted) == 10 else None
        except ValueError:
            chosen = None
    if chosen not in days:
        chosen = next(iter(days), None)
    db = db_session()
    return render_template(
        "candidate/loop_offer.html",
        token=token,
        title=title,
        candidate_name=candidate_name,
        sessions=loop.sessions,
        titles=_titles(loop),
        people=loops_candidate.interviewers(db, loop),
        pooled=any(getattr(s, "pool_id", None) for s in loop.sessions) and change is None,
        rooms={r.email: r.name for r in roster.room_choices(db, loop.organisation_id)},
        organisation=_organisation(loop),
        days=days,
        chosen=chosen,
        chosen_value=chosen_value,
        tz=tz,
        tzid=tzid,
        zone_options=zone_options,
        zone_label=zones.zone_label,
        first=lambda name: (name.split() or [""])[0],
        problem=problem,
        change=change,
        endpoint="candidate.reschedule_page" if change else "candidate.page",
        action=url_for("candidate.reschedule", token=token)
        if change
        else url_for("candidate.book", token=token),
    ), status


def _titles(loop) -> list[str]:
    from webapp.services.loops.compose import open_details

    details = open_details(deps.sealer(), loop)
    titles = details.session_titles if details else ()
    return [
        titles[s.ordinal - 1] if s.ordinal - 1 < len(titles) else f"Session {s.ordinal}"
        for s in loop.sessions
    ]


def _organisation(loop) -> str:
    from models import Organisation

    org = db_session().get(Organisation, loop.organisation_id)
    return org.name if org else ""


def page(token: str):
    """The start times with their itineraries; once booked, the itinerary."""
    db = db_session()
    try:
        offer = loops_candidate.open_offer(db, deps.sealer(), token)
    except LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    return _offer(token, offer)


def _offer(token: str, offer, problem: str | None = None, status: int = 200):
    db = db_session()
    try:
        options = loops_candidate.offered_times(db, deps.required_broker(), deps.sealer(), offer)
    except ServiceError as exc:
        db.rollback()
        options, problem, status = (), exc.message, 503
    opened = offer.opened
    return _offer_page(
        token,
        opened.title,
        opened.candidate_name,
        opened.candidate_tzid,
        offer.loop,
        options,
        problem=problem,
        status=status,
    )


def _starts(loop) -> list[dt.datetime] | None:
    parsed = availability.parse_option(request.form.get("option", ""), len(loop.sessions))
    return list(parsed) if parsed else None


def book(token: str):
    """Book every session at the chosen itinerary (or none), then show the itinerary."""
    db = db_session()
    try:
        offer = loops_candidate.open_offer(db, deps.sealer(), token)
    except LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    starts = _starts(offer.loop)
    if starts is None:
        return _offer(token, offer, "Pick one of the start times offered.", 400)
    try:
        loops_candidate.book(
            db,
            deps.required_broker(),
            deps.sealer(),
            token,
            starts,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
            change_url=external_url("candidate.page", token=token),
        )
    except LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    except ServiceError as exc:
        db.rollback()
        try:
            offer = loops_candidate.open_offer(db, deps.sealer(), token)
        except LinkUnusable as gone:
            return _used_or_unusable(token, gone)
        return _offer(token, offer, exc.message, 409 if isinstance(exc, SlotTaken) else 400)
    return redirect(url_for("candidate.page", token=token, tz=request.form.get("tz")), code=303)


def _used_or_unusable(token: str, exc: LinkUnusable):
    if exc.state != "used":
        return _unusable(exc)
    return _booked_page(token)


def _booked_page(
    token: str,
    change: loops_changes.Change | None = None,
    status: int = 200,
    problem: str | None = None,
):
    db = db_session()
    if change is None:
        try:
            shown = loops_candidate.shown(db, deps.broker(), deps.cipher(), deps.sealer(), token)
        except LinkUnusable as gone:
            return _unusable(gone)
        change = loops_changes.change_for(db, deps.sealer(), token, shown)
    shown = change.shown
    tz = model.zone(_tzid(shown.tzid))
    done = request.args.get("done")
    add = {
        s.ordinal: {
            "google": ics.google_link(s.title, s.start, s.end),
            "outlook": ics.outlook_link(s.title, s.start, s.end),
        }
        for s in shown.live
        if s.start and s.end
    }
    return render_template(
        "candidate/loop_booked.html",
        token=token,
        shown=shown,
        change=change,
        tz=tz,
        add=add,
        done=done if done in DONE else None,
        refused_now=status in (403, 503),
        problem=problem,
    ), status


def _ics_uid(interview_uid: str) -> str:
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "rendezvous"
    return ics.uid_of(interview_uid, host)


def calendar_file(token: str):
    """Every session still on, as one .ics (each its own VEVENT and UID)."""
    try:
        shown = loops_candidate.shown(
            db_session(), deps.broker(), deps.cipher(), deps.sealer(), token
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    live = [s for s in shown.live if s.start and s.end and s.interview_uid]
    if shown.state in ("cancelled", "failed") or not live or shown.state == "unknown":
        message = (
            "These interviews were cancelled."
            if shown.state in ("cancelled", "failed")
            else "Your interviews' times could not be read just now. Please try again shortly."
        )
        return render_template("candidate/unusable.html", message=message), (
            410 if shown.state in ("cancelled", "failed") else 503
        )
    body = ics.itinerary_ics(
        [
            ics.Entry(
                uid=_ics_uid(s.interview_uid),  # type: ignore[arg-type]
                title=s.title,
                start=s.start,  # type: ignore[arg-type]
                end=s.end,  # type: ignore[arg-type]
                description=f"Session {s.ordinal} of {len(shown.sessions)} of {shown.title}.",
            )
            for s in live
        ],
        sequence=ics.sequence_now(),  # newer than any notice sent before: calendars take it
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'attachment; filename="itinerary.ics"',
            "Cache-Control": "no-store",
        },
    )


def _handlers() -> dict:
    from webapp.views import candidate_loop_changes as changes

    return {
        ("candidate.page", "GET"): page,
        ("candidate.book", "POST"): book,
        ("candidate.calendar_file", "GET"): calendar_file,
        ("candidate.reschedule_page", "GET"): changes.reschedule_page,
        ("candidate.reschedule", "POST"): changes.reschedule,
        ("candidate.cancel_page", "GET"): changes.cancel_page,
        ("candidate.cancel", "POST"): changes.cancel,
    }
