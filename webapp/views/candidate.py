"""The candidate's public booking pages of a self-scheduling link (no login; guarded by the
signed, single-use token in the URL). The recruiter's pages that create and revoke the links are
in webapp/views/candidate_links.py."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request

from webapp import callbacks, deps, mail
from webapp.db import db_session
from webapp.extensions import limiter
from webapp.logs import RedactingFilter
from webapp.mail import ics, notices
from webapp.security import public
from webapp.services import candidate_booking, zones
from webapp.services.availability import model
from webapp.services.errors import LinkUnusable, ServiceError, SlotTaken
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


@bp.after_request
def _no_referrer(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _tz(opened) -> str:
    wanted = request.values.get("tz")
    return wanted if model.valid_zone(wanted) else opened.candidate_tzid


def _slots_page(token: str, opened, problem: str | None = None, status: int = 200):
    tzid = _tz(opened)
    try:
        found = candidate_booking.slots(db_session(), deps.required_broker(), opened)
    except ServiceError as exc:
        found, problem, status = (), exc.message, 503
    tz = model.zone(tzid)
    days: dict[dt.date, list] = {}
    for slot in found:
        days.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    return render_template(
        "candidate/slots.html",
        token=token,
        opened=opened,
        days=days,
        tz=tz,
        tzid=tzid,
        zone_options=zone_options,
        problem=problem,
        zone_label=zones.zone_label,
        duration=opened.link.duration_minutes,
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
    )


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
    return _booked_page(shown, again=True)


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
        ),
    )
    return _booked_page(
        candidate_booking.Booked(
            booking.title,
            booking.tzid,
            "booked",
            booking.start,
            booking.end,
            interview_uid=booking.interview.uid,
        ),
        invite_ics=booking.invite_ics,
        soon=booking.retry_payload is not None,
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
        uid=_ics_uid(shown.interview_uid), title=shown.title, start=shown.start, end=shown.end
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'attachment; filename="interview.ics"',
            "Cache-Control": "no-store",
        },
    )
