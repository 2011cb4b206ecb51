"""Signing in through the organisation's identity provider.

``start`` finds the organisation by the address's domain (only organisations that verified that
domain through Enterprise Connect and switched single sign-on on), and sends the person to its
provider with a one-time state, a nonce and a PKCE challenge. ``finish`` uses the state up
(bound to the browser session, within minutes), redeems the code, validates the ID token and
signs the person in to their account in THAT organisation, creating it on a first sign-in if
the IT admin allows. Every refusal is audited and changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Organisation, SsoConfig, SsoState, User, utcnow
from webapp import security
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import Actor, rowcount
from webapp.services.accounts import (
    VERIFYING_PROVIDERS,
    normalise_email,
    valid_email,
)
from webapp.services.audit import record
from webapp.services.errors import Invalid, NotFound, StateRejected, Unavailable
from webapp.services.sso import oidc
from webapp.services.sso.admission import admit
from webapp.services.sso.refusal import SsoRefused, refuse
from webapp.services.sso.settings import client_secret

#: How long a sign-in sent to the provider may take (RFC 9700: short-lived).
STATE_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and what the browser's session keeps until it comes back
    (the PKCE verifier and nonce: the database keeps only hashes)."""

    url: str
    pending: dict


def organisations_for(session: Session, email: str) -> list[Organisation]:
    """The organisations whose single sign-on covers this address: they verified its domain and
    switched single sign-on on. Usually one; several only when several verified the domain."""
    from models import LinkStatus, ServiceAccountLink

    domain = email.rsplit("@", 1)[-1]
    return list(
        session.scalars(
            select(Organisation)
            .join(SsoConfig, SsoConfig.organisation_id == Organisation.id)
            .join(ServiceAccountLink, ServiceAccountLink.organisation_id == Organisation.id)
            .where(
                SsoConfig.enabled.is_(True),
                ServiceAccountLink.domain == domain,
                ServiceAccountLink.provider.in_(VERIFYING_PROVIDERS),
                ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            )
            .order_by(Organisation.name, Organisation.id)
            .distinct()
        )
    )


def check_email(email: str) -> str:
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid("Enter your work email address.", field="email")
    return email


def start(
    session: Session,
    actor: Actor,
    *,
    email: str,
    organisation_id: int | None,
    session_nonce: str,
    redirect_uri: str,
    insecure_ok: bool,
) -> Started:
    """Begin a sign-in for ``email`` (in ``organisation_id`` when the person chose one of
    several). Raises NotFound when no organisation signs in that domain with SSO."""
    email = check_email(email)
    candidates = organisations_for(session, email)
    if organisation_id is not None:
        candidates = [o for o in candidates if o.id == organisation_id]
    if not candidates:
        record(
            session,
            actor,
            "sso.login_refused",
            outcome="denied",
            target_label=email.rsplit("@", 1)[-1],
            detail={"reason": "no organisation signs in this domain"},
        )
        session.commit()
        raise NotFound(
            "No organisation signs in with single sign-on for that address. Log in with your "
            "password, or ask your IT admin."
        )
    if len(candidates) > 1:
        raise ChooseOrganisation(candidates)
    org = candidates[0]
    config = session.scalar(select(SsoConfig).where(SsoConfig.organisation_id == org.id))
    assert config is not None
    provider = oidc.discover(config.issuer, insecure_ok=insecure_ok)
    request = oidc.authorization(provider, config.client_id, redirect_uri, login_hint=email)
    session.add(
        SsoState(
            organisation_id=org.id,
            state_hash=security.token_hash(request.state),
            nonce_hash=security.token_hash(request.nonce),
            session_binding=security.token_hash(session_nonce),
            expires_at=utcnow() + STATE_LIFETIME,
        )
    )
    record(
        session,
        actor,
        "sso.login_started",
        organisation_id=org.id,
        target_label=email,
    )
    session.commit()
    return Started(
        url=request.url,
        pending={
            "state": request.state,
            "nonce": request.nonce,
            "verifier": request.code_verifier,
        },
    )


