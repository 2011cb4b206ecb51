"""The IT admin's single sign-on settings: the identity provider (issuer, client id, client
secret kept encrypted), who may sign in through it, and whether password login stays on (with
one IT admin kept on it as break-glass)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Role, SsoConfig, User
from webapp.security import Sealed, TokenCipher
from webapp.services import Actor, printable
from webapp.services.accounts import verified_domains
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid, NotFound
from webapp.services.sso import oidc

#: Roles an account created on its first sign-in may get (never IT admin or compliance
#: reviewer: those are given by an IT admin, person by person).
DEFAULT_ROLES = (Role.RECRUITER, Role.COORDINATOR)


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only an IT admin can change single sign-on.")


def config_of(session: Session, organisation_id: int | None) -> SsoConfig | None:
    if organisation_id is None:
        return None
    return session.scalar(select(SsoConfig).where(SsoConfig.organisation_id == organisation_id))


def client_secret(cipher: TokenCipher, config: SsoConfig) -> str:
    return cipher.decrypt(
        Sealed(config.key_id, config.client_secret),
        table="sso_config",
        column="client_secret",
        row_id=config.organisation_id,
    )


def _seal_secret(cipher: TokenCipher, config: SsoConfig, secret: str) -> None:
    # Bound to the organisation (the row's stable key, known before the row is inserted).
    sealed = cipher.encrypt(
        secret, table="sso_config", column="client_secret", row_id=config.organisation_id
    )
    config.client_secret, config.key_id = sealed.blob, sealed.key_id


@dataclass(frozen=True)
class Overview:
    """What the settings page shows (never the secret itself)."""

    config: SsoConfig | None
    domains: list[str]
    admins: list[User]
    default_roles: tuple[Role, ...] = DEFAULT_ROLES


def overview(session: Session, actor: Actor) -> Overview:
    require_admin(actor)
    assert actor.organisation_id is not None
    return Overview(
        config=config_of(session, actor.organisation_id),
        domains=[link.domain for link in verified_domains(session, actor.organisation_id)],
        admins=_password_admins(session, actor.organisation_id),
    )


def _password_admins(session: Session, organisation_id: int) -> list[User]:
    """Active IT admins who have a password: the ones who can be kept on password login."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.organisation_id == organisation_id,
                User.role == Role.ADMIN,
                User.active.is_(True),
                User.password_hash.is_not(None),
            )
            .order_by(User.name, User.id)
        )
    )


def save_provider(
    session: Session,
    cipher: TokenCipher,
    actor: Actor,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    enabled: bool,
    create_accounts: bool,
    default_role: str,
    insecure_ok: bool,
) -> SsoConfig:
    """Set the identity provider. A blank ``client_secret`` keeps the stored one. The issuer is
    checked by fetching its discovery document before anything is saved."""
    require_admin(actor)
    assert actor.organisation_id is not None
    issuer = oidc.normalise_issuer(issuer)
    client_id = (client_id or "").strip()
    secret = (client_secret or "").strip()
    if not issuer or len(issuer) > 500 or not printable(issuer):
        raise Invalid("Enter the identity provider's issuer URL.", field="issuer")
    if not client_id or len(client_id) > 255 or not printable(client_id):
        raise Invalid("Enter the client id the identity provider gave you.", field="client_id")
    if len(secret) > 2000 or not printable(secret):
        raise Invalid("The client secret is not valid.", field="client_secret")
    try:
        role = Role(default_role)
    except ValueError:
        role = None
    if role not in DEFAULT_ROLES:
        raise Invalid("Choose the role of accounts created on first sign-in.", field="default_role")
    config = config_of(session, actor.organisation_id)
    if config is None and not secret:
        raise Invalid(
            "Enter the client secret the identity provider gave you.", field="client_secret"
        )
    if enabled and not verified_domains(session, actor.organisation_id):
        raise Invalid(
            "Single sign-on needs a verified domain: connect your domain through Enterprise "
            "Connect first (Google Workspace or Microsoft 365)."
        )
    try:
        oidc.discover(issuer, insecure_ok=insecure_ok, fresh=True)
    except oidc.IdTokenRejected as exc:
        raise Invalid(exc.message, field="issuer") from None
    changed: list[str] = []
    if config is None:
        config = SsoConfig(organisation_id=actor.organisation_id, issuer=issuer)
        session.add(config)
        changed.append("created")
    values = {
        "issuer": issuer,
        "client_id": client_id,
        "enabled": enabled,
        "create_accounts": create_accounts,
        "default_role": role,
    }
    for name, value in values.items():
        if getattr(config, name, None) != value:
            setattr(config, name, value)
            changed.append(name)
    if secret:
        _seal_secret(cipher, config, secret)
        changed.append("client_secret")
    config.updated_by_id = actor.user_id
    record(
        session,
        actor,
        "sso.configured",
        target_type="sso_config",
        target_label=issuer,
        detail={
            "changed": sorted(set(changed) - {"created"}),
            "created": "created" in changed,
            "enabled": enabled,
            "create_accounts": create_accounts,
            "default_role": role.value,
        },
    )
    session.commit()
    return config


