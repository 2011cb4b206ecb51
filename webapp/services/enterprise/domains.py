"""Enterprise Connect domains: the IT admin connects a domain's service account (the browser goes
to the aggregator and back), lists the organisation's domains, and reads what the service
account can see."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import DEFAULT_USER_SCOPE, Credentials, Resource
from models import LinkStatus, Role, ServiceAccountLink, utcnow
from webapp.security import TokenCipher
from webapp.services import Actor, JobQueue, credentials, oauth_states, revocations
from webapp.services.audit import record
from webapp.services.errors import (
    Forbidden,
    Invalid,
    NotFound,
    ReconnectNeeded,
    ServiceAccountTrouble,
)

FLOW = "enterprise_connect"
#: Aggregator ``provider_name`` → what the admin sees.
PROVIDERS: dict[str, str] = {
    "exchange": "Exchange",
    "office365": "Microsoft 365 / Office 365",
    "google": "Google Workspace",
}


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only IT admins can manage Enterprise Connect.")


def of_organisation(session: Session, organisation_id: int) -> list[ServiceAccountLink]:
    """The organisation's connected (or attention-needing) domains."""
    return list(
        session.scalars(
            select(ServiceAccountLink)
            .where(
                ServiceAccountLink.organisation_id == organisation_id,
                ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            )
            .order_by(ServiceAccountLink.id)
        )
    )


def domain_link(session: Session, actor: Actor, link_id: int) -> ServiceAccountLink:
    link = session.get(ServiceAccountLink, link_id)
    if link is None or link.organisation_id != actor.organisation_id:
        raise NotFound("Your organisation has no connected domain with this id.")
    return link


# ---------------------------------------------------------------------------------------------
# Connecting the domain (the admin's browser goes to the aggregator and back)


def begin(
    session: Session,
    broker: CalendarBroker,
    actor: Actor,
    *,
    provider: str,
    session_nonce: str,
    redirect_uri: str,
) -> str:
    """Create a one-time state and return the aggregator's Enterprise Connect URL."""
    require_admin(actor)
    if provider not in PROVIDERS:
        raise Invalid(
            "Choose Exchange (on-premises), Microsoft 365 / Office 365 or Google Workspace.",
            field="provider",
        )
    state = oauth_states.issue(session, actor, flow=FLOW, session_nonce=session_nonce)
    record(session, actor, "ec.connect_started", detail={"provider": provider})
    session.commit()
    return broker.enterprise_connect_url(redirect_uri, state, delegated_scope=DEFAULT_USER_SCOPE)


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
    jobs: JobQueue,
) -> ServiceAccountLink:
    """Check the state, redeem the code, and store the service account for its domain; queue
    the sending of mailbox requests that waited for it (a reconnected service account)."""
    require_admin(actor)
    code = oauth_states.redirect_code(
        session,
        actor,
        flow=FLOW,
        state=state,
        session_nonce=session_nonce,
        error=error,
        code=code,
        audit_prefix="ec",
        declined="The administrator consent was declined, so no domain was connected.",
    )
    try:
        creds = broker.exchange_code(code, redirect_uri)
        info = broker.userinfo(creds)
    except broker_errors.BrokerError as exc:
        record(
            session,
            actor,
            "ec.connect_failed",
            outcome="failure",
            detail={"error": type(exc).__name__},
        )
        session.commit()
        raise credentials.broker_problem(exc) from None
    if info.kind != "service_account":
        record(
            session,
            actor,
            "ec.connect_failed",
            outcome="failure",
            detail={"error": "not a service account"},
        )
        session.commit()
        try:
            broker.revoke(creds.refresh_token)
        except broker_errors.BrokerError:
            pass
        raise Invalid(
            "The calendar service returned a personal account, not a service account. "
            "Nothing was stored."
        )
    sub = creds.sub or creds.service_account_id or info.sub
    email = (info.email or "").lower() or None
    domain = (info.domain or (email.split("@", 1)[1] if email and "@" in email else "")).lower()
    if not domain:
        raise Invalid("The calendar service did not say which domain was authorized.")
    clash = session.scalar(
        select(ServiceAccountLink).where(
            ServiceAccountLink.sub == sub,
            ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            ServiceAccountLink.organisation_id != actor.organisation_id,
        )
    )
    if clash is not None:
        record(
            session,
            actor,
            "ec.connect_rejected",
            outcome="denied",
            detail={"reason": "service account linked by another organisation"},
        )
        session.commit()
        raise Invalid("This service account is already linked to another organisation.")
    link = session.scalar(
        select(ServiceAccountLink).where(
            ServiceAccountLink.organisation_id == actor.organisation_id,
            ServiceAccountLink.domain == domain,
        )
    )
    reconnected = link is not None and link.status is not LinkStatus.DISCONNECTED
    if link is None:
        link = ServiceAccountLink(organisation_id=actor.organisation_id, domain=domain)
        session.add(link)
    link.provider = (info.provider_name or "")[:32] or "unknown"
    link.sub = sub
    link.account_email = email
    link.scope = (creds.scope or info.scope or "")[:500]
    link.delegated_scope = (info.delegated_scope or " ".join(DEFAULT_USER_SCOPE))[:500]
    link.status = LinkStatus.ACTIVE
    link.connected_by_id = actor.user_id
    link.linked_at = utcnow()
    session.flush()
    credentials.store_credentials(link, creds, cipher)
    revocations.cancel(session, sub)
    record(
        session,
        actor,
        "ec.reconnected" if reconnected else "ec.connected",
        target_type="service_account_link",
        target_id=link.id,
        target_label=domain,
        detail={"provider": link.provider, "scope": link.scope},
    )
    session.commit()
    from webapp.services.enterprise.mailboxes import counts  # (mailboxes imports this module)

    if counts(session, link.id)["queued"]:
        jobs.enqueue("enterprise.send_batches", link.id)
    return link


def service_account_credentials(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """The service account's credentials, refreshed under the shared per-link lock if due."""
    try:
        return credentials.usable_credentials(session, broker, cipher, link)
    except ReconnectNeeded:
        raise ServiceAccountTrouble(
            f"The service account for {link.domain} needs to be connected again "
            "(Connect the domain once more)."
        ) from None


def resources(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> tuple[Resource, ...]:
    """Rooms and resources the service account can see (read now, never stored)."""
    creds, persist = service_account_credentials(session, broker, cipher, link)
    try:
        return broker.resources(creds, on_refresh=persist)
    except broker_errors.NeedsReauth:
        credentials.mark_needs_attention(session, link, "resources refused")
        session.commit()
        raise ServiceAccountTrouble(
            f"The service account for {link.domain} needs to be connected again."
        ) from None
    except broker_errors.BrokerError as exc:
        raise credentials.broker_problem(exc) from None


_TENANT = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)$"
)
_APP_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def admin_consent_url(tenant: str, app_id: str) -> str:
    """Azure AD's tenant-wide admin-consent URL for the calendar service's application."""
    tenant, app_id = tenant.strip().lower(), app_id.strip().lower()
    if not _TENANT.match(tenant):
        raise Invalid(
            "Enter a tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com.",
            field="tenant",
        )
    if not _APP_ID.match(app_id):
        raise Invalid(
            "The application id is a GUID such as 00000000-0000-0000-0000-000000000000.",
            field="app_id",
        )
    return f"https://login.microsoftonline.com/{tenant}/adminconsent?client_id={app_id}"
