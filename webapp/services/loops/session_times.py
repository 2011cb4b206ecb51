"""The times ONE booked session of a loop may move to, exactly as the move will accept them
(``changes.move_booked_session``): between the live sessions around it with the larger of the
two gaps on each side, on the loop's day(s) (``availability.fits_days``), within a one-day
loop's longest break of its neighbours, where its people and room are free (ONE availability
call, over the window the neighbours leave only), clear of our other bookings' claims (the
loop's own sessions' claims do not count: the move skips them, and the gaps keep the sessions
apart), and where no one picked from a pool would go over a limit.

Shared by the ordinary interview page (``loops.ordinary``) and the candidate's own move of a
session (``loops.candidate_sessions``), so a time offered on either is one the loop accepts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import InterviewLoop, utcnow
from webapp.services import Actor
from webapp.services.availability import free_slots, model, windows
from webapp.services.errors import Invalid
from webapp.services.loops import availability, changes
from webapp.services.loops.plan import LoopPlan, ResolvedSession
from webapp.services.loops.reading import BookedSession
from webapp.services.pools import limits

#: Said when the sessions around this one leave it no room at all.
NO_ROOM = (
    "There is no time between the sessions around this one (with the loop's gaps) for this "
    "session; move the whole loop instead."
)
#: Said when the window the loop leaves holds no time free for the session's people and room.
NONE_FREE = (
    "No time between the sessions around this one (with the loop's gaps, on the loop's days) "
    "is free for this session's people{room}; move the whole loop instead."
)


@dataclass(frozen=True)
class SessionTimes:
    """What the session may move to, and the frame it was asked in."""

    slots: tuple[Slot, ...]
    #: The times the neighbours (and the loop's days) leave; None when they leave none.
    window: Period | None
    session: ResolvedSession
    duration: int
    #: Why nothing is offered (None when something is).
    reason: str | None


def live_sessions(booked: Sequence[BookedSession]) -> list[BookedSession]:
    return [b for b in booked if b.live and b.start is not None and b.end is not None]


def neighbours(
    booked: Sequence[BookedSession], ordinal: int
) -> tuple[BookedSession, BookedSession | None, BookedSession | None]:
    """The live session ``ordinal`` with the live sessions just before and after it."""
    live = live_sessions(booked)
    this = next((s for s in live if s.ordinal == ordinal), None)
    if this is None or this.interview is None:
        raise Invalid("Choose a session of the loop that is booked.", field="session")
    before = [s for s in live if s.ordinal < ordinal]
    after = [s for s in live if s.ordinal > ordinal]
    return this, (before[-1] if before else None), (after[0] if after else None)


def within_breaks(
    plan: LoopPlan,
    fixed: Sequence[ResolvedSession],
    booked: Sequence[BookedSession],
    ordinal: int,
    start: dt.datetime,
) -> bool:
    """A loop held on one day keeps its longest break on both sides of the moved session."""
    if plan.split_days or plan.max_break is None:
        return True
    _this, prev, nxt = neighbours(booked, ordinal)
    r = fixed[ordinal - 1].plan
    end = start + dt.timedelta(minutes=r.duration)
    if prev is not None and prev.end is not None:
        p = fixed[prev.ordinal - 1].plan
        most = max(plan.max_break, p.buffer_after, r.buffer_before)
        if start - prev.end > dt.timedelta(minutes=most):
            return False
    if nxt is not None and nxt.start is not None:
        n = fixed[nxt.ordinal - 1].plan
        most = max(plan.max_break, r.buffer_after, n.buffer_before)
        if nxt.start - end > dt.timedelta(minutes=most):
            return False
    return True


def session_times(
    session: Session,
    broker: CalendarBroker,
    actor: Actor,
    loop: InterviewLoop,
    booked: Sequence[BookedSession],
    ordinal: int,
    plan: LoopPlan,
    *,
    within: Period | None = None,
    keep: Callable[[Slot], bool] | None = None,
) -> SessionTimes:
    """The times session ``ordinal`` may move to (its current time left out). ``within``: a
    further frame the caller sets (a link's window); ``keep``: a further test per time (the
    candidate's hours)."""
    this, prev, nxt = neighbours(booked, ordinal)
    fixed = changes.fixed_sessions(session, actor, plan, booked)
    r = fixed[ordinal - 1]
    duration = dt.timedelta(minutes=r.plan.duration)
    gap_before = max(fixed[prev.ordinal - 1].plan.buffer_after, r.plan.buffer_before) if prev else 0
    gap_after = max(r.plan.buffer_after, fixed[nxt.ordinal - 1].plan.buffer_before) if nxt else 0
    # Alone, the session stays on the loop's (remaining) days; beside others, fits_days keeps
    # it on theirs.
    days = availability.search_window(plan)
    lower = max(windows.round_up(utcnow() + model.LEAD_TIME), days.start)
    upper = days.end
    if prev is not None and prev.end is not None:
        lower = max(lower, prev.end + dt.timedelta(minutes=gap_before))
    if nxt is not None and nxt.start is not None:
        upper = min(upper, nxt.start - dt.timedelta(minutes=gap_after))
    if within is not None:
        lower, upper = max(lower, within.start), min(upper, within.end)
    if upper - lower < duration or not r.members:
        return SessionTimes((), None, r, r.plan.duration, NO_ROOM)
    window = Period(lower, upper)
    query = model.Query(
        panel_link_ids=tuple(m.link.id for m in r.members),
        duration=r.plan.duration,
        buffer_before=r.plan.buffer_before,
        buffer_after=r.plan.buffer_after,
        tzid=plan.tzid,
        room=r.room.email if r.room else None,
    )
    members = list(r.members)
    found = free_slots.common_slots(broker, members, query, window, room=r.room)
    siblings = {b.interview.id for b in live_sessions(booked) if b.interview is not None}
    held = availability.held_for(session, loop.organisation_id, [r], window, ignore=siblings)
    free = free_slots.without_held(held, found, members, query, room=r.room)
    live = live_sessions(booked)

    def fits(slot: Slot) -> bool:
        if slot.start == this.start or slot.start < lower or slot.end > upper:
            return False
        starts = [slot.start if s.ordinal == ordinal else s.start for s in live]
        ends = [slot.end if s.ordinal == ordinal else s.end for s in live]
        return (
            availability.fits_days(plan, starts, ends)  # type: ignore[arg-type]
            and within_breaks(plan, fixed, booked, ordinal, slot.start)
            and (keep is None or keep(slot))
        )

    kept = tuple(s for s in free if fits(s))
    assert this.interview is not None
    kept = limits.without_full(session, loop.organisation_id, this.interview.id, kept)
    reason = None if kept else NONE_FREE.format(room=" and room" if r.room else "")
    return SessionTimes(kept, window, r, r.plan.duration, reason)
