"""Calendar and service-account credentials: tokens at rest (encrypted, bound to their row), one
refresh at a time per token, calls to the aggregator on a link's behalf with failures turned into
messages people can act on, blocking a link that needs attention, and revoking a link at the
aggregator. Shared by Business Connect, Enterprise Connect and every service that reads or
writes a linked calendar.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Calendar, Credentials
from models import (
    Attention,
    LinkStatus,
    PendingRevocation,
    ProfileLink,
    ServiceAccountLink,
    SsoConfig,
)
from webapp.security import DecryptionFailed, Sealed, TokenCipher
from webapp.services.audit import record
from webapp.services.errors import AggregatorTrouble, NoBudgetNow, ReconnectNeeded, ServiceError

log = logging.getLogger("webapp.services.credentials")

#: A row holding one aggregator authorization's tokens: a calendar link or a service account.
TokenLink = ProfileLink | ServiceAccountLink

#: Refresh a little before expiry so a call never starts with a token about to lapse.
REFRESH_MARGIN_SECONDS = 60


def broker_problem(exc: broker_errors.BrokerError) -> ServiceError:
    """A message a person can act on, for a broker failure (never the vendor's text)."""
    if isinstance(exc, broker_errors.NeedsReauth):
        return ReconnectNeeded("Your calendar connection needs to be renewed. Use Reconnect.")
    if isinstance(exc, broker_errors.NotSent):
        return NoBudgetNow(
            "The calendar service's budget is in use by other work; this goes on shortly.",
            retry_in=exc.retry_after,
        )
    if isinstance(exc, broker_errors.RateLimited):
        return AggregatorTrouble(
            "The calendar service is busy right now. Please try again in a "
            "minute; nothing was changed."
        )
    if isinstance(exc, broker_errors.Unavailable):
        return AggregatorTrouble(
            "The calendar service could not be reached. Please try again; nothing was changed."
        )
    return AggregatorTrouble("The calendar service refused the request; nothing was changed.")


# ---------------------------------------------------------------------------------------------
# Tokens at rest


def store_credentials(link: TokenLink, creds: Credentials, cipher: TokenCipher) -> None:
    """Encrypt both tokens under the newest key, bound to this row (flush first for its id)."""
    if link.id is None:
        raise RuntimeError("flush the link before storing its tokens")
    # Bound to table, column and row: works for ProfileLink and ServiceAccountLink alike.
    table = link.__tablename__
    access = cipher.encrypt(creds.access_token, table=table, column="access_token", row_id=link.id)
    refresh = cipher.encrypt(
        creds.refresh_token, table=table, column="refresh_token", row_id=link.id
    )
    link.access_token, link.refresh_token = access.blob, refresh.blob
    link.key_id = access.key_id
    link.token_expires_at = creds.expires_at


def load_credentials(link: TokenLink, cipher: TokenCipher) -> Credentials:
    key_id, expires_at = link.key_id, link.token_expires_at
    access_blob, refresh_blob = link.access_token, link.refresh_token
    # All four are set and cleared together (store_credentials, forget_tokens).
    if refresh_blob is None or access_blob is None or key_id is None or expires_at is None:
        raise ReconnectNeeded("This calendar is not connected.")
    table = link.__tablename__
    access = cipher.decrypt(
        Sealed(key_id, access_blob), table=table, column="access_token", row_id=link.id
    )
    refresh = cipher.decrypt(
        Sealed(key_id, refresh_blob), table=table, column="refresh_token", row_id=link.id
    )
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        scope="",
        sub=link.sub,
        account_id=link.account_id,
    )


def forget_tokens(link: TokenLink) -> None:
    link.access_token = link.refresh_token = None
    link.token_expires_at = None
    link.key_id = None
    if isinstance(link, ProfileLink):
        link.channel_id = None  # closed with the authorization


def disconnect_here(links: Iterable[TokenLink]) -> tuple[list[str], int]:
    """Disconnect these links (calendar or service-account) in the database, at once: tokens
    deleted, status disconnected. Returns the subs still to revoke at the aggregator and how
    many token sets were deleted."""
    subs: list[str] = []
    deleted = 0
    for link in links:
        delegated = isinstance(link, ProfileLink) and link.is_delegated
        if not delegated and (link.has_tokens or link.status is not LinkStatus.DISCONNECTED):
            subs.append(link.sub)  # a delegated calendar's grant is its owner's, not revoked
        deleted += link.has_tokens
        forget_tokens(link)
        link.status = LinkStatus.DISCONNECTED
    return subs, deleted


