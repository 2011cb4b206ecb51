"""Schedule an interview: panel availability (free/busy only), pick a slot, write the event."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from models import Organisation, Role
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services.availability import free_slots, layout, model, roster
from webapp.services.errors import Conflict, Forbidden, Invalid, ServiceError, SlotTaken
from webapp.services.loops import shadows
from webapp.services.pools import manage as manage_pools
from webapp.services.scheduling import booking
from webapp.services.scheduling import preferences as scheduling_preferences
from webapp.services.zones import known_zone
from webapp.views.schedule_grid import (
    lane_marks,
    member_hours,
    overlay_base,
    overlay_links,
    parse_day,
    pick_inputs,
    week_layout,
    week_links,
    zone_options,
)
from webapp.web import actor

bp = Blueprint("schedule", __name__, url_prefix="/schedule")
bp.add_app_template_global(pick_inputs, "pick_inputs")
bp.add_app_template_global(lane_marks, "lane_marks")
bp.add_app_template_global(member_hours, "member_hours")
bp.add_app_template_global(week_layout, "week_layout")

SCHEDULERS = (Role.RECRUITER, Role.COORDINATOR)


def viewer_zone() -> str:
    if current_user.is_authenticated and current_user.timezone:
        return current_user.timezone
    org = db_session().get(Organisation, current_user.organisation_id)
    return (org.timezone if org else None) or "Europe/London"


def _int(values, name: str, default: int | None = None) -> int | None:
    raw = values.get(name, "")
    if raw in ("", None):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise Invalid("Enter a whole number.", field=name) from None


def parse_date(values, name: str, default: dt.date | None = None) -> dt.date | None:
    """The date (``2026-11-23``) in ``values[name]``, ``default`` when it is empty."""
    if not values.get(name):
        return default
    try:
        return dt.date.fromisoformat(values[name])
    except ValueError:
        raise Invalid("Dates look like 2026-11-23.", field=name) from None


def parse_query(values) -> model.Query:
    """The availability question from form or query-string values."""
    try:
        panel = tuple(int(v) for v in values.getlist("panel"))
    except ValueError:
        raise Invalid("Choose the panel from the people listed.", field="panel") from None
    start_date = parse_date(values, "start_date")
    required: str | int = "all"
    if values.get("required") == "some":
        required = _int(values, "required_n", 1)
    pools = []
    for raw in values.getlist("pools"):
        if not raw:
            continue  # "nobody from this pool"
        pool_id, _, count = raw.partition(":")
        try:
            pools.append((int(pool_id), int(count)))
        except ValueError:
            raise Invalid("Choose how many people each pool gives.", field="pools") from None
    try:
        shadows = tuple(int(v) for v in values.getlist("shadow_pools") if v)
    except ValueError:
        raise Invalid(
            "Choose the pools that bring a shadow from the list.", field="pools"
        ) from None
    return model.Query(
        panel_link_ids=panel,
        duration=_int(values, "duration", 60),
        start_date=start_date,
        days=_int(values, "days", 5),
        required=required,
        buffer_before=_int(values, "buffer_before", 0),
        buffer_after=_int(values, "buffer_after", 0),
        tzid=values.get("tzid") or viewer_zone(),
        on_behalf_of_id=_int(values, "on_behalf_of"),
        room=(values.get("room") or "").strip()[:320] or None,
        pools=tuple(pools),
        shadows=shadows,
    )


#: Where the slots section goes into a page rendered before the aggregator answered (a comment
#: only the template writes: whatever a person typed is escaped, so it cannot hold one).
SLOTS_MARK = Markup("<!--rdv:slots-->")


def _page(
    query: model.Query | None,
    grid=None,
    problem: str | None = None,
    status: int = 200,
    form=None,
    pending: free_slots.PendingGrid | None = None,
    entered=None,
    error_field: str | None = None,
    choices=None,
):
    """The page; with ``pending``, everything but the slots section (its own queries, the
    banners, the form) is done while the aggregator calls are in flight, and only the slots
    section is rendered once they answer. ``entered``: the values as typed, shown again in the
    form whatever was wrong with them; ``choices``: the actor's ``roster.panel_choices``, when
    already read."""
    db = db_session()
    me = actor()
    if choices is None:
        choices = roster.panel_choices(db, me)
    rooms = roster.room_choices(db, me.organisation_id)
    pools = pool_choices(db, me)
    managers = []
    if me.role is Role.COORDINATOR:
        assigned = roster.assigned_manager_ids(db, me.user_id)
        managers = [u for _l, u in choices if u.id in assigned]
    entered = entered if entered is not None else (form or request.args)
    weekends = entered.get("weekends") == "1"
    context = dict(
        query=query,
        choices=choices,
        managers=managers,
        problem=problem,
        error_field=error_field,
        durations=model.DURATIONS,
        zone_options=zone_options,
        form=form or {},
        entered=entered,
        weekends=weekends,
        rooms=rooms,
        pools=pools,
        asked={pool_id: n for pool_id, n in query.pools} if query else _asked(entered),
        viewer_tz=query.tzid if query else viewer_zone(),
        is_coordinator=me.role is Role.COORDINATOR,
        held_back=roster.colleagues_needing_attention(db, me),
    )
    outer = None
    links = None
    if pending is not None:
        outer = render_template("schedule/index.html", grid=None, slots_html=SLOTS_MARK, **context)
        if query is not None:  # the slots section's links, while the call is still out
            links = (
                week_links(query, weekends, busy=entered.get("busy") == "1"),
                overlay_base(query, weekends),
            )
        try:
            grid = pending.result()
        except ServiceError as exc:
            # A panel member who cannot be asked any more (a withdrawn shared calendar) is not
            # the aggregator being away.
            status = 409 if isinstance(exc, Conflict) else 503
            return _page(None, problem=exc.message, status=status, entered=entered)
    if grid is not None and query is not None:
        view = layout.week_view(
            grid, query.tzid, weekends=weekends, current=parse_day(entered.get("day"))
        )
        weeks, base = links or (week_links(query, weekends, busy=entered.get("busy") == "1"), None)
        context.update(
            grid=grid,
            view=view,
            weeks=weeks,
            busy_urls=overlay_links(query, weekends, view, base) if view.busy_pending else None,
        )
        if outer is not None:
            slots = render_template("schedule/_slots.html", **context)
            return outer.replace(SLOTS_MARK, slots, 1), status
    context.setdefault("grid", grid)
    return render_template("schedule/index.html", slots_html=None, **context), status


def shadow_note(db, interview, asked: int) -> str:
    """What the booking says about the shadows it asked for."""
    if not asked:
        return ""
    names = shadows.names(db, [interview.id]).get(interview.id, [])
    if names:
        return f"; {', '.join(names)} sit{'s' if len(names) == 1 else ''} in as a shadow"
    return "; no shadow of the pool was free at that time, so it goes ahead without one"


def pool_choices(db, me) -> list[tuple[object, int]]:
    """The organisation's pools with how many of their people can be picked (not shadows)."""
    return [(p, sum(1 for m in p.members if not m.is_shadow)) for p in manage_pools.pools(db, me)]


