"""Business Connect: people link their own (or a delegated) calendar account, relink it and
disconnect it; IT admins switch the feature on, off, or reset it for the whole organisation.

Locally only the link is kept (ids, provider, account email, chosen calendar ids, encrypted
tokens). Calendars and their names are read from the aggregator whenever a page needs them
(:mod:`webapp.services.calendars`); tokens are kept and used through
:mod:`webapp.services.credentials`, the one-time OAuth states through
:mod:`webapp.services.oauth_states`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Credentials, LinkingProfile, UserInfo
from models import LinkMode, LinkStatus, Organisation, ProfileLink, Role, utcnow
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import Actor, JobQueue, oauth_states, revocations
from webapp.services.audit import record
from webapp.services.credentials import (
    broker_problem,
    close_channels,
    default_calendar,
    disconnect_here,
    forget_tokens,
    load_credentials,
    lock_for,
    one_channel,
    persist_refresh,
    revoke_at_aggregator,
    store_credentials,
)
from webapp.services.errors import Forbidden, Invalid, NotFound, ReconnectNeeded

log = logging.getLogger("webapp.services.connect")

BUSINESS_FLOW = "business_connect"
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


# ---------------------------------------------------------------------------------------------
# Organisation switch (IT admin)


def _require(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role cannot do this.")


def organisation(session: Session, actor: Actor) -> Organisation:
    org = session.get(Organisation, actor.organisation_id)
    if org is None:
        raise NotFound("There is no such organisation.")
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


def business_links(session: Session, organisation_id: int | None) -> list[ProfileLink]:
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


def reset_business_connect(
    session: Session, cipher: TokenCipher, actor: Actor, *, jobs: JobQueue
) -> RevokeReport:
    """Disconnect every Business Connect link of the organisation: tokens are deleted now and
    the authorizations revoked at the aggregator by the ``revocations.run`` job queued here."""
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
    jobs.enqueue("revocations.run")
    return report


# ---------------------------------------------------------------------------------------------
# The person's own link


def link_of(session: Session, user_id: int | None) -> ProfileLink | None:
    """The user's calendar link (including a disconnected one kept for its events); None for
    no user."""
    return session.scalar(
        select(ProfileLink)
        .where(
            ProfileLink.user_id == user_id,
            ProfileLink.delegated_calendar_id.is_(None),  # a colleague's, seen by someone else
        )
        .order_by(ProfileLink.id.desc())
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
    state = oauth_states.issue(session, actor, flow=BUSINESS_FLOW, session_nonce=session_nonce)
    record(session, actor, "calendar.connect_started", detail={"provider": provider})
    session.commit()
    return broker.authorization_url(redirect_uri, state, provider_name=provider)


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
    code = oauth_states.redirect_code(
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
        link.target_calendar_id = default_calendar(calendars, link.profile_id)
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
    if relinked:
        from webapp.services import delegation

        delegation.owner_changed(session, link, "owner relinked their calendar")
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
        with lock_for(("channels", link.id)):
            session.execute(
                select(ProfileLink.id).where(ProfileLink.id == link.id).with_for_update()
            )
            link.channel_id = one_channel(
                broker,
                creds,
                push_url(link.id),
                on_refresh=persist_refresh(session, cipher, link.id),
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


@dataclass(frozen=True)
class DisconnectReport:
    account_email: str | None
    revoked_at_aggregator: bool
    tokens_deleted: bool
    events_kept: int
    #: The aggregator did not take the revocation now: the ``revocations`` job does it.
    revocation_queued: bool = False


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
    revoked = queued = False
    if link.has_tokens:
        whole = True
        if broker is not None:
            try:
                creds = load_credentials(link, cipher)
                profiles = broker.profiles(creds)
                whole = sum(1 for p in profiles if p.connected) <= 1
            except (broker_errors.BrokerError, ReconnectNeeded, DecryptionFailed):
                pass
        if whole:
            # The whole authorization goes: if the aggregator does not take it now, the
            # revocations job does (never dropped with the tokens).
            revoked = revocations.revoke_or_queue(
                session,
                broker,
                cipher,
                link,
                organisation_id=actor.organisation_id,
                reason="calendar.disconnected",
            )
            queued = not revoked
        elif broker is not None:
            # Other calendars of the account stay connected: only this profile goes.
            revoked = revoke_at_aggregator(broker, cipher, link, whole_account=False)
    had_tokens = link.has_tokens
    forget_tokens(link)
    link.status = LinkStatus.DISCONNECTED
    from webapp.services import delegation

    delegation.owner_changed(session, link, "owner disconnected their calendar")
    record(
        session,
        actor,
        "calendar.disconnected",
        target_type="profile_link",
        target_id=link.id,
        target_label=link.account_email,
        outcome="success" if revoked or queued or not had_tokens else "partial",
        detail={
            "revoked_at_aggregator": revoked,
            "revocation_queued": queued,
            "tokens_deleted": had_tokens,
        },
    )
    session.commit()
    return DisconnectReport(link.account_email, revoked, had_tokens, events_kept, queued)
