"""The time asked about: the search window, each member's working periods in it (in their own
zone), how those hours read to someone elsewhere, and the aggregator query built from them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from broker.types import AvailabilityQuery, Group, Member, Period
from models import (
    utcnow,
)
from webapp.services.availability.model import (
    DURATIONS,
    LEAD_TIME,
    MAX_DAYS,
    START_INTERVAL,
    UTC,
    Hours,
    PanelMember,
    PoolAsk,
    Query,
    Room,
    valid_zone,
    zone,
)
from webapp.services.errors import Invalid
from webapp.services.zones import zone_label


def round_up(moment: dt.datetime, step: dt.timedelta = START_INTERVAL) -> dt.datetime:
    epoch = dt.datetime(2000, 1, 1, tzinfo=UTC)
    steps = -(-(moment - epoch) // step)
    return epoch + steps * step


def window_for(query: Query, now: dt.datetime | None = None) -> tuple[Period, list[dt.date]]:
    """The UTC window of the query's days in the viewer's zone, never starting in the past."""
    tz = zone(query.tzid)
    now = now or utcnow()
    first = query.start_date or now.astimezone(tz).date()
    days = [first + dt.timedelta(days=i) for i in range(query.days)]
    start = dt.datetime.combine(first, dt.time(0), tz).astimezone(UTC)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC)
    start = max(start, round_up(now + LEAD_TIME))
    return Period(start, end), days


def working_periods(hours: Hours, window: Period) -> tuple[Period, ...]:
    """The member's working hours inside the window, in UTC."""
    tz = zone(hours.tzid)
    first = window.start.astimezone(tz).date() - dt.timedelta(days=1)
    last = window.end.astimezone(tz).date()
    out = []
    day = first
    while day <= last:
        if str(day.isoweekday()) in hours.weekdays:
            start = (
                dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(minutes=hours.start_minute)
            ).astimezone(UTC)
            end = (
                dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(minutes=hours.end_minute)
            ).astimezone(UTC)
            start, end = max(start, window.start), min(end, window.end)
            if end > start:
                out.append(Period(start, end))
        day += dt.timedelta(days=1)
    return tuple(out)


def hours_seen_from(
    hours: Hours, days: Sequence[dt.date], tzid: str
) -> list[tuple[str, list[dt.date]]]:
    """The member's working hours on each of their working ``days``, as times in zone ``tzid``,
    grouped by how they read there (they differ across a daylight-saving change), in the order
    they first occur: e.g. ``[("14:00–22:30", [Fri, Mon]), ("13:00–21:30", [Tue, Wed])]``."""
    own, there = zone(hours.tzid), zone(tzid)
    groups: dict[str, list[dt.date]] = {}
    for day in days:
        if str(day.isoweekday()) not in hours.weekdays:
            continue
        midnight = dt.datetime.combine(day, dt.time(0), own)
        start = (midnight + dt.timedelta(minutes=hours.start_minute)).astimezone(there)
        end = (midnight + dt.timedelta(minutes=hours.end_minute)).astimezone(there)
        groups.setdefault(f"{_clock(start, day)}–{_clock(end, day)}", []).append(day)
    return list(groups.items())


def _clock(moment: dt.datetime, day: dt.date) -> str:
    shift = (moment.date() - day).days
    return f"{moment:%H:%M}" + ("" if not shift else f" ({shift:+d} day)")


def _day_runs(days: Sequence[dt.date], all_days: Sequence[dt.date]) -> str:
    """Runs of days that follow each other in ``all_days``: "Mon 26 Oct–Fri 30 Oct, Mon 02 Nov"."""
    index = {d: i for i, d in enumerate(all_days)}
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and index.get(day, -2) == index.get(runs[-1][-1], -9) + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        f"{r[0]:%a %d %b}" + (f"–{r[-1]:%a %d %b}" if len(r) > 1 else "") for r in runs
    )


def hours_text(hours: Hours, days: Sequence[dt.date], tzid: str) -> str:
    """The member's hours in their own zone and in the viewer's, for the grid:
    "09:00–17:30 New York = 14:00–22:30 London" (with the days that read otherwise)."""
    own = f"{hours.label()} {zone_label(hours.tzid)}"
    if not hours.zone_set:
        own += " (own time zone not set: the organisation's is assumed)"
    seen = hours_seen_from(hours, days, tzid)
    if zone(tzid).key == zone(hours.tzid).key or not seen:
        return own
    here = zone_label(tzid)
    (first, _days), *others = seen
    text = f"{own} = {first} {here}"
    if others:
        text += "; " + "; ".join(f"{times} {here} on {_day_runs(on, days)}" for times, on in others)
    return text


def _overlap(a: Sequence[Period], b: Sequence[Period]) -> tuple[Period, ...]:
    """Where the periods of ``a`` and of ``b`` overlap, in order (each list is disjoint)."""
    found = (Period(max(x.start, y.start), min(x.end, y.end)) for x in a for y in b)
    return tuple(sorted((p for p in found if p.end > p.start), key=lambda p: p.start))


