"""Changing a booked loop, recruiter side: move or cancel the whole loop, or one session.

Each session is an interview, so the changes go through the scheduling paths: a session moves
with ``rescheduling.move_interview`` (same event ids, claimed like any booking) and is cancelled
with ``booking.cancel_found`` / ``mark_cancelling``. The whole loop moves in one transaction:
every session's claim is released and the new itinerary claimed at once (all or none), after one
sequenced availability call checked it; the events then move by the ordinary write jobs.

Given a ``Notify``, each change sends the candidate ONE email about the whole loop
(``loops.notices``): the updated itinerary after a move, or a cancellation notice (METHOD:CANCEL
for the sessions cancelled) with what is left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import (
    EventStatus,
    Interview,
    InterviewLoop,
    InterviewStatus,
    LinkStatus,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, claims
from webapp.services.audit import record
from webapp.services.availability import model
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.loops import moving
from webapp.services.loops.availability import LoopTimes, fits_days, loop_times
from webapp.services.loops.booking import TAKEN, check_itinerary, holds_of, itinerary_is_free
from webapp.services.loops.cancelling import (  # noqa: F401 (the loop's changes, in one place)
    cancel_booked_session,
    cancel_loop,
    cancel_session,
)
from webapp.services.loops.checking import check_plan
from webapp.services.loops.compose import plan_of
from webapp.services.loops.notices import Timed, tell_candidate
from webapp.services.loops.plan import LoopPlan, ResolvedSession
from webapp.services.loops.reading import BookedSession, booked_loop, read_booked
from webapp.services.pools import ledger, limits, sitting
from webapp.services.scheduling import rescheduling
from webapp.services.scheduling.access import links_by_id, panel_members
from webapp.services.scheduling.booking import seal_write
from webapp.services.scheduling.content import Content
from webapp.services.scheduling.notices import Notify
from webapp.services.scheduling.reading import TAKEN_PLACE


def move_loop(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    starts: Sequence[dt.datetime],
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    plan: LoopPlan | None = None,
) -> InterviewLoop:
    """Move every session to a new itinerary (one start per session, as offered), all or none.
    ``plan``: the loop's plan as the caller narrowed it (a link's days from today on)."""
    loop = booked_loop(session, actor, uid)
    booked = read_booked(session, broker, cipher, sealer, loop)
    if any(not b.live for b in booked):
        raise Invalid("A session of this loop is cancelled: move the other sessions one by one.")
    if any(b.interview.status is not InterviewStatus.SCHEDULED for b in booked):  # type: ignore[union-attr]
        raise Invalid("The loop is still being written to the calendar; try again shortly.")
    if any(b.event is None or b.event.deleted for b in booked):
        raise Invalid("A session's event is no longer in the calendar, so the loop cannot move.")
    if any(b.started for b in booked):
        raise Invalid(TAKEN_PLACE)
    plan = plan or plan_of(sealer, loop)
    resolved = fixed_sessions(session, actor, plan, booked)
    check_itinerary(plan, resolved, starts)
    # Whether each session's shadows are free at its new time: their own calls, beside the
    # sequenced one and answered before the locked part below (never waited on under locks).
    asked = [
        sitting.ask_moving(
            session,
            broker,
            b.interview,  # type: ignore[arg-type]
            start,
            r.plan.duration,
            r.plan.buffer_before,
            r.plan.buffer_after,
        )
        for b, r, start in zip(booked, resolved, starts, strict=True)
    ]
    if itinerary_is_free(broker, plan, resolved, starts) is None:
        raise SlotTaken(TAKEN)
    answers = [sitting.collect(a) for a in asked]
    # People picked from a pool keep their picks: their limits must hold where every session
    # lands (locked until the commit, so a concurrent booking or move counts this one).
    limits.check_moves(
        session,
        loop.organisation_id,
        [(b.interview.id, start) for b, start in zip(booked, starts, strict=True)],  # type: ignore[union-attr]
    )
    writes, previous = [], {}
    old_holds = moving.hold_args(
        [
            (b.interview.id, hold)  # type: ignore[union-attr]
            for b, hold in zip(booked, holds_of(resolved, [b.start for b in booked]), strict=True)  # type: ignore[misc]
        ]
    )
    for b, r, start in zip(booked, resolved, starts, strict=True):
        interview = b.interview
        assert interview is not None and b.event is not None
        content = Content.of_event(b.event, start, start + dt.timedelta(minutes=r.plan.duration))
        if b.start is not None and b.end is not None:  # what going back writes
            previous[str(interview.id)] = seal_write(
                sealer, interview, Content.of_event(b.event, b.start, b.end)
            )
        interview.status = InterviewStatus.PENDING
        for ev in interview.events:
            if ev.status is EventStatus.CONFIRMED:
                ev.status = EventStatus.PENDING
        record(
            session, actor, "interview.rescheduled", target_type="interview", target_id=interview.id
        )
        claims.release(session, interview.id)
        ledger.move(session, interview.id, start)  # the load counts the session's new day
        writes.append((interview, content))
    if not claims.claim_all(
        session,
        loop.organisation_id,
        [(i.id, hold) for (i, _c), hold in zip(writes, holds_of(resolved, starts), strict=True)],
    ):
        raise SlotTaken(TAKEN)
    followed = []
    for (i, c), r, b, heard in zip(writes, resolved, booked, answers, strict=True):
        # A shadow sitting in comes along where still free, and is left out otherwise: then
        # out of the write that takes a failed move back too (their old time is given up).
        c = sitting.follow_move(
            session,
            i,
            c,
            c.start,
            r.plan.duration,
            r.plan.buffer_before,
            r.plan.buffer_after,
            answers=heard,
        )
        if b.start is not None:  # a kept shadow's previous time is claimed again on going back
            old_holds += moving.hold_args(
                [
                    (i.id, h)
                    for h in sitting.kept_holds(
                        session,
                        i.id,
                        b.start,
                        r.plan.duration,
                        r.plan.buffer_before,
                        r.plan.buffer_after,
                    )
                ]
            )
        if c.removed and str(i.id) in previous and b.event is not None:
            back = Content.of_event(b.event, b.start, b.end)  # type: ignore[arg-type]
            gone = {e.lower() for e in c.removed}
            previous[str(i.id)] = seal_write(
                sealer,
                i,
                dataclasses.replace(
                    back,
                    attendees=tuple(a for a in back.attendees if a[0].lower() not in gone),
                    removed=c.removed,
                ),
            )
        followed.append((i, c))
    writes = followed
    record(session, actor, "loop.rescheduled", target_type="interview_loop", target_id=loop.id)
    session.commit()
    # One job writes the sessions in order; one that fails takes the whole move back.
    jobs.enqueue(
        "scheduling.move_loop",
        loop.id,
        {str(i.id): seal_write(sealer, i, c) for i, c in writes},
        previous,
        old_holds,
    )
    if notify is not None:
        tell_candidate(
            session,
            notify,
            actor,
            loop,
            "rescheduled",
            live=[
                Timed(b.ordinal, i.uid, c.start, c.end)
                for b, (i, c) in zip(booked, writes, strict=True)
            ],
            jobs=jobs,
        )
    return loop


def fixed_sessions(
    session: Session, actor: Actor, plan: LoopPlan, booked: Sequence[BookedSession]
) -> list[ResolvedSession]:
    """The plan's sessions with the people each booked session has now (its pool picks kept):
    what a move of the whole loop asks about and claims."""
    out = []
    for r, b in zip(check_plan(session, actor, plan), booked, strict=True):
        if b.interview is None:
            out.append(r)
            continue
        links = links_by_id(session, b.interview.panel_link_ids)
        members = tuple(
            m
            for m in panel_members(session, b.interview, links)
            if m.link.status is LinkStatus.ACTIVE
        )
        out.append(dataclasses.replace(r, members=members, pool=None, candidates=()))
    return out


def moving_times(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
) -> LoopTimes:
    """Itineraries the whole loop could move to, with the people it has now (one sequenced
    call); the loop's own holds do not count against it."""
    loop = booked_loop(session, actor, uid)
    booked = read_booked(session, broker, cipher, sealer, loop)
    plan = plan_of(sealer, loop)
    return loop_times(
        session,
        broker,
        sealer,
        actor,
        loop,
        plan=plan,
        ignore_loop_claims=True,
        fixed=fixed_sessions(session, actor, plan, booked),
    )


