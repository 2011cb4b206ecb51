"""The candidate's public booking pages of a self-scheduling link (no login; guarded by the
signed, single-use token in the URL). The recruiter's pages that create and revoke the links are
in webapp/views/candidate_links.py."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from models import utcnow
from webapp import callbacks, deps, mail
from webapp.db import db_session
from webapp.extensions import limiter
from webapp.logs import RedactingFilter
from webapp.mail import ics, notices
from webapp.public_urls import external_url
from webapp.security import public
from webapp.services import candidate_booking, candidate_changes, zones
from webapp.services.availability import model
from webapp.services.errors import LinkUnusable, ServiceError, SlotTaken
from webapp.views import candidate_loops
from webapp.views.schedule import parse_start, zone_options

bp = Blueprint("candidate", __name__, url_prefix="/c")

#: Per client address, for the public pages (guessing tokens is hopeless anyway: ≥ 256 bits).
CANDIDATE_LIMIT = "30 per minute"


@bp.record_once
def _redact_request_log(_state) -> None:
    """The request log line carries the path, and the path carries the token: redact it."""
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactingFilter) for f in werkzeug.filters):
        werkzeug.addFilter(RedactingFilter())


@bp.before_request
def _loop_links():
    """A link that offers an interview loop is answered by the loop pages (candidate_loops)."""
    token = (request.view_args or {}).get("token")
    if token and candidate_loops.offers_loop(token):
        return candidate_loops.dispatch(request.endpoint, token)
    return None


@bp.after_request
def _no_referrer(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _tz(opened) -> str:
    wanted = request.values.get("tz")
    return wanted if model.valid_zone(wanted) else opened.candidate_tzid


def _weeks(first: dt.date, last: dt.date) -> list[list[dt.date]]:
    """Monday-to-Sunday weeks from the one holding ``first`` to the one holding ``last``."""
    day = first - dt.timedelta(days=first.weekday())
    weeks = []
    while day <= last:
        weeks.append([day + dt.timedelta(days=i) for i in range(7)])
        day += dt.timedelta(days=7)
    return weeks


def _picker(opened, found, tzid: str, current: dt.datetime | None = None) -> dict:
    """The date picker and the times of each day, in the candidate's zone (``day`` chooses)."""
    tz = model.zone(tzid)
    days: dict[dt.date, list] = {}
    for slot in found:
        days.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    link = opened.link
    first = max(link.window_start, utcnow()).astimezone(tz).date()
    last = (link.window_end - dt.timedelta(seconds=1)).astimezone(tz).date()
    wanted = request.args.get("day", "")
    try:
        chosen = dt.date.fromisoformat(wanted) if len(wanted) == 10 else None
    except ValueError:
        chosen = None
    if chosen not in days:
        chosen = next(iter(days), None)
    weeks = _weeks(min(first, last), last)
    months = sorted({(d.year, d.month) for week in weeks for d in week if first <= d <= last})
    label = " – ".join(dt.date(y, m, 1).strftime("%B %Y") for y, m in months[:1] + months[1:][-1:])
    return {
        "days": days,
        "chosen": chosen,
        "weeks": weeks,
        "months_label": label,
        "first": first,
        "last": last,
        "tz": tz,
        "tzid": tzid,
        #: The day of the interview being moved (marked on the picker).
        "current": current.astimezone(tz).date() if current else None,
    }


def _slots_page(
    token: str,
    opened,
    problem: str | None = None,
    status: int = 200,
    *,
    change: candidate_changes.Change | None = None,
):
    """The booking page (or, with ``change``, the page that picks a new time)."""
    tzid = _tz(opened)
    db = db_session()
    try:
        if change is None:
            found = candidate_booking.slots(db, deps.required_broker(), opened)
        else:
            found = candidate_changes.slots(db, deps.required_broker(), change)
    except ServiceError as exc:
        found, problem, status = (), exc.message, 503
    endpoint = "candidate.reschedule_page" if change else "candidate.page"
    return render_template(
        "candidate/slots.html",
        token=token,
        opened=opened,
        facts=candidate_booking.facts(db, opened.link),
        picker=_picker(opened, found, tzid, change.shown.start if change else None),
        tzid=tzid,
        zone_options=zone_options,
        problem=problem,
        zone_label=zones.zone_label,
        duration=opened.link.duration_minutes,
        change=change,
        endpoint=endpoint,
        action=url_for("candidate.reschedule", token=token)
        if change
        else url_for("candidate.book", token=token),
    ), status


