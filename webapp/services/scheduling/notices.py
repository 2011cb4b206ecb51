"""Telling the candidate by email that their interview moved or was cancelled.

Rendezvous stores no candidate address in readable form, so the address is found when the
change is made: for an interview booked through a self-scheduling link, from the link's
encrypted details (``link_details``); otherwise from the interview's calendar event as the
aggregator holds it just before the change (read on demand, never stored), where the candidate
is the one guest who is neither someone of the organisation nor one of its rooms. When that is
not clear (no such guest, or several), no email is guessed: the skip is audited.

The email itself is sent by the ``mail.send_message`` job (``webapp.mail.queue``), sealed, with
an .ics carrying the interview's UID and a higher SEQUENCE (a moved time) or METHOD:CANCEL; the
job audits it with the recipient hashed. Nothing here logs the address.

``notify_candidate`` is the one entry point; ``cancel_interview`` and ``reschedule_interview``
call it when given a ``Notify``, and the candidate's own reschedule and cancel can call it too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import ManagedEvent
from models import Interview, ProfileLink, SchedulingLink, User
from webapp import mail
from webapp.mail import ics, notices
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue
from webapp.services.audit import record
from webapp.services.availability import roster
from webapp.services.link_details import email_hash, open_details
from webapp.services.scheduling.reading import read_events

Change = Literal["rescheduled", "cancelled"]


@dataclass(frozen=True)
class Notify:
    """What telling the candidate needs, given by the caller (a view, the API, a job): the
    shared objects, the domain of the interview's calendar UID (the public host, as in the
    booking confirmation's .ics) and the address notices come from (the ORGANIZER of a
    cancellation file)."""

    broker: CalendarBroker | None
    cipher: TokenCipher
    sealer: Sealer
    ics_domain: str
    sender: str


@dataclass(frozen=True)
class Candidate:
    email: str
    name: str


def current_event(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, interview: Interview
) -> ManagedEvent | None:
    """The interview's event in the host's calendar as it is now (None if it cannot be read or
    is gone). Read it before a change, while it still says who is invited and when."""
    if broker is None or not interview.events:
        return None
    host_event = interview.events[0]
    found, _problems = read_events(
        session,
        broker,
        cipher,
        [host_event],
        {host_event.profile_link_id: interview.host_link},
        localized=True,
    )
    event = found.get(host_event.event_id)
    return None if event is None or event.deleted else event


def _in_organisation(session: Session, organisation_id: int, emails: set[str]) -> set[str]:
    """Which of ``emails`` belong to the organisation: its people, linked accounts and rooms."""
    if not emails:
        return set()
    ours: set[str] = set(
        session.scalars(
            select(func.lower(User.email)).where(
                User.organisation_id == organisation_id, func.lower(User.email).in_(emails)
            )
        )
    )
    linked: str | None
    for linked in session.scalars(
        select(func.lower(ProfileLink.account_email)).where(
            ProfileLink.organisation_id == organisation_id,
            func.lower(ProfileLink.account_email).in_(emails),
        )
    ):
        if linked:
            ours.add(linked)
    ours |= {r.email.lower() for r in roster.room_choices(session, organisation_id)}
    return ours & emails


def candidate_of(
    session: Session, sealer: Sealer, interview: Interview, event: ManagedEvent | None
) -> Candidate | None:
    """The candidate of the interview: from its self-scheduling link's details, else the one
    guest of ``event`` outside the organisation; None when there is no such single guest."""
    if interview.scheduling_link_id is not None:
        link = session.get(SchedulingLink, interview.scheduling_link_id)
        details = open_details(sealer, link) if link is not None else None
        if details is not None:
            return Candidate(details.email, details.name)
    if event is None:
        return None
    guests = {a.email.strip().lower(): a for a in event.attendees if a.email and "@" in a.email}
    outside = set(guests) - _in_organisation(session, interview.organisation_id, set(guests))
    if len(outside) != 1:
        return None
    guest = guests[outside.pop()]
    return Candidate(guest.email.strip(), (guest.display_name or "").strip() or "there")


def _moment(value) -> dt.datetime | None:
    return value if isinstance(value, dt.datetime) else None


def notify_candidate(
    session: Session,
    notify: Notify,
    actor: Actor | None,
    interview: Interview,
    change: Change,
    *,
    event: ManagedEvent | None,
    jobs: JobQueue,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    candidate: Candidate | None = None,
) -> bool:
    """Queue the email telling the candidate that ``interview`` was ``change``d.

    ``event`` is the interview's event as read *before* the change (``current_event``): its
    title, zone, time and guests. ``start``/``end`` are the new time of a reschedule.
    ``candidate`` may be given by a caller that knows them (the candidate's own pages); otherwise
    ``candidate_of`` finds them. Returns whether an email was queued; a skip is audited with its
    reason (never the address). Commits."""
    title = (event.summary if event is not None else None) or None
    when_start = _moment(event.start) if event is not None else None
    when_end = _moment(event.end) if event is not None else None
    tzid = (event.tzid if event is not None else None) or "Etc/UTC"
    if interview.scheduling_link_id is not None and title is None:
        link = session.get(SchedulingLink, interview.scheduling_link_id)
        details = open_details(notify.sealer, link) if link is not None else None
        title = details.title if details is not None else None
    who = candidate or candidate_of(session, notify.sealer, interview, event)
    reason = None
    if who is None:
        reason = "no_candidate" if event is not None else "calendar_unreadable"
    elif title is None:
        reason = "calendar_unreadable"
    elif change == "rescheduled" and (start is None or end is None):
        reason = "no_new_time"
    elif change == "cancelled" and (when_start is None or when_end is None):
        reason = "calendar_unreadable"
    if reason is not None or who is None or title is None:
        record(
            session,
            actor,
            "interview.candidate_notice_skipped",
            outcome="failure",
            organisation_id=interview.organisation_id,
            target_type="interview",
            target_id=interview.id,
            detail={"change": change, "reason": reason},
        )
        session.commit()
        return False
    uid = ics.uid_of(interview.uid, notify.ics_domain)
    message: mail.Mail
    if change == "rescheduled":
        assert start is not None and end is not None
        message = notices.interview_rescheduled(
            to=who.email,
            candidate_name=who.name,
            title=title,
            old_start=when_start,
            old_end=when_end,
            start=start,
            end=end,
            tzid=tzid,
            ics_uid=uid,
            sequence=ics.sequence_now(),
            organisation_id=interview.organisation_id,
            interview_id=interview.id,
        )
    else:
        assert when_start is not None and when_end is not None
        message = notices.interview_cancelled(
            to=who.email,
            candidate_name=who.name,
            title=title,
            start=when_start,
            end=when_end,
            tzid=tzid,
            ics_uid=uid,
            sequence=ics.sequence_now(),
            organizer=_address(notify.sender),
            organisation_id=interview.organisation_id,
            interview_id=interview.id,
        )
    record(
        session,
        actor,
        "interview.candidate_notice_queued",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
        detail={"change": change, "recipient_hash": email_hash(who.email)},
    )
    session.commit()
    mail.queue(jobs, notify.sealer, message)
    return True


def _address(sender: str) -> str:
    """The bare address of a From value such as ``Rendezvous <no-reply@example.com>``."""
    from email.utils import parseaddr

    return parseaddr(sender)[1] or sender
