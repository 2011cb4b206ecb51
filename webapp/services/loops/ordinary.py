"""The ordinary interview paths (the interview page, the API) for an interview that holds a
session of a loop: a move or cancellation goes through the loop's own rules
(``loops.changes``: the order and gaps of the sessions around it, a one-day loop's longest
break, its days, the claims), and the candidate hears about the whole loop. An interview of no
loop takes the plain scheduling path.

The actor is the one ``scheduling.access.interview_for`` allowed to change the interview;
the loop's own page stays its composer's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import Interview, InterviewLoop, LoopState, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue
from webapp.services.errors import AggregatorTrouble, Invalid
from webapp.services.loops import changes
from webapp.services.loops.compose import plan_of
from webapp.services.loops.ends import loop_of
from webapp.services.loops.links import plan_from
from webapp.services.scheduling import booking, rescheduling
from webapp.services.scheduling.access import interview_for
from webapp.services.scheduling.notices import Notify

#: Said when a session of a loop that is no longer booked is asked to change here.
NOT_BOOKED = "This interview is a session of a loop that is not booked any more; open the loop."


def loop_session(session: Session, interview: Interview) -> tuple[InterviewLoop, int] | None:
    """The loop ``interview`` holds a session of, with the session's position."""
    found = loop_of(session, interview.id)
    return (found[0], found[1].ordinal) if found is not None else None


def reschedule_interview(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    start: dt.datetime,
    *,
    duration: int | None = None,
    jobs: JobQueue,
    notify: Notify | None = None,
) -> tuple[Interview, str]:
    """Move the interview; a loop's session only as the loop allows (its length kept)."""
    interview = interview_for(session, actor, uid)
    found = loop_session(session, interview)
    if found is None:
        return rescheduling.move_interview(
            session,
            broker,
            cipher,
            sealer,
            actor,
            interview,
            start,
            duration=duration,
            jobs=jobs,
            notify=notify,
        )
    loop, ordinal = found
    if loop.state is not LoopState.BOOKED:
        raise Invalid(NOT_BOOKED)
    length = loop.sessions[ordinal - 1].duration_minutes
    if duration is not None and duration != length:
        raise Invalid(
            f"This interview is session {ordinal} of a loop and keeps its length "
            f"({length} minutes); change the loop on its page.",
            field="duration",
        )
    plan = plan_from(plan_of(sealer, loop), utcnow())
    if plan is None:
        raise Invalid(
            "The days this loop was planned on are over, so its sessions cannot move.",
            field="slot",
        )
    return changes.move_booked_session(
        session,
        broker,
        cipher,
        sealer,
        actor,
        loop,
        ordinal,
        start,
        jobs=jobs,
        notify=notify,
        plan=plan,
    )


def cancel_interview(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
) -> Interview:
    """Cancel the interview; a loop's session as the loop page would (the loop is cancelled
    with its last live session, and the candidate hears about the whole loop)."""
    interview = interview_for(session, actor, uid)
    found = loop_session(session, interview)
    if found is None or found[0].state is not LoopState.BOOKED:
        return booking.cancel_found(session, actor, interview, jobs=jobs, notify=notify)
    loop, ordinal = found
    if broker is None:
        raise AggregatorTrouble("No calendar service is configured.")
    return changes.cancel_booked_session(
        session, broker, cipher, sealer, actor, loop, ordinal, jobs=jobs, notify=notify
    )
