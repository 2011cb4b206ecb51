"""The calendar writes of a whole-loop move, all or none (as booking is).

``changes.move_loop`` commits the new itinerary (claims, sessions pending) and queues ONE job,
``scheduling.move_loop``, with each session's new write and the write that puts it back where it
was (both sealed, as every write payload is) and the holds of the previous times. The job writes
the sessions in order; when one cannot be written, the whole loop goes back: the new times'
claims give way to the previous times' (a kept shadow's too) and the load ledger counts the
previous times again (in one transaction), every session moved so far (and the
failed one, which may be half written) is written back to its previous time, and the recruiter
sees on the loop page that the move did not happen. A write back that the aggregator does not
confirm at once is retried by ``scheduling.write_interview`` like any write.

Should another booking have taken a previous time in the seconds since the move (its claims were
given up), going back would double book: the move is then finished instead, each remaining
session's write retried like any moved interview's, and the loop page says so.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import AuditEntry, EventStatus, Interview, InterviewLoop, InterviewStatus, LoopState
from webapp.security import Sealer, TokenCipher
from webapp.services import JobQueue, claims
from webapp.services.audit import record
from webapp.services.errors import WriteFailed
from webapp.services.pools import ledger
from webapp.services.scheduling import writes

log = logging.getLogger("webapp.services.loops")

#: What the loop page says after a move whose calendar writes failed.
WENT_BACK = (
    "The last move of this loop could not be written to the calendar, so every session went "
    "back to its previous time (nothing was moved)."
)
KEPT_MOVING = (
    "The last move of this loop could not be written to the calendar at once, and a previous "
    "time was booked meanwhile, so the move is being finished: the calendar is retried for the "
    "sessions not written yet."
)


def hold_args(holds: list[tuple[int, claims.Hold]]) -> list[list]:
    """Holds as job arguments (ids and times only)."""
    return [
        [i, list(h.subs), h.start.isoformat(), h.end.isoformat(), h.before.seconds, h.after.seconds]
        for i, h in holds
    ]


def _holds(args: list[list]) -> list[tuple[int, claims.Hold]]:
    return [
        (
            int(i),
            claims.Hold(
                subs=tuple(subs),
                start=dt.datetime.fromisoformat(start),
                end=dt.datetime.fromisoformat(end),
                before=dt.timedelta(seconds=before),
                after=dt.timedelta(seconds=after),
            ),
        )
        for i, subs, start, end, before, after in args
    ]


def run_loop_move(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    loop_id: int,
    payloads: dict[str, str],
    previous: dict[str, str],
    old_holds: list[list],
    *,
    jobs: JobQueue,
) -> str:
    """Write the moved sessions in order; the first that fails takes the loop back."""
    loop = session.get(InterviewLoop, loop_id)
    if loop is None:
        return "gone"
    if loop.state is not LoopState.BOOKED:
        return "skipped"
    order = [ls for ls in loop.sessions if ls.interview_id is not None]
    for n, ls in enumerate(order):
        interview = session.get(Interview, ls.interview_id)
        sealed = payloads.get(str(ls.interview_id))
        if interview is None or interview.status is not InterviewStatus.PENDING or sealed is None:
            continue  # written already (a rerun), or changed meanwhile
        try:
            writes.run_write(session, broker, cipher, sealer, interview.id, sealed)
        except WriteFailed as exc:
            session.rollback()
            log.info("loop %s: session %s not moved (%s)", loop.id, ls.ordinal, exc)
            touched = [o.interview_id for o in order[: n + 1]]
            rest = [o.interview_id for o in order[n:]]
            go_back(session, loop, ls.ordinal, touched, rest, payloads, previous, old_holds, jobs)
            return "went back"
    return "written"


def go_back(session, loop, failed, touched, rest, payloads, previous, old_holds, jobs) -> None:
    ids = [ls.interview_id for ls in loop.sessions if ls.interview_id is not None]
    rows = {i.id: i for i in session.scalars(select(Interview).where(Interview.id.in_(ids)))}
    live = {i: rows[i] for i in ids if i in rows and rows[i].status.live}  # in the loop's order
    for interview_id in live:
        claims.release(session, interview_id)
    back = [(i, h) for i, h in _holds(old_holds) if i in live]
    if not claims.claim_all(session, loop.organisation_id, back):  # rolled back: nothing moved
        record(
            session,
            None,
            "loop.move_failed",
            organisation_id=loop.organisation_id,
            target_type="interview_loop",
            target_id=loop.id,
            detail={"failed_session": failed, "went_back": False},
        )
        session.commit()
        for interview_id in rest:
            if interview_id in payloads:
                jobs.enqueue(
                    "scheduling.write_interview", interview_id, payloads[str(interview_id)]
                )
        return
    # The load ledger counts each session (its panel and a shadow kept) on its previous day again.
    for interview_id, hold in dict(back).items():
        ledger.move(session, interview_id, hold.start)
    again = []
    for interview_id, interview in live.items():
        if interview_id not in touched or str(interview_id) not in previous:
            # Never written at its new time: its events still hold the previous one.
            if interview.status is InterviewStatus.PENDING and all(
                e.status in (EventStatus.PENDING, EventStatus.CONFIRMED) for e in interview.events
            ):
                for ev in interview.events:
                    ev.status = EventStatus.CONFIRMED
                interview.status = InterviewStatus.SCHEDULED
            continue
        interview.status = InterviewStatus.PENDING
        for ev in interview.events:
            if ev.status is EventStatus.CONFIRMED:
                ev.status = EventStatus.PENDING
        again.append(interview_id)
    record(
        session,
        None,
        "loop.move_failed",
        organisation_id=loop.organisation_id,
        target_type="interview_loop",
        target_id=loop.id,
        detail={"failed_session": failed, "went_back": True},
    )
    session.commit()
    for interview_id in again:
        jobs.enqueue("scheduling.write_interview", interview_id, previous[str(interview_id)])


def move_problem(session: Session, loop: InterviewLoop) -> str | None:
    """What the loop page says about the loop's last move, when its writes failed."""
    last = session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.target_type == "interview_loop",
            AuditEntry.target_id == str(loop.id),
            AuditEntry.action.in_(("loop.rescheduled", "loop.move_failed")),
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if last is None or last.action != "loop.move_failed":
        return None
    return WENT_BACK if (last.detail or {}).get("went_back") else KEPT_MOVING