def move_session(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    ordinal: int,
    start: dt.datetime,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    plan: LoopPlan | None = None,
) -> InterviewLoop:
    """Move one session, keeping the loop in order (its gaps to the sessions around it, a
    one-day loop's longest break) and on its days; the session's panel and room must be free at
    the new time. ``plan``: the loop's plan as the caller narrowed it (a link's days from today
    on)."""
    loop = booked_loop(session, actor, uid)
    move_booked_session(
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
    return loop


def move_booked_session(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    loop: InterviewLoop,
    ordinal: int,
    start: dt.datetime,
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    plan: LoopPlan | None = None,
) -> tuple[Interview, str]:
    """``move_session`` for a booked loop the caller has found the actor may change (through
    one of its sessions' interviews): the moved interview and its sealed write."""
    booked = read_booked(session, broker, cipher, sealer, loop)
    this = next((b for b in booked if b.ordinal == ordinal), None)
    if this is None or not this.live or this.interview is None:
        raise Invalid("Choose a session of the loop that is booked.", field="session")
    if start.tzinfo is None or start <= utcnow():
        raise Invalid("Pick a time in the future.", field="start")
    plan = plan or plan_of(sealer, loop)
    resolved = check_plan(session, actor, plan)
    r = resolved[ordinal - 1]
    end = start + dt.timedelta(minutes=r.plan.duration)
    live = [b for b in booked if b.live and b.start is not None and b.end is not None]
    starts = [start if b.ordinal == ordinal else b.start for b in live]
    ends = [end if b.ordinal == ordinal else b.end for b in live]
    for n in range(1, len(live)):
        prev, nxt = resolved[live[n - 1].ordinal - 1].plan, resolved[live[n].ordinal - 1].plan
        least = dt.timedelta(minutes=max(prev.buffer_after, nxt.buffer_before))
        if starts[n] - ends[n - 1] < least:  # type: ignore[operator]
            raise Invalid(
                "That time would overlap another session of the loop (or its gap). "
                "Pick a time between the sessions around it.",
                field="start",
            )
    if not fits_days(plan, starts, ends):  # type: ignore[arg-type]
        raise Invalid(
            "That time would take the loop beyond "
            + ("two days." if plan.split_days else "one day."),
            field="start",
        )
    _check_breaks(plan, resolved, live, starts, ends, ordinal)
    siblings = [b.interview.id for b in live if b.ordinal != ordinal and b.interview]
    moved = rescheduling.move_interview(
        session,
        broker,
        cipher,
        sealer,
        actor,
        this.interview,
        start,
        model.Query(
            panel_link_ids=tuple(this.interview.panel_link_ids),
            duration=r.plan.duration,
            buffer_before=r.plan.buffer_before,
            buffer_after=r.plan.buffer_after,
            tzid=plan.tzid,
        ),
        duration=r.plan.duration,
        jobs=jobs,
        claim_skip=claims.held_buckets(session, siblings),
    )
    if notify is not None:
        tell_candidate(
            session,
            notify,
            actor,
            loop,
            "rescheduled",
            live=[
                Timed(b.ordinal, b.interview.uid, s, e)  # type: ignore[arg-type]
                for b, s, e in zip(live, starts, ends, strict=True)
                if b.interview is not None
            ],
            jobs=jobs,
        )
    return moved


def _check_breaks(plan, resolved, live, starts, ends, ordinal) -> None:
    """A loop held on one day keeps its longest break on both sides of the moved session."""
    if plan.split_days or plan.max_break is None:
        return
    for n in range(1, len(live)):
        if ordinal not in (live[n - 1].ordinal, live[n].ordinal):
            continue
        prev, nxt = resolved[live[n - 1].ordinal - 1].plan, resolved[live[n].ordinal - 1].plan
        most = dt.timedelta(minutes=max(plan.max_break, prev.buffer_after, nxt.buffer_before))
        if starts[n] - ends[n - 1] > most:
            raise Invalid(
                f"That would leave more than {plan.max_break} minutes between two sessions "
                "of the loop. Pick a time closer to the sessions around it.",
                field="start",
            )
