"""The schedule page's grid as markup and links: the time-zone options, the start times (the
grid's most repeated markup), the template helpers, and the links to other weeks, to the
weekend and to the members' busy overlay. No database, no aggregator call."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from flask import url_for
from markupsafe import Markup, escape

from models import utcnow
from webapp.services.availability import layout, model, windows
from webapp.services.zones import zone_names


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


def pick_inputs(
    day: layout.DayView, column: int, selected: str | None = None, pool_picks=None
) -> Markup:
    """A day's start times, each a radio button labelled with its time and day, on the row of
    its start: the grid's most repeated markup (up to a hundred per day), so built here rather
    than by the template. Every text is escaped; the values, rows and times are our own
    formats (ISO dates and times, numbers). ``pool_picks``: the grid's, so each start time
    says who its pools would pick (and why, in its title and for pool_picks.js)."""
    long_label = escape(day.long_label)
    out = []
    for i, p in enumerate(day.picks, 1):
        slot_id = f"slot-{day.date}-{i}"
        lead = " lead" if p.lead else ""
        checked = " checked" if selected == p.value else ""
        theirs = f", {escape(p.theirs)} for the candidate" if p.theirs else ""
        asked = pool_picks.get(p.value) if pool_picks else None
        title = picks_attr = who = ""
        if asked:
            title = f' title="{escape("; ".join(f"{a.summary} — {a.reasons}" for a in asked))}"'
            lines = [line for a in asked for line in (a.summary, *(p.reason for p in a.picks))]
            picks_attr = f' data-picks="{escape(chr(10).join(lines))}"'
            who = f", picks {escape('; '.join(a.summary for a in asked))}"
        out.append(
            f'<label for="{slot_id}" class="pick gc-{column} gr-{p.row} gs-1{lead}"{title}>'
            f'<input type="radio" name="slot" id="{slot_id}" value="{escape(p.value)}"{checked}'
            f"{picks_attr}>"
            f'<span class="pick-time">{escape(p.times)}</span><span class="visually-hidden"> on '
            f"{long_label}{theirs}{who}</span></label>"
        )
    return Markup("\n".join(out))  # nosec B704: every text above is escaped


#: What separates the grid's elements in the page (the template's own indentation).
_PAD = "\n        "


def lane_marks(day: layout.DayView, view: layout.WeekView) -> Markup:
    """A day's member lanes: each one's heading, column, shaded working hours and busy blocks
    (times and status; titles only on the viewer's own lane). Repeated for every member on
    every day, so built here rather than by the template (the same markup it made). Names,
    times, statuses and titles are escaped; columns, rows and places are our own numbers."""
    out = []
    span = view.last_row - 1
    for i, lane in enumerate(day.lanes):
        col = lane.column
        who = escape(lane.member.label)
        unknown = " lane-unknown" if lane.problem else ""
        work = "".join(
            f'<span class="work gc-{col} {s.place}" aria-hidden="true"></span>' for s in lane.work
        )
        blocks = "".join(
            f'<span class="block block-{escape(s.status)} gc-{col} {s.place}" aria-hidden="true" '
            f'title="{who}: {escape(s.times)} {escape(s.status)}'
            f'{": " + escape("; ".join(s.titles)) if s.titles else ""}"></span>'
            for s in lane.busy
        )
        out.append(
            f'{_PAD}<span class="lane-head gc-{col} gr-1" aria-hidden="true" title="{who}">'
            f"{escape(view.legend[i].initials)}</span>"
            f'{_PAD}<span class="lane gc-{col} gr-2 gs-{span}{unknown}" aria-hidden="true"></span>'
            f"{_PAD}{work}{_PAD}{blocks}{_PAD}"
        )
    return Markup("".join(out))  # nosec B704: every text above is escaped


def member_hours(hours: model.Hours, days, tzid: str) -> str:
    """A member's working hours in their own zone and in the viewer's, for the grid."""
    return windows.hours_text(hours, days, tzid)


def week_layout(grid: model.Grid, tzid: str, **options) -> layout.WeekView:
    """The grid laid out on the page's rows (see ``layout.week_view``)."""
    return layout.week_view(grid, tzid, **options)


def overlay_base(query: model.Query, weekends: bool) -> tuple[str, str]:
    """The busy overlay's links but for the grid's time axis (``overlay_links``): they can be
    built while the aggregator call is out."""
    return (
        url_for("schedule_busy.show", **query_args(query, weekends)),
        url_for("schedule.index", **query_args(query, weekends, busy="1")) + "#grid-heading",
    )


def overlay_links(
    query: model.Query,
    weekends: bool,
    view: layout.WeekView,
    base: tuple[str, str] | None = None,
) -> dict:
    """Where the members' busy overlay comes from: the fragment the page's script draws onto
    this grid (its time axis included), and this page with the overlay inline (no script).
    ``base``: ``overlay_base(query, weekends)`` when already built."""
    fragment, inline = base or overlay_base(query, weekends)
    # The axis is the fragment's last parameter (as ``query_args(..., axis=...)`` puts it), and
    # its digits and dash need no quoting.
    return {"fragment": f"{fragment}&axis={view.first_minute}-{view.last_minute}", "inline": inline}


def parse_day(value: str | None) -> dt.date | None:
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
    if query.pools:
        args["pools"] = [f"{pool_id}:{n}" for pool_id, n in query.pools]
    if query.shadows:
        args["shadow_pools"] = list(query.shadows)
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
