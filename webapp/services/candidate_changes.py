"""The candidate's own changes to what they booked through a self-scheduling link: reschedule or
cancel, when the recruiter allowed it on the link, up to the link's cut-off before the interview.

The link's token is the key (sealed; only its SHA-256 is stored): it opens the one interview
booked through that link and nothing else. A move goes through the scheduling services' one move
path (``rescheduling.move_interview``): the panel's availability is re-checked at the aggregator,
the new time is claimed for every panel member and the room in the transaction that commits it
(one booking per slot, across processes), and the same event (same ``event_id``) moves with its
notes kept. A cancellation goes through ``booking.cancel_found``, like the recruiter's. Both
are audited with the candidate as the actor, and the recruiter sees the interview flagged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import Interview, InterviewStatus, Role, SchedulingLink, User, utcnow
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, windows
from webapp.services.candidate_booking import (
    Booked,
    Opened,
    _genuine,
    _members,
    _query,
    booked,
    opened_from,
)
from webapp.services.errors import ChangeRefused, Invalid, SlotTaken
from webapp.services.scheduling import booking, notices, rescheduling


@dataclass(frozen=True)
class Change:
    """What the candidate's link may do now about the interview it booked."""

    opened: Opened
    shown: Booked
    #: Why no change is possible, as a sentence for the candidate (None: they may change it).
    refused: str | None
    #: The last moment a change is accepted (None when the time is not known or not allowed).
    deadline: dt.datetime | None
    #: Why not, for the audit trail ("not allowed on the link", "after the cut-off", ...).
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


def _interview(session: Session, link: SchedulingLink) -> Interview | None:
    return session.scalar(
        select(Interview).where(
            Interview.scheduling_link_id == link.id,
            Interview.organisation_id == link.organisation_id,
        )
    )


def _verdict(
    link: SchedulingLink, interview: Interview | None, shown: Booked, now: dt.datetime
) -> tuple[str | None, str | None, dt.datetime | None]:
    """(reason code, sentence, deadline): no code when the candidate may change it now."""
    if not link.candidate_may_change:
        return (
            "not allowed on the link",
            "Changes through this link are not possible. To move or cancel the interview, "
            "please contact the recruiter.",
            None,
        )
    if interview is None or shown.state == "cancelled" or not interview.status.live:
        return (
            "not live",
            "This interview was cancelled, so there is nothing left to change.",
            None,
        )
    if shown.start is None:
        return (
            "time unknown",
            "The interview's time could not be read from the calendar just now. "
            "Please try again in a few minutes.",
            None,
        )
    deadline = shown.start - dt.timedelta(hours=link.change_cutoff_hours)
    if now > deadline:
        return (
            "after the cut-off",
            "The interview can no longer be moved or cancelled here: changes were possible "
            f"until {link.change_cutoff_hours} hours before it. Please contact the recruiter.",
            deadline,
        )
    if interview.status is InterviewStatus.PENDING:
        return (
            "not settled",
            "The interview is still being written to the calendar. Please try again in a minute.",
            deadline,
        )
    return None, None, deadline


def change_for(
    session: Session,
    sealer: Sealer,
    token: str,
    shown: Booked,
    *,
    now: dt.datetime | None = None,
) -> Change:
    """``change_of`` for a booking already read (``shown``), without reading the calendar again."""
    link, payload = _genuine(session, sealer, token)
    reason, refused, deadline = _verdict(link, _interview(session, link), shown, now or utcnow())
    return Change(opened_from(link, payload), shown, refused, deadline, reason)


def change_of(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    *,
    now: dt.datetime | None = None,
) -> Change:
    """What the link booked and whether the candidate may change it now. Raises LinkUnusable
    unless the token is genuine and was used to book."""
    shown = booked(session, broker, cipher, sealer, token)
    return change_for(session, sealer, token, shown, now=now)