class ChooseOrganisation(Invalid):
    """Several organisations verified the address's domain: the person chooses one."""

    def __init__(self, organisations: list[Organisation]):
        super().__init__("Choose the organisation to sign in to.")
        self.organisations = organisations


def _use_state(
    session: Session,
    actor: Actor,
    *,
    state: str | None,
    pending: dict | None,
    session_nonce: str | None,
) -> SsoState:
    row = None
    if state and len(state) <= 128:
        row = session.scalar(
            select(SsoState).where(SsoState.state_hash == security.token_hash(state))
        )
    reason = None
    if row is None:
        reason = "state missing" if not state else "state unknown"
    elif row.used_at is not None:
        reason = "state replayed"
    elif not session_nonce or not security.same_token(
        row.session_binding, security.token_hash(session_nonce)
    ):
        reason = "state from another browser session"
    elif row.expires_at <= utcnow():
        reason = "state expired"
    elif not pending or not security.same_token(str(pending.get("state", "")), state or ""):
        reason = "state from another browser session"
    if reason:
        refuse(session, actor, row.organisation_id if row else None, reason)
        raise StateRejected(
            "This sign-in is not valid any more (it was used already, expired, or started in "
            "another browser). Nothing was changed; please start again."
        )
    assert row is not None
    # Used up before the code is redeemed: a replay can never redeem twice, even concurrently.
    claimed = rowcount(
        session.execute(
            update(SsoState)
            .where(SsoState.id == row.id, SsoState.used_at.is_(None))
            .values(used_at=utcnow())
        )
    )
    session.commit()
    if claimed != 1:
        refuse(session, actor, row.organisation_id, "state replayed")
        raise StateRejected(
            "This sign-in was used already. Nothing was changed; please start again."
        )
    return row


def finish(
    session: Session,
    cipher: TokenCipher,
    actor: Actor,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    pending: dict | None,
    session_nonce: str | None,
    redirect_uri: str,
    insecure_ok: bool,
) -> User:
    """Complete a sign-in the provider sent back; the user to start a session for."""
    row = _use_state(session, actor, state=state, pending=pending, session_nonce=session_nonce)
    assert pending is not None
    org_id = row.organisation_id
    if error:
        refuse(session, actor, org_id, f"provider error: {error[:40]}")
        raise SsoRefused(
            "The sign-in was cancelled or refused at your identity provider. Nothing was changed.",
            "provider error",
        )
    if not code or len(code) > 2048:
        refuse(session, actor, org_id, "no code")
        raise Invalid("The identity provider sent no authorization code; please start again.")
    nonce = str(pending.get("nonce", ""))
    if not security.same_token(row.nonce_hash, security.token_hash(nonce)):
        refuse(session, actor, org_id, "nonce does not match")
        raise StateRejected("This sign-in is not valid any more; please start again.")
    config = session.scalar(select(SsoConfig).where(SsoConfig.organisation_id == org_id))
    if config is None or not config.enabled:
        refuse(session, actor, org_id, "single sign-on switched off")
        raise SsoRefused("Single sign-on is switched off for this organisation.", "off")
    try:
        secret = client_secret(cipher, config)
    except DecryptionFailed:
        refuse(session, actor, org_id, "client secret unreadable")
        raise Unavailable(
            "Single sign-on is not usable: ask your IT admin to enter the client secret again."
        ) from None
    try:
        provider = oidc.discover(config.issuer, insecure_ok=insecure_ok)
        identity = oidc.redeem(
            provider,
            config.client_id,
            secret,
            redirect_uri,
            code=code,
            code_verifier=str(pending.get("verifier", "")),
            nonce=nonce,
            insecure_ok=insecure_ok,
        )
    except oidc.IdTokenRejected as exc:
        refuse(session, actor, org_id, exc.reason)
        raise
    except oidc.IdpTrouble:
        refuse(session, actor, org_id, "provider unreachable")
        raise
    return admit(session, actor, config, identity)
