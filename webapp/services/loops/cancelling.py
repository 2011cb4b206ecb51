"""Cancelling a booked loop, recruiter side: the whole loop, or one session (each session is
an interview, cancelled through ``booking.cancel_found`` / ``mark_cancelling``; the loop ends
with its last live session, ``loops.ends``). Given a ``Notify``, the candidate gets ONE email
about the whole loop (``loops.notices``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import Interview, InterviewLoop, LoopState
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue
from webapp.services.audit import record
from webapp.services.errors import Invalid
from webapp.services.loops.notices import Timed, tell_candidate
from webapp.services.loops.reading import BookedSession, booked_loop, read_booked
from webapp.services.scheduling import booking
from webapp.services.scheduling.notices import Notify
from webapp.services.scheduling.reading import TAKEN_PLACE


def cancel_loop(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
) -> InterviewLoop:
    """Cancel every session still to come (one that has taken place stays as it is)."""
    loop = booked_loop(session, actor, uid)
    booked = read_booked(session, broker, cipher, sealer, loop)
    if not any(b.live and not b.started and b.interview is not None for b in booked):
        raise Invalid("Nothing of this loop is left to cancel.")
    loop.state = LoopState.CANCELLED  # first: the sessions' cancelling leaves the loop to us
    cancelled = []
    for b in booked:
        if b.live and not b.started and b.interview is not None:
            booking.mark_cancelling(session, b.interview, actor)
            record(
                session,
                actor,
                "interview.cancelled",
                target_type="interview",
                target_id=b.interview.id,
            )
            cancelled.append(b.interview.id)
    record(
        session,
        actor,
        "loop.cancelled",
        target_type="interview_loop",
        target_id=loop.id,
        detail={"sessions": len(cancelled)},
    )
    session.commit()
    for interview_id in cancelled:
        jobs.enqueue("scheduling.delete_interview", interview_id)
    if notify is not None:
        gone = [b for b in booked if b.interview is not None and b.interview.id in cancelled]
        tell_candidate(
            session,
            notify,
            actor,
            loop,
            "cancelled",
            live=[],
            cancelled=_timed(gone),
            jobs=jobs,
        )
    return loop


def _timed(booked: Sequence[BookedSession]) -> list[Timed]:
    """The sessions whose time is known (read from the calendar, or held by their claim)."""
    return [
        Timed(b.ordinal, b.interview.uid, b.start, b.end)
        for b in booked
        if b.interview is not None and b.start is not None and b.end is not None
    ]


def cancel_session(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    ordinal: int,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
) -> InterviewLoop:
    """Cancel one session; the loop is cancelled with its last live session."""
    loop = booked_loop(session, actor, uid)
    cancel_booked_session(
        session, broker, cipher, sealer, actor, loop, ordinal, jobs=jobs, notify=notify
    )
    return loop


def cancel_booked_session(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    loop: InterviewLoop,
    ordinal: int,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
) -> Interview:
    """``cancel_session`` for a booked loop the caller has found the actor may change (through
    one of its sessions' interviews); ``booking.mark_cancelling`` ends the loop with its last
    live session (``loops.ends``)."""
    booked = read_booked(session, broker, cipher, sealer, loop)
    this = next((b for b in booked if b.ordinal == ordinal), None)
    if this is None or not this.live or this.interview is None:
        raise Invalid("Choose a session of the loop that is booked.", field="session")
    if this.started:
        raise Invalid(TAKEN_PLACE)
    booking.cancel_found(session, actor, this.interview, jobs=jobs)
    if notify is not None:
        tell_candidate(
            session,
            notify,
            actor,
            loop,
            "cancelled",
            live=_timed([b for b in booked if b.live and b.ordinal != ordinal]),
            cancelled=_timed([this]),
            jobs=jobs,
        )
    return this.interview