def _unusable(exc: LinkUnusable):
    return render_template(
        "candidate/unusable.html", message=exc.message
    ), 404 if exc.state == "unknown" else 410


def _booked_page(
    shown: candidate_booking.Booked,
    *,
    invite_ics: str | None = None,
    soon: bool = False,
    again: bool = False,
    change: candidate_changes.Change | None = None,
    done: str | None = None,
    status: int = 200,
):
    chosen = request.values.get("tz")
    tz = model.zone(chosen if model.valid_zone(chosen) else shown.tzid)
    add = None
    if shown.state in {"booked", "pending"} and shown.start and shown.end:
        add = {
            "google": ics.google_link(shown.title, shown.start, shown.end),
            "outlook": ics.outlook_link(shown.title, shown.start, shown.end),
            "office": ics.outlook_link(shown.title, shown.start, shown.end, work=True),
        }
    return render_template(
        "candidate/booked.html",
        shown=shown,
        tz=tz,
        invite_ics=invite_ics,
        soon=soon,
        again=again,
        add=add,
        change=change,
        done=done,
        refused_now=status in (403, 503),
    ), status


def _ics_uid(interview_uid: str) -> str:
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "rendezvous"
    return ics.uid_of(interview_uid, host)


def _used_or_unusable(token: str, exc: LinkUnusable):
    """A used link shows what it booked (a double-click lands here too); others are refused."""
    if exc.state != "used":
        return _unusable(exc)
    try:
        shown = candidate_booking.booked(
            db_session(), deps.broker(), deps.cipher(), deps.sealer(), token
        )
    except LinkUnusable as gone:
        return _unusable(gone)
    done = request.args.get("done")
    return _booked_page(
        shown,
        again=done not in DONE,
        change=candidate_changes.change_for(db_session(), deps.sealer(), token, shown),
        done=done if done in DONE else None,
    )


#: What the confirmation page says after the candidate's own change (``?done=``).
DONE = {"moved", "cancelled"}


@bp.route("/<token>")
@public
@limiter.limit(CANDIDATE_LIMIT)
def page(token: str):
    """Show the candidate the free times, in their time zone."""
    try:
        opened = candidate_booking.open_link(db_session(), deps.sealer(), token)
    except LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    return _slots_page(token, opened)


@bp.route("/<token>", methods=["POST"])
@public
@limiter.limit(CANDIDATE_LIMIT)
def book(token: str):
    """Book the chosen time and confirm it."""
    db = db_session()
    try:
        booking = candidate_booking.book(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            parse_start(request.form.get("slot")),
            invite_callback_url=callbacks.invite_callback_url,
            organizer_email=current_app.config.get("SMART_INVITE_ORGANIZER_EMAIL"),
            jobs=deps.jobs(),
        )
    except LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    except ServiceError as exc:
        try:  # the link may have been used meanwhile (e.g. by the other of two clicks)
            opened = candidate_booking.open_link(db, deps.sealer(), token)
        except LinkUnusable as gone:
            return _used_or_unusable(token, gone)
        return _slots_page(token, opened, exc.message, 409 if isinstance(exc, SlotTaken) else 400)
    shown = candidate_booking.Booked(
        booking.title,
        booking.tzid,
        "booked",
        booking.start,
        booking.end,
        interview_uid=booking.interview.uid,
    )
    change = candidate_changes.change_for(db, deps.sealer(), token, shown)
    link = change.opened.link
    mail.queue(
        deps.jobs(),
        deps.sealer(),
        notices.booking_confirmation(
            to=booking.candidate_email,
            candidate_name=booking.candidate_name,
            title=booking.title,
            start=booking.start,
            end=booking.end,
            tzid=booking.tzid,
            ics_uid=_ics_uid(booking.interview.uid),
            organisation_id=booking.interview.organisation_id,
            interview_id=booking.interview.id,
            change_url=external_url("candidate.page", token=token)
            if link.candidate_may_change
            else None,
            change_cutoff_hours=link.change_cutoff_hours,
        ),
    )
    return _booked_page(
        shown,
        invite_ics=booking.invite_ics,
        soon=booking.retry_payload is not None,
        change=change,
    )


