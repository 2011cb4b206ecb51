"""Candidate self-scheduling: the recruiter's links (create, list, revoke) and the candidate's
public booking pages (no login; guarded by the signed, single-use token in the URL)."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from models import Role
from webapp.db import db_session
from webapp.extensions import limiter
from webapp.logs import RedactingFilter
from webapp.public_urls import external_url
from webapp.scheduling_tasks import sealer
from webapp.security import allow, public
from webapp.services import NotFound, ServiceError, candidate_links, scheduling
from webapp.services import availability as av
from webapp.views import required_broker
from webapp.views.schedule import parse_start, viewer_zone, zone_options
from webapp.web import actor

links_bp = Blueprint("candidate_links", __name__, url_prefix="/schedule/links")
bp = Blueprint("candidate", __name__, url_prefix="/c")

#: Per client address, for the public pages (guessing tokens is hopeless anyway: ≥ 256 bits).
CANDIDATE_LIMIT = "30 per minute"


def invite_callback_url(interview_id: int) -> str:
    """Where the aggregator reports the candidate's answer to a Smart Invite (sealed id)."""
    sealer_ = current_app.extensions["rendezvous.sealer"]
    return external_url("hooks.smart_invite", ref=sealer_.seal("invite", str(interview_id)))


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


def _ext(name: str):
    return current_app.extensions[f"rendezvous.{name}"]


# ---------------------------------------------------------------------------------------------
# Recruiter: links


def _links_page(problem: str | None = None, status: int = 200, form=None, new_url=None):
    db = db_session()
    me = actor()
    return render_template(
        "candidate/links.html",
        links=candidate_links.links_of(db, me),
        choices=av.panel_choices(db, me),
        durations=av.DURATIONS,
        zone_options=zone_options,
        viewer_tz=viewer_zone(),
        problem=problem,
        form=form or {},
        new_url=new_url,
        today=dt.date.today().isoformat(),
    ), status


@links_bp.route("/")
@allow(Role.RECRUITER)
def index():
    """List the user's self-scheduling links and offer to create one."""
    return _links_page()


@links_bp.route("/", methods=["POST"])
@allow(Role.RECRUITER)
def create():
    """Create a self-scheduling link and show it once."""
    form = request.form
    try:
        hours = _candidate_hours(form)
        panel = [int(v) for v in form.getlist("panel")]
        start_date = dt.date.fromisoformat(form.get("start_date") or dt.date.today().isoformat())
        link, token = candidate_links.create_link(
            db_session(),
            sealer(),
            actor(),
            panel_link_ids=panel,
            duration=int(form.get("duration") or 60),
            start_date=start_date,
            days=int(form.get("days") or 5),
            expires_days=int(form.get("expires_days") or 7),
            candidate_name=form.get("candidate_name", ""),
            candidate_email=form.get("candidate_email", ""),
            candidate_tzid=form.get("candidate_tzid") or viewer_zone(),
            title=form.get("title", ""),
            video=form.get("video") == "on",
            candidate_hours=hours,
        )
    except ValueError:
        return _links_page("Enter whole numbers and a date like 2026-11-23.", 400, form)
    except ServiceError as exc:
        return _links_page(exc.message, 400, form)
    return _links_page(new_url=external_url("candidate.page", token=token), status=201)


def _candidate_hours(form) -> tuple[int, int] | None:
    """The candidate's hours from the link form (``HH:MM`` in their zone), when limited."""
    if form.get("candidate_hours") != "on":
        return None
    return (
        scheduling.parse_minutes(form.get("candidate_start") or "", "candidate_hours"),
        scheduling.parse_minutes(form.get("candidate_end") or "", "candidate_hours"),
    )


@links_bp.route("/<int:link_id>/revoke", methods=["POST"])
@allow(Role.RECRUITER)
def revoke(link_id: int):
    """Withdraw a link so it can no longer be used."""
    try:
        candidate_links.revoke(db_session(), actor(), link_id)
    except NotFound:
        abort(404)
    flash("The link no longer works.", "success")
    return redirect(url_for("candidate_links.index"))


# ---------------------------------------------------------------------------------------------
# Candidate: public pages


def _tz(opened) -> str:
    wanted = request.values.get("tz")
    return wanted if av.valid_zone(wanted) else opened.candidate_tzid


def _slots_page(token: str, opened, problem: str | None = None, status: int = 200):
    tzid = _tz(opened)
    try:
        found = candidate_links.slots(db_session(), required_broker(), opened)
    except ServiceError as exc:
        found, problem, status = (), exc.message, 503
    tz = av.zone(tzid)
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
        zone_label=av.zone_label,
        duration=opened.link.duration_minutes,
    ), status


def _unusable(exc: candidate_links.LinkUnusable):
    return render_template(
        "candidate/unusable.html", message=exc.message
    ), 404 if exc.state == "unknown" else 410


def _booked_page(
    shown: candidate_links.Booked,
    *,
    invite_ics: str | None = None,
    soon: bool = False,
    again: bool = False,
):
    chosen = request.values.get("tz")
    tz = av.zone(chosen if av.valid_zone(chosen) else shown.tzid)
    return render_template(
        "candidate/booked.html", shown=shown, tz=tz, invite_ics=invite_ics, soon=soon, again=again
    )


def _used_or_unusable(token: str, exc: candidate_links.LinkUnusable):
    """A used link shows what it booked (a double-click lands here too); others are refused."""
    if exc.state != "used":
        return _unusable(exc)
    try:
        shown = candidate_links.booked(
            db_session(), _ext("broker"), _ext("cipher"), sealer(), token
        )
    except candidate_links.LinkUnusable as gone:
        return _unusable(gone)
    return _booked_page(shown, again=True)


@bp.route("/<token>")
@public
@limiter.limit(CANDIDATE_LIMIT)
def page(token: str):
    """Show the candidate the free times, in their time zone."""
    try:
        opened = candidate_links.open_link(db_session(), sealer(), token)
    except candidate_links.LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    return _slots_page(token, opened)


@bp.route("/<token>", methods=["POST"])
@public
@limiter.limit(CANDIDATE_LIMIT)
def book(token: str):
    """Book the chosen time and confirm it."""
    db = db_session()
    try:
        booking = candidate_links.book(
            db,
            required_broker(),
            _ext("cipher"),
            sealer(),
            token,
            parse_start(request.form.get("slot")),
            invite_callback_url=invite_callback_url,
            organizer_email=current_app.config.get("SMART_INVITE_ORGANIZER_EMAIL"),
        )
    except candidate_links.LinkUnusable as exc:
        return _used_or_unusable(token, exc)
    except ServiceError as exc:
        try:  # the link may have been used meanwhile (e.g. by the other of two clicks)
            opened = candidate_links.open_link(db, sealer(), token)
        except candidate_links.LinkUnusable as gone:
            return _used_or_unusable(token, gone)
        return _slots_page(
            token, opened, exc.message, 409 if isinstance(exc, scheduling.SlotTaken) else 400
        )
    if booking.retry_payload:
        _ext("jobs").enqueue("scheduling.write", booking.interview.id, booking.retry_payload)
    return _booked_page(
        candidate_links.Booked(booking.title, booking.tzid, "booked", booking.start, booking.end),
        invite_ics=booking.invite_ics,
        soon=booking.retry_payload is not None,
    )
