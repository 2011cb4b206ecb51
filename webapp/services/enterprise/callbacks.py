"""The aggregator's callback for one mailbox or room request: checked against the request's
one-time state, its code redeemed once, the mailbox linked to its person (or the room kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.notifications import SACallback
from broker.port import CalendarBroker
from broker.ratelimit import BACKGROUND
from broker.ratelimit import lane as rate_lane
from broker.ratelimit import tenant as rate_tenant
from broker.types import Credentials
from models import (
    LinkMode,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    ServiceAccountLink,
    utcnow,
)
from webapp import security
from webapp.security import TokenCipher
from webapp.services import JobQueue, calendars, connect, credentials, revocations
from webapp.services.audit import record
from webapp.services.enterprise.mailboxes import ERROR_HINTS
from webapp.services.errors import ServiceError


@dataclass(frozen=True)
class CallbackOutcome:
    #: linked, failed, ignored, replayed, forged, unknown or retry (aggregator should resend)
    result: str
    profile_link_id: int | None = None


def handle_callback(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    request_id: int,
    callback: SACallback,
    *,
    signed: bool = True,
    jobs: JobQueue,
) -> CallbackOutcome:
    """Apply a callback for one mailbox request (idempotent). A person's mailbox newly linked
    gets its primary calendar chosen for interviews by the domain's
    ``enterprise.choose_calendars`` job, queued unless one is waiting already.
    The aggregator calls made here (the code's redemption) are the bulk link's: they go in the
    background rate-limit lane, in the request's organisation's share, like its batches.

    The request comes from the sealed reference in the callback URL; the body must carry that
    request's unused one-time state. ``signed`` says whether a (verified) signature came with
    it: no source confirms this callback is signed, so an unsigned one is accepted on the
    reference and state alone, audited (``callback.unsigned``) and counted on the domain."""
    row = session.get(MailboxRequest, request_id)
    if row is None:
        return CallbackOutcome("unknown")
    label: dict[str, Any] = {
        "organisation_id": row.organisation_id,
        "target_type": "mailbox_request",
        "target_id": row.id,
        "target_label": row.email,
    }
    digest = security.token_hash(callback.state) if callback.state else None
    if not digest or not row.state_hash or not security.same_token(row.state_hash, digest):
        if signed:  # an unsigned forgery is audited by the caller, once a minute per address
            record(
                session,
                None,
                "callback.forged",
                outcome="denied",
                detail={"reason": "state does not match the request"},
                **label,
            )
            session.commit()
        return CallbackOutcome("forged")
    used = session.execute(
        update(MailboxRequest)
        .where(
            MailboxRequest.id == row.id,
            MailboxRequest.state_hash == digest,
            MailboxRequest.state_used_at.is_(None),
        )
        .values(state_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()  # used before any code is redeemed: a replay can never redeem twice
    if not cast(CursorResult, used).rowcount:
        record(session, None, "callback.replayed", outcome="denied", **label)
        session.commit()
        return CallbackOutcome("replayed")
    if not signed:
        session.execute(
            update(ServiceAccountLink)
            .where(ServiceAccountLink.id == row.service_account_link_id)
            .values(unsigned_callbacks=ServiceAccountLink.unsigned_callbacks + 1)
            .execution_options(synchronize_session=False)
        )
        record(
            session,
            None,
            "callback.unsigned",
            detail={"accepted_on": "sealed reference and one-time state"},
            **label,
        )
        session.commit()
    session.refresh(row)
    link = row.service_account
    if row.status is not MailboxStatus.PENDING or link.status is LinkStatus.DISCONNECTED:
        return CallbackOutcome("ignored")  # unlinked or disconnected meanwhile: keep nothing
    if not callback.success:
        return _failed(
            session,
            row,
            callback.error_key or callback.error or "failed",
            callback.error_description,
            label,
        )
    try:
        # Bulk work, paced by the batches the sending job sent: it counts in the background
        # lane, against the organisation's fair share, never in the interactive reserve.
        with rate_lane(BACKGROUND), rate_tenant(row.organisation_id):
            creds = broker.exchange_code(callback.code or "", row.callback_url or "")
    except (broker_errors.RateLimited, broker_errors.Unavailable):
        # Give the state back: the aggregator resends the callback and we try again then.
        session.execute(
            update(MailboxRequest)
            .where(MailboxRequest.id == row.id)
            .values(state_used_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return CallbackOutcome("retry")
    except broker_errors.BrokerError:
        return _failed(session, row, "code_exchange_failed", None, label)
    if row.kind is MailboxKind.ROOM:
        return _room_linked(session, row, creds, label)
    with rate_lane(BACKGROUND), rate_tenant(row.organisation_id):
        profile_link = _enterprise_link(session, broker, cipher, row, link, creds)
        if profile_link is None:
            try:
                broker.revoke(creds.refresh_token)
            except broker_errors.BrokerError:
                pass
    if profile_link is None:
        return _failed(session, row, "linked_to_another_user", None, label)
    row.status = MailboxStatus.LINKED
    row.profile_link_id = profile_link.id
    row.error_key = row.error_text = None
    row.completed_at = utcnow()
    record(session, None, "ec.mailbox_linked", detail={"provider": profile_link.provider}, **label)
    session.commit()
    # One job per domain chooses the calendars of every mailbox linked so far, whatever the
    # burst of callbacks: the queue never holds thousands of these in front of other work.
    domain = row.service_account_link_id
    jobs.enqueue_once(choice_key(domain), "enterprise.choose_calendars", domain)
    return CallbackOutcome("linked", profile_link.id)


def choice_key(service_account_link_id: int) -> str:
    """The queue key under which a domain's calendar choices wait (one job at a time)."""
    return f"enterprise.choose_calendars:{service_account_link_id}"


def _room_linked(
    session: Session, row: MailboxRequest, creds: Credentials, label: dict
) -> CallbackOutcome:
    """Keep the room's sub for availability; its tokens are not kept (nothing reads the room's
    calendar with them: availability uses the application's key)."""
    sub = creds.sub or creds.account_id
    if not sub:
        return _failed(session, row, "no_room_id", None, label)
    row.resource_sub = sub[:64]
    revocations.cancel(session, row.resource_sub)
    row.status = MailboxStatus.LINKED
    row.error_key = row.error_text = None
    row.completed_at = utcnow()
    record(session, None, "ec.room_linked", **label)
    session.commit()
    return CallbackOutcome("linked")


def _failed(
    session: Session, row: MailboxRequest, key: str, text: str | None, label: dict
) -> CallbackOutcome:
    row.status = MailboxStatus.FAILED
    row.error_key = key[:64]
    row.error_text = (text or ERROR_HINTS.get(key) or "")[:500] or None
    row.completed_at = utcnow()
    record(
        session,
        None,
        "ec.mailbox_failed",
        outcome="failure",
        detail={"error_key": key[:64]},
        **label,
    )
    session.commit()
    return CallbackOutcome("failed")


def _enterprise_link(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    row: MailboxRequest,
    sa: ServiceAccountLink,
    creds: Credentials,
) -> ProfileLink | None:
    """Create or update the user's ProfileLink(mode=enterprise); None if the account is taken."""
    sub = creds.sub or creds.account_id
    if not sub or row.user_id is None:
        return None
    link = session.scalar(select(ProfileLink).where(ProfileLink.sub == sub))
    if link is not None and link.user_id != row.user_id:
        return None
    current = connect.link_of(session, row.user_id)
    if (
        link is None
        and current is not None
        and current.mode is LinkMode.BUSINESS
        and current.status is not LinkStatus.DISCONNECTED
    ):
        # The organisation's link supersedes the person's own one.
        if current.has_tokens:
            credentials.revoke_at_aggregator(broker, cipher, current, whole_account=True)
        credentials.forget_tokens(current)
        current.status = LinkStatus.DISCONNECTED
        record(
            session,
            None,
            "calendar.superseded",
            organisation_id=row.organisation_id,
            target_type="profile_link",
            target_id=current.id,
            target_label=current.account_email,
            detail={"by": "enterprise connect"},
        )
    if link is None and current is not None and current.mode is LinkMode.ENTERPRISE:
        link = current
    if link is None:
        link = ProfileLink(
            organisation_id=row.organisation_id,
            user_id=row.user_id,
            mode=LinkMode.ENTERPRISE,
            sub=sub,
        )
        session.add(link)
    lp = creds.linking_profile
    if link.sub != sub:
        link.target_calendar_id = None
        link.conflict_calendar_ids = None
    link.mode = LinkMode.ENTERPRISE
    link.sub = sub
    link.account_id = creds.account_id or sub
    link.profile_id = lp.profile_id if lp else link.profile_id
    link.provider = connect.provider_key(lp) or sa.provider
    link.account_email = row.email
    link.status, link.attention = LinkStatus.ACTIVE, None
    link.linked_at = utcnow()
    session.flush()
    credentials.store_credentials(link, creds, cipher)
    revocations.cancel(session, sub)
    return link


@dataclass(frozen=True)
class ChoiceReport:
    chosen: int  # mailboxes pointed at their primary calendar
    failed: int  # whose calendars could not be read now (tried again by a later run)
    last_id: int  # the last calendar link looked at
    more: bool  # links after ``last_id`` still wait for their choice


#: Calendar choices per run of the domain's job: then it goes to the back of the queue.
CHOICES_PER_RUN = 25


def choose_primary_calendars(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    service_account_link_id: int,
    *,
    after_id: int = 0,
    limit: int | None = None,
) -> ChoiceReport:
    """Choose the primary calendar of up to ``limit`` (``CHOICES_PER_RUN``) of the domain's
    linked mailboxes that have none yet, in link order after ``after_id`` (background job, one
    per domain)."""
    limit = CHOICES_PER_RUN if limit is None else limit
    ids = list(
        session.scalars(
            select(ProfileLink.id)
            .join(MailboxRequest, MailboxRequest.profile_link_id == ProfileLink.id)
            .where(
                MailboxRequest.service_account_link_id == service_account_link_id,
                MailboxRequest.status == MailboxStatus.LINKED,
                ProfileLink.status == LinkStatus.ACTIVE,
                ProfileLink.target_calendar_id.is_(None),
                ProfileLink.id > after_id,
            )
            .order_by(ProfileLink.id)
            .limit(limit + 1)
        )
    )
    chosen = failed = 0
    for link_id in ids[:limit]:
        try:
            if choose_primary_calendar(session, broker, cipher, link_id):
                chosen += 1
        except (ServiceError, broker_errors.BrokerError):
            session.rollback()
            failed += 1
    last = ids[:limit][-1] if ids else after_id
    return ChoiceReport(chosen, failed, last, len(ids) > limit)


def choose_primary_calendar(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, profile_link_id: int
) -> str | None:
    """Point a freshly linked mailbox's interviews at its primary calendar (background job)."""
    link = session.get(ProfileLink, profile_link_id)
    if link is None or link.status is not LinkStatus.ACTIVE or link.target_calendar_id:
        return link.target_calendar_id if link else None
    seen = calendars.calendars_of(session, broker, cipher, link)
    target = credentials.default_calendar(seen, link.profile_id)
    if target:
        link.target_calendar_id = target
        link.conflict_calendar_ids = [target]
        session.commit()
    return target
