"""A loop ends with its last live session, whichever path cancelled it: the loop page, the
ordinary interview page or API, an erasure, or someone deleting the event in their calendar.

Called by ``scheduling.booking.mark_cancelling`` and reconciliation's cancelled-in-calendar, in
the caller's transaction (the caller commits). Only models and the audit are imported here, so
the scheduling paths can call it without importing the loop services built on them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Interview, InterviewLoop, LoopSession, LoopState
from webapp.services import Actor
from webapp.services.audit import record


def loop_of(session: Session, interview_id: int) -> tuple[InterviewLoop, LoopSession] | None:
    """The loop (and its session) an interview holds a session of, if any."""
    found = session.scalar(select(LoopSession).where(LoopSession.interview_id == interview_id))
    return (found.loop, found) if found is not None else None


def end_if_done(session: Session, interview: Interview, actor: Actor | None = None) -> bool:
    """Mark the loop of ``interview`` (just cancelled) cancelled when none of its sessions is
    live any more; audited. True when it did."""
    found = loop_of(session, interview.id)
    if found is None:
        return False
    # Two last sessions cancelled at once (two workers) must not each see the other still live:
    # the loop's row is locked first, so the second reads the first's committed cancellation.
    loop = session.scalar(
        select(InterviewLoop)
        .where(InterviewLoop.id == found[0].id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if loop is None or loop.state is not LoopState.BOOKED:
        return False
    ids = [s.interview_id for s in loop.sessions if s.interview_id is not None]
    statuses = session.scalars(select(Interview.status).where(Interview.id.in_(ids)))
    if any(status.live for status in statuses):
        return False
    loop.state = LoopState.CANCELLED
    record(
        session,
        actor,
        "loop.cancelled",
        organisation_id=loop.organisation_id,
        target_type="interview_loop",
        target_id=loop.id,
        detail={"last_session": found[1].ordinal},
    )
    return True
