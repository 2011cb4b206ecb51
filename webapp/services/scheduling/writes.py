"""The calendar write and delete jobs: idempotent, raising WriteFailed so the queue retries.

The write job upserts by our fixed ``event_id`` (a retry never makes a second event) and is
retried until confirmed; a delete counts an event already gone at the aggregator as deleted.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import EventWrite
from models import (
    EventStatus,
    Interview,
    InterviewStatus,
    LinkStatus,
    ProfileLink,
    SchedulingPreference,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services.audit import record
from webapp.services.credentials import call_broker
from webapp.services.errors import ServiceError, WriteFailed
from webapp.services.scheduling.access import links_by_id
from webapp.services.scheduling.content import MAX_WRITE_PAYLOAD, Content

log = logging.getLogger("webapp.services.scheduling")


def _video_refused(session: Session, interview: Interview, link: ProfileLink) -> None:
    """The aggregator refused the host's chosen video (an account it does not know, such as a
    Webex profile from before): interviews use the default from now on, and the person's
    preferences page says why until they choose again."""
    pref = session.scalar(
        select(SchedulingPreference).where(
            SchedulingPreference.organisation_id == link.organisation_id,
            SchedulingPreference.user_id == link.user_id,
        )
    )
    if pref is not None and pref.video_profile not in (None, "default", "none"):
        pref.video_profile = None
        pref.video_fallback_at = utcnow()
    record(
        session,
        None,
        "interview.video_fallback",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
        detail={"user_id": link.user_id},
    )


def run_write(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    interview_id: int,
    sealed: str,
) -> str:
    """Upsert every pending event of the interview under its fixed event_id."""
    interview = session.get(Interview, interview_id)
    if interview is None:
        return "gone"
    content = sealer.open_json(f"write:{interview.uid}", sealed, max_length=MAX_WRITE_PAYLOAD)
    if content is None:
        log.error("interview %s: write payload could not be opened", interview.id)
        return "unreadable"
    if interview.status not in (InterviewStatus.PENDING, InterviewStatus.SCHEDULED):
        return "skipped"  # cancelled meanwhile: nothing may be (re)written
    data = Content.from_dict(content)
    links = links_by_id(session, (e.profile_link_id for e in interview.events))
    failed = None
    for ev in interview.events:
        if ev.status is not EventStatus.PENDING:
            continue
        link = links[ev.profile_link_id]
        event = data.event(ev.event_id, with_attendees=ev.position == 0)
        try:
            fell_back = call_broker(
                session,
                broker,
                cipher,
                link,
                partial(_upsert, broker, calendar_id=ev.calendar_id, event=event),
            )
        except ServiceError as exc:
            failed = exc
            continue
        if fell_back:
            _video_refused(session, interview, link)
        session.refresh(interview)
        if interview.status not in (InterviewStatus.PENDING, InterviewStatus.SCHEDULED):
            # Cancelled while we wrote: the cancel job or reconciliation removes the event.
            session.commit()
            return "cancelled meanwhile"
        ev.status = EventStatus.CONFIRMED
        session.commit()
    if failed is not None:
        raise WriteFailed(
            f"interview {interview.id}: calendar write not confirmed "
            f"({type(failed).__name__}); will retry"
        )
    if interview.status is InterviewStatus.PENDING:
        interview.status = InterviewStatus.SCHEDULED
        record(
            session,
            None,
            "interview.written",
            organisation_id=interview.organisation_id,
            target_type="interview",
            target_id=interview.id,
        )
    session.commit()
    return "written"


def _upsert(broker: CalendarBroker, creds, calendar_id: str, event: EventWrite, on_refresh) -> bool:
    """Upsert the event; if the aggregator refuses its chosen conferencing, write it again with
    the default conferencing (the interview still gets a link). True if it fell back."""
    try:
        broker.upsert_event(creds, calendar_id, event, on_refresh=on_refresh)
        return False
    except broker_errors.Invalid as exc:
        if "conferencing" not in exc.fields or event.conferencing_profile_id in (None, "default"):
            raise
    broker.upsert_event(
        creds,
        calendar_id,
        replace(
            event,
            conferencing_profile_id="default",
            conferencing_description=None,
            conferencing_join_url=None,
        ),
        on_refresh=on_refresh,
    )
    return True


def run_delete(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, interview_id: int
) -> str:
    """Delete every event of a cancelled interview (by our event_id; gone already is fine)."""
    interview = session.get(Interview, interview_id)
    if interview is None:
        return "gone"
    links = links_by_id(session, (e.profile_link_id for e in interview.events))
    failed = None
    for ev in interview.events:
        if ev.status is not EventStatus.DELETING:
            continue
        link = links[ev.profile_link_id]
        try:
            delete_event(session, broker, cipher, link, ev)
        except ServiceError as exc:
            failed = exc
            continue
        ev.status = EventStatus.DELETED
        session.commit()
    if failed is not None:
        raise WriteFailed(
            f"interview {interview.id}: calendar delete not confirmed "
            f"({type(failed).__name__}); will retry"
        )
    if interview.status is InterviewStatus.CANCELLING:
        interview.status = InterviewStatus.CANCELLED
        session.commit()
    return "deleted"


class EventRef(Protocol):
    """Which event to delete: one of ours (a CreatedEvent) or an orphan found at the aggregator."""

    @property
    def calendar_id(self) -> str: ...

    @property
    def event_id(self) -> str: ...


def delete_event(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink, ev: EventRef
) -> None:
    if link.status is LinkStatus.DISCONNECTED or not link.has_tokens:
        return  # nothing we can reach any more; the calendar owner keeps their copy

    def delete(creds, on_refresh):
        try:
            broker.delete_event(creds, ev.calendar_id, ev.event_id, on_refresh=on_refresh)
        except broker_errors.NotFound:
            pass  # already gone: that is what we wanted

    call_broker(session, broker, cipher, link, delete)
