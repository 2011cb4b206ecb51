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
from models import Interview, InterviewLoop, LoopState, SchedulingLink, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import JobQueue
from webapp.services.audit import record
from webapp.services.candidate_booking import Opened, opened_from
from webapp.services.errors import ChangeRefused, Invalid
from webapp.services.loops import availability, changes
from webapp.services.loops.candidate import (
    ShownLoop,
    actor_for,
    current_plan,
    fits,
    in_hours,
    shown,
    used_loop,
)
from webapp.services.loops.reading import view_loop
from webapp.services.pools.limits import OverLimit
from webapp.services.scheduling.notices import Notify


@dataclass(frozen=True)
class Change:
    """What the candidate may do now about the loop their link booked."""

    link: SchedulingLink
    loop: InterviewLoop
    shown: ShownLoop
    #: The link with what its token carries (the candidate's zone and hours).
    opened: Opened
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
    link, payload, loop = used_loop(session, sealer, token)
    reason, refused, deadline = _verdict(link, loop, shown, now or utcnow())
    return Change(link, loop, shown, opened_from(link, payload), refused, deadline, reason)


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
        o for o in found.options if fits(change.opened, o) and [s.start for s in o.stops] != now
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
    durations = [s.duration_minutes for s in change.loop.sessions]
    if (
        starts[-1] + dt.timedelta(minutes=last) > link.window_end
        or len(starts) != len(durations)
        or not in_hours(
            change.opened,
            [(s, s + dt.timedelta(minutes=d)) for s, d in zip(starts, durations, strict=True)],
        )
    ):
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
    except OverLimit:  # its message names an interviewer and their load: not for the candidate
        session.rollback()
        raise Invalid("Those times are no longer available. Pick others.", field="option") from None
    except Exception:
        session.rollback()
        raise
    flag(session, change.loop)
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
    flag(session, change.loop)
    return change.loop


def flag(session: Session, loop: InterviewLoop) -> None:
    """The recruiter sees that the candidate changed the loop's sessions."""
    ids = [s.interview_id for s in loop.sessions if s.interview_id is not None]
    for interview in session.scalars(select(Interview).where(Interview.id.in_(ids or [-1]))):
        interview.needs_notice = True
    session.commit()
