"""Business Connect: people link their own (or a delegated) calendar account, see it, relink it,
disconnect it; IT admins switch the feature on, off, or reset it for the whole organisation.

Locally only the link is kept (ids, provider, account email, chosen calendar ids, encrypted
tokens). Calendars and their names are read from the aggregator whenever a page needs them.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Calendar, Credentials, LinkingProfile, UserInfo
from models import (
    Attention,
    LinkMode,
    LinkStatus,
    OAuthState,
    Organisation,
    PendingRevocation,
    ProfileLink,
    Role,
    ServiceAccountLink,
    utcnow,
)
from webapp import security
from webapp.security import DecryptionFailed, Sealed, TokenCipher
from webapp.services import Actor, revocations
from webapp.services.audit import record
from webapp.services.errors import (
    AggregatorTrouble,
    Declined,
    Forbidden,
    Invalid,
    NotFound,
    ReconnectNeeded,
    ServiceError,
    StateRejected,
)
from webapp.services.zones import known_zone

log = logging.getLogger("webapp.services.connect")

STATE_LIFETIME = timedelta(minutes=10)
BUSINESS_FLOW = "business_connect"
#: Refresh a little before expiry so a call never starts with a token about to lapse.
REFRESH_MARGIN_SECONDS = 60
#: Display name → aggregator ``provider_name``.
PROVIDERS: dict[str, str] = {
    "google": "Google",
    "office365": "Microsoft 365",
    "live_connect": "Outlook.com",
    "exchange": "Exchange",
    "apple": "iCloud",
}
#: Who may link a calendar of their own.
CONNECTING_ROLES = frozenset({Role.RECRUITER, Role.COORDINATOR})


def broker_problem(exc: broker_errors.BrokerError) -> ServiceError:
    """A message a person can act on, for a broker failure (never the vendor's text)."""
    if isinstance(exc, broker_errors.NeedsReauth):
        return ReconnectNeeded("Your calendar connection needs to be renewed. Use Reconnect.")
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


def store_credentials(link: ProfileLink, creds: Credentials, cipher: TokenCipher) -> None:
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


def load_credentials(link: ProfileLink, cipher: TokenCipher) -> Credentials:
    if not link.has_tokens or link.key_id is None:
        raise ReconnectNeeded("This calendar is not connected.")
    table = link.__tablename__
    access = cipher.decrypt(
        Sealed(link.key_id, link.access_token), table=table, column="access_token", row_id=link.id
    )
    refresh = cipher.decrypt(
        Sealed(link.key_id, link.refresh_token), table=table, column="refresh_token", row_id=link.id
    )
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        expires_at=link.token_expires_at,
        scope="",
        sub=link.sub,
        account_id=link.account_id,
    )


def forget_tokens(link: ProfileLink) -> None:
    link.access_token = link.refresh_token = None
    link.token_expires_at = None
    link.key_id = None
    if isinstance(link, ProfileLink):
        link.channel_id = None  # closed with the authorization


def disconnect_here(links) -> tuple[list[str], int]:
    """Disconnect these links (calendar or service-account) in the database, at once: tokens
    deleted, status disconnected. Returns the subs still to revoke at the aggregator and how
    many token sets were deleted."""
    subs, deleted = [], 0
    for link in links:
        if link.has_tokens or link.status is not LinkStatus.DISCONNECTED:
            subs.append(link.sub)
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
                Sealed(row.key_id or "", row.refresh_token),
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
    record(session, None, "tokens.rotated", detail=dict(counts, key=cipher.current_key_id))
    session.commit()
    return counts


# ---------------------------------------------------------------------------------------------
# Per-process refresh lock. Across processes PostgreSQL's row lock (SELECT … FOR UPDATE) does
# the same job; SQLite is a single-process development database.

_refresh_locks: dict[object, threading.Lock] = defaultdict(threading.Lock)
_refresh_locks_guard = threading.Lock()


def _lock_for(link_id: object) -> threading.Lock:
    with _refresh_locks_guard:
        return _refresh_locks[link_id]