def rotate_token_keys(session: Session, cipher: TokenCipher) -> dict[str, int]:
    """Re-encrypt every stored token under the newest key; returns counts."""
    counts = {"re-encrypted": 0, "already current": 0, "failed": 0}
    links = [
        *session.scalars(select(ProfileLink).where(ProfileLink.refresh_token.is_not(None))),
        *session.scalars(
            select(ServiceAccountLink).where(ServiceAccountLink.refresh_token.is_not(None))
        ),
    ]
    for link in links:
        if link.key_id == cipher.current_key_id:
            counts["already current"] += 1
            continue
        try:
            creds = load_credentials(link, cipher)
        except DecryptionFailed:
            counts["failed"] += 1
            continue
        store_credentials(link, creds, cipher)
        counts["re-encrypted"] += 1
    # Refresh tokens waiting in the revocation queue (a disconnected service account's).
    table = PendingRevocation.__tablename__
    for row in session.scalars(
        select(PendingRevocation).where(PendingRevocation.refresh_token.is_not(None))
    ):
        if row.key_id == cipher.current_key_id:
            counts["already current"] += 1
            continue
        try:
            token = cipher.decrypt(
                Sealed(row.key_id or "", cast(bytes, row.refresh_token)),  # not None: selected so
                table=table,
                column="refresh_token",
                row_id=row.id,
            )
        except DecryptionFailed:
            counts["failed"] += 1
            continue
        sealed = cipher.encrypt(token, table=table, column="refresh_token", row_id=row.id)
        row.refresh_token, row.key_id = sealed.blob, sealed.key_id
        counts["re-encrypted"] += 1
    # Single sign-on client secrets (bound to their organisation, the row's stable key).
    for config in session.scalars(select(SsoConfig)):
        if config.key_id == cipher.current_key_id:
            counts["already current"] += 1
            continue
        org_id = config.organisation_id
        try:
            secret = cipher.decrypt(
                Sealed(config.key_id, config.client_secret),
                table="sso_config",
                column="client_secret",
                row_id=org_id,
            )
        except DecryptionFailed:
            counts["failed"] += 1
            continue
        sealed = cipher.encrypt(secret, table="sso_config", column="client_secret", row_id=org_id)
        config.client_secret, config.key_id = sealed.blob, sealed.key_id
        counts["re-encrypted"] += 1
    record(session, None, "tokens.rotated", detail=dict(counts, key=cipher.current_key_id))
    session.commit()
    return counts


# ---------------------------------------------------------------------------------------------
# Per-process refresh lock. Across processes PostgreSQL's row lock (SELECT … FOR UPDATE) does
# the same job; SQLite is a single-process development database.

_refresh_locks: dict[object, threading.Lock] = defaultdict(threading.Lock)
_refresh_locks_guard = threading.Lock()


def lock_for(link_id: object) -> threading.Lock:
    with _refresh_locks_guard:
        return _refresh_locks[link_id]


def mark_needs_attention(
    session: Session, link: TokenLink, reason: str, attention: Attention = Attention.RECONNECT
) -> None:
    """Block the link until it recovers (``attention`` says how; calendar links only)."""
    if hasattr(link, "attention") and (
        link.status is not LinkStatus.NEEDS_ATTENTION or attention is Attention.RECONNECT
    ):
        link.attention = attention  # a refused authorization outweighs a disconnected profile
    if link.status is LinkStatus.NEEDS_ATTENTION:
        return
    link.status = LinkStatus.NEEDS_ATTENTION
    record(
        session,
        None,
        "calendar.needs_attention",
        organisation_id=link.organisation_id,
        target_type=link.__tablename__,
        target_id=link.id,
        target_label=link.account_email,
        detail={
            "reason": reason,
            **({"attention": attention.value} if hasattr(link, "attention") else {}),
        },
    )


def attention_for(exc: broker_errors.NeedsReauth) -> Attention:
    return (
        Attention.PROFILE_DISCONNECTED
        if isinstance(exc, broker_errors.ProfileDisconnected)
        else Attention.RECONNECT
    )


def persist_refresh(
    session: Session, cipher: TokenCipher, link_id: int, model: type[TokenLink] = ProfileLink
) -> Callable[[Credentials], None]:
    def persist(creds: Credentials) -> None:
        link = cast(TokenLink, session.get(model, link_id))
        store_credentials(link, creds, cipher)
        session.commit()

    return persist


