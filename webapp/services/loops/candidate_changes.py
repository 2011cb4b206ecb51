"""A candidate's own changes to the loop their self-scheduling link booked: move the whole loop,
move one session, cancel the whole loop or one session, when the recruiter allowed changes on
the link, up to its cut-off before the FIRST session. Each goes through the recruiter's path
(``loops.changes``) with the candidate as the actor, and sends the candidate ONE email (the
updated itinerary, or the cancellation); a refusal is audited and changes nothing; the
recruiter sees the sessions flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import Interview, InterviewLoop, LoopState, SchedulingLink, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import JobQueue
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, windows
from webapp.services.errors import ChangeRefused, Invalid, SlotTaken
from webapp.services.loops import availability, changes
from webapp.services.loops.candidate import (
    ShownLoop,
    actor_for,
    current_plan,
    in_window,
    shown,
    used_loop,
)
from webapp.services.loops.reading import view_loop
from webapp.services.scheduling.notices import Notify


@dataclass(frozen=True)
class Change:
    """What the candidate may do now about the loop their link booked."""

    link: SchedulingLink
    loop: InterviewLoop
    shown: ShownLoop
    #: Why no change is possible, for the candidate (None: they may change it).
    refused: str | None
    #: The last moment a change is accepted: the cut-off before the first session.
    deadline: dt.datetime | None
    #: Why not, for the audit trail.
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


def _verdict(
    link: SchedulingLink, loop: InterviewLoop, shown: ShownLoop, now: dt.datetime
) -> tuple[str | None, str | None, dt.datetime | None]:
    if not link.candidate_may_change:
        return (
            "not allowed on the link",
            "Changes through this link are not possible. To move or cancel your interviews, "
            "please contact the recruiter.",
            None,
        )
    if loop.state is not LoopState.BOOKED or not shown.live:
        return (
            "not live",
            "These interviews were cancelled; there is nothing left to change.",
            None,
        )
    first = shown.start
    if first is None or shown.state == "unknown":
        return (
            "time unknown",
            "Your interviews' times could not be read from the calendar just now. "
            "Please try again in a few minutes.",
            None,
        )
    deadline = first - dt.timedelta(hours=link.change_cutoff_hours)
    if now > deadline:
        return (
            "after the cut-off",
            "Your interviews can no longer be moved or cancelled here: changes were possible "
            f"until {link.change_cutoff_hours} hours before the first session. "
            "Please contact the recruiter.",
            deadline,
        )
    if shown.state == "pending":
        return (
            "not settled",
            "Your interviews are still being written to the calendars. "
            "Please try again in a minute.",
            deadline,
        )
    return None, None, deadline


def change_for(
    session: Session,
    sealer: Sealer,
    token: str,
    shown: ShownLoop,
    *,
    now: dt.datetime | None = None,
) -> Change:
    link, _payload, loop = used_loop(session, sealer, token)
    reason, refused, deadline = _verdict(link, loop, shown, now or utcnow())
    return Change(link, loop, shown, refused, deadline, reason)


def change_of(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    *,
    now: dt.datetime | None = None,
) -> Change:
    return change_for(
        session, sealer, token, shown(session, broker, cipher, sealer, token), now=now
    )


def allowed_change(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    action: str,
    now: dt.datetime | None = None,
) -> Change:
    """The change the token may make now, or ChangeRefused (audited, nothing changed)."""
    change = change_of(session, broker, cipher, sealer, token, now=now)
    if change.refused is not None:
        record(
            session,
            actor_for(session, change.link),
            "loop.candidate_change_refused",
            outcome="denied",
            target_type="interview_loop",
            target_id=change.loop.id,
            detail={"action": action, "reason": change.reason},
        )
        session.commit()
        raise ChangeRefused(change.refused)
    return change


def move_times(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    change: Change,
) -> tuple[availability.Itinerary, ...]:
    """New itineraries for the whole loop with the people it has now (its pool picks kept, as
    the move keeps them), its own holds not counting, inside the link's window, without the
    current one (one sequenced availability call)."""
    plan = current_plan(sealer, change.loop, utcnow())
    if plan is None:
        return ()
    actor = actor_for(session, change.link)
    booked = view_loop(session, None, cipher, sealer, change.loop).sessions
    found = availability.loop_times(
        session,
        broker,
        sealer,
        actor,
        change.loop,
        plan=plan,
        ignore_loop_claims=True,
        fixed=changes.fixed_sessions(session, actor, plan, booked),
    )
    now = [s.start for s in change.shown.sessions]
    return tuple(
        o for o in found.options if in_window(change.link, o) and [s.start for s in o.stops] != now
    )


def reschedule(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    starts: Sequence[dt.datetime],
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    now: dt.datetime | None = None,
    change: Change | None = None,
) -> InterviewLoop:
    """Move the whole loop to another offered itinerary (every session or none). ``change``:
    what ``allowed_change`` answered just before (not read again)."""
    change = change or allowed_change(session, broker, cipher, sealer, token, "reschedule", now)
    link = change.link
    if change.shown.cancelled:
        raise ChangeRefused(
            "A session of your interviews was cancelled, so they cannot be moved together here. "
            "Please contact the recruiter."
        )
    if not starts or starts[0] < link.window_start:
        raise Invalid("Pick one of the start times offered.", field="option")
    plan = current_plan(sealer, change.loop, utcnow())
    if plan is None:
        raise Invalid("There are no times left for these interviews.", field="option")
    if [s.start for s in change.shown.sessions] == list(starts):
        raise Invalid("Those are already your interviews' times. Pick others.", field="option")
    last = change.loop.sessions[-1].duration_minutes if change.loop.sessions else 0
    if starts[-1] + dt.timedelta(minutes=last) > link.window_end:
        raise Invalid("Pick one of the start times offered.", field="option")
    try:
        changes.move_loop(
            session,
            broker,
            cipher,
            sealer,
            actor_for(session, link),
            change.loop.uid,
            starts,
            jobs=jobs,
            notify=notify,
            plan=plan,
        )
    except Exception:
        session.rollback()
        raise
    _flag(session, change.loop)
    return change.loop


def cancel(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    *,
    ordinal: int | None = None,
    jobs: JobQueue,
    notify: Notify | None = None,
    now: dt.datetime | None = None,
    change: Change | None = None,
) -> InterviewLoop:
    """Cancel the whole loop (``ordinal`` None) or one session of it."""
    change = change or allowed_change(session, broker, cipher, sealer, token, "cancel", now)
    actor = actor_for(session, change.link)
    try:
        if ordinal is None:
            changes.cancel_loop(
                session, broker, cipher, sealer, actor, change.loop.uid, jobs=jobs, notify=notify
            )
        else:
            changes.cancel_session(
                session,
                broker,
                cipher,
                sealer,
                actor,
                change.loop.uid,
                ordinal,
                jobs=jobs,
                notify=notify,
            )
    except Exception:
        session.rollback()
        raise
    _flag(session, change.loop)
    return change.loop


def _flag(session: Session, loop: InterviewLoop) -> None:
    """The recruiter sees that the candidate changed the loop's sessions."""
    ids = [s.interview_id for s in loop.sessions if s.interview_id is not None]
    for interview in session.scalars(select(Interview).where(Interview.id.in_(ids or [-1]))):
        interview.needs_notice = True
    session.commit()


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
        return availability.fits_days(plan, starts, ends)  # type: ignore[arg-type]

    return tuple(s for s in free if s.start != this.start and s.end <= upper and fits(s))


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
    this, _prev, _nxt = _neighbours(change, ordinal)
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
    except Exception:
        session.rollback()
        raise
    _flag(session, change.loop)
    return change.loop
