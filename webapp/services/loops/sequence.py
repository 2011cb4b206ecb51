"""The one sequenced availability query for a whole loop, its search window, and the days an
answer may take.

Each session is a step (``sequence_id`` "s1", "s2", … in order): its people, each with their
working hours as ``available_periods``, in one group required in full, and its room in a group
of its own; its length; its gaps as the step's buffer minimums; and, for a loop held on one day,
the longest break as the maximum gap before every later session. The query periods are the
loop's search window.

The first session starts on the hour (``FIRST_INTERVAL``), so the aggregator's twenty answers
spread over a few days instead of one morning; later sessions start on any quarter hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from broker.types import Group, Member, Period, SequencedAvailabilityQuery, SequenceStep
from webapp.services.availability import model, windows
from webapp.services.loops.plan import LoopPlan, ResolvedSession

FIRST_INTERVAL = dt.timedelta(minutes=60)


def step_id(ordinal: int) -> str:
    return f"s{ordinal}"


def _member(
    m: model.PanelMember, window: Period, shared: dict[model.Hours, tuple[Period, ...]]
) -> Member | None:
    """The member with their working hours in the window (``shared``: the periods of hours
    already laid out for this query; most people share their organisation's)."""
    periods = shared.get(m.hours)
    if periods is None:
        periods = shared[m.hours] = windows.working_periods(m.hours, window)
    if not periods:
        return None
    calendars = m.link.conflict_calendar_ids or (
        [m.link.target_calendar_id] if m.link.target_calendar_id else []
    )
    return Member(
        sub=m.link.aggregator_sub, calendar_ids=tuple(calendars), available_periods=periods
    )


def sequenced_query(
    plan: LoopPlan, sessions: Sequence[ResolvedSession], window: Period
) -> SequencedAvailabilityQuery | None:
    """The one aggregator query for the loop, or None when somebody has no working time in
    the window (no option can exist)."""
    steps = []
    previous: ResolvedSession | None = None
    shared: dict[model.Hours, tuple[Period, ...]] = {}
    for n, s in enumerate(sessions, start=1):
        built = [_member(m, window, shared) for m in s.members]
        if any(b is None for b in built):
            return None
        groups = []
        if built:
            groups.append(Group(members=tuple(b for b in built if b is not None), required="all"))
        if s.pool is not None:
            # "Any N of the pool": the aggregator lists which of them are free in each slot.
            pool = tuple(
                b for b in (_member(m, window, shared) for m in s.candidates) if b is not None
            )
            if len(pool) < s.count:
                return None
            groups.append(Group(members=pool, required=s.count if s.count < len(pool) else "all"))
        if s.room is not None:
            groups.append(Group(members=(Member(sub=s.room.sub),), required="all"))
        gap_max = None
        if previous is not None and not plan.split_days and plan.max_break is not None:
            gap_max = dt.timedelta(
                minutes=max(plan.max_break, previous.plan.buffer_after, s.plan.buffer_before)
            )
        steps.append(
            SequenceStep(
                sequence_id=step_id(n),
                groups=tuple(groups),
                duration=dt.timedelta(minutes=s.plan.duration),
                start_interval=FIRST_INTERVAL if n == 1 else model.START_INTERVAL,
                gap_before_min=dt.timedelta(minutes=s.plan.buffer_before) or None,
                gap_before_max=gap_max,
                gap_after_min=dt.timedelta(minutes=s.plan.buffer_after) or None,
            )
        )
        previous = s
    return SequencedAvailabilityQuery(steps=tuple(steps), periods=(window,))


def search_window(plan: LoopPlan) -> Period:
    window, _days = windows.window_for(
        model.Query(panel_link_ids=(), start_date=plan.start_date, days=plan.days, tzid=plan.tzid)
    )
    return window


def fits_days(plan: LoopPlan, starts: Sequence[dt.datetime], ends: Sequence[dt.datetime]) -> bool:
    """One date in the loop's zone, or, when it may split, two: a day and the next weekday
    (Friday and Monday count as following each other)."""
    tz = model.zone(plan.tzid)
    # A session ending exactly at midnight belongs to the day it started.
    tick = dt.timedelta(microseconds=1)
    # Most itineraries: the earliest and latest start and end on one date, so every time
    # between them is too (four conversions, not two per session).
    one = min(starts).astimezone(tz).date() if starts and ends else None
    if (
        one is not None
        and max(starts).astimezone(tz).date() == one
        and (min(ends) - tick).astimezone(tz).date() == one
        and (max(ends) - tick).astimezone(tz).date() == one
    ):
        return True
    dates = sorted(
        {s.astimezone(tz).date() for s in starts} | {(e - tick).astimezone(tz).date() for e in ends}
    )
    if len(dates) == 1:
        return True
    if not plan.split_days or len(dates) > 2:
        return False
    following = dates[0] + dt.timedelta(days=1)
    while following.isoweekday() > 5:
        following += dt.timedelta(days=1)
    return dates[1] <= following
