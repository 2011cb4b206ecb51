"""Redeeming the code of one accepted callback (the ``enterprise.redeem_code`` job): the
aggregator's code exchanged in the organisation's share of the background lane, then the
mailbox linked to its person (or the room kept). The callback only checked the state and queued
the code, sealed: the wait for budget happens here, in a job worker, not in a web thread.
Authorizations to let go of after the exchange (the person's own link it supersedes, or an account
another person holds) are revoked now if the aggregator takes it within the job's patience, else
queued, with their token, for the ``revocations`` job: none is ever dropped."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.ratelimit import BACKGROUND
from broker.ratelimit import lane as rate_lane
from broker.ratelimit import patience as rate_patience
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
from webapp.security import Sealed, TokenCipher
from webapp.services import JobQueue, connect, credentials, revocations
from webapp.services.audit import record
from webapp.services.enterprise.callbacks import (
    CallbackOutcome,
    choice_key,
    failed,
    label_of,
    open_code,
)

log = logging.getLogger("webapp.services.enterprise.redemption")

#: How long after its callback a code is still worth redeeming; past it the mailbox fails with
#: ``code_not_redeemed`` (Retry failed sends a fresh request). Cronofy says only that codes are
#: short-lived and single-use; RFC 6749 (4.1.2) recommends at most ten minutes, which the
#: sandbox gives. A code that lapses sooner fails its exchange (``code_exchange_failed``).
CODE_PATIENCE = timedelta(minutes=5)
#: Seconds to wait before trying again when the aggregator was busy and named no time.
BUSY_RETRY = 5.0


def redeem_code(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    request_id: int,
    sealed: Sealed,
    *,
    jobs: JobQueue,
) -> CallbackOutcome:
    """Exchange the code a callback queued for request ``request_id`` and link the mailbox.

    Returns ``deferred`` with ``retry_in`` when nothing was sent within the caller's patience
    (``broker.ratelimit.patience``: no budget now) or the aggregator was busy; the caller runs it
    again then. ``ignored`` when the request moved on meanwhile (unlinked, disconnected, or
    retried: the code was sealed for an earlier attempt). A person's mailbox newly linked gets
    its primary calendar chosen by the domain's ``enterprise.choose_calendars`` job, queued
    unless one is waiting already."""
    row = session.get(MailboxRequest, request_id)
    if row is None or row.status is not MailboxStatus.PENDING or row.state_used_at is None:
        return CallbackOutcome("ignored")
    link = row.service_account
    code = open_code(cipher, row, sealed)
    if link.status is LinkStatus.DISCONNECTED or code is None:
        return CallbackOutcome("ignored")
    label = label_of(row)
    if utcnow() - row.state_used_at > CODE_PATIENCE:
        return failed(session, row, "code_not_redeemed", None, label)
    try:
        # Bulk work, paced by the batches the sending job sent: it counts in the background
        # lane, against the organisation's fair share, never in the interactive reserve.
        with rate_lane(BACKGROUND), rate_tenant(row.organisation_id):
            creds = broker.exchange_code(code, row.callback_url or "")
    except broker_errors.NotSent as exc:  # our own limiter: nothing reached the aggregator
        return CallbackOutcome("deferred", retry_in=max(0.1, exc.retry_after or 1.0))
    except (broker_errors.RateLimited, broker_errors.Unavailable) as exc:
        wait = getattr(exc, "retry_after", None)
        return CallbackOutcome("deferred", retry_in=max(1.0, float(wait or BUSY_RETRY)))
    except broker_errors.BrokerError:
        return failed(session, row, "code_exchange_failed", None, label)
    if row.kind is MailboxKind.ROOM:
        return _room_linked(session, row, creds, label)
    with rate_lane(BACKGROUND), rate_tenant(row.organisation_id):
        profile_link, queued = _enterprise_link(session, broker, cipher, row, link, creds)
        if profile_link is None:
            queued += _revoke_fresh(session, broker, cipher, row, creds)
    if profile_link is None:
        outcome = failed(session, row, "linked_to_another_user", None, label)
        if queued:
            jobs.enqueue("revocations.run")
        return outcome
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
    if queued:
        jobs.enqueue("revocations.run")
    return CallbackOutcome("linked", profile_link.id)


def fail_unredeemed(session: Session, patience: timedelta = CODE_PATIENCE) -> int:
    """Fail the requests whose code came more than twice ``patience`` ago and was never
    redeemed (its job was lost with a worker): they no longer hold their domain's sender back,
    and the admin sees why (``code_not_redeemed``; Retry failed sends them again)."""
    stale = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.status == MailboxStatus.PENDING,
                MailboxRequest.state_used_at < utcnow() - 2 * patience,
            )
        )
    )
    for row in stale:
        failed(session, row, "code_not_redeemed", None, label_of(row))
    return len(stale)


def _room_linked(
    session: Session, row: MailboxRequest, creds: Credentials, label: dict
) -> CallbackOutcome:
    """Keep the room's sub for availability; its tokens are not kept (nothing reads the room's
    calendar with them: availability uses the application's key)."""
    sub = creds.sub or creds.account_id
    if not sub:
        return failed(session, row, "no_room_id", None, label)
    row.resource_sub = sub[:64]
    revocations.cancel(session, row.resource_sub)
    row.status = MailboxStatus.LINKED
    row.error_key = row.error_text = None
    row.completed_at = utcnow()
    record(session, None, "ec.room_linked", **label)
    session.commit()
    return CallbackOutcome("linked")


