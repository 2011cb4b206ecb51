"""My interviews: list, open, reschedule and cancel interviews the app created."""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from models import InterviewStatus, utcnow
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services import video
from webapp.services.availability import free_slots, model
from webapp.services.errors import Invalid, NotFound, ServiceError
from webapp.services.loops import ordinary
from webapp.services.scheduling import access, reading, rescheduling
from webapp.views.schedule import SCHEDULERS, parse_date, parse_start, viewer_zone
from webapp.web import actor

bp = Blueprint("interviews", __name__, url_prefix="/interviews")


@bp.route("/")
@allow(*SCHEDULERS)
def index():
    """List upcoming, past and cancelled interviews with their status."""
    db = db_session()
    me = actor()
    notices = reading.notices_for(db, me)
    listed = reading.list_interviews(db, deps.broker(), deps.cipher(), me)
    return render_template(
        "interviews/index.html",
        listed=listed,
        notices=notices,
        tz=model.zone(viewer_zone()),
        Status=InterviewStatus,
    )


@bp.route("/<uid>")
@allow(*SCHEDULERS)
def show(uid: str):
    """Show one interview as its calendar event says now."""
    try:
        view = reading.view_interview(db_session(), deps.broker(), deps.cipher(), actor(), uid)
    except NotFound:
        abort(404)
    progress = reading.Progress(view.interview.status, view.interview.updated_at)
    return render_template(
        "interviews/show.html",
        view=view,
        in_loop=ordinary.loop_session(db_session(), view.interview),
        tz=model.zone(viewer_zone()),
        tzid=viewer_zone(),
        Status=InterviewStatus,
        video_label=video.provider_label,
        settling=progress.settling,
        auto_refresh=progress.refreshing(utcnow()),
    )


