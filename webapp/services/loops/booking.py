"""Booking a loop: every session or none.

``book_loop`` checks the chosen itinerary with the aggregator (one sequenced call narrowed to
exactly its times), then commits one Interview per session (its own event ids, panel, room and
video, like any booking) and the claims on every session's time in ONE transaction: if another
booking (a loop or a single interview, from any process) holds any person or room at any
session's time, the database refuses the claims and nothing is stored. The sessions' events are
then written in order by one job (``scheduling.write_loop``, ``run_loop_write``); if a session's
write fails, the sessions already written are deleted, every session is taken back and the loop
is marked failed, so it is never left half-booked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Period, SequencedAvailabilityQuery, Slot
from models import (
    EventStatus,
    Interview,
    InterviewLoop,
    InterviewStatus,
    LoopSession,
    LoopState,
    ProfileLink,
    User,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, claims, rowcount
from webapp.services.audit import record
from webapp.services.availability import model
from webapp.services.credentials import broker_problem
from webapp.services.errors import Invalid, SlotTaken, WriteFailed
from webapp.services.loops import picks, shadows
from webapp.services.loops.availability import (
    fits_days,
    sequenced_query,
    session_subs,
    step_id,
)
from webapp.services.loops.checking import check_plan
from webapp.services.loops.compose import loop_for, open_details, plan_of
from webapp.services.loops.plan import LoopDetails, LoopPlan, ResolvedSession
from webapp.services.pools.picking import lock_people
from webapp.services.scheduling import writes
from webapp.services.scheduling.access import host_link_for
from webapp.services.scheduling.booking import (
    MAX_AHEAD,
    NewInterview,
    seal_write,
    stage_interview,
)
from webapp.services.scheduling.content import Content

log = logging.getLogger("webapp.services.loops")

POOL_TAKEN = (
    "Nobody of a session's pool is free at that time under their limits any more. "
    "Pick another start time."
)
ALREADY = "This loop is already booked or cancelled."

TAKEN = (
    "Those times were just taken (someone on a session, or a room, is booked). "
    "Pick another start time."
)


def check_itinerary(
    plan: LoopPlan, sessions: Sequence[ResolvedSession], starts: Sequence[dt.datetime]
) -> None:
    """The chosen times make sense for this loop: one per session, in the future, in order with
    each session's gaps (and the longest break, on one day), on the loop's days."""
    if len(starts) != len(sessions):
        raise Invalid("Pick one of the start times offered.", field="option")
    now = utcnow()
    if starts[0] <= now or starts[-1] > now + MAX_AHEAD:
        raise Invalid("Pick a start time in the future.", field="option")
    ends = [
        s + dt.timedelta(minutes=r.plan.duration) for s, r in zip(starts, sessions, strict=True)
    ]
    for n in range(1, len(sessions)):
        prev, this = sessions[n - 1].plan, sessions[n].plan
        gap = starts[n] - ends[n - 1]
        least = dt.timedelta(minutes=max(prev.buffer_after, this.buffer_before))
        if gap < least:
            raise Invalid("Pick one of the start times offered.", field="option")
        if not plan.split_days and plan.max_break is not None:
            most = dt.timedelta(minutes=max(plan.max_break, prev.buffer_after, this.buffer_before))
            if gap > most:
                raise Invalid("Pick one of the start times offered.", field="option")
    if not fits_days(plan, starts, ends):
        raise Invalid("Pick one of the start times offered.", field="option")


def itinerary_is_free(
    broker: CalendarBroker,
    plan: LoopPlan,
    sessions: Sequence[ResolvedSession],
    starts: Sequence[dt.datetime],
) -> list[Slot] | None:
    """Ask the aggregator, in one sequenced call, whether exactly these session times are still
    free (each step narrowed to its own time): each session's slot (with who of its pool is
    free), or None."""
    ends = [
        s + dt.timedelta(minutes=r.plan.duration) for s, r in zip(starts, sessions, strict=True)
    ]
    margin = dt.timedelta(hours=12)  # room for each member's working periods around the loop
    query = sequenced_query(plan, sessions, Period(starts[0] - margin, ends[-1] + margin))
    if query is None:
        return None
    narrowed = SequencedAvailabilityQuery(
        steps=tuple(
            _narrow(step, Period(start, end))
            for step, start, end in zip(query.steps, starts, ends, strict=True)
        ),
        periods=(Period(starts[0], ends[-1]),),
    )
    try:
        found = broker.sequenced_availability(narrowed)
    except broker_errors.BrokerError as exc:
        raise broker_problem(exc) from None
    wanted = [(s, e) for s, e in zip(starts, ends, strict=True)]
    for option in found:
        slots = [option.slot(step_id(n)) for n in range(1, len(starts) + 1)]
        if [(slot.start, slot.end) for slot in slots] == wanted:
            return slots
    return None


def _narrow(step, period: Period):
    import dataclasses

    # Start intervals count from the hour; the chosen start is on a quarter hour.
    return dataclasses.replace(
        step, available_periods=(period,), start_interval=model.START_INTERVAL
    )


def holds_of(
    sessions: Sequence[ResolvedSession], starts: Sequence[dt.datetime]
) -> list[claims.Hold]:
    return [
        claims.hold_of(
            session_subs(r),
            start,
            r.plan.duration,
            before=r.plan.buffer_before,
            after=r.plan.buffer_after,
        )
        for r, start in zip(sessions, starts, strict=True)
    ]


def book_loop(
    session: Session,
    broker: CalendarBroker,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    starts: Sequence[dt.datetime],
    *,
    jobs: JobQueue,
    check_slots: bool = True,
    before_claims: Callable[[], None] | None = None,
    plan: LoopPlan | None = None,
) -> InterviewLoop:
    """Book every session of the loop at ``starts`` (one per session, in order) or none:
    SlotTaken, with nothing stored, when another booking or a calendar holds any of it.

    The loop turns booked in the same transaction, by a conditional update: of two bookings of
    the same loop racing (the recruiter's and the candidate's through a link, a double submit),
    one gets it and the other is told it is booked. ``before_claims`` runs in that transaction
    too, before the claims (a candidate link's single use): it raises to refuse, rolling back.
    ``plan``: the loop's plan as the caller narrowed it (a link's days from today on)."""
    loop = loop_for(session, actor, uid)
    if loop.state not in (LoopState.DRAFT, LoopState.FAILED):
        raise Invalid(ALREADY)
    plan = plan or plan_of(sealer, loop)
    details = open_details(sealer, loop)
    if details is None:
        raise Invalid("This loop's details cannot be read any more; compose it again.")
    resolved = check_plan(session, actor, plan)
    check_itinerary(plan, resolved, starts)
    host, manager = host_link_for(session, actor, loop.on_behalf_of_id)
    asked = shadows.ask_free(broker, resolved, starts)  # beside the sequenced call
    slots = itinerary_is_free(broker, plan, resolved, starts)
    free_shadows = shadows.collect(asked)
    if slots is None:
        if check_slots or any(r.pool is not None for r in resolved):
            raise SlotTaken(TAKEN)
        slots = [
            Slot(s, s + dt.timedelta(minutes=r.plan.duration), ())
            for s, r in zip(starts, resolved, strict=True)
        ]
    turned = session.execute(
        update(InterviewLoop)
        .where(
            InterviewLoop.id == loop.id,
            InterviewLoop.state.in_([LoopState.DRAFT, LoopState.FAILED]),
        )
        .values(state=LoopState.BOOKED)
        .execution_options(synchronize_session=False)
    )
    if rowcount(turned) != 1:
        session.rollback()
        raise Invalid(ALREADY)
    if before_claims is not None:
        before_claims()
    # Pool picks again, now, with the pools' people locked: two bookings picking the same
    # person count one after the other, so neither pushes them over a limit.
    lock_people(
        session,
        loop.organisation_id,
        [m.user_id for r in resolved if r.pool is not None for m in r.pool.members],
    )
    chosen = picks.pick_itinerary(
        session,
        resolved,
        slots,
        picks.read_loads(session, loop.organisation_id, resolved, Period(starts[0], starts[-1])),
    )
    if chosen is None:
        session.rollback()
        raise SlotTaken(POOL_TAKEN)
    sessions = picks.with_picks(resolved, chosen)
    brought = shadows.pick(session, loop.organisation_id, sessions, starts, free_shadows)
    staged = stage_sessions(
        session,
        actor,
        loop,
        plan,
        details,
        sessions,
        starts,
        host,
        picked_from=picks.picked_from(chosen),
        manager=manager,
    )
    if not claims.claim_all(
        session,
        loop.organisation_id,
        [
            (interview.id, hold)
            for (interview, _c), hold in zip(staged, holds_of(sessions, starts), strict=True)
        ],
    ):
        raise SlotTaken(TAKEN)
    staged = shadows.bring(session, loop.organisation_id, staged, sessions, starts, brought)
    loop.state = LoopState.BOOKED
    record(
        session,
        actor,
        "loop.booked",
        target_type="interview_loop",
        target_id=loop.id,
        detail={
            "sessions": len(staged),
            "interviews": [i.id for i, _c in staged],
            **({"shadows": sum(b is not None for b in brought)} if any(brought) else {}),
        },
    )
    session.commit()
    payloads = {str(i.id): seal_write(sealer, i, content) for i, content in staged}
    jobs.enqueue("scheduling.write_loop", loop.id, payloads)
    return loop


def stage_sessions(
    session: Session,
    actor: Actor,
    loop: InterviewLoop,
    plan: LoopPlan,
    details: LoopDetails,
    resolved: Sequence[ResolvedSession],
    starts: Sequence[dt.datetime],
    host: ProfileLink,
    *,
    picked_from: Sequence[dict[int, int]] = (),
    manager: User | None = None,
) -> list[tuple[Interview, Content]]:
    """One Interview per session (flushed, not committed), each linked from its LoopSession."""
    staged = []
    count = len(resolved)
    by_ordinal = {s.ordinal: s for s in loop.sessions}
    for n, (r, start) in enumerate(zip(resolved, starts, strict=True), start=1):
        title = (
            details.session_titles[n - 1] if n - 1 < len(details.session_titles) else r.plan.title
        )
        new = NewInterview(
            query=model.Query(
                panel_link_ids=tuple(m.link.id for m in r.members),
                duration=r.plan.duration,
                buffer_before=r.plan.buffer_before,
                buffer_after=r.plan.buffer_after,
                tzid=plan.tzid,
                room=r.room.email if r.room else None,
            ),
            start=start,
            candidate_name=details.candidate_name,
            candidate_email=details.candidate_email,
            title=f"{details.title}: {title}",
            video=r.plan.video,
            candidate_tzid=plan.candidate_tzid,
        )
        interview, content = stage_interview(
            session,
            actor,
            new,
            r.members,
            host,
            manager,
            room=r.room,
            description=f"Session {n} of {count} of {details.title}.",
            picked_from=picked_from[n - 1] if picked_from else None,
        )
        by_ordinal[n].interview_id = interview.id
        staged.append((interview, content))
    session.flush()
    return staged


# ---------------------------------------------------------------------------------------------
# The write job: in order, all or none


def run_loop_write(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    loop_id: int,
    payloads: dict[str, str],
    *,
    jobs: JobQueue,
) -> str:
    """Write each session's events in order (``writes.run_write``, upserts by fixed event ids,
    so a rerun after a crash only finishes what is left). A session whose write fails takes the
    whole loop back: ``take_back``."""
    loop = session.get(InterviewLoop, loop_id)
    if loop is None:
        return "gone"
    if loop.state is not LoopState.BOOKED:
        return "skipped"
    for ls in loop.sessions:
        if ls.interview_id is None:
            continue
        interview = session.get(Interview, ls.interview_id)
        if interview is None or interview.status is not InterviewStatus.PENDING:
            continue  # written already (a rerun), or cancelled meanwhile
        sealed = payloads.get(str(interview.id))
        if sealed is None:
            continue
        try:
            writes.run_write(session, broker, cipher, sealer, interview.id, sealed)
        except WriteFailed as exc:
            log.info("loop %s: session %s not written (%s)", loop.id, ls.ordinal, exc)
            take_back(session, broker, cipher, loop, failed=ls.ordinal, jobs=jobs)
            return "taken back"
    return "written"


def take_back(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    loop: InterviewLoop,
    *,
    failed: int | None,
    jobs: JobQueue,
) -> None:
    """Undo a loop whose booking cannot complete: every live session is taken back (its claims
    released, every event deleted, including one a failed write may have left) and the loop is
    marked failed. Deletes are tried at once; what the aggregator does not confirm is queued to
    ``scheduling.delete_interview``, which retries."""
    every = [
        i
        for i in (
            session.get(Interview, ls.interview_id) for ls in loop.sessions if ls.interview_id
        )
        if i is not None
    ]
    for interview in every:  # a session already failed holds nothing either
        claims.release(session, interview.id)
    interviews = [i for i in every if i.status.live]
    for interview in interviews:
        interview.status = InterviewStatus.CANCELLING
        interview.needs_notice = False
        for ev in interview.events:
            if ev.status is not EventStatus.DELETED:
                ev.status = EventStatus.DELETING
        claims.release(session, interview.id)
    loop.state = LoopState.FAILED
    record(
        session,
        None,
        "loop.write_failed",
        organisation_id=loop.organisation_id,
        target_type="interview_loop",
        target_id=loop.id,
        detail={"failed_session": failed, "taken_back": [i.id for i in interviews]},
    )
    session.commit()
    for interview in interviews:
        try:
            writes.run_delete(session, broker, cipher, interview.id)
        except WriteFailed:
            jobs.enqueue("scheduling.delete_interview", interview.id)
            continue
        session.refresh(interview)
        if interview.status is InterviewStatus.CANCELLED:
            interview.status = InterviewStatus.FAILED  # nothing of it is left at the aggregator
            session.commit()


def take_back_broken(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, jobs: JobQueue
) -> int:
    """Loops left half-booked by a write job that never finished (reconciliation marked one of
    their sessions failed while others are live): taken back like a failed write. Periodic."""
    # Only booked loops with a failed session are read (one query; none on most runs).
    broken = session.scalars(
        select(InterviewLoop)
        .where(
            InterviewLoop.state == LoopState.BOOKED,
            InterviewLoop.id.in_(
                select(LoopSession.loop_id)
                .join(Interview, Interview.id == LoopSession.interview_id)
                .where(Interview.status == InterviewStatus.FAILED)
            ),
        )
        .order_by(InterviewLoop.id)
    ).all()
    count = 0
    for loop in broken:
        interviews = {
            ls.ordinal: session.get(Interview, ls.interview_id)
            for ls in loop.sessions
            if ls.interview_id is not None
        }
        statuses = {n: i.status for n, i in interviews.items() if i is not None}
        failed = [n for n, st in statuses.items() if st is InterviewStatus.FAILED]
        if failed and any(st.live for st in statuses.values()):
            take_back(session, broker, cipher, loop, failed=failed[0], jobs=jobs)
            count += 1
    return count
