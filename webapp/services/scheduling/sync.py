"""Changes flowing back: what the aggregator reports changed, and the periodic reconciliation
that compares the ids we hold with each link's managed events and repairs drift both ways."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    LinkStatus,
    ProfileLink,
    utcnow,
)
from webapp.security import TokenCipher
from webapp.services import claims, pacing
from webapp.services.audit import record
from webapp.services.credentials import call_broker
from webapp.services.errors import NoBudgetNow, ServiceError, WriteFailed
from webapp.services.loops import ends
from webapp.services.scheduling.content import EVENT_PREFIX
from webapp.services.scheduling.writes import delete_event

#: A write still unconfirmed after this long (its job gave up) is reconciled as failed.
PENDING_GIVE_UP = dt.timedelta(minutes=30)


def _mark_cancelled_in_calendar(session: Session, interview: Interview) -> None:
    interview.status = InterviewStatus.CANCELLED_IN_CALENDAR
    interview.needs_notice = True
    claims.release(session, interview.id)
    record(
        session,
        None,
        "interview.cancelled_in_calendar",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
    )
    ends.end_if_done(session, interview)


def apply_changes(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link_id: int,
    changes_since: dt.datetime | None,
) -> dict[str, int]:
    """Read our events changed since ``changes_since`` for one link and update their status."""
    link = session.get(ProfileLink, link_id)
    counts = {"seen": 0, "cancelled_in_calendar": 0, "confirmed": 0}
    if link is None or link.status is not LinkStatus.ACTIVE:
        return counts
    try:
        changed = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.managed_events(
                creds, last_modified=changes_since, include_deleted=True, on_refresh=on_refresh
            ),
        )
    except ServiceError as exc:
        raise WriteFailed(
            f"link {link_id}: changes could not be read ({type(exc).__name__})"
        ) from None
    ids = {e.event_id: e for e in changed if e.event_id and e.event_id.startswith(EVENT_PREFIX)}
    if not ids:
        return counts
    rows = list(
        session.scalars(
            select(CreatedEvent).where(
                CreatedEvent.profile_link_id == link_id, CreatedEvent.event_id.in_(ids)
            )
        )
    )
    for row in rows:
        event = ids[row.event_id]
        counts["seen"] += 1
        interview = row.interview
        if event.deleted:
            if (
                row.status is EventStatus.CONFIRMED
                and interview.status is InterviewStatus.SCHEDULED
            ):
                row.status = EventStatus.DELETED
                _mark_cancelled_in_calendar(session, interview)
                counts["cancelled_in_calendar"] += 1
        elif row.status is EventStatus.PENDING and interview.status is InterviewStatus.PENDING:
            pass  # the write job confirms it
    session.commit()
    return counts


#: A reconciliation pass reads every interviewing calendar once in this period, spread evenly.
RECONCILE_PERIOD = dt.timedelta(minutes=15)
RECONCILE_TASK = "scheduling.reconcile_events"


def interviewing_links():
    """Links we ever wrote an event to: our events carry ids from CreatedEvent rows, committed
    before any write, so a calendar without such rows cannot hold one of ours. A domain of
    thousands of linked mailboxes costs one read per interviewing calendar, not per mailbox."""
    return select(ProfileLink.id).where(
        ProfileLink.status == LinkStatus.ACTIVE,
        ProfileLink.id.in_(select(CreatedEvent.profile_link_id).distinct()),
    )


def reconcile(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, now: dt.datetime | None = None
) -> dict[str, int]:
    """One whole reconciliation pass at once (tests, and the pass's building blocks): compare
    the ids we hold with each interviewing link's managed events and repair drift both ways.
    The periodic job paces the same work over its period instead (:func:`reconcile_tick`)."""
    now = now or utcnow()
    counts: defaultdict[str, int] = defaultdict(int)
    for link_id in session.scalars(interviewing_links().order_by(ProfileLink.id)).all():
        for key, value in reconcile_link(session, broker, cipher, link_id, now=now).items():
            counts[key] += value
    settle_interviews(session)
    return dict(counts)


def reconcile_tick(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    store: pacing.PassStore,
    *,
    now: dt.datetime | None = None,
    clock=utcnow,
) -> pacing.TickReport:
    """The part of the current reconciliation pass due now (webapp.services.pacing): links in
    id order, spread over RECONCILE_PERIOD, deferring when the budget left has no room."""
    spec = pacing.PacedPass(
        name=RECONCILE_TASK,
        period=RECONCILE_PERIOD,
        count=lambda s: (
            s.scalar(select(func.count()).select_from(interviewing_links().subquery())) or 0
        ),
        after=lambda s, cursor, n: list(
            s.scalars(
                interviewing_links()
                .where(ProfileLink.id > (cursor if cursor is not None else 0))
                .order_by(ProfileLink.id)
                .limit(n)
            )
        ),
        do=lambda s, link_id: reconcile_link(s, broker, cipher, link_id, now=clock()),
        after_tick=settle_interviews,
    )
    return pacing.tick(session, store, spec, now=now, clock=clock)


def reconcile_link(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link_id: int,
    *,
    now: dt.datetime,
) -> dict[str, int]:
    """Compare one link's managed events with the ids we hold and repair drift both ways.
    Raises NoBudgetNow (nothing changed) when the call could not get aggregator budget."""
    counts: defaultdict[str, int] = defaultdict(int)
    link = session.get(ProfileLink, link_id)
    if link is None or link.status is not LinkStatus.ACTIVE:
        return {}
    try:
        events = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.managed_events(
                creds, include_deleted=True, on_refresh=on_refresh
            ),
        )
    except NoBudgetNow:
        raise
    except ServiceError:
        counts["links_unreachable"] += 1
        return dict(counts)
    held = {
        r.event_id: r
        for r in session.scalars(
            select(CreatedEvent).where(CreatedEvent.profile_link_id == link.id)
        )
    }
    present = {e.event_id: e for e in events if e.event_id and not e.deleted}
    # Theirs, not ours: events carrying our prefix that no live interview holds.
    for event_id, event in present.items():
        if not event_id.startswith(EVENT_PREFIX):
            continue
        row = held.get(event_id)
        if row is None or row.interview.status not in (
            InterviewStatus.PENDING,
            InterviewStatus.SCHEDULED,
        ):
            try:
                delete_event(session, broker, cipher, link, _Orphan(event.calendar_id, event_id))
                counts["orphans_deleted"] += 1
                if row is not None:
                    row.status = EventStatus.DELETED
            except NoBudgetNow:
                raise  # the pass gives the link back and reads it again next tick
            except ServiceError:
                counts["orphans_left"] += 1
    # Ours, not theirs.
    for event_id, row in held.items():
        interview = row.interview
        there = event_id in present
        if row.status is EventStatus.CONFIRMED and not there:
            row.status = EventStatus.DELETED
            if interview.status is InterviewStatus.SCHEDULED:
                _mark_cancelled_in_calendar(session, interview)
                counts["cancelled_in_calendar"] += 1
        elif (
            row.status is EventStatus.PENDING
            and there
            and interview.status is InterviewStatus.SCHEDULED
        ):
            row.status = EventStatus.CONFIRMED  # a reschedule whose job never confirmed
            counts["confirmed"] += 1
        elif (
            row.status is EventStatus.PENDING
            and not there
            and interview.status is InterviewStatus.PENDING
            and now - interview.updated_at > PENDING_GIVE_UP
        ):
            row.status = EventStatus.DELETED
            interview.status = InterviewStatus.FAILED
            interview.needs_notice = True
            claims.release(session, interview.id)
            record(
                session,
                None,
                "interview.write_failed",
                organisation_id=interview.organisation_id,
                target_type="interview",
                target_id=interview.id,
            )
            counts["failed"] += 1
        elif (
            row.status is EventStatus.PENDING
            and there
            and interview.status is InterviewStatus.PENDING
            and now - interview.updated_at > PENDING_GIVE_UP
        ):
            row.status = EventStatus.CONFIRMED
            counts["confirmed"] += 1
        elif row.status is EventStatus.DELETING and not there:
            row.status = EventStatus.DELETED
            counts["deleted"] += 1
    session.commit()
    return dict(counts)


def settle_interviews(session: Session) -> None:
    """Interviews whose events are all settled move to their final status (no aggregator call)."""
    for interview in session.scalars(
        select(Interview).where(
            Interview.status.in_((InterviewStatus.PENDING, InterviewStatus.CANCELLING))
        )
    ):
        states = {e.status for e in interview.events}
        if interview.status is InterviewStatus.PENDING and states == {EventStatus.CONFIRMED}:
            interview.status = InterviewStatus.SCHEDULED
        elif interview.status is InterviewStatus.CANCELLING and states <= {EventStatus.DELETED}:
            interview.status = InterviewStatus.CANCELLED
    session.commit()


@dataclass(frozen=True)
class _Orphan:
    calendar_id: str
    event_id: str
