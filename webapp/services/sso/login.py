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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Organisation, SsoConfig, SsoState, User, utcnow
from webapp import security
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import Actor, rowcount
from webapp.services.accounts import (
    VERIFYING_PROVIDERS,
    acting_as,
    normalise_email,
    valid_email,
    verified_domains,
)
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid, NotFound, StateRejected, Unavailable
from webapp.services.sso import oidc
from webapp.services.sso.settings import client_secret

#: How long a sign-in sent to the provider may take (RFC 9700: short-lived).
STATE_LIFETIME = timedelta(minutes=10)


class SsoRefused(Forbidden):
    """The provider signed someone in whom we do not let in; ``reason`` is for the audit."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


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


def _refuse(
    session: Session,
    actor: Actor,
    organisation_id: int | None,
    reason: str,
    *,
    label: str | None = None,
) -> None:
    record(
        session,
        actor,
        "sso.login_refused",
        outcome="denied",
        organisation_id=organisation_id,
        target_label=label,
        detail={"reason": reason},
    )
    session.commit()


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
        _refuse(session, actor, row.organisation_id if row else None, reason)
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
        _refuse(session, actor, row.organisation_id, "state replayed")
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
        _refuse(session, actor, org_id, f"provider error: {error[:40]}")
        raise SsoRefused(
            "The sign-in was cancelled or refused at your identity provider. Nothing was changed.",
            "provider error",
        )
    if not code or len(code) > 2048:
        _refuse(session, actor, org_id, "no code")
        raise Invalid("The identity provider sent no authorization code; please start again.")
    nonce = str(pending.get("nonce", ""))
    if not security.same_token(row.nonce_hash, security.token_hash(nonce)):
        _refuse(session, actor, org_id, "nonce does not match")
        raise StateRejected("This sign-in is not valid any more; please start again.")
    config = session.scalar(select(SsoConfig).where(SsoConfig.organisation_id == org_id))
    if config is None or not config.enabled:
        _refuse(session, actor, org_id, "single sign-on switched off")
        raise SsoRefused("Single sign-on is switched off for this organisation.", "off")
    try:
        secret = client_secret(cipher, config)
    except DecryptionFailed:
        _refuse(session, actor, org_id, "client secret unreadable")
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
        _refuse(session, actor, org_id, exc.reason)
        raise
    except oidc.IdpTrouble:
        _refuse(session, actor, org_id, "provider unreachable")
        raise
    return _admit(session, actor, config, identity)


def _bound(session: Session, config: SsoConfig, identity: oidc.Identity) -> User | None:
    """The account of the organisation that signed in with this identity before."""
    return session.scalar(
        select(User).where(
            User.organisation_id == config.organisation_id,
            User.sso_issuer == oidc.normalise_issuer(config.issuer),
            User.sso_sub == identity.subject,
        )
    )


#: Attempts at a first sign-in that collided with another one binding the same account or
#: identity at the same moment (double-click, two tabs): each retry reads what the other one
#: committed, so the second attempt settles it.
ADMIT_ATTEMPTS = 3


class _Collided(Exception):
    """Another sign-in bound the account or the identity between our read and our write."""


def _admit(session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity) -> User:
    """The account in the configuration's organisation for this identity: the one bound to its
    (issuer, sub) since an earlier sign-in, else (a first sign-in) the account at its address,
    which must be verified and at one of the organisation's verified domains; never an account
    of another organisation, and never one bound to another identity.

    Concurrent first sign-ins (across workers) settle on one binding: the account row is
    inserted under the unique (organisation, email) and (organisation, issuer, sub) constraints
    and bound by a conditional UPDATE that only succeeds while the binding is still what we
    read; the loser rolls back and reads again, so the same identity signs in to the account
    the winner opened, and another identity is refused like any address bound to someone
    else."""
    for _ in range(ADMIT_ATTEMPTS):
        user = _bound(session, config, identity)
        if user is not None:
            return _sign_in_bound(session, actor, config, identity, user)
        try:
            return _bind_first(session, actor, config, identity)
        except _Collided:
            session.rollback()
    _refuse(session, actor, config.organisation_id, "identity bound concurrently")
    raise SsoRefused(
        "This sign-in collided with others for the same account. Nothing was changed; please "
        "sign in again.",
        "concurrent",
    )


def _bind_first(session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity) -> User:
    issuer = oidc.normalise_issuer(config.issuer)
    try:
        user = _first_sign_in(session, actor, config, identity)
        # Bound only if nobody changed the binding since we read it (a new row: only if no
        # concurrent sign-in inserted the address or the identity first).
        claimed = rowcount(
            session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    User.sso_issuer.is_not_distinct_from(user.sso_issuer),
                    User.sso_sub.is_not_distinct_from(user.sso_sub),
                )
                .values(sso_issuer=issuer, sso_sub=identity.subject, last_login_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            raise _Collided
        session.refresh(user, ["sso_issuer", "sso_sub", "last_login_at"])
        record(
            session,
            acting_as(user, actor),
            "sso.login",
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            detail={"bound": True},
        )
        session.commit()
    except IntegrityError:
        raise _Collided from None
    return user


def _sign_in_bound(
    session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity, user: User
) -> User:
    """A later sign-in: the identity decides the account, whatever address the provider names
    now (an address changed there never opens another account)."""
    if not user.active:
        _refuse(session, actor, config.organisation_id, "inactive", label=user.email)
        raise SsoRefused(
            "Your account is deactivated. Ask your IT admin to reactivate it.", "inactive"
        )
    if user.invite_token_hash is not None:
        user.invite_token_hash = None
        user.invite_expires_at = None
    user.last_login_at = utcnow()
    detail = {"address_changed_at_provider": True} if identity.email != user.email else None
    record(
        session,
        acting_as(user, actor),
        "sso.login",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail=detail,
    )
    session.commit()
    return user


def _first_sign_in(
    session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity
) -> User:
    """The account a first sign-in of this identity opens (made if the admin allows)."""
    org_id = config.organisation_id
    email = identity.email
    if identity.email_verified is False:
        _refuse(session, actor, org_id, "email not verified", label=email)
        raise SsoRefused(
            "Your identity provider says your email address is not verified.", "unverified"
        )
    domains = {link.domain for link in verified_domains(session, org_id)}
    if not valid_email(email) or email.rsplit("@", 1)[-1] not in domains:
        _refuse(session, actor, org_id, "foreign domain", label=email.rsplit("@", 1)[-1])
        raise SsoRefused(
            "Your address is not at one of your organisation's verified domains, so it cannot "
            "sign in here. Nothing was changed.",
            "foreign domain",
        )
    user = session.scalar(select(User).where(User.organisation_id == org_id, User.email == email))
    issuer = oidc.normalise_issuer(config.issuer)
    if user is not None and (user.sso_issuer, user.sso_sub) == (issuer, identity.subject):
        # A concurrent sign-in of this same identity bound the account after we looked for
        # it: read again and sign in to it.
        raise _Collided
    if user is not None and user.sso_sub is not None and user.sso_issuer == issuer:
        # The address is another identity's account at this provider (the address was given
        # to someone new there, or the account was recreated): it never opens it.
        _refuse(session, actor, org_id, "address bound to another identity", label=email)
        raise SsoRefused(
            "This address belongs to an account that signs in with another identity at your "
            "identity provider, so it cannot be opened with yours. Ask your IT admin. Nothing "
            "was changed.",
            "other identity",
        )
    if user is not None and not user.active:
        _refuse(session, actor, org_id, "inactive", label=email)
        raise SsoRefused(
            "Your account is deactivated. Ask your IT admin to reactivate it.", "inactive"
        )
    if user is not None and user.is_directory_person:
        # A directory person (a mailbox linked for them, no login yet): signing in gives them
        # the login the admin allows first sign-ins, keeping their row and calendar link.
        if not config.create_accounts:
            _refuse(session, actor, org_id, "no login", label=email)
            raise SsoRefused(
                "You have no login in this organisation yet. Ask your IT admin to invite you "
                "to log in. Nothing was changed.",
                "no account",
            )
        user.role = config.default_role
        user.session_version += 1
        record(
            session,
            acting_as(user, actor),
            "sso.user_created",
            target_type="user",
            target_id=user.id,
            target_label=email,
            detail={"role": user.role.value, "from": "directory"},
        )
    elif user is None:
        if not config.create_accounts:
            _refuse(session, actor, org_id, "no account", label=email)
            raise SsoRefused(
                "You have no account in this organisation yet. Ask your IT admin to invite "
                "you. Nothing was changed.",
                "no account",
            )
        name = (identity.name or "").strip()[:200] or email.split("@", 1)[0]
        user = User(
            organisation_id=org_id,
            email=email,
            name=name,
            role=config.default_role,
            password_hash=None,
            active=True,
            session_version=1,
        )
        session.add(user)
        session.flush()
        record(
            session,
            acting_as(user, actor),
            "sso.user_created",
            target_type="user",
            target_id=user.id,
            target_label=email,
            detail={"role": user.role.value},
        )
    elif user.invite_token_hash is not None:
        # Signing in through the provider completes an open invitation.
        user.invite_token_hash = None
        user.invite_expires_at = None
    return user