def usable_credentials(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: TokenLink
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """Credentials fit for a call now (refreshed once if about to expire), plus the callback that
    stores tokens the broker refreshes mid-call. Refuses a link that needs attention.
    Also serves ServiceAccountLink (same token columns and statuses). A delegated calendar is
    read with its owner's credentials (see ``token_link``)."""
    if isinstance(link, ProfileLink) and link.is_delegated:
        link = token_link(session, link)
    if link.status is not LinkStatus.ACTIVE:
        raise ReconnectNeeded(
            "Your calendar connection needs attention. Reconnect it before scheduling."
            if link.status is LinkStatus.NEEDS_ATTENTION
            else "This calendar is not connected."
        )
    return fresh_credentials(session, broker, cipher, link)


def token_link(session: Session, link: ProfileLink) -> ProfileLink:
    """The link whose tokens read ``link``: itself, or for a colleague's delegated calendar the
    owner's link, while the delegation holds (its owner's link is active and still the account
    it was added through). ReconnectNeeded otherwise: the owner must add it again."""
    if not link.is_delegated:
        return link
    owner = session.get(ProfileLink, link.delegated_from_id) if link.delegated_from_id else None
    if (
        link.status is not LinkStatus.ACTIVE
        or owner is None
        or owner.status is not LinkStatus.ACTIVE
        or owner.sub != link.account_id
    ):
        raise ReconnectNeeded(
            "This calendar is shared through a colleague's calendar link, which needs "
            "attention: they must add it again from their calendar page."
        )
    return owner


def fresh_credentials(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: TokenLink
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """The link's credentials, refreshed once (under the row lock) if about to expire."""
    creds = load_credentials(link, cipher)
    model = type(link)
    persist = persist_refresh(session, cipher, link.id, model)
    if not creds.expires_within(REFRESH_MARGIN_SECONDS):
        return creds, persist
    with lock_for((model.__tablename__, link.id)):
        locked = session.execute(
            select(model)
            .where(model.id == link.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        assert isinstance(locked, ProfileLink | ServiceAccountLink)
        creds = load_credentials(locked, cipher)
        if creds.expires_within(REFRESH_MARGIN_SECONDS):  # nobody refreshed while we waited
            try:
                creds = broker.refresh(creds)
            except broker_errors.NeedsReauth:
                mark_needs_attention(session, locked, "refresh refused (invalid_grant)")
                session.commit()
                raise ReconnectNeeded(
                    "Your calendar connection needs to be renewed. Use Reconnect."
                ) from None
            except broker_errors.BrokerError as exc:
                session.rollback()
                raise broker_problem(exc) from None
            store_credentials(locked, creds, cipher)
        session.commit()  # releases the row lock
    return creds, persist


def call_broker(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link: TokenLink,
    operation: Callable[..., object],
):
    """Run ``operation(creds, on_refresh=…)`` for a link, translating failures for people."""
    if isinstance(link, ProfileLink):
        link = token_link(session, link)
    creds, persist = usable_credentials(session, broker, cipher, link)
    try:
        return operation(creds, on_refresh=persist)
    except broker_errors.NeedsReauth as exc:
        mark_needs_attention(session, link, type(exc).__name__, attention_for(exc))
        session.commit()
        raise broker_problem(exc) from None
    except broker_errors.BrokerError as exc:
        raise broker_problem(exc) from None


# ---------------------------------------------------------------------------------------------
# Revoking at the aggregator, and push channels (one per linked account)


def revoke_at_aggregator(
    broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink, *, whole_account: bool
) -> bool:
    """Close the link's channels and revoke it at the aggregator; False if that failed."""
    try:
        creds = load_credentials(link, cipher)
    except (ReconnectNeeded, DecryptionFailed):
        return False
    try:
        close_channels(broker, creds)  # an unusable token cannot; revoking is still worth trying
        if whole_account or not link.profile_id:
            broker.revoke(creds.refresh_token)
        else:
            broker.revoke_profile(creds, link.profile_id)
        return True
    except broker_errors.BrokerError as exc:
        log.warning("revoking link %s at the aggregator failed: %s", link.id, type(exc).__name__)
        return False


#: Cronofy allows this many channels per account (docs create-channel) and recommends one.
MAX_CHANNELS = 128


def one_channel(
    broker: CalendarBroker,
    creds: Credentials,
    callback_url: str,
    *,
    on_refresh: Callable[[Credentials], None] | None = None,
) -> str:
    """Open the account's push channel to ``callback_url`` and close every other one (those of
    earlier connects, with other callback URLs): duplicates would deliver every change several
    times, and past the aggregator's limit new channels are refused. Returns the channel id."""
    existing = broker.channels(creds, on_refresh=on_refresh)
    closed: set[str] = set()
    if len(existing) >= MAX_CHANNELS:  # left full by older versions: make room first
        closed = close_channels(broker, creds, existing, on_refresh=on_refresh)
    channel = broker.create_channel(creds, callback_url, on_refresh=on_refresh)
    close_channels(
        broker,
        creds,
        [c for c in existing if c.channel_id not in closed],
        keep=channel.channel_id,
        on_refresh=on_refresh,
    )
    return channel.channel_id


def close_channels(
    broker: CalendarBroker,
    creds: Credentials,
    channels=None,
    *,
    keep: str | None = None,
    on_refresh: Callable[[Credentials], None] | None = None,
) -> set[str]:
    """Close the given channels (default: all the account has) except ``keep``; best effort.
    Returns the ids closed (or found already gone)."""
    done: set[str] = set()
    try:
        if channels is None:
            channels = broker.channels(creds, on_refresh=on_refresh)
        for channel in channels:
            if channel.channel_id == keep:
                continue
            try:
                broker.close_channel(creds, channel.channel_id, on_refresh=on_refresh)
            except broker_errors.NotFound:
                pass  # closed already
            done.add(channel.channel_id)
    except broker_errors.BrokerError as exc:
        log.warning("closing push channels failed: %s", type(exc).__name__)
    return done


# ---------------------------------------------------------------------------------------------
# Where interviews are written by default


def default_calendar(calendars: Sequence[Calendar], profile_id: str | None) -> str | None:
    """The account's primary writable calendar, else its first writable one."""
    own = [
        c
        for c in calendars
        if not c.readonly and not c.deleted and (profile_id is None or c.profile_id == profile_id)
    ]
    own.sort(key=lambda c: not c.primary)
    return own[0].calendar_id if own else None
