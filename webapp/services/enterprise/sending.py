"""Sending the queued requests of a domain to the aggregator in batches (a background job): claimed
atomically, each with a fresh one-time state, safe to run twice or concurrently."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import DEFAULT_USER_SCOPE, ServiceAccountAuthorizationRequest
from models import (
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ServiceAccountLink,
    utcnow,
)
from webapp import security
from webapp.security import TokenCipher
from webapp.services import credentials
from webapp.services.audit import record
from webapp.services.enterprise.domains import service_account_credentials
from webapp.services.enterprise.mailboxes import ERROR_HINTS
from webapp.services.enterprise.redemption import CODE_PATIENCE
from webapp.services.errors import ServiceAccountTrouble

log = logging.getLogger("webapp.services.enterprise")

#: What each mailbox is asked for; also the ``delegated_scope`` the admin grants (a superset).
MAILBOX_SCOPE = " ".join(DEFAULT_USER_SCOPE)
#: What each room is asked for: its free/busy, for availability queries (within MAILBOX_SCOPE,
#: since ``read_events`` implies it).
ROOM_SCOPE = "read_free_busy"
#: Entries per ``POST /v1/service_account_authorizations`` (the aggregator accepts 1–50).
BATCH_SIZE = 50
#: A claimed batch older than this is assumed abandoned by a dead worker and sent again.
CLAIM_LEASE = timedelta(minutes=2)
#: Sending attempts per mailbox before a persistent aggregator failure marks it failed.
MAX_ATTEMPTS = 5
#: A sent request whose callback has not come counts as awaited for this long (then it no longer
#: holds the next batches back: the aggregator may have lost it; the resume job sends it again).
AWAITED_FOR = timedelta(seconds=60)
#: Seconds the sender waits before it looks again while too many answers are awaited.
AWAIT_PAUSE = 1.0
#: ``SendReport.stopped`` when the sender stopped to let awaited callbacks come.
AWAITING = "awaiting callbacks"


@dataclass
class SendReport:
    batches: int = 0
    sent: int = 0
    failed: int = 0
    #: Seconds to wait before sending the rest (the aggregator was busy); None when done.
    retry_in: float | None = None
    stopped: str | None = None


def _release_stale_claims(session: Session, link_id: int, lease: timedelta) -> int:
    """Put rows claimed by a worker that died before the aggregator accepted them back in line."""
    result = session.execute(
        update(MailboxRequest)
        .where(
            MailboxRequest.service_account_link_id == link_id,
            MailboxRequest.status == MailboxStatus.PENDING,
            MailboxRequest.claim.is_not(None),
            MailboxRequest.sent_at.is_(None),
            MailboxRequest.updated_at <= utcnow() - lease,
        )
        .values(status=MailboxStatus.QUEUED, claim=None, state_hash=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return cast(CursorResult, result).rowcount or 0


def claim_batch(session: Session, link_id: int, size: int) -> list[MailboxRequest]:
    claim = secrets.token_hex(16)
    ids = list(
        session.scalars(
            select(MailboxRequest.id)
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.status == MailboxStatus.QUEUED,
            )
            .order_by(MailboxRequest.id)
            .limit(size)
        )
    )
    if not ids:
        return []
    # The status condition is re-checked per row, so two workers never claim the same row.
    session.execute(
        update(MailboxRequest)
        .where(MailboxRequest.id.in_(ids), MailboxRequest.status == MailboxStatus.QUEUED)
        .values(status=MailboxStatus.PENDING, claim=claim, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return list(
        session.scalars(
            select(MailboxRequest)
            .where(MailboxRequest.claim == claim)
            .order_by(MailboxRequest.id)
            .execution_options(populate_existing=True)
        )
    )


def _unclaim(session: Session, rows: Iterable[MailboxRequest], *, give_up_key: str | None) -> int:
    """Back to the queue (nothing reached the aggregator); after MAX_ATTEMPTS mark failed."""
    failed = 0
    now = utcnow()
    for row in rows:
        row.claim = None
        row.state_hash = None
        if give_up_key and row.attempts >= MAX_ATTEMPTS:
            row.status = MailboxStatus.FAILED
            row.error_key = give_up_key
            row.error_text = ERROR_HINTS.get(give_up_key)
            row.completed_at = now
            failed += 1
        else:
            row.status = MailboxStatus.QUEUED
    return failed


def send_batches(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link_id: int,
    *,
    lease: timedelta | None = None,
    max_batches: int | None = None,
    max_awaited: int | None = None,
    before_send: Callable[[int], None] | None = None,
) -> SendReport:
    """Send every queued request of the domain in batches; safe to run twice or concurrently.

    With ``max_awaited``, no batch goes out while that many of the domain's sent requests
    still await their callback (sent within ``AWAITED_FOR``): each callback redeems a code,
    one call per mailbox in the organisation's share of the background lane, so a sender that
    ran ahead would leave thousands of callbacks waiting at the aggregator, in front of every
    other organisation's. It then stops with ``retry_in`` set, to be run again shortly.

    ``before_send(batch_number)`` runs after a batch is claimed and its states committed, just
    before the request goes out (tests use it to simulate a crash at that point).
    """
    report = SendReport()
    link = session.get(ServiceAccountLink, link_id)
    if link is None or link.status is not LinkStatus.ACTIVE:
        report.stopped = "service account not active"
        return report
    _release_stale_claims(session, link_id, CLAIM_LEASE if lease is None else lease)
    while max_batches is None or report.batches < max_batches:
        if max_awaited is not None and awaited(session, link_id) >= max_awaited:
            report.retry_in = AWAIT_PAUSE
            report.stopped = AWAITING
            return report
        rows = claim_batch(session, link_id, BATCH_SIZE)
        if not rows:
            break
        states = {}
        for row in rows:
            states[row.id] = security.new_token()
            row.state_hash = security.token_hash(states[row.id])
            row.state_used_at = None
            row.attempts = (row.attempts or 0) + 1
        session.commit()  # the hashes exist before the aggregator can call back
        if before_send is not None:
            before_send(report.batches)
        batch = [
            ServiceAccountAuthorizationRequest(
                email=r.email,
                callback_url=cast(str, r.callback_url),  # set when queued (save_requests)
                state=states[r.id],
                scope=ROOM_SCOPE if r.kind is MailboxKind.ROOM else MAILBOX_SCOPE,
            )
            for r in rows
        ]
        try:
            creds, persist = service_account_credentials(session, broker, cipher, link)
            broker.authorize_service_account_users(creds, batch, on_refresh=persist)
        except ServiceAccountTrouble:
            _unclaim(session, rows, give_up_key=None)
            session.commit()
            report.stopped = "service account needs attention"
            return report
        except broker_errors.NeedsReauth:
            _unclaim(session, rows, give_up_key=None)
            credentials.mark_needs_attention(session, link, "service-account request refused")
            session.commit()
            report.stopped = "service account needs attention"
            return report
        except (broker_errors.RateLimited, broker_errors.Unavailable) as exc:
            report.failed += _unclaim(session, rows, give_up_key="aggregator_unavailable")
            session.commit()
            wait = getattr(exc, "retry_after", None)
            report.retry_in = max(1.0, float(wait)) if wait else 2.0 ** min(report.batches + 1, 5)
            log.info(
                "enterprise batch for link %s deferred %.1f s: %s",
                link_id,
                report.retry_in,
                type(exc).__name__,
            )
            return report
        except broker_errors.BrokerError as exc:
            now = utcnow()
            for row in rows:
                row.status, row.claim = MailboxStatus.FAILED, None
                row.error_key, row.error_text = "request_refused", ERROR_HINTS["request_refused"]
                row.completed_at = now
            report.failed += len(rows)
            record(
                session,
                None,
                "ec.batch_refused",
                organisation_id=link.organisation_id,
                outcome="failure",
                target_type="service_account_link",
                target_id=link.id,
                target_label=link.domain,
                detail={"mailboxes": len(rows), "error": type(exc).__name__},
            )
            session.commit()
            continue
        now = utcnow()
        session.execute(
            update(MailboxRequest)
            .where(
                MailboxRequest.id.in_([r.id for r in rows]), MailboxRequest.claim == rows[0].claim
            )
            .values(sent_at=now, claim=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        report.batches += 1
        report.sent += len(rows)
    return report


def awaited(session: Session, link_id: int) -> int:
    """The domain's requests sent within ``AWAITED_FOR`` whose callback has not come yet, and
    those whose code came within ``CODE_PATIENCE`` and waits for its redemption job: each is
    one code exchange to come in the organisation's share (the queue never holds more than
    ``max_awaited`` of a domain's codes in front of another organisation's)."""
    now = utcnow()
    return (
        session.scalar(
            select(func.count(MailboxRequest.id)).where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.status == MailboxStatus.PENDING,
                or_(
                    MailboxRequest.state_used_at.is_(None)
                    & (MailboxRequest.sent_at >= now - AWAITED_FOR),
                    MailboxRequest.state_used_at >= now - CODE_PATIENCE,
                ),
            )
        )
        or 0
    )


def stalled_links(session: Session, lease: timedelta = CLAIM_LEASE) -> list[int]:
    """Active domains with queued requests or abandoned claims, none of whose requests moved
    (queued, claimed, sent or answered) within ``lease``: a domain whose sender is at work is
    not stalled (for the periodic resume job, which would otherwise run a second sender)."""
    moving = select(MailboxRequest.service_account_link_id).where(
        MailboxRequest.updated_at > utcnow() - lease
    )
    return list(
        session.scalars(
            select(ServiceAccountLink.id).where(
                ServiceAccountLink.status == LinkStatus.ACTIVE,
                ServiceAccountLink.id.not_in(moving),
                ServiceAccountLink.id.in_(
                    select(MailboxRequest.service_account_link_id).where(
                        or_(
                            MailboxRequest.status == MailboxStatus.QUEUED,
                            (MailboxRequest.status == MailboxStatus.PENDING)
                            & MailboxRequest.claim.is_not(None),
                        )
                    )
                ),
            )
        )
    )
