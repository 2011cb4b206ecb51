"""A candidate moving ONE session of the loop their link booked: the times it may move to
(between the sessions around it, with their gaps and, for a loop held on one day, its longest
break; on the loop's days; inside the link's window; where its people and room are free: one
availability call) and the move itself, through the recruiter's ``loops.changes.move_session``
(the candidate is sent the whole updated itinerary). Allowed as the link's other changes are
(``candidate_changes.allowed_change``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import InterviewLoop, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import JobQueue
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.loops import changes
from webapp.services.loops import session_times as shared
from webapp.services.loops.candidate import actor_for, current_plan, in_hours
from webapp.services.loops.candidate_changes import Change, allowed_change, flag
from webapp.services.loops.plan import LoopPlan, ResolvedSession
from webapp.services.loops.reading import BookedSession, view_loop
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


def _booked(session: Session, cipher: TokenCipher, sealer: Sealer, change: Change):
    """The loop's sessions with the times the candidate's page read (from the calendar)."""
    shown = {s.ordinal: s for s in change.shown.sessions}
    return [
        dataclasses.replace(b, start=shown[b.ordinal].start, end=shown[b.ordinal].end)
        if b.ordinal in shown and shown[b.ordinal].live
        else b
        for b in view_loop(session, None, cipher, sealer, change.loop).sessions
    ]


def session_times(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    change: Change,
    ordinal: int,
) -> tuple[Slot, ...]:
    """Times session ``ordinal`` alone may move to: between the sessions around it (with their
    gaps), inside the link's window and the candidate's hours and on the loop's days, where its
    people (and room) are free (one aggregator call), without its current time: the times the
    recruiter's interview page offers too (``loops.session_times``)."""
    _neighbours(change, ordinal)
    plan = current_plan(sealer, change.loop, utcnow())
    if plan is None:
        return ()
    link = change.link
    return shared.session_times(
        session,
        broker,
        actor_for(session, link),
        change.loop,
        _booked(session, cipher, sealer, change),
        ordinal,
        plan,
        within=Period(link.window_start, link.window_end),
        keep=lambda slot: in_hours(change.opened, [(slot.start, slot.end)]),
    ).slots


def within_breaks(
    plan: LoopPlan,
    fixed: Sequence[ResolvedSession],
    change: Change,
    ordinal: int,
    start: dt.datetime,
    booked: Sequence[BookedSession],
) -> bool:
    """A loop held on one day keeps its longest break on both sides of the moved session."""
    _neighbours(change, ordinal)
    return shared.within_breaks(plan, fixed, booked, ordinal, start)


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
    booked = _booked(session, cipher, sealer, change)
    end = start + dt.timedelta(minutes=this.duration)
    if not in_hours(change.opened, [(start, end)]):
        raise Invalid("Pick one of the times offered.", field="slot")
    overlaps = (prev is not None and prev.end is not None and start < prev.end) or (
        nxt is not None and nxt.start is not None and end > nxt.start
    )  # said by the move itself, first
    if not overlaps and not within_breaks(
        plan, changes.fixed_sessions(session, actor, plan, booked), change, ordinal, start, booked
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
