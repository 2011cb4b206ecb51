"""Interview loops, the recruiter's pages: compose a loop (its sessions in order), see candidate
start times with each itinerary (one sequenced availability call), book every session at once,
then move or cancel the whole loop or one session. Server-rendered; every form posts and
redirects (PRG); a refused form is shown again with what was typed and the reason."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from models import LoopState, Role
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services import errors
from webapp.services.availability import model, roster
from webapp.services.errors import Invalid, NotFound, ServiceError
from webapp.services.loops import availability, booking, changes, compose, reading, shadows
from webapp.services.loops import moving as moving_writes
from webapp.services.loops import plan as loop_plan
from webapp.services.pools import manage as pool_manage
from webapp.views import loop_options
from webapp.views.schedule import parse_date, viewer_zone, zone_options
from webapp.web import actor

bp = Blueprint("loops", __name__, url_prefix="/schedule/loops")

#: Who composes loops: recruiters, and coordinators for their assigned hiring managers.
LOOP_ROLES = (Role.RECRUITER, Role.COORDINATOR)

#: Session blocks the compose form shows at first (more on "Add a session").
SHOWN_SESSIONS = 4


def _int(form, name: str, default: int) -> int:
    raw = (form.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid("Enter a whole number.", field=name) from None


def _session_blocks(form) -> int:
    try:
        shown = int(form.get("shown") or SHOWN_SESSIONS)
    except ValueError:
        shown = SHOWN_SESSIONS
    return max(loop_plan.MIN_SESSIONS, min(shown, loop_plan.MAX_SESSIONS))


def parse_plan(form) -> loop_plan.LoopPlan:
    """The plan from the compose form; a session block left empty (no title, nobody) is skipped."""
    sessions = []
    for n in range(1, _session_blocks(form) + 1):
        title = form.get(f"s{n}_title", "")
        panel_raw = form.getlist(f"s{n}_panel")
        if not title.strip() and not panel_raw and not form.get(f"s{n}_pool"):
            continue
        try:
            panel = tuple(int(v) for v in panel_raw)
        except ValueError:
            raise Invalid("Choose people from the list.", field=f"s{n}_panel") from None
        sessions.append(
            loop_plan.SessionPlan(
                title=title,
                duration=_int(form, f"s{n}_duration", 60),
                panel_link_ids=panel,
                room=(form.get(f"s{n}_room") or "").strip()[:320] or None,
                video=form.get(f"s{n}_video") == "on",
                buffer_before=_int(form, f"s{n}_buffer_before", 0),
                buffer_after=_int(form, f"s{n}_buffer_after", 0),
                pool_id=_int(form, f"s{n}_pool", 0) or None,
                pool_count=_int(form, f"s{n}_pool_count", 1) if form.get(f"s{n}_pool") else 0,
                bring_shadow=form.get(f"s{n}_shadow") == "on",
            )
        )
    zone = form.get("candidate_tzid") or viewer_zone()
    split = form.get("days_mode") == "two"
    return loop_plan.LoopPlan(
        title=form.get("title", ""),
        candidate_name=form.get("candidate_name", ""),
        candidate_email=form.get("candidate_email", ""),
        sessions=tuple(sessions),
        start_date=parse_date(form, "start_date", dt.date.today()) or dt.date.today(),
        days=_int(form, "days", 5),
        tzid=zone,
        candidate_tzid=zone,
        split_days=split,
        max_break=None if split else _int(form, "max_break", loop_plan.DEFAULT_BREAK),
        on_behalf_of_id=_int(form, "on_behalf_of", 0) or None,
    )


def _compose_page(form=None, problem=None, error_field=None, status=200, shown=None):
    db = db_session()
    me = actor()
    form = form if form is not None else MultiDict()
    loops = compose.list_loops(db, me)
    choices = roster.panel_choices(db, me)
    coordinator = me.role is Role.COORDINATOR
    assigned = roster.assigned_manager_ids(db, me.user_id) if coordinator else set()
    return render_template(
        "loops/index.html",
        loops=loops,
        details={loop.id: compose.open_details(deps.sealer(), loop) for loop in loops},
        choices=choices,
        is_coordinator=coordinator,
        managers=[u for _l, u in choices if u.id in assigned],
        rooms=roster.room_choices(db, me.organisation_id),
        pools=pool_manage.pools(db, me),
        durations=model.DURATIONS,
        zone_options=zone_options,
        viewer_tz=viewer_zone(),
        form=form,
        shown=shown or _session_blocks(form),
        problem=problem,
        error_field=error_field,
        today=dt.date.today().isoformat(),
        default_break=loop_plan.DEFAULT_BREAK,
        max_sessions=loop_plan.MAX_SESSIONS,
    ), status


@bp.route("/")
@allow(*LOOP_ROLES)
def index():
    """My loops, and the form to compose one."""
    return _compose_page()


@bp.route("/", methods=["POST"])
@allow(*LOOP_ROLES)
def create():
    """Compose a loop (or show one more session block, keeping what was typed)."""
    form = request.form
    if form.get("add_session"):
        return _compose_page(form, shown=min(_session_blocks(form) + 1, loop_plan.MAX_SESSIONS))
    try:
        plan = parse_plan(form)
        loop = compose.compose_loop(db_session(), deps.sealer(), actor(), plan)
    except ServiceError as exc:
        db_session().rollback()
        return _compose_page(form, exc.message, exc.field, _status(exc))
    return redirect(url_for("loops.show", uid=loop.uid), code=303)


#: A page's status for a refused action, by the error's base (as the API's, with 400 for input).
_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (errors.Invalid, 400),
    (errors.Unprocessable, 400),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Gone, 410),
    (errors.UpstreamFailed, 502),
    (errors.Unavailable, 503),
)


def _status(exc: ServiceError) -> int:
    return next((code for base, code in _STATUS if isinstance(exc, base)), 400)


def _show_page(uid: str, problem=None, status=200, moving=False):
    """A loop's page. A draft's start times: the one aggregator call goes out first; our own
    reads and the rest of the page are done while it is in flight, and only the start times
    section is made once it answers (its options built by ``loop_options``)."""
    db, me = db_session(), actor()
    loop = _loop_or_404(uid)
    tzid = viewer_zone()
    tz = model.zone(tzid)
    times = None
    pending = None
    view = None
    trouble = None
    if loop.state in (LoopState.DRAFT, LoopState.FAILED) or moving:
        broker = deps.required_broker()
        try:
            if moving:
                times = changes.moving_times(db, broker, deps.cipher(), deps.sealer(), me, uid)
            else:
                pending = availability.start_loop_times(db, broker, deps.sealer(), me, loop)
                pending.read_own()
        except ServiceError as exc:
            trouble = exc.message
    if loop.state is not LoopState.DRAFT:
        view = reading.view_loop(db, deps.broker(), deps.cipher(), deps.sealer(), loop)
    context = dict(
        iloop=loop,
        details=compose.open_details(deps.sealer(), loop),
        view=view,
        problem=problem,
        move_problem=moving_writes.move_problem(db, loop) if view is not None else None,
        moving=moving,
        no_shadow=shadows.NONE_FREE,
        tz=tz,
        viewer_tz=tzid,
        states=LoopState,
    )
    if pending is None:
        return loop_options.page(context, tz, times, trouble), status
    return loop_options.page_when_answered(context, tz, pending), status


@bp.route("/<uid>")
@allow(*LOOP_ROLES)
def show(uid: str):
    """A draft loop's start times with their itineraries, or a booked loop's itinerary."""
    return _show_page(uid)


@bp.route("/<uid>/reschedule")
@allow(*LOOP_ROLES)
def reschedule(uid: str):
    """New start times for the whole loop (its own sessions' holds do not count)."""
    return _show_page(uid, moving=True)


def _loop_or_404(uid: str):
    try:
        return compose.loop_for(db_session(), actor(), uid)
    except NotFound:
        abort(404)


def _option(uid: str) -> list[dt.datetime]:
    loop = _loop_or_404(uid)
    starts = availability.parse_option(request.form.get("option", ""), len(loop.sessions))
    if starts is None:
        raise Invalid("Pick one of the start times offered.", field="option")
    return list(starts)


@bp.route("/<uid>/book", methods=["POST"])
@allow(*LOOP_ROLES)
def book(uid: str):
    """Book every session at the chosen itinerary, or none."""
    _loop_or_404(uid)  # another organisation's loop, or none: 404 before anything else
    try:
        booking.book_loop(
            db_session(),
            deps.required_broker(),
            deps.sealer(),
            actor(),
            uid,
            _option(uid),
            jobs=deps.jobs(),
        )
    except ServiceError as exc:
        db_session().rollback()
        if isinstance(exc, NotFound):
            abort(404)
        return _show_page(uid, exc.message, _status(exc))
    flash("Loop booked: every session is being written to the calendars.", "success")
    _say_missing_shadows(uid)
    return redirect(url_for("loops.show", uid=uid), code=303)


def _say_missing_shadows(uid: str) -> None:
    missing = shadows.missing(db_session(), _loop_or_404(uid))
    if missing:
        said = ", ".join(str(n) for n in missing)
        flash(f"Session{'s' if len(missing) > 1 else ''} {said}: {shadows.NONE_FREE}.", "info")


@bp.route("/<uid>/reschedule", methods=["POST"])
@allow(*LOOP_ROLES)
def move(uid: str):
    """Move the whole loop to the chosen itinerary, or leave it as it is."""
    _loop_or_404(uid)  # another organisation's loop, or none: 404 before anything else
    try:
        changes.move_loop(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            uid,
            _option(uid),
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except ServiceError as exc:
        db_session().rollback()
        if isinstance(exc, NotFound):
            abort(404)
        return _show_page(uid, exc.message, _status(exc), moving=True)
    flash("Loop moved: every session is being updated in the calendars.", "success")
    return redirect(url_for("loops.show", uid=uid), code=303)


@bp.route("/<uid>/cancel", methods=["POST"])
@allow(*LOOP_ROLES)
def cancel(uid: str):
    """Cancel every session still to come."""
    _loop_or_404(uid)  # another organisation's loop, or none: 404 before anything else
    try:
        changes.cancel_loop(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            uid,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except ServiceError as exc:
        db_session().rollback()
        if isinstance(exc, NotFound):
            abort(404)
        return _show_page(uid, exc.message, _status(exc))
    flash("Loop cancelled.", "success")
    return redirect(url_for("loops.show", uid=uid), code=303)


@bp.route("/<uid>/sessions/<int:ordinal>/cancel", methods=["POST"])
@allow(*LOOP_ROLES)
def cancel_session(uid: str, ordinal: int):
    """Cancel one session."""
    _loop_or_404(uid)  # another organisation's loop, or none: 404 before anything else
    try:
        changes.cancel_session(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            uid,
            ordinal,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except ServiceError as exc:
        db_session().rollback()
        if isinstance(exc, NotFound):
            abort(404)
        return _show_page(uid, exc.message, _status(exc))
    flash(f"Session {ordinal} cancelled.", "success")
    return redirect(url_for("loops.show", uid=uid), code=303)


def _local_start(value: str) -> dt.datetime:
    """A ``datetime-local`` value in the viewer's zone, as an aware time."""
    try:
        naive = dt.datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise Invalid("Enter the new start as a date and time.", field="start") from None
    if naive.tzinfo is not None:
        raise Invalid("Enter the new start as a date and time.", field="start")
    return naive.replace(tzinfo=model.zone(viewer_zone()))


@bp.route("/<uid>/sessions/<int:ordinal>/move", methods=["POST"])
@allow(*LOOP_ROLES)
def move_session(uid: str, ordinal: int):
    """Move one session to a new start (in the viewer's zone)."""
    _loop_or_404(uid)  # another organisation's loop, or none: 404 before anything else
    try:
        changes.move_session(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            uid,
            ordinal,
            _local_start(request.form.get("start", "")),
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
        )
    except ServiceError as exc:
        db_session().rollback()
        if isinstance(exc, NotFound):
            abort(404)
        return _show_page(uid, exc.message, _status(exc))
    flash(f"Session {ordinal} moved.", "success")
    return redirect(url_for("loops.show", uid=uid), code=303)
