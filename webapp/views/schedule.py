"""Schedule an interview: panel availability (free/busy only), pick a slot, write the event."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape

from models import Organisation, Role, utcnow
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services.availability import free_slots, layout, model, roster, windows
from webapp.services.errors import Forbidden, Invalid, ServiceError, SlotTaken
from webapp.services.scheduling import booking
from webapp.services.scheduling import preferences as scheduling_preferences
from webapp.services.zones import known_zone, zone_names
from webapp.web import actor

bp = Blueprint("schedule", __name__, url_prefix="/schedule")

SCHEDULERS = (Role.RECRUITER, Role.COORDINATOR)


def zones() -> tuple[str, ...]:
    return zone_names()


@lru_cache(maxsize=64)
def zone_options(selected: str) -> Markup:
    """The <option>s of the time-zone select (≈ 430 zones), built once per selected zone."""
    # Safe: every zone name is escaped and `selected` only takes part in a comparison.
    return Markup(
        "".join(  # nosec B704
            f"<option{' selected' if z == selected else ''}>{escape(z)}</option>" for z in zones()
        )
    )


@bp.app_template_global("pick_inputs")
def pick_inputs(day: layout.DayView, column: int, selected: str | None = None) -> Markup:
    """A day's start times, each a radio button labelled with its time and day, on the row of
    its start: the grid's most repeated markup (up to a hundred per day), so built here rather
    than by the template. Every text is escaped; the values, rows and times are our own
    formats (ISO dates and times, numbers)."""
    long_label = escape(day.long_label)
    out = []
    for i, p in enumerate(day.picks, 1):
        slot_id = f"slot-{day.date}-{i}"
        lead = " lead" if p.lead else ""
        checked = " checked" if selected == p.value else ""
        theirs = f", {escape(p.theirs)} for the candidate" if p.theirs else ""
        out.append(
            f'<label for="{slot_id}" class="pick gc-{column} gr-{p.row} gs-1{lead}">'
            f'<input type="radio" name="slot" id="{slot_id}" value="{escape(p.value)}"{checked}>'
            f'<span class="pick-time">{escape(p.times)}</span><span class="visually-hidden"> on '
            f"{long_label}{theirs}</span></label>"
        )
    return Markup("\n".join(out))  # nosec B704: every text above is escaped


@bp.app_template_global("member_hours")
def member_hours(hours: model.Hours, days, tzid: str) -> str:
    """A member's working hours in their own zone and in the viewer's, for the grid."""
    return windows.hours_text(hours, days, tzid)


@bp.app_template_global("week_layout")
def week_layout(grid: model.Grid, tzid: str, **options) -> layout.WeekView:
    """The grid laid out on the page's rows (see ``layout.week_view``)."""
    return layout.week_view(grid, tzid, **options)


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
        viewer_tz=query.tzid if query else viewer_zone(),
        is_coordinator=me.role is Role.COORDINATOR,
    )
    outer = None
    if pending is not None:
        outer = render_template("schedule/index.html", grid=None, slots_html=SLOTS_MARK, **context)
        try:
            grid = pending.result()
        except ServiceError as exc:
            return _page(None, problem=exc.message, status=503, entered=entered)
    if grid is not None and query is not None:
        view = layout.week_view(
            grid, query.tzid, weekends=weekends, current=_day(entered.get("day"))
        )
        context.update(
            grid=grid,
            view=view,
            weeks=week_links(query, weekends, busy=entered.get("busy") == "1"),
            busy_urls=overlay_links(query, weekends, view) if view.busy_pending else None,
        )
        if outer is not None:
            slots = render_template("schedule/_slots.html", **context)
            return outer.replace(SLOTS_MARK, slots, 1), status
    context.setdefault("grid", grid)
    return render_template("schedule/index.html", slots_html=None, **context), status


def overlay_links(query: model.Query, weekends: bool, view: layout.WeekView) -> dict:
    """Where the members' busy overlay comes from: the fragment the page's script draws onto
    this grid (its time axis included), and this page with the overlay inline (no script)."""
    axis = f"{view.first_minute}-{view.last_minute}"
    return {
        "fragment": url_for("schedule_busy.show", **query_args(query, weekends, axis=axis)),
        "inline": url_for("schedule.index", **query_args(query, weekends, busy="1"))
        + "#grid-heading",
    }


def _day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None


def query_args(query: model.Query, weekends: bool, **changes) -> dict:
    """The query as the availability form sends it (for links to other weeks and days)."""
    args: dict = {
        "panel": list(query.panel_link_ids),
        "duration": query.duration,
        "days": query.days,
        "start_date": query.start_date.isoformat() if query.start_date else "",
        "required": "all" if query.required == "all" else "some",
        "required_n": 1 if query.required == "all" else query.required,
        "buffer_before": query.buffer_before,
        "buffer_after": query.buffer_after,
        "tzid": query.tzid,
    }
    if query.on_behalf_of_id:
        args["on_behalf_of"] = query.on_behalf_of_id
    if query.room:
        args["room"] = query.room
    if weekends:
        args["weekends"] = "1"
    args.update(changes)
    return {k: v for k, v in args.items() if v not in ("", None)}


def week_links(query: model.Query, weekends: bool, *, busy: bool = False) -> dict:
    """Links to the previous week (never before today), the next one, and weekends on or off
    (``busy``: the busy overlay was asked inline, so it stays inline)."""
    today = utcnow().astimezone(model.zone(query.tzid)).date()
    start = query.start_date or today
    week = dt.timedelta(days=7)
    previous = max(start - week, today) if start > today else None
    inline = {"busy": "1"} if busy else {}

    def url(**changes) -> str:
        args = query_args(query, weekends, **inline, **changes)
        return url_for("schedule.index", **args) + "#grid-heading"

    return {
        "previous": url(start_date=previous.isoformat()) if previous else None,
        "previous_date": previous,
        "next": url(start_date=(start + week).isoformat()),
        "next_date": start + week,
        "weekends": url_for(
            "schedule.index",
            **query_args(query, not weekends, **inline),
        )
        + "#grid-heading",
    }


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
    flash("The interview is scheduled. Invitations go out from the calendar.", "success")
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