def set_password_login(
    session: Session, actor: Actor, *, allowed: bool, break_glass_user_id: int | None
) -> SsoConfig:
    """Turn password login on or off for the organisation. Off needs single sign-on switched on
    and one active IT admin with a password kept on it (break-glass)."""
    require_admin(actor)
    assert actor.organisation_id is not None
    config = config_of(session, actor.organisation_id)
    if config is None:
        raise NotFound("Set up single sign-on first.")
    keeper = None
    if not allowed:
        if not config.enabled:
            raise Invalid("Switch single sign-on on before turning password login off.")
        if break_glass_user_id is None:
            raise Invalid(
                "Choose the IT admin who keeps password login (break-glass): the organisation "
                "cannot be left without one.",
                field="break_glass_user_id",
            )
        keeper = next(
            (
                u
                for u in _password_admins(session, actor.organisation_id)
                if u.id == break_glass_user_id
            ),
            None,
        )
        if keeper is None:
            raise Invalid(
                "The break-glass account must be an active IT admin of your organisation who "
                "has a password.",
                field="break_glass_user_id",
            )
    before = (config.password_login, config.break_glass_user_id)
    config.password_login = allowed
    config.break_glass_user_id = keeper.id if keeper else None
    config.updated_by_id = actor.user_id
    if before != (config.password_login, config.break_glass_user_id):
        record(
            session,
            actor,
            "sso.password_login",
            target_type="user" if keeper else "sso_config",
            target_id=keeper.id if keeper else None,
            target_label=keeper.email if keeper else None,
            detail={"password_login": allowed, "break_glass": keeper.id if keeper else None},
        )
    session.commit()
    return config


def password_allowed(session: Session, user: User) -> bool:
    """May ``user`` log in with their password? Yes unless their organisation turned password
    login off; then only the break-glass IT admin may. Should that account stop qualifying
    (deactivated, no longer an admin, erased), every active IT admin keeps password login, so
    the organisation is never locked out."""
    config = config_of(session, user.organisation_id)
    if config is None or config.password_login:
        return True
    keeper = session.get(User, config.break_glass_user_id) if config.break_glass_user_id else None
    if keeper is None or not keeper.active or keeper.role is not Role.ADMIN:
        return user.role is Role.ADMIN and user.active
    return user.id == keeper.id


def guard_break_glass(session: Session, user: User) -> None:
    """Refuse a change that would take the break-glass IT admin off password login while it is
    off for everyone else (called before deactivating or demoting a user)."""
    config = config_of(session, user.organisation_id)
    if config is not None and not config.password_login and config.break_glass_user_id == user.id:
        raise Invalid(
            "This IT admin is the organisation's break-glass account for password login. "
            "Choose another break-glass admin in Single sign-on first."
        )


def forget_identity(session: Session, actor: Actor, user_id: int) -> User:
    """Unbind an account from its identity at the provider (the address was given to someone
    else there, or the person was recreated): their sessions end, and the next sign-in with
    the account's address binds again, by verified address."""
    require_admin(actor)
    user = session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("There is no such user in your organisation.")
    if user.sso_sub is None:
        raise Invalid("This account is not bound to an identity at your identity provider.")
    user.sso_issuer = user.sso_sub = None
    user.session_version += 1
    record(
        session,
        actor,
        "sso.identity_forgotten",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )
    session.commit()
    return user
