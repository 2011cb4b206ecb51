"""The recruiter's self-scheduling links: create one (shown once), list them, revoke one. The
candidate's public pages that a link opens are in webapp/views/candidate.py."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from models import LoopState, Role
from webapp import deps
from webapp.db import db_session
from webapp.public_urls import external_url
from webapp.security import allow
from webapp.services import candidate_links
from webapp.services.availability import model, roster
from webapp.services.errors import NotFound, ServiceError
from webapp.services.loops import compose
from webapp.services.loops import links as loop_links
from webapp.services.scheduling import preferences
from webapp.views.schedule import viewer_zone, zone_options
from webapp.web import actor

bp = Blueprint("candidate_links", __name__, url_prefix="/schedule/links")


def _links_page(
    problem: str | None = None,
    status: int = 200,
    form=None,
    new_url=None,
    emailed=None,
    loop_problem: str | None = None,
):
    db = db_session()
    me = actor()
    tzid = viewer_zone()
    sealer = deps.sealer()
    drafts = [
        (loop, compose.open_details(sealer, loop))
        for loop in compose.list_loops(db, me)
        if loop.state is LoopState.DRAFT
    ]
    return render_template(
        "candidate_links/index.html",
        links=candidate_links.listed_links(db, sealer, me),
        loops={loop.id: loop for loop in compose.list_loops(db, me)},
        drafts=drafts,
        loop_problem=loop_problem,
        url_of=_url_of,
        choices=roster.panel_choices(db, me),
        durations=model.DURATIONS,
        zone_options=zone_options,
        viewer_tz=tzid,
        tz=model.zone(tzid),
        problem=problem,
        form=form or {},
        new_url=new_url,
        emailed=emailed,
        today=dt.date.today().isoformat(),
    ), status


def _url_of(token: str) -> str:
    """The candidate's URL of a link token (a bearer link: shown to its recruiter only)."""
    return external_url("candidate.page", token=token)


@bp.route("/")
@allow(Role.RECRUITER)
def index():
    """List the user's self-scheduling links and offer to create one."""
    return _links_page()


@bp.route("/", methods=["POST"])
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
            deps.sealer(),
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
            email_to=_url_of if form.get("email_candidate") == "on" else None,
            jobs=deps.jobs(),
            candidate_may_change=form.get("candidate_may_change") == "on",
            change_cutoff_hours=int(form.get("change_cutoff_hours") or 24),
        )
    except ValueError:
        return _links_page("Enter whole numbers and a date like 2026-11-23.", 400, form)
    except ServiceError as exc:
        return _links_page(exc.message, 400, form)
    emailed = form.get("candidate_email", "").strip() if form.get("email_candidate") else None
    return _links_page(new_url=_url_of(token), emailed=emailed, status=201)


@bp.route("/loop", methods=["POST"])
@allow(Role.RECRUITER)
def offer_loop():
    """Create a link that offers a composed loop (its sessions, people, rooms and video) and
    show it once."""
    form = request.form
    try:
        _link, token = loop_links.offer_loop(
            db_session(),
            deps.sealer(),
            actor(),
            form.get("loop", ""),
            expires_days=int(form.get("loop_expires_days") or 7),
            email_to=_url_of if form.get("loop_email_candidate") == "on" else None,
            jobs=deps.jobs(),
            candidate_may_change=form.get("loop_candidate_may_change") == "on",
            change_cutoff_hours=int(form.get("loop_change_cutoff_hours") or 24),
            candidate_hours=_loop_hours(form),
        )
    except ValueError:
        db_session().rollback()
        return _links_page(status=400, form=form, loop_problem="Enter whole numbers.")
    except NotFound:
        db_session().rollback()
        return _links_page(
            status=404, form=form, loop_problem="Choose one of your loops from the list."
        )
    except ServiceError as exc:
        db_session().rollback()
        return _links_page(status=400, form=form, loop_problem=exc.message)
    emailed = _loop_email(form.get("loop", "")) if form.get("loop_email_candidate") else None
    return _links_page(new_url=_url_of(token), emailed=emailed, status=201)


def _loop_hours(form) -> tuple[int, int] | None:
    """The candidate's hours from the loop link form (``HH:MM`` in their zone), when limited."""
    if form.get("loop_candidate_hours") != "on":
        return None
    return (
        preferences.parse_minutes(form.get("loop_candidate_start") or "", "candidate_hours"),
        preferences.parse_minutes(form.get("loop_candidate_end") or "", "candidate_hours"),
    )


def _loop_email(uid: str) -> str | None:
    try:
        loop = compose.loop_for(db_session(), actor(), uid)
    except ServiceError:
        return None
    details = compose.open_details(deps.sealer(), loop)
    return details.candidate_email if details else None


def _candidate_hours(form) -> tuple[int, int] | None:
    """The candidate's hours from the link form (``HH:MM`` in their zone), when limited."""
    if form.get("candidate_hours") != "on":
        return None
    return (
        preferences.parse_minutes(form.get("candidate_start") or "", "candidate_hours"),
        preferences.parse_minutes(form.get("candidate_end") or "", "candidate_hours"),
    )


@bp.route("/<int:link_id>/revoke", methods=["POST"])
@allow(Role.RECRUITER)
def revoke(link_id: int):
    """Withdraw a link so it can no longer be used."""
    try:
        candidate_links.revoke(db_session(), actor(), link_id)
    except NotFound:
        abort(404)
    flash("The link no longer works.", "success")
    return redirect(url_for("candidate_links.index"))