@bp.route("/<uid>/status")
@allow(*SCHEDULERS)
def status(uid: str):
    """The interview's status alone, polled by its page while the calendar write is pending
    (static/interview_live.js): the same people as the page, nothing from the calendar."""
    try:
        progress = reading.progress_of(db_session(), actor(), uid)
    except NotFound:
        abort(404)
    response = jsonify(
        status=progress.status.value,
        label=progress.status.label,
        settling=progress.settling,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<uid>/cancel")
@allow(*SCHEDULERS)
def cancel_form(uid: str):
    """Ask to confirm the cancellation, saying who the calendar will tell."""
    db = db_session()
    me = actor()
    try:
        access.interview_for(db, me, uid)
        view = reading.view_interview(db, deps.broker(), deps.cipher(), me, uid)
    except NotFound:
        abort(404)
    return render_template(
        "interviews/cancel.html",
        view=view,
        in_loop=ordinary.loop_session(db, view.interview),
        tz=model.zone(viewer_zone()),
        tzid=viewer_zone(),
        Status=InterviewStatus,
    )


@bp.route("/<uid>/cancel", methods=["POST"])
@allow(*SCHEDULERS)
def cancel(uid: str):
    """Cancel the interview and delete its calendar events, once confirmed."""
    db = db_session()
    me = actor()
    try:
        access.interview_for(db, me, uid)
        if request.form.get("confirm") != "yes":  # it tells everyone invited: ask first
            return redirect(url_for("interviews.cancel_form", uid=uid), code=303)
        ordinary.cancel_interview(
            db,
            deps.broker(),
            deps.cipher(),
            deps.sealer(),
            me,
            uid,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("interviews.show", uid=uid))
    flash("The interview is cancelled; the calendar tells the panel and the candidate.", "success")
    return redirect(url_for("interviews.show", uid=uid), code=303)


#: Days the reschedule page shows at once (a week; previous/next move by as much).
RESCHEDULE_DAYS = 7


def _reschedule_choice(args, current: int, today: dt.date) -> tuple[dt.date, int]:
    """The first day and the duration asked for in the query string (defaults: today, as now)."""
    start_date = parse_date(args, "start_date", today)
    duration = current
    if args.get("duration"):
        try:
            duration = int(args["duration"])
        except ValueError:
            raise Invalid("Choose one of the listed durations.", field="duration") from None
    return start_date, duration


@bp.route("/<uid>/reschedule")
@allow(*SCHEDULERS)
def reschedule_form(uid: str):
    """Show the panel's free slots for any week and duration, to move the interview to."""
    db = db_session()
    me = actor()
    try:
        interview = access.interview_for(db, me, uid)
    except NotFound:
        abort(404)
    tzid = viewer_zone()
    tz = model.zone(tzid)
    today = utcnow().astimezone(tz).date()
    grid, problem, status, view, loop_reason = None, None, 200, None, None
    start_date, duration = today, 60
    in_loop = ordinary.loop_session(db, interview)
    try:
        view = reading.view_interview(db, deps.broker(), deps.cipher(), me, uid)
        duration = rescheduling.duration_of(view.event)
        start_date, duration = _reschedule_choice(request.args, duration, today)
        if interview.status is not InterviewStatus.SCHEDULED:
            raise Invalid(
                "Only a scheduled interview can be moved."
                if interview.status is not InterviewStatus.PENDING
                else "The interview is still being written to the calendar; try again shortly."
            )
        if view.started:
            raise Invalid(reading.TAKEN_PLACE)
        if in_loop is not None:  # only the times the loop accepts, over the days it leaves
            choice = ordinary.reschedule_grid(
                db, deps.broker(), deps.cipher(), deps.sealer(), me, interview, tzid
            )
            grid, loop_reason = choice.grid, choice.reason
            start_date, duration = grid.days[0], grid.query.duration
        else:
            grid = _panel_grid(db, me, interview, view, start_date, duration, tzid)
    except Invalid as exc:
        problem, status = exc.message, 400
    except ServiceError as exc:
        problem, status = exc.message, 503
    week = dt.timedelta(days=RESCHEDULE_DAYS)
    previous = max(start_date - week, today) if start_date > today else None
    return render_template(
        "interviews/reschedule.html",
        interview=interview,
        in_loop=in_loop,
        loop_reason=loop_reason,
        view=view,
        grid=grid,
        problem=problem,
        tz=tz,
        grid_days=free_slots.by_day,
        start_date=start_date,
        duration=duration,
        durations=model.DURATIONS,
        today=today,
        previous=previous,
        following=start_date + week,
    ), status


def _panel_grid(db, me, interview, view, start_date, duration, tzid):
    """The panel's free slots over the week asked for (an interview of no loop)."""
    room = rescheduling.room_of(db, interview.organisation_id, view.event)
    query = model.Query(
        panel_link_ids=tuple(interview.panel_link_ids),
        duration=duration,
        start_date=start_date,
        days=RESCHEDULE_DAYS,
        tzid=tzid,
        on_behalf_of_id=interview.on_behalf_of_id,
        room=room.email if room else None,
    )
    grid = free_slots.grid(
        db, deps.broker(), deps.cipher(), me, query, ignore_interview=interview.id
    )
    return rescheduling.without_full_days(db, interview, grid)


@bp.route("/<uid>/reschedule", methods=["POST"])
@allow(*SCHEDULERS)
def reschedule(uid: str):
    """Move the interview to the chosen slot (the same calendar event moves, whole)."""
    form = request.form
    back = url_for(
        "interviews.reschedule_form",
        uid=uid,
        start_date=form.get("start_date") or None,
        duration=form.get("duration") or None,
    )
    try:
        duration = int(form["duration"]) if form.get("duration") else None
    except ValueError:
        flash("Choose one of the listed durations.", "error")
        return redirect(back)
    try:
        ordinary.reschedule_interview(
            db_session(),
            deps.broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            uid,
            parse_start(form.get("slot")),
            duration=duration,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(back)
    flash("The interview is moved; the calendar tells the panel and the candidate.", "success")
    return redirect(url_for("interviews.show", uid=uid), code=303)
