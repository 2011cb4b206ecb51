"""My interviews: list, open, reschedule and cancel interviews the app created."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from models import InterviewStatus
from webapp.db import db_session
from webapp.scheduling_tasks import sealer
from webapp.security import allow
from webapp.services import NotFound, ServiceError
from webapp.services import availability as av
from webapp.services import scheduling, video
from webapp.views.schedule import SCHEDULERS, parse_start, viewer_zone
from webapp.web import actor

bp = Blueprint("interviews", __name__, url_prefix="/interviews")


def _ext(name: str):
    return current_app.extensions[f"rendezvous.{name}"]


@bp.route("/")
@allow(*SCHEDULERS)
def index():
    """List upcoming and past interviews with their status."""
    db = db_session()
    me = actor()
    notices = scheduling.notices_for(db, me)
    upcoming, past, problems = scheduling.list_interviews(db, _ext("broker"), _ext("cipher"), me)
    return render_template("interviews/index.html", upcoming=upcoming, past=past,
                           problems=problems, notices=notices, tz=av.zone(viewer_zone()),
                           Status=InterviewStatus)


@bp.route("/<uid>")
@allow(*SCHEDULERS)
def show(uid: str):
    """Show one interview as its calendar event says now."""
    try:
        view = scheduling.view_interview(db_session(), _ext("broker"), _ext("cipher"), actor(), uid)
    except NotFound:
        abort(404)
    return render_template("interviews/show.html", view=view, tz=av.zone(viewer_zone()),
                           tzid=viewer_zone(), Status=InterviewStatus,
                           video_label=video.provider_label)


@bp.route("/<uid>/cancel", methods=["POST"])
@allow(*SCHEDULERS)
def cancel(uid: str):
    """Cancel the interview and delete its calendar events."""
    try:
        interview = scheduling.cancel_interview(db_session(), actor(), uid)
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("interviews.show", uid=uid))
    _ext("jobs").enqueue("scheduling.delete", interview.id)
    flash("The interview is cancelled; the calendar tells the attendees.", "success")
    return redirect(url_for("interviews.show", uid=uid), code=303)


@bp.route("/<uid>/reschedule")
@allow(*SCHEDULERS)
def reschedule_form(uid: str):
    """Show the panel's free slots to move the interview to."""
    db = db_session()
    me = actor()
    try:
        interview = scheduling.interview_for(db, me, uid)
    except NotFound:
        abort(404)
    grid, problem = None, None
    try:
        view = scheduling.view_interview(db, _ext("broker"), _ext("cipher"), me, uid)
        duration = scheduling.duration_of(view.event)
        query = av.Query(panel_link_ids=tuple(interview.panel_link_ids), duration=duration,
                         start_date=None, days=5, tzid=viewer_zone(),
                         on_behalf_of_id=interview.on_behalf_of_id)
        if request.args.get("start_date"):
            from webapp.views.schedule import parse_query

            query = parse_query(request.args)
        room = scheduling.room_of(db, interview.organisation_id, view.event)
        query = dataclasses.replace(query, room=room.email if room else None)
        grid = av.grid(db, _ext("broker"), _ext("cipher"), me, query)
    except (ServiceError, ValueError) as exc:
        problem = getattr(exc, "message", "Could not read the panel's availability.")
    return render_template("interviews/reschedule.html", interview=interview, grid=grid,
                           problem=problem, tz=av.zone(viewer_zone()), grid_days=av.by_day)


@bp.route("/<uid>/reschedule", methods=["POST"])
@allow(*SCHEDULERS)
def reschedule(uid: str):
    """Move the interview to the chosen slot (the same calendar event moves)."""
    try:
        interview, payload = scheduling.reschedule_interview(
            db_session(), _ext("broker"), _ext("cipher"), sealer(), actor(), uid,
            parse_start(request.form.get("slot")))
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("interviews.reschedule_form", uid=uid))
    _ext("jobs").enqueue("scheduling.write", interview.id, payload)
    flash("The interview is moved; the calendar tells the attendees.", "success")
    return redirect(url_for("interviews.show", uid=uid), code=303)