@bp.route("/<token>/interview.ics")
@public
@limiter.limit(CANDIDATE_LIMIT)
def calendar_file(token: str):
    """The booked interview as an .ics file (the time as the calendar says now)."""
    try:
        shown = candidate_booking.booked(
            db_session(), deps.broker(), deps.cipher(), deps.sealer(), token
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    if shown.state not in {"booked", "pending"} or not (
        shown.start and shown.end and shown.interview_uid
    ):
        message = (
            "This interview was cancelled."
            if shown.state == "cancelled"
            else "The interview's time could not be read just now. Please try again shortly."
        )
        return render_template("candidate/unusable.html", message=message), (
            410 if shown.state == "cancelled" else 503
        )
    body = ics.interview_ics(
        uid=_ics_uid(shown.interview_uid),
        title=shown.title,
        start=shown.start,
        end=shown.end,
        sequence=ics.sequence_now(),  # newer than any notice sent before: calendars take it
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'attachment; filename="interview.ics"',
            "Cache-Control": "no-store",
        },
    )


def _change_or_refusal(token: str):
    """(the change, None) when the candidate may change their booking now; else (None, the page
    that says why, changing nothing)."""
    try:
        change = candidate_changes.change_of(
            db_session(), deps.broker(), deps.cipher(), deps.sealer(), token
        )
    except LinkUnusable as exc:
        return None, _unusable(exc)
    if not change.allowed:
        # A calendar that cannot be read just now is worth another try; the rest is a refusal.
        status = 503 if change.reason == "time unknown" else 403
        return None, _booked_page(change.shown, change=change, status=status)
    return change, None


@bp.route("/<token>/reschedule")
@public
@limiter.limit(CANDIDATE_LIMIT)
def reschedule_page(token: str):
    """Offer the candidate new times for what they booked, if the link allows it now."""
    change, refusal = _change_or_refusal(token)
    if refusal is not None:
        return refusal
    return _slots_page(token, change.opened, change=change)


@bp.route("/<token>/reschedule", methods=["POST"])
@public
@limiter.limit(CANDIDATE_LIMIT)
def reschedule(token: str):
    """Move the candidate's interview to the chosen time (the same rules as every booking)."""
    db = db_session()
    try:
        candidate_changes.reschedule(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            parse_start(request.form.get("slot")),
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    except ServiceError as exc:
        change, refusal = _change_or_refusal(token)
        if refusal is not None:
            return refusal
        return _slots_page(
            token,
            change.opened,
            exc.message,
            409 if isinstance(exc, SlotTaken) else 400,
            change=change,
        )
    return redirect(url_for("candidate.page", token=token, done="moved", tz=request.form.get("tz")))


@bp.route("/<token>/cancel")
@public
@limiter.limit(CANDIDATE_LIMIT)
def cancel_page(token: str):
    """Ask the candidate to confirm the cancellation."""
    change, refusal = _change_or_refusal(token)
    if refusal is not None:
        return refusal
    chosen = request.args.get("tz")
    tz = model.zone(chosen if model.valid_zone(chosen) else change.shown.tzid)
    return render_template("candidate/cancel.html", token=token, change=change, tz=tz)


@bp.route("/<token>/cancel", methods=["POST"])
@public
@limiter.limit(CANDIDATE_LIMIT)
def cancel(token: str):
    """Cancel the candidate's interview, once confirmed."""
    try:
        candidate_changes.cancel(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    except ServiceError as exc:
        change, refusal = _change_or_refusal(token)
        if refusal is not None:
            return refusal
        return render_template(
            "candidate/cancel.html",
            token=token,
            change=change,
            tz=model.zone(change.shown.tzid),
            problem=exc.message,
        ), 409
    return redirect(url_for("candidate.page", token=token, done="cancelled"))
