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
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import Interview, InterviewLoop, LoopState, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue
from webapp.services.availability import busy, free_slots, model, windows
from webapp.services.errors import AggregatorTrouble, Invalid
from webapp.services.loops import changes, session_times
from webapp.services.loops.compose import plan_of
from webapp.services.loops.ends import loop_of
from webapp.services.loops.links import plan_from
from webapp.services.loops.reading import read_booked
from webapp.services.scheduling import booking, rescheduling
from webapp.services.scheduling.access import interview_for
from webapp.services.scheduling.notices import Notify

#: Said when a session of a loop that is no longer booked is asked to change here.
NOT_BOOKED = "This interview is a session of a loop that is not booked any more; open the loop."
#: Said when the loop's planned days are behind us.
PLAN_OVER = "The days this loop was planned on are over, so its sessions cannot move."


def loop_session(session: Session, interview: Interview) -> tuple[InterviewLoop, int] | None:
    """The loop ``interview`` holds a session of, with the session's position."""
    found = loop_of(session, interview.id)
    return (found[0], found[1].ordinal) if found is not None else None


@dataclass(frozen=True)
class SessionChoice:
    """The interview page's new times for a loop's session: the grid (only times the loop
    accepts) and, when it holds none, why."""

    grid: model.Grid
    reason: str | None


def reschedule_grid(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    interview: Interview,
    tzid: str,
) -> SessionChoice:
    """The times the session ``interview`` holds may move to, as the loop's rules accept them
    (``loops.session_times``: one availability call over the window its neighbours leave), laid
    out as the reschedule page's grid over the days of that window, with the people's busy
    times (free/busy only)."""
    found = loop_session(session, interview)
    if found is None:
        raise Invalid("This interview is not a session of a loop.")
    loop, ordinal = found
    if loop.state is not LoopState.BOOKED:
        raise Invalid(NOT_BOOKED)
    plan = plan_from(plan_of(sealer, loop), utcnow())
    if plan is None:
        raise Invalid(PLAN_OVER, field="slot")
    booked = read_booked(session, broker, cipher, sealer, loop)
    times = session_times.session_times(session, broker, actor, loop, booked, ordinal, plan)
    this = next(b for b in booked if b.ordinal == ordinal)
    tz = model.zone(tzid)
    first, last = (
        (times.window.start, times.window.end - dt.timedelta(microseconds=1))
        if times.window is not None
        else (this.start, this.start)
    )
    assert first is not None and last is not None
    day, end_day = first.astimezone(tz).date(), last.astimezone(tz).date()
    days: list[dt.date] = []
    while day <= end_day and len(days) < model.MAX_DAYS:
        days.append(day)
        day += dt.timedelta(days=1)
    members = list(times.session.members)
    query = model.Query(
        panel_link_ids=tuple(m.link.id for m in members),
        duration=times.duration,
        start_date=days[0],
        days=len(days),
        buffer_before=times.session.plan.buffer_before,
        buffer_after=times.session.plan.buffer_after,
        tzid=tzid,
        room=times.session.room.email if times.session.room else None,
    )
    reading_busy = busy.PendingBusy(session, broker, cipher, members, days, tzid)
    held = free_slots.held_for(
        session, members, windows.window_for(query)[0], ignore_interview=interview.id
    )
    people_busy, problems = free_slots.held_busy(reading_busy, members, held)
    grid = model.Grid(
        query,
        members,
        times.window or windows.window_for(query)[0],
        times.slots,
        people_busy,
        problems,
        days,
        times.session.room,
    )
    return SessionChoice(grid, times.reason)


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
        raise Invalid(PLAN_OVER, field="slot")
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
