"""A candidate moving ONE session of the loop their link booked: the times it may move to
(between the sessions around it, with their gaps and, for a loop held on one day, its longest
break; on the loop's days; inside the link's window; where its people and room are free: one
availability call) and the move itself, through the recruiter's ``loops.changes.move_session``
(the candidate is sent the whole updated itinerary). Allowed as the link's other changes are
(``candidate_changes.allowed_change``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import InterviewLoop, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import JobQueue
from webapp.services.availability import free_slots, model, windows
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.loops import availability, changes
from webapp.services.loops.candidate import actor_for, current_plan, in_hours
from webapp.services.loops.candidate_changes import Change, allowed_change, flag
from webapp.services.loops.compose import LoopPlan, ResolvedSession
from webapp.services.loops.reading import view_loop
from webapp.services.pools.limits import OverLimit
from webapp.services.scheduling.notices import Notify


def _neighbours(change: Change, ordinal: int):
    """The live session ``ordinal`` with the live sessions just before and after it."""
    live = [s for s in change.shown.live if s.start is not None and s.end is not None]
    this = next((s for s in live if s.ordinal == ordinal), None)
    if this is None:
        raise Invalid("Choose one of your sessions that is still on.", field="session")
    before = [s for s in live if s.ordinal < ordinal]
    after = [s for s in live if s.ordinal > ordinal]
    return this, (before[-1] if before else None), (after[0] if after else None)


def session_times(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    change: Change,
    ordinal: int,
) -> tuple[Slot, ...]:
    """Times session ``ordinal`` alone may move to: between the sessions around it (with their
    gaps), inside the link's window and on the loop's days, where its people (and room) are
    free (one aggregator call), without its current time."""
    this, prev, nxt = _neighbours(change, ordinal)
    plan = current_plan(sealer, change.loop, utcnow())
    if plan is None:
        return ()
    actor = actor_for(session, change.link)
    booked = view_loop(session, None, cipher, sealer, change.loop).sessions
    fixed = changes.fixed_sessions(session, actor, plan, booked)
    r = fixed[ordinal - 1]
    gap_before = max(fixed[prev.ordinal - 1].plan.buffer_after, r.plan.buffer_before) if prev else 0
    gap_after = max(r.plan.buffer_after, fixed[nxt.ordinal - 1].plan.buffer_before) if nxt else 0
    link = change.link
    lower = max(
        link.window_start,
        windows.round_up(utcnow() + model.LEAD_TIME),
        prev.end + dt.timedelta(minutes=gap_before) if prev and prev.end else link.window_start,
    )
    upper = min(
        link.window_end,
        nxt.start - dt.timedelta(minutes=gap_after) if nxt and nxt.start else link.window_end,
    )
    duration = dt.timedelta(minutes=r.plan.duration)
    if upper - lower < duration or not r.members:
        return ()
    query = model.Query(
        panel_link_ids=tuple(m.link.id for m in r.members),
        duration=r.plan.duration,
        buffer_before=r.plan.buffer_before,
        buffer_after=r.plan.buffer_after,
        tzid=plan.tzid,
        room=r.room.email if r.room else None,
    )
    window = Period(lower, upper)
    found = free_slots.common_slots(broker, list(r.members), query, window, room=r.room)
    interview_id = next(
        (b.interview.id for b in booked if b.ordinal == ordinal and b.interview), None
    )
    held = free_slots.held_for(
        session, list(r.members), window, room=r.room, ignore_interview=interview_id
    )
    free = free_slots.without_held(held, found, list(r.members), query, room=r.room)
    live = [s for s in change.shown.live if s.start is not None and s.end is not None]

    def fits(slot: Slot) -> bool:
        starts = [slot.start if s.ordinal == ordinal else s.start for s in live]
        ends = [slot.end if s.ordinal == ordinal else s.end for s in live]
        return (
            availability.fits_days(plan, starts, ends)  # type: ignore[arg-type]
            and within_breaks(plan, fixed, change, ordinal, slot.start)
            and in_hours(change.opened, [(slot.start, slot.end)])
        )

    return tuple(s for s in free if s.start != this.start and s.end <= upper and fits(s))


def within_breaks(
    plan: LoopPlan,
    fixed: Sequence[ResolvedSession],
    change: Change,
    ordinal: int,
    start: dt.datetime,
) -> bool:
    """A loop held on one day keeps its longest break on both sides of the moved session."""
    if plan.split_days or plan.max_break is None:
        return True
    this, prev, nxt = _neighbours(change, ordinal)
    end = start + dt.timedelta(minutes=this.duration)
    r = fixed[ordinal - 1].plan
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


def move_session(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    ordinal: int,
    start: dt.datetime,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    now: dt.datetime | None = None,
    change: Change | None = None,
) -> InterviewLoop:
    """Move one session to ``start`` (one of the times ``session_times`` offers)."""
    change = change or allowed_change(session, broker, cipher, sealer, token, "reschedule", now)
    this, prev, nxt = _neighbours(change, ordinal)
    link = change.link
    if start.tzinfo is None or start < link.window_start:
        raise Invalid("Pick one of the times offered.", field="slot")
    if start == this.start:
        raise Invalid("That is already the session's time. Pick another one.", field="slot")
    if start + dt.timedelta(minutes=this.duration) > link.window_end:
        raise Invalid("Pick one of the times offered.", field="slot")
    plan = current_plan(sealer, change.loop, utcnow())
    if plan is None:
        raise Invalid("There are no times left for these interviews.", field="slot")
    actor = actor_for(session, link)
    booked = view_loop(session, None, cipher, sealer, change.loop).sessions
    end = start + dt.timedelta(minutes=this.duration)
    if not in_hours(change.opened, [(start, end)]):
        raise Invalid("Pick one of the times offered.", field="slot")
    overlaps = (prev is not None and prev.end is not None and start < prev.end) or (
        nxt is not None and nxt.start is not None and end > nxt.start
    )  # said by the move itself, first
    if not overlaps and not within_breaks(
        plan, changes.fixed_sessions(session, actor, plan, booked), change, ordinal, start
    ):
        raise Invalid(
            f"That would leave more than {plan.max_break} minutes between two sessions. "
            "Pick one of the times offered.",
            field="slot",
        )
    try:
        changes.move_session(
            session,
            broker,
            cipher,
            sealer,
            actor_for(session, link),
            change.loop.uid,
            ordinal,
            start,
            jobs=jobs,
            notify=notify,
            plan=plan,
        )
    except SlotTaken:
        session.rollback()
        raise SlotTaken("That time was just taken. Please pick another one.") from None
    except OverLimit:  # its message names an interviewer and their load: not for the candidate
        session.rollback()
        raise Invalid("That time is no longer available. Pick another one.", field="slot") from None
    except Exception:
        session.rollback()
        raise
    flag(session, change.loop)
    return change.loop