def _candidate(link: SchedulingLink, session: Session) -> Actor:
    creator = session.get(User, link.created_by_id) if link.created_by_id else None
    return Actor(creator.id if creator else None, "candidate", link.organisation_id, Role.RECRUITER)


def _allowed(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    action: str,
    now: dt.datetime | None,
) -> tuple[Change, Interview]:
    """The change the token may make now, or ChangeRefused (audited, nothing changed)."""
    change = change_of(session, broker, cipher, sealer, token, now=now)
    link = change.opened.link
    interview = _interview(session, link)
    if change.refused is not None or interview is None:
        record(
            session,
            _candidate(link, session),
            "interview.candidate_reschedule"
            if action == "reschedule"
            else "interview.candidate_cancel",
            outcome="denied",
            target_type="interview" if interview else "scheduling_link",
            target_id=interview.id if interview else link.id,
            detail={"reason": change.reason or "not live"},
        )
        session.commit()
        raise ChangeRefused(change.refused or "There is nothing to change.")
    return change, interview


def slots(
    session: Session, broker: CalendarBroker, change: Change, tzid: str | None = None
) -> tuple[Slot, ...]:
    """The times the candidate may move to: the link's window (and the candidate's hours) from
    now on, where the whole panel is free, without the current time."""
    link = change.opened.link
    members = _members(session, link)
    start = max(link.window_start, windows.round_up(utcnow() + model.LEAD_TIME))
    if link.window_end <= start:
        return ()
    query = _query(link, members, tzid or change.opened.candidate_tzid)
    window = Period(start, link.window_end)
    found = free_slots.common_slots(
        broker, members, query, window, within=change.opened.within(window)
    )
    return tuple(
        s
        for s in free_slots.without_held(
            free_slots.held_for(session, members, window), found, members, query
        )
        if s.start != change.shown.start
    )


def reschedule(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    start: dt.datetime,
    *,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
    now: dt.datetime | None = None,
) -> tuple[Interview, dt.datetime, dt.datetime]:
    """Move the candidate's interview to ``start`` (one of the times ``slots`` offers); returns
    it with its new start and end. With ``notify``, the candidate is emailed the new time, as
    after any move."""
    change, interview = _allowed(session, broker, cipher, sealer, token, "reschedule", now)
    link = change.opened.link
    end = start + dt.timedelta(minutes=link.duration_minutes)
    moment = now or utcnow()
    within = change.opened.within(Period(start, end)) if start.tzinfo else None
    if (
        start.tzinfo is None
        or start <= moment
        or not (link.window_start <= start and end <= link.window_end)
        or (within is not None and not any(p.start <= start and end <= p.end for p in within))
    ):
        raise Invalid("Pick one of the times offered.", field="slot")
    if start == change.shown.start:
        raise Invalid("That is already the interview's time. Pick another one.", field="slot")
    members = _members(session, link)
    query = _query(link, members, change.opened.candidate_tzid)
    interview.needs_notice = True  # the recruiter sees the candidate moved it
    try:
        moved, _payload = rescheduling.move_interview(
            session,
            broker,
            cipher,
            sealer,
            _candidate(link, session),
            interview,
            start,
            query,
            duration=link.duration_minutes,
            jobs=jobs,
            notify=notify,
        )
    except SlotTaken:
        session.rollback()
        raise SlotTaken("That time was just taken. Please pick another one.") from None
    except Invalid:
        session.rollback()
        raise
    return moved, start, end


def cancel(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    *,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
    now: dt.datetime | None = None,
) -> Interview:
    """Cancel the candidate's interview (its events are deleted by the same job as any
    cancellation's). With ``notify``, the candidate is emailed, as after any cancellation."""
    change, interview = _allowed(session, broker, cipher, sealer, token, "cancel", now)
    try:
        cancelled = booking.cancel_found(
            session, _candidate(change.opened.link, session), interview, jobs=jobs, notify=notify
        )
    except Invalid:
        session.rollback()
        raise
    cancelled.needs_notice = True  # the recruiter sees the candidate cancelled it
    session.commit()
    return cancelled