def availability_query(
    members: Sequence[PanelMember],
    query: Query,
    window: Period,
    *,
    query_slots: Sequence[dt.datetime] = (),
    room: Room | None = None,
    within: Sequence[Period] | None = None,
    asks: Sequence[PoolAsk] = (),
) -> AvailabilityQuery | None:
    """The single aggregator query for the panel (and room), or None when nobody can be
    available. ``within``: extra periods the slots must fall in (a candidate's hours), sent as
    the query's periods, so the call stays one. ``asks``: "any N from pool X", each one more
    group of the same query with ``required: N``."""
    query_periods: tuple[Period, ...] = (window,)
    if within is not None:
        query_periods = _overlap(within, (window,))
        if not query_periods:
            return None
    built: list[Member] = []
    counted = 0
    for m in members:
        periods = working_periods(m.hours, window)
        if within is not None:  # inside the query's periods too, whatever the aggregator assumes
            periods = _overlap(periods, query_periods)
        if not periods:
            continue
        counted += 1
        member = Member(
            sub=m.link.aggregator_sub,
            calendar_ids=tuple(
                m.link.conflict_calendar_ids
                or ([m.link.target_calendar_id] if m.link.target_calendar_id else [])
            ),
            available_periods=periods,
        )
        same = next((i for i, b in enumerate(built) if b.sub == member.sub), None)
        if same is not None and query.required == "all":
            # One account read for two people (a delegated calendar and its owner): one member
            # with both calendars, free only when both are, so the answer cannot mix them up.
            other = built[same]
            if not (other.calendar_ids and member.calendar_ids):
                built.append(member)  # "every calendar" cannot be combined: ask separately
                continue
            overlap = _overlap(other.available_periods, member.available_periods)
            if not overlap:
                return None
            built[same] = Member(
                sub=member.sub,
                calendar_ids=tuple(dict.fromkeys(other.calendar_ids + member.calendar_ids)),
                available_periods=overlap,
            )
            continue
        built.append(member)
    pool_groups = []
    for ask in asks:  # "any N": the members working at some point of the window
        # One member per account asked about (a delegated calendar is asked through its owner's
        # account): the picker counts an account only when it is one candidate's.
        candidates: dict[str, Member] = {}
        for m in ask.candidates:
            periods = working_periods(m.hours, window)
            if within is not None:
                periods = _overlap(periods, query_periods)
            if periods:
                candidates.setdefault(
                    m.link.aggregator_sub,
                    Member(
                        sub=m.link.aggregator_sub,
                        calendar_ids=tuple(
                            m.link.conflict_calendar_ids
                            or ([m.link.target_calendar_id] if m.link.target_calendar_id else [])
                        ),
                        available_periods=periods,
                    ),
                )
        if len(candidates) < ask.count:
            return None
        pool_groups.append(Group(members=tuple(candidates.values()), required=ask.count))
    required = query.required
    if required == "all" and counted < len(members):
        return None
    if isinstance(required, int):
        if required > len(built):
            return None
        if required >= len(built):
            required = "all"
    if not built and (members or not pool_groups):
        return None
    groups = [Group(members=tuple(built), required=required)] if built else []
    groups += pool_groups
    if room is not None:  # the room's own group: it must be free, whatever "at least N" says
        groups.append(Group(members=(Member(sub=room.sub),), required="all"))
    return AvailabilityQuery(
        groups=tuple(groups),
        duration=dt.timedelta(minutes=query.duration),
        periods=() if query_slots else query_periods,
        query_slots=tuple(query_slots),
        buffer_before=dt.timedelta(minutes=query.buffer_before) if query.buffer_before else None,
        buffer_after=dt.timedelta(minutes=query.buffer_after) if query.buffer_after else None,
        start_interval=START_INTERVAL,
        response_format="slots",
        max_results=512,
    )


def validate_query(query: Query) -> None:
    if query.duration not in DURATIONS:
        raise Invalid("Choose one of the listed durations.", field="duration")
    if not 1 <= query.days <= MAX_DAYS:
        raise Invalid(f"Show between 1 and {MAX_DAYS} days.", field="days")
    if query.required != "all" and not (
        isinstance(query.required, int) and 1 <= query.required <= len(query.panel_link_ids)
    ):
        raise Invalid("“At least N” must be between 1 and the panel size.", field="required")
    for name in ("buffer_before", "buffer_after"):
        if not 0 <= getattr(query, name) <= 120:
            raise Invalid("Buffers are between 0 and 120 minutes.", field=name)
    if not valid_zone(query.tzid):
        raise Invalid("Choose a valid time zone.", field="tzid")
    today = utcnow().astimezone(zone(query.tzid)).date()
    if query.start_date is not None and query.start_date < today:
        raise Invalid("The date range cannot start in the past.", field="start_date")
    if query.start_date is not None and query.start_date > today + dt.timedelta(days=365):
        raise Invalid("Choose a date within the next year.", field="start_date")