def _asked(entered) -> dict[int, int]:
    """The pool asks as typed (shown again after an error), ignoring what does not parse."""
    out = {}
    for raw in entered.getlist("pools") if hasattr(entered, "getlist") else ():
        pool_id, _, count = (raw or "").partition(":")
        if pool_id.isdigit() and count.isdigit():
            out[int(pool_id)] = int(count)
    return out


@bp.route("/")
@allow(*SCHEDULERS)
def index():
    """Show panel availability for the chosen people and dates: the free slots as soon as the
    aggregator answers; the members' busy overlay comes from ``schedule_busy.show`` (the page's
    script fetches it), or inline here with ``busy=1`` (the link offered without the script)."""
    if not request.args:
        return _page(None)
    try:
        query = parse_query(request.args)
        db, cipher, me = db_session(), deps.cipher(), actor()
        # The panel checked against its own people only: the call leaves before the whole
        # organisation's choices are read for the form (while it is out).
        asked = roster.panel_choices(db, me, among=query.panel_link_ids)
        pending = free_slots.start_grid(
            db,
            deps.required_broker(),
            cipher,
            me,
            query,
            choices=asked,
            with_busy=request.args.get("busy") == "1",
            owner_id=me.user_id,
        )
    except (Invalid, Forbidden) as exc:
        return _page(None, problem=exc.message, status=400, error_field=exc.field)
    except ServiceError as exc:
        return _page(None, problem=exc.message, status=503)
    return _page(query, pending=pending)


def parse_start(value: str | None) -> dt.datetime:
    try:
        start = dt.datetime.fromisoformat(value or "")
        if start.tzinfo is None:
            raise ValueError("a slot names its offset")
        # No slot is offered this far out; and near the ends of the calendar, converting the
        # time or adding the interview's length would overflow.
        start = start.astimezone(dt.UTC)
        booking.check_start_in_range(start)
    except (ValueError, OverflowError, Invalid):
        raise Invalid("Pick one of the free slots.", field="slot") from None
    return start


