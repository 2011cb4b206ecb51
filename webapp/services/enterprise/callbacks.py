"""The aggregator's callback for one mailbox or room request: checked against the request's
one-time state and used once; its code handed, sealed, to a job that redeems it
(webapp.services.enterprise.redemption) and links the mailbox to its person (or keeps the room).
Also the domain's calendar choices for the mailboxes linked so far."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.notifications import SACallback
from broker.port import CalendarBroker
from models import (
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    ServiceAccountLink,
    utcnow,
)
from webapp import security
from webapp.security import DecryptionFailed, Sealed, TokenCipher
from webapp.services import JobQueue, calendars, credentials
from webapp.services.audit import record
from webapp.services.enterprise.mailboxes import ERROR_HINTS
from webapp.services.errors import ServiceError

log = logging.getLogger("webapp.services.enterprise")


@dataclass(frozen=True)
class CallbackOutcome:
    #: accepted (the code is queued for redemption), failed, ignored, replayed, forged,
    #: unknown or retry (the aggregator should resend); a redemption: linked, failed, ignored
    #: or deferred (``retry_in`` seconds: no budget now, or the aggregator was busy)
    result: str
    profile_link_id: int | None = None
    retry_in: float | None = None


def label_of(row: MailboxRequest) -> dict[str, Any]:
    """The audit target of a mailbox request."""
    return {
        "organisation_id": row.organisation_id,
        "target_type": "mailbox_request",
        "target_id": row.id,
        "target_label": row.email,
    }


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
    """Apply a callback for one mailbox request (idempotent), without calling the aggregator:
    the state is checked and marked used, a failure recorded, and a success's code queued for
    the ``enterprise.redeem_code`` job (the answer "accepted"). The code's redemption is bulk
    work in the organisation's share of the background lane: it waits for that budget in the
    job worker, never in the web request the aggregator is waiting on.

    The request comes from the sealed reference in the callback URL; the body must carry that
    request's unused one-time state. ``signed`` says whether a (verified) signature came with
    it: no source confirms this callback is signed, so an unsigned one is accepted on the
    reference and state alone, audited (``callback.unsigned``) and counted on the domain."""
    row = session.get(MailboxRequest, request_id)
    if row is None:
        return CallbackOutcome("unknown")
    label = label_of(row)
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
        return failed(
            session,
            row,
            callback.error_key or callback.error or "failed",
            callback.error_description,
            label,
        )
    # The code is redeemed by a job (enterprise.redeem_code), in the organisation's share of
    # the background lane: waiting for that budget here would hold a web thread for seconds,
    # and people's pages queue behind it. The code goes into the queue sealed, bound to this
    # request and its state (a job left from an earlier attempt can never redeem it).
    sealed = seal_code(cipher, row, callback.code or "")
    try:
        jobs.enqueue("enterprise.redeem_code", row.id, sealed.key_id, sealed.blob)
    except Exception:  # the queue is down: give the state back, the aggregator resends
        log.warning("could not queue the code redemption of request %s", row.id, exc_info=True)
        session.rollback()
        session.execute(
            update(MailboxRequest)
            .where(MailboxRequest.id == row.id)
            .values(state_used_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return CallbackOutcome("retry")
    return CallbackOutcome("accepted")


def seal_code(cipher: TokenCipher, row: MailboxRequest, code: str) -> Sealed:
    """The callback's code, encrypted for the job queue under the app's token keys and bound to
    this request and its current one-time state."""
    return cipher.encrypt(code, **_code_binding(row))


def open_code(cipher: TokenCipher, row: MailboxRequest, sealed: Sealed) -> str | None:
    """The code sealed by :func:`seal_code`, or None if it was sealed for another attempt of
    this request (a retry since) or does not open."""
    if not row.state_hash:
        return None
    try:
        return cipher.decrypt(sealed, **_code_binding(row))
    except DecryptionFailed:
        return None


def _code_binding(row: MailboxRequest) -> dict[str, Any]:
    return {"table": "mailbox_request", "column": "callback_code", "row_id": row.state_hash}


def choice_key(service_account_link_id: int) -> str:
    """The queue key under which a domain's calendar choices wait (one job at a time)."""
    return f"enterprise.choose_calendars:{service_account_link_id}"


def failed(
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