def _enterprise_link(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    row: MailboxRequest,
    sa: ServiceAccountLink,
    creds: Credentials,
) -> tuple[ProfileLink | None, int]:
    """Create or update the user's ProfileLink(mode=enterprise), None if the account is taken;
    and how many authorizations were queued for the ``revocations`` job (the person's own link
    it supersedes, when the aggregator did not take its revocation now)."""
    sub = creds.sub or creds.account_id
    if not sub or row.user_id is None:
        return None, 0
    link = session.scalar(select(ProfileLink).where(ProfileLink.sub == sub))
    if link is not None and link.user_id != row.user_id:
        return None, 0
    queued = 0
    current = connect.link_of(session, row.user_id)
    if (
        link is None
        and current is not None
        and current.mode is LinkMode.BUSINESS
        and current.status is not LinkStatus.DISCONNECTED
    ):
        # The organisation's link supersedes the person's own one.
        queued = _let_go(session, broker, cipher, current, row.organisation_id)
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
            detail={"by": "enterprise connect", "revoked_at_aggregator": not queued},
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
    return link, queued


# The job waits only a moment for budget (``REDEEM_PATIENCE``), and the code is spent by now:
# a revocation the aggregator did not take at once (no budget: ``NotSent``; busy; down) goes to
# the durable revocation queue with its refresh token, never dropped.


def _let_go(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    current: ProfileLink,
    organisation_id: int,
) -> int:
    """Revoke the person's own Business Connect link (call before its tokens are forgotten);
    returns 1 if it was queued for the ``revocations`` job instead, 0 if revoked now."""
    revoked = revocations.revoke_or_queue(
        session, broker, cipher, current, organisation_id=organisation_id, reason="ec.superseded"
    )
    return 0 if revoked else 1


def _revoke_fresh(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    row: MailboxRequest,
    creds: Credentials,
) -> int:
    """Revoke the authorization just obtained for an account we will not link (it belongs to
    another person); returns 1 if it was queued for the ``revocations`` job instead. Only this
    token is revoked, never by sub: the account's other authorization is another person's live
    link."""
    try:
        broker.revoke(creds.refresh_token)
        return 0
    except broker_errors.BrokerError as exc:
        log.warning("revoking an unneeded authorization failed (%s); queued", type(exc).__name__)
    sub = creds.sub or creds.account_id
    if not sub:  # nothing to key a queued revocation on: wait for the budget, try once more
        with rate_patience(None):
            try:
                broker.revoke(creds.refresh_token)
                return 0
            except broker_errors.BrokerError:
                log.error("an unneeded authorization without an id could not be revoked")
                return 0
    revocations.queue(
        session,
        [sub],
        organisation_id=row.organisation_id,
        reason="ec.linked_to_another_user",
        tokens={sub: creds.refresh_token},
        cipher=cipher,
    )
    return 1