@bp.route("/", methods=["POST"])
@allow(*SCHEDULERS)
def create():
    """Write the interview to the calendar and open its page."""
    form = request.form
    db = db_session()
    try:
        query = parse_query(form)
        new = booking.NewInterview(
            query=query,
            start=parse_start(form.get("slot")),
            candidate_name=form.get("candidate_name", ""),
            candidate_email=form.get("candidate_email", ""),
            title=form.get("title", ""),
            notes=form.get("notes", ""),
            video=form.get("video") == "on",
            candidate_tzid=form.get("candidate_tzid") or query.tzid,
        )
        interview, _payload = booking.create_interview(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            actor(),
            new,
            jobs=deps.jobs(),
        )
    except ServiceError as exc:
        grid = None
        try:
            query = parse_query(form)
            cipher = deps.cipher()
            grid = free_slots.grid(db, deps.required_broker(), cipher, actor(), query)
        except ServiceError:
            query = None
        status = 409 if isinstance(exc, SlotTaken) else 400
        return _page(
            query, grid, problem=exc.message, status=status, form=form, error_field=exc.field
        )
    picked = booking.picked_names(db, interview)
    flash(
        "The interview is scheduled"
        + (f" with {picked} picked from the pool" if picked else "")
        + shadow_note(db, interview, len(new.query.shadows))
        + ". Invitations go out from the calendar.",
        "success",
    )
    return redirect(url_for("interviews.show", uid=interview.uid), code=303)


@bp.route("/preferences")
@allow(*SCHEDULERS)
def preferences():
    """Show the user's working hours and video provider."""
    return _preferences_page()


def _preferences_page(problem: str | None = None, status: int = 200):
    from webapp.services import video

    db = db_session()
    me = actor()
    pref = scheduling_preferences.preference_of(db, me.organisation_id, me.user_id)
    org_default = scheduling_preferences.preference_of(db, me.organisation_id, None)
    accounts, video_problem = video.conferencing_profiles(
        db,
        deps.broker(),
        deps.cipher(),
        me,
    )
    chosen = pref.video_profile if pref else None
    # A chosen account the aggregator no longer lists (such as a Webex profile from before):
    # interviews fall back to the default, and the person should know.
    stale = bool(
        chosen
        and chosen.startswith("pro_")
        and not video_problem
        and chosen not in {a.profile_id for a in accounts}
    )
    return render_template(
        "schedule/preferences.html",
        pref=pref,
        org_default=org_default,
        accounts=accounts,
        video_problem=video_problem,
        problem=problem,
        stale_video=stale,
        own_room=video.OWN_ROOM,
        room_tools=video.ROOM_TOOLS,
        providers=video.PROVIDERS,
        label=video.provider_label,
        form=request.form if request.method == "POST" else None,
        default_hours=(model.DEFAULT_START, model.DEFAULT_END),
        own_zone=known_zone(current_user.timezone),
        assumed_zone=viewer_zone(),
    ), status


@bp.route("/preferences", methods=["POST"])
@allow(*SCHEDULERS)
def save_preferences():
    """Save the user's working hours and video provider."""
    from webapp.services import video

    db = db_session()
    me = actor()
    accounts, _problem = video.conferencing_profiles(
        db,
        deps.broker(),
        deps.cipher(),
        me,
    )
    try:
        scheduling_preferences.save_preferences(
            db,
            me,
            start=request.form.get("start", ""),
            end=request.form.get("end", ""),
            weekdays=request.form.getlist("weekdays"),
            video_profile=request.form.get("video_profile") or None,
            allowed_video=[a.profile_id for a in accounts],
            video_room_url=request.form.get("video_room_url"),
            video_room_name=request.form.get("video_room_name"),
        )
    except Invalid as exc:
        return _preferences_page(exc.message, 400)
    flash("Scheduling preferences saved.", "success")
    return redirect(url_for("schedule.preferences"))


@bp.route("/video/connect", methods=["POST"])
@allow(*SCHEDULERS)
def connect_video():
    """Send the user to the aggregator to link a Zoom, GoTo or Microsoft Teams account."""
    from webapp.public_urls import external_url
    from webapp.services import video

    try:
        url = video.authorization_url(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            provider=request.form.get("provider"),
            redirect_uri=external_url("schedule.video_done"),
        )
    except ServiceError as exc:
        return _preferences_page(exc.message, 400)
    return redirect(url, code=303)


@bp.route("/video/done")
@allow(*SCHEDULERS)
def video_done():
    """Come back from linking a video account."""
    if request.args.get("error"):
        flash("No video account was linked.", "info")
    else:
        flash("Your video account is linked. Choose it below to use it for interviews.", "success")
    return redirect(url_for("schedule.preferences"))
