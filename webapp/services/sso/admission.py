"""Letting the person a provider signed in into THEIR organisation's account: by the identity
(issuer, sub) bound before, or on a first sign-in by verified address, binding it (created if the
IT admin allows). Concurrent first sign-ins settle on one account and one binding: the binding
is a conditional UPDATE under the unique constraints, and a loser reads again."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import SsoConfig, User, utcnow
from webapp.services import Actor, rowcount
from webapp.services.accounts import (
    acting_as,
    valid_email,
    verified_domains,
)
from webapp.services.audit import record
from webapp.services.sso import oidc
from webapp.services.sso.refusal import SsoRefused, refuse


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


def admit(session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity) -> User:
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
    refuse(session, actor, config.organisation_id, "identity bound concurrently")
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
        _audit(session, actor, user, "sso.login", {"bound": True})
        session.commit()
    except IntegrityError:
        raise _Collided from None
    return user


def _audit(session: Session, actor: Actor, user: User, action: str, detail: dict | None) -> None:
    """The audit entry of a sign-in, or of the account one opened, made as the user it is
    about."""
    record(
        session,
        acting_as(user, actor),
        action,
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail=detail,
    )


def _sign_in_bound(
    session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity, user: User
) -> User:
    """A later sign-in: the identity decides the account, whatever address the provider names
    now (an address changed there never opens another account)."""
    if not user.active:
        refuse(session, actor, config.organisation_id, "inactive", label=user.email)
        raise SsoRefused(
            "Your account is deactivated. Ask your IT admin to reactivate it.", "inactive"
        )
    if user.invite_token_hash is not None:
        user.invite_token_hash = None
        user.invite_expires_at = None
    user.last_login_at = utcnow()
    detail = {"address_changed_at_provider": True} if identity.email != user.email else None
    _audit(session, actor, user, "sso.login", detail)
    session.commit()
    return user


def _first_sign_in(
    session: Session, actor: Actor, config: SsoConfig, identity: oidc.Identity
) -> User:
    """The account a first sign-in of this identity opens (made if the admin allows)."""
    org_id = config.organisation_id
    email = identity.email
    if identity.email_verified is False:
        refuse(session, actor, org_id, "email not verified", label=email)
        raise SsoRefused(
            "Your identity provider says your email address is not verified.", "unverified"
        )
    domains = {link.domain for link in verified_domains(session, org_id)}
    if not valid_email(email) or email.rsplit("@", 1)[-1] not in domains:
        refuse(session, actor, org_id, "foreign domain", label=email.rsplit("@", 1)[-1])
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
        refuse(session, actor, org_id, "address bound to another identity", label=email)
        raise SsoRefused(
            "This address belongs to an account that signs in with another identity at your "
            "identity provider, so it cannot be opened with yours. Ask your IT admin. Nothing "
            "was changed.",
            "other identity",
        )
    if user is not None and not user.active:
        refuse(session, actor, org_id, "inactive", label=email)
        raise SsoRefused(
            "Your account is deactivated. Ask your IT admin to reactivate it.", "inactive"
        )
    if user is not None and user.is_directory_person:
        # A directory person (a mailbox linked for them, no login yet): signing in gives them
        # the login the admin allows first sign-ins, keeping their row and calendar link.
        if not config.create_accounts:
            refuse(session, actor, org_id, "no login", label=email)
            raise SsoRefused(
                "You have no login in this organisation yet. Ask your IT admin to invite you "
                "to log in. Nothing was changed.",
                "no account",
            )
        user.role = config.default_role
        user.session_version += 1
        _audit(
            session, actor, user, "sso.user_created", {"role": user.role.value, "from": "directory"}
        )
    elif user is None:
        if not config.create_accounts:
            refuse(session, actor, org_id, "no account", label=email)
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
        _audit(session, actor, user, "sso.user_created", {"role": user.role.value})
    elif user.invite_token_hash is not None:
        # Signing in through the provider completes an open invitation.
        user.invite_token_hash = None
        user.invite_expires_at = None
    return user