def mark_needs_attention(
    session: Session, link: ProfileLink, reason: str, attention: Attention = Attention.RECONNECT
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


def _attention_for(exc: broker_errors.NeedsReauth) -> Attention:
    return (
        Attention.PROFILE_DISCONNECTED
        if isinstance(exc, broker_errors.ProfileDisconnected)
        else Attention.RECONNECT
    )


def _persist_refresh(session: Session, cipher: TokenCipher, link_id: int, model=ProfileLink):
    def persist(creds: Credentials) -> None:
        link = session.get(model, link_id)
        store_credentials(link, creds, cipher)
        session.commit()

    return persist


def usable_credentials(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """Credentials fit for a call now (refreshed once if about to expire), plus the callback that
    stores tokens the broker refreshes mid-call. Refuses a link that needs attention.
    Also serves ServiceAccountLink (same token columns and statuses)."""
    if link.status is not LinkStatus.ACTIVE:
        raise ReconnectNeeded(
            "Your calendar connection needs attention. Reconnect it before scheduling."
            if link.status is LinkStatus.NEEDS_ATTENTION
            else "This calendar is not connected."
        )
    return _fresh_credentials(session, broker, cipher, link)


def _fresh_credentials(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """The link's credentials, refreshed once (under the row lock) if about to expire."""
    creds = load_credentials(link, cipher)
    model = type(link)
    persist = _persist_refresh(session, cipher, link.id, model)
    if not creds.expires_within(REFRESH_MARGIN_SECONDS):
        return creds, persist
    with _lock_for((model.__tablename__, link.id)):
        locked = session.execute(
            select(model)
            .where(model.id == link.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
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
    link: ProfileLink,
    operation: Callable[..., object],
):
    """Run ``operation(creds, on_refresh=…)`` for a link, translating failures for people."""
    creds, persist = usable_credentials(session, broker, cipher, link)
    try:
        return operation(creds, on_refresh=persist)
    except broker_errors.NeedsReauth as exc:
        mark_needs_attention(session, link, type(exc).__name__, _attention_for(exc))
        session.commit()
        raise broker_problem(exc) from None
    except broker_errors.BrokerError as exc:
        raise broker_problem(exc) from None


def calendar_zone(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, link: ProfileLink | None
) -> str | None:
    """The default time zone the linked calendar account reports (one userinfo call), as a
    proposal for a person who has set none; None when there is no usable answer."""
    if broker is None or link is None or link.status is not LinkStatus.ACTIVE:
        return None
    try:
        info = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.userinfo(creds, on_refresh=on_refresh),
        )
    except ServiceError:
        return None
    return known_zone(info.zoneinfo)


# ---------------------------------------------------------------------------------------------
# Organisation switch (IT admin)


def _require(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role cannot do this.")


def organisation(session: Session, actor: Actor) -> Organisation:
    org = session.get(Organisation, actor.organisation_id)
    if org is None:
        raise NotFound("No such organisation.")
    return org


def set_business_connect(session: Session, actor: Actor, enabled: bool) -> Organisation:
    _require(actor, Role.ADMIN)
    org = organisation(session, actor)
    if org.business_connect_enabled != enabled:
        org.business_connect_enabled = enabled
        record(
            session,
            actor,
            "business_connect.activated" if enabled else "business_connect.deactivated",
            target_type="organisation",
            target_id=org.id,
        )
        session.commit()
    return org


def business_links(session: Session, organisation_id: int) -> list[ProfileLink]:
    return list(
        session.scalars(
            select(ProfileLink)
            .where(
                ProfileLink.organisation_id == organisation_id,
                ProfileLink.mode == LinkMode.BUSINESS,
                ProfileLink.status != LinkStatus.DISCONNECTED,
            )
            .order_by(ProfileLink.id)
        )
    )


@dataclass(frozen=True)
class RevokeReport:
    links: int
    tokens_deleted: int
    #: Authorizations queued for revocation at the aggregator (the ``revocations`` job).
    revocations: int


def _revoke_remote(
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


def reset_business_connect(session: Session, cipher: TokenCipher, actor: Actor) -> RevokeReport:
    """Disconnect every Business Connect link of the organisation: tokens are deleted now and
    the authorizations queued for revocation at the aggregator (run the ``revocations`` job)."""
    _require(actor, Role.ADMIN)
    links = business_links(session, actor.organisation_id)
    subs, deleted = disconnect_here(links)
    queued = revocations.queue(
        session, subs, organisation_id=actor.organisation_id, reason="business_connect.reset"
    )
    report = RevokeReport(len(links), deleted, queued)
    record(
        session,
        actor,
        "business_connect.reset",
        target_type="organisation",
        target_id=actor.organisation_id,
        detail={"links": report.links, "tokens_deleted": deleted, "revocations_queued": queued},
    )
    session.commit()
    return report


# ---------------------------------------------------------------------------------------------
# The person's own link


def link_of(session: Session, user_id: int) -> ProfileLink | None:
    """The user's calendar link (including a disconnected one kept for its events)."""
    return session.scalar(
        select(ProfileLink).where(ProfileLink.user_id == user_id).order_by(ProfileLink.id.desc())
    )


def may_connect(session: Session, actor: Actor) -> bool:
    if actor.role not in CONNECTING_ROLES:
        return False
    org = session.get(Organisation, actor.organisation_id)
    return bool(org and org.business_connect_enabled)


def begin(
    session: Session,
    broker: CalendarBroker,
    actor: Actor,
    *,
    provider: str | None,
    session_nonce: str,
    redirect_uri: str,
) -> str:
    """Create a one-time state and return the aggregator's authorization URL."""
    if not may_connect(session, actor):
        raise Forbidden(
            "Calendar connection is not available for your account. Your IT admin "
            "can activate Business Connect."
        )
    if provider is not None and provider not in PROVIDERS:
        raise Invalid("Choose one of the listed calendar providers.", field="provider")
    existing = link_of(session, actor.user_id)
    if existing is not None and existing.mode is LinkMode.ENTERPRISE and existing.has_tokens:
        raise Invalid("Your organisation already links your calendar; there is nothing to connect.")
    state = security.new_token()
    session.add(
        OAuthState(
            state_hash=security.token_hash(state),
            flow=BUSINESS_FLOW,
            user_id=actor.user_id,
            session_binding=security.token_hash(session_nonce),
            expires_at=utcnow() + STATE_LIFETIME,
        )
    )
    record(session, actor, "calendar.connect_started", detail={"provider": provider})
    session.commit()
    return broker.authorization_url(redirect_uri, state, provider_name=provider)


def consume_state(
    session: Session, actor: Actor, *, state: str | None, flow: str, session_nonce: str | None
) -> OAuthState:
    """Validate and use up a state; anything wrong raises StateRejected (and is audited)."""
    row = None
    if state and len(state) <= 128:
        row = session.scalar(
            select(OAuthState).where(OAuthState.state_hash == security.token_hash(state))
        )
    reason = None
    if row is None:
        reason = "missing" if not state else "unknown"
    elif row.flow != flow or row.user_id != actor.user_id:
        reason = "foreign"
    elif not session_nonce or not security.same_token(
        row.session_binding, security.token_hash(session_nonce)
    ):
        reason = "other session"
    elif row.used_at is not None:
        reason = "replayed"
    elif row.expires_at <= utcnow():
        reason = "expired"
    if reason:
        record(
            session,
            actor,
            "oauth.state_rejected",
            outcome="denied",
            detail={"reason": reason, "flow": flow},
        )
        session.commit()
        raise StateRejected(
            "This sign-in link is not valid any more (it was used already, "
            "expired, or started in another browser). Nothing was changed; "
            "please start again."
        )
    row.used_at = utcnow()
    session.commit()  # used before the code is redeemed: a replay can never redeem twice
    return row


def provider_key(profile) -> str | None:
    """Our name for a profile's calendar service (a key of PROVIDERS). Cronofy reports
    Microsoft 365 as ``provider_name: exchange`` with ``provider_service: office365``; only
    the service tells it from on-premises Exchange."""
    if profile is None:
        return None
    if profile.provider_service == "office365" or profile.provider_name == "office365":
        return "office365"
    return profile.provider_name or None


def _linking_profile(creds: Credentials, info: UserInfo):
    wanted = creds.linking_profile.profile_id if creds.linking_profile else None
    for profile in info.profiles:
        if wanted is None or profile.profile_id == wanted:
            return profile
    return None


def _default_target(calendars: Sequence[Calendar], profile_id: str | None) -> str | None:
    """The account's primary writable calendar, else its first writable one."""
    own = [
        c
        for c in calendars
        if not c.readonly and not c.deleted and (profile_id is None or c.profile_id == profile_id)
    ]
    own.sort(key=lambda c: not c.primary)
    return own[0].calendar_id if own else None


def redirect_code(
    session: Session,
    actor: Actor,
    *,
    flow: str,
    state: str | None,
    session_nonce: str | None,
    error: str | None,
    code: str | None,
    audit_prefix: str,
    declined: str,
) -> str:
    """What every authorization redirect checks before redeeming anything: the one-time state,
    a declined or failed consent (audited), and a plausible code, which it returns."""
    consume_state(session, actor, state=state, flow=flow, session_nonce=session_nonce)
    if error:
        record(
            session,
            actor,
            f"{audit_prefix}.connect_declined",
            outcome="failure",
            detail={"error": error[:64]},
        )
        session.commit()
        if error == "access_denied":
            raise Declined(declined)
        raise AggregatorTrouble(
            "The calendar service did not complete the connection; nothing "
            "was stored. Please try again."
        )
    if not code or len(code) > 256:
        raise Invalid("The calendar service sent no authorization code; nothing was stored.")
    return code


def _business_row(session: Session, actor: Actor, sub: str) -> tuple[ProfileLink, bool]:
    """The row the person's Business Connect link of account ``sub`` is kept in (flushed), and
    whether that row existed before.

    ``sub`` is unique and a disconnected link keeps its row (its ids keep the interviews it
    wrote cancellable), so linking an account again takes over the row that account already
    has, whichever mode linked it before (an Enterprise Connect link that was unlinked, or
    whose domain was disconnected or reset). A new row is made only for an account never
    linked before."""
    clash = session.scalar(select(ProfileLink).where(ProfileLink.sub == sub))
    if clash is not None and clash.user_id != actor.user_id:
        record(
            session,
            actor,
            "calendar.connect_rejected",
            outcome="denied",
            detail={"reason": "account linked to another user"},
        )
        session.commit()
        raise Invalid(
            "This calendar account is already linked to another Rendezvous user. Ask "
            "them to disconnect it first."
        )
    if (
        clash is not None
        and clash.mode is LinkMode.ENTERPRISE
        and clash.status is not LinkStatus.DISCONNECTED
    ):
        record(
            session,
            actor,
            "calendar.connect_rejected",
            outcome="denied",
            detail={"reason": "account linked by the organisation"},
        )
        session.commit()
        raise Invalid("Your organisation already links this calendar; there is nothing to connect.")
    link = clash
    if link is None:
        own = link_of(session, actor.user_id)
        if own is not None and own.mode is LinkMode.BUSINESS:
            link = own  # the person's own link, now to another account
    existed = link is not None
    if link is None:
        link = ProfileLink(
            organisation_id=actor.organisation_id,
            user_id=actor.user_id,
            mode=LinkMode.BUSINESS,
            sub=sub,
        )
        session.add(link)
    link.mode = LinkMode.BUSINESS
    link.sub = sub
    session.flush()
    return link, existed


def complete(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    session_nonce: str | None,
    redirect_uri: str,
    push_url: Callable[[int], str],
) -> ProfileLink:
    """Finish the authorization: check state, redeem the code, store the link, open a channel."""
    code = redirect_code(
        session,
        actor,
        flow=BUSINESS_FLOW,
        state=state,
        session_nonce=session_nonce,
        error=error,
        code=code,
        audit_prefix="calendar",
        declined="You declined access to your calendar, so nothing was "
        "connected. You can connect it any time.",
    )
    try:
        creds = broker.exchange_code(code, redirect_uri)
        info = broker.userinfo(creds)
        calendars = broker.calendars(creds)
    except broker_errors.BrokerError as exc:
        record(
            session,
            actor,
            "calendar.connect_failed",
            outcome="failure",
            detail={"error": type(exc).__name__},
        )
        session.commit()
        raise broker_problem(exc) from None

    sub = creds.sub or info.sub
    replaced = _other_account(session, cipher, actor, sub)
    try:
        link, relinked = _business_row(session, actor, sub)
    except IntegrityError:
        # Another request linked the same account in the meantime: take that row over instead.
        session.rollback()
        link, relinked = _business_row(session, actor, sub)
    profile = _linking_profile(creds, info)
    lp: LinkingProfile | None = creds.linking_profile
    link.sub = sub
    link.account_id = creds.account_id or sub
    link.profile_id = (lp.profile_id if lp else None) or (profile.profile_id if profile else None)
    link.provider = provider_key(lp) or provider_key(profile)
    link.account_email = ((lp.profile_name if lp else None) or info.email or "")[:320] or None
    link.status, link.attention = LinkStatus.ACTIVE, None
    visible = {c.calendar_id for c in calendars}
    if link.target_calendar_id not in visible:
        link.target_calendar_id = _default_target(calendars, link.profile_id)
    kept = [c for c in (link.conflict_calendar_ids or []) if c in visible]
    link.conflict_calendar_ids = kept or (
        [link.target_calendar_id] if link.target_calendar_id else []
    )
    link.linked_at = utcnow()
    session.flush()
    store_credentials(link, creds, cipher)
    revocations.cancel(session, sub)  # authorized again: an older queued revocation must not run
    if replaced is not None:
        # The person linked another account into their row: the one it held is let go of.
        old_sub, old_creds = replaced
        revocations.queue(
            session,
            [old_sub],
            organisation_id=actor.organisation_id,
            reason="calendar.replaced",
            cipher=cipher,
            tokens={old_sub: old_creds.refresh_token} if old_creds else None,
        )
    record(
        session,
        actor,
        "calendar.relinked" if relinked else "calendar.connected",
        target_type="profile_link",
        target_id=link.id,
        target_label=link.account_email,
        detail={
            "provider": link.provider,
            "mode": link.mode.value,
            **({"replaced_account": True} if replaced else {}),
        },
    )
    session.commit()
    if replaced is not None and replaced[1] is not None:
        close_channels(broker, replaced[1])  # before revocation, so it stops pushing at once
    try:
        # One connect at a time per link (row lock across workers): two tabs finishing at once
        # must not each keep the channel they opened. Only notifications from the channel kept
        # are acted on.
        with _lock_for(("channels", link.id)):
            session.execute(
                select(ProfileLink.id).where(ProfileLink.id == link.id).with_for_update()
            )
            link.channel_id = one_channel(
                broker,
                creds,
                push_url(link.id),
                on_refresh=_persist_refresh(session, cipher, link.id),
            )
            session.commit()  # releases the row lock
    except broker_errors.BrokerError as exc:
        session.rollback()
        # The link works without push; changes are then picked up by reconciliation.
        log.warning("could not open a push channel for link %s: %s", link.id, type(exc).__name__)
        record(
            session,
            actor,
            "calendar.channel_failed",
            outcome="failure",
            target_type="profile_link",
            target_id=link.id,
            detail={"error": type(exc).__name__},
        )
        session.commit()
    return link


def _other_account(
    session: Session, cipher: TokenCipher, actor: Actor, sub: str
) -> tuple[str, Credentials | None] | None:
    """The account (sub, and credentials if still readable) the person's own live Business
    Connect row holds, when they are now linking a different one into it."""
    own = link_of(session, actor.user_id)
    if (
        own is None
        or own.mode is not LinkMode.BUSINESS
        or own.sub == sub
        or not own.has_tokens
        or session.scalar(select(ProfileLink.id).where(ProfileLink.sub == sub)) is not None
    ):
        return None
    try:
        return own.sub, load_credentials(own, cipher)
    except (ReconnectNeeded, DecryptionFailed):
        return own.sub, None


# ---------------------------------------------------------------------------------------------
# Push channels: one per linked account


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


def calendars_of(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink
) -> tuple[Calendar, ...]:
    """The calendars the link can see right now, read from the aggregator."""
    return call_broker(
        session,
        broker,
        cipher,
        link,
        lambda creds, on_refresh: broker.calendars(creds, on_refresh=on_refresh),
    )


def choose_calendars(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    target_calendar_id: str,
    conflict_calendar_ids: Sequence[str],
) -> ProfileLink:
    """Pick where interviews are written (writable only) and which calendars count as busy."""
    link = link_of(session, actor.user_id)
    if link is None or link.status is LinkStatus.DISCONNECTED:
        raise NotFound("You have no connected calendar.")
    calendars = {c.calendar_id: c for c in calendars_of(session, broker, cipher, link)}
    target = calendars.get(target_calendar_id or "")
    if target is None or target.deleted:
        raise Invalid("Choose one of your calendars.", field="target_calendar_id")
    if target.readonly:
        raise Invalid(
            f"“{target.name}” is read-only, so interviews cannot be written to it. "
            "Choose a writable calendar.",
            field="target_calendar_id",
        )
    unknown = [c for c in conflict_calendar_ids if c not in calendars]
    if unknown:
        raise Invalid("Choose busy calendars from the list.", field="conflict_calendar_ids")
    link.target_calendar_id = target.calendar_id
    link.conflict_calendar_ids = sorted(set(conflict_calendar_ids) | {target.calendar_id})
    record(
        session,
        actor,
        "calendar.settings_changed",
        target_type="profile_link",
        target_id=link.id,
        detail={"busy_calendars": len(link.conflict_calendar_ids)},
    )
    session.commit()
    return link


@dataclass(frozen=True)
class DisconnectReport:
    account_email: str | None
    revoked_at_aggregator: bool
    tokens_deleted: bool
    events_kept: int


def disconnect(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    actor: Actor,
    *,
    events_kept: int = 0,
) -> DisconnectReport:
    """Revoke at the aggregator, delete the tokens now, keep the link's ids for its events."""
    link = link_of(session, actor.user_id)
    if link is None or link.status is LinkStatus.DISCONNECTED:
        raise NotFound("You have no connected calendar.")
    if link.mode is LinkMode.ENTERPRISE:
        raise Forbidden("Your organisation linked this calendar; your IT admin can unlink it.")
    revoked = False
    if broker is not None and link.has_tokens:
        whole = True
        try:
            creds = load_credentials(link, cipher)
            profiles = broker.profiles(creds)
            whole = sum(1 for p in profiles if p.connected) <= 1
        except (broker_errors.BrokerError, ReconnectNeeded, DecryptionFailed):
            pass
        revoked = _revoke_remote(broker, cipher, link, whole_account=whole)
    had_tokens = link.has_tokens
    forget_tokens(link)
    link.status = LinkStatus.DISCONNECTED
    record(
        session,
        actor,
        "calendar.disconnected",
        target_type="profile_link",
        target_id=link.id,
        target_label=link.account_email,
        outcome="success" if revoked or not had_tokens else "partial",
        detail={"revoked_at_aggregator": revoked, "tokens_deleted": had_tokens},
    )
    session.commit()
    return DisconnectReport(link.account_email, revoked, had_tokens, events_kept)


def not_from_its_channel(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link: ProfileLink,
    channel_id: str | None,
    profile_id: str | None = None,
) -> str | None:
    """Why a correctly signed notification that arrived at ``link``'s URL is not for it, or None
    when it is. The signature only proves the aggregator sent it, to somebody: a body captured
    from one's own channel can be replayed to any link's URL. So it must name the channel
    opened for this link, and a profile it names must be the link's. For a link from before
    channel ids were stored, the channel is confirmed once in the account's own channel list
    at the aggregator (another account's channel is never there) and stored."""
    if not channel_id:
        return "no channel"
    if (
        link.channel_id is None
        and broker is not None
        and link.has_tokens
        and link.status is LinkStatus.ACTIVE
    ):
        try:
            channels = call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.channels(creds, on_refresh=on_refresh),
            )
        except ServiceError:
            return "channel unconfirmed"
        if any(c.channel_id == channel_id for c in channels):
            link.channel_id = channel_id
            session.commit()
    if link.channel_id != channel_id:
        return "another channel"
    if profile_id and link.profile_id and profile_id != link.profile_id:
        return "another profile"
    return None


def ignore_notification(
    session: Session,
    link: ProfileLink,
    reason: str,
    *,
    notification_type: str,
    channel_id: str | None,
    first_time: Callable[[str], bool],
) -> str:
    """Audit a notification that was not for ``link`` (once per link, channel, type and reason:
    replaying it a thousand times writes one entry) and change nothing."""
    if first_time(f"{link.id}/{channel_id}/{notification_type}/{reason}"):
        record(
            session,
            None,
            "webhook.foreign_notification",
            outcome="denied",
            organisation_id=link.organisation_id,
            target_type="profile_link",
            target_id=link.id,
            detail={
                "type": notification_type[:40],
                "reason": reason,
                "channel_id": (channel_id or "")[:64] or None,
            },
        )
        session.commit()
    return f"ignored ({reason})"


def handle_push(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link_id: int,
    notification_type: str,
    *,
    channel_id: str | None,
    profile_id: str | None = None,
    first_time: Callable[[str], bool],
) -> str:
    """Apply a verified push notification for a link; idempotent. Returns what was done:
    for ``profile_disconnected`` naming no profile, "check" means the caller should run
    :func:`check_profile` (which of the account's profiles it concerns, the aggregator says).

    (``change`` notifications never get here: the webhook queues the scheduling job directly,
    which makes the same channel check.)"""
    link = session.get(ProfileLink, link_id)
    if link is None or link.status is LinkStatus.DISCONNECTED:
        return "ignored"
    if notification_type != "profile_disconnected":
        return "acknowledged"  # verification and the like change nothing
    reason = not_from_its_channel(session, broker, cipher, link, channel_id, profile_id)
    if reason is not None:
        return ignore_notification(
            session,
            link,
            reason,
            notification_type=notification_type,
            channel_id=channel_id,
            first_time=first_time,
        )
    if link.status is LinkStatus.NEEDS_ATTENTION:
        return "already marked"
    if not profile_id:
        return "check"  # another profile of the same account must leave this link alone
    mark_needs_attention(
        session, link, "profile_disconnected notification", Attention.PROFILE_DISCONNECTED
    )
    session.commit()
    return "marked"


# ---------------------------------------------------------------------------------------------
# A disconnected profile coming back
#
# When the provider drops a profile's credentials, the aggregator emails the person a link to
# sign in again (also ``profile_relink_url``); once they do, syncing resumes, ``change``
# notifications come again and ``profile_connected`` is true in userinfo/profiles. So a link
# blocked for that reason is checked against the aggregator, on the next ``change`` for its
# channel and periodically, and unblocked when its own profile is connected again.


@dataclass(frozen=True)
class ProfileCheck:
    #: connected (was fine), recovered, disconnected, refused (our authorization is gone),
    #: unreachable (try later) or skipped (nothing the aggregator could tell us).
    outcome: str
    #: Where the person signs in again at the aggregator, while disconnected.
    relink_url: str | None = None


def recoverable(link: ProfileLink) -> bool:
    """Whether the aggregator alone can bring the link back (a disconnected profile)."""
    return (
        link.status is LinkStatus.NEEDS_ATTENTION
        and link.has_tokens
        and link.attention is not Attention.RECONNECT
    )


def check_profile(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink
) -> ProfileCheck:
    """Ask the aggregator whether the link's own calendar profile is connected, and block or
    unblock the link accordingly (audited). Only that profile counts: another profile of the
    same account being disconnected leaves this link alone."""
    if (
        link.status is LinkStatus.DISCONNECTED
        or not link.has_tokens
        or (link.status is LinkStatus.NEEDS_ATTENTION and not recoverable(link))
    ):
        return ProfileCheck("skipped")
    try:
        creds, persist = _fresh_credentials(session, broker, cipher, link)
        profiles = broker.profiles(creds, on_refresh=persist)
    except ReconnectNeeded:  # refresh refused: marked by _fresh_credentials
        return ProfileCheck("refused")
    except DecryptionFailed:
        return ProfileCheck("skipped")
    except broker_errors.NeedsReauth as exc:
        mark_needs_attention(session, link, type(exc).__name__, _attention_for(exc))
        session.commit()
        return ProfileCheck("refused" if link.attention is Attention.RECONNECT else "disconnected")
    except (broker_errors.BrokerError, AggregatorTrouble):
        return ProfileCheck("unreachable")
    own = (
        [p for p in profiles if p.profile_id == link.profile_id]
        if link.profile_id
        else list(profiles)
    )
    if not own:  # the profile left the account (revoked there): only linking again helps
        mark_needs_attention(session, link, "profile no longer in the account")
        session.commit()
        return ProfileCheck("refused")
    down = [p for p in own if not p.connected]
    if down:
        mark_needs_attention(
            session, link, "profile not connected at the aggregator", Attention.PROFILE_DISCONNECTED
        )
        session.commit()
        return ProfileCheck("disconnected", down[0].relink_url)
    if link.status is LinkStatus.ACTIVE:
        return ProfileCheck("connected")
    # Conditional, so a check running in another worker at the same time audits nothing twice.
    back = session.execute(
        update(ProfileLink)
        .where(ProfileLink.id == link.id, ProfileLink.status == LinkStatus.NEEDS_ATTENTION)
        .values(status=LinkStatus.ACTIVE, attention=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if back:
        record(
            session,
            None,
            "calendar.reconnected",
            organisation_id=link.organisation_id,
            target_type=link.__tablename__,
            target_id=link.id,
            target_label=link.account_email,
            detail={"via": "aggregator", "mode": link.mode.value},
        )
    session.commit()
    session.refresh(link)
    return ProfileCheck("recovered" if back else "connected")


def recover_link(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link_id: int
) -> str:
    """Before following a ``change`` for a blocked link: changes come again once the profile is
    back, so ask whether it is. Returns the check's outcome ("active" if it was never blocked)."""
    link = session.get(ProfileLink, link_id)
    if link is None or link.status is not LinkStatus.NEEDS_ATTENTION:
        return "active" if link is not None and link.status is LinkStatus.ACTIVE else "ignored"
    return check_profile(session, broker, cipher, link).outcome


#: Links checked per run of the periodic check (the rest wait for the next run).
RECOVERY_BATCH = 200


def recover_disconnected(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, limit: int = RECOVERY_BATCH
) -> dict[str, int]:
    """The periodic check: every link blocked by a disconnected profile (not by a refused
    authorization) asks the aggregator once; stops early when the aggregator is busy."""
    counts: dict[str, int] = defaultdict(int)
    ids = list(
        session.scalars(
            select(ProfileLink.id)
            .where(
                ProfileLink.status == LinkStatus.NEEDS_ATTENTION,
                ProfileLink.refresh_token.is_not(None),
                (ProfileLink.attention.is_(None)) | (ProfileLink.attention != Attention.RECONNECT),
            )
            .order_by(func.random())
            .limit(limit)
        )
    )  # a fair share of a long list each run
    for link_id in ids:
        link = session.get(ProfileLink, link_id)
        outcome = check_profile(session, broker, cipher, link).outcome
        counts[outcome] += 1
        if outcome == "unreachable":
            break  # busy or down: the next run goes on
    return dict(counts)
