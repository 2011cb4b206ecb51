"""Accounts: invitations, roles, deactivation, verified domains and a person's own profile.

Logging in and out is ``authentication``; coordinator assignments are ``coordinators``."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import (
    LOGIN_ROLES,
    ApiToken,
    CoordinatorAssignment,
    LinkStatus,
    Role,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp import security
from webapp.services import Actor, printable, rowcount
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid, NotFound
from webapp.services.zones import person_zone

EMAIL_RE = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= 320 and bool(EMAIL_RE.match(email)) and printable(email)


def password_hash(session: Session, user: User, password: str) -> str:
    """The user's new password hash, salted like the other accounts at their address."""
    sibling = session.scalar(
        select(User.password_hash)
        .where(User.email == user.email, User.id != user.id, User.password_hash.is_not(None))
        .order_by(User.id)
        .limit(1)
    )
    return security.hash_password(password, salt_of=sibling)


def acting_as(user: User, actor: Actor) -> Actor:
    return Actor(
        user.id, user.email, user.organisation_id, user.role, actor.ip_address, actor.request_id
    )


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only an IT admin can manage users.")


def org_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("There is no such user in your organisation.")
    return user


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    require_admin(actor)
    return org_user(session, actor, user_id)


def list_users(session: Session, actor: Actor) -> list[User]:
    require_admin(actor)
    return list(
        session.scalars(
            select(User).where(User.organisation_id == actor.organisation_id).order_by(User.name)
        )
    )


#: Enterprise Connect providers whose service-account authorization proves the admin controls
#: the domain: Google Workspace and Microsoft 365 only let an administrator of the domain's
#: directory grant them (and verify the domain themselves). Exchange is left out: its admin
#: names the server, which need not be the domain's.
VERIFYING_PROVIDERS = frozenset({"google", "office365"})


def verified_domains(session: Session, organisation_id: int) -> list[ServiceAccountLink]:
    """The organisation's domains that count as verified (their links, one per domain)."""
    return list(
        session.scalars(
            select(ServiceAccountLink)
            .where(
                ServiceAccountLink.organisation_id == organisation_id,
                ServiceAccountLink.provider.in_(VERIFYING_PROVIDERS),
                ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            )
            .order_by(ServiceAccountLink.domain)
        )
    )


def _domain_owners(session: Session, domain: str) -> set[int]:
    return set(
        session.scalars(
            select(ServiceAccountLink.organisation_id).where(
                ServiceAccountLink.domain == domain,
                ServiceAccountLink.provider.in_(VERIFYING_PROVIDERS),
                ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            )
        )
    )


def _may_have_address(session: Session, organisation_id: int | None, email: str) -> None:
    """Refuse an address at a domain another organisation verified (and this one did not).

    Says only who owns the domain, which is the same for every address in it: never whether
    the address has an account anywhere else."""
    domain = email.rsplit("@", 1)[-1]
    owners = _domain_owners(session, domain)
    if owners and organisation_id not in owners:
        raise Invalid(
            f"Addresses at {domain} belong to another organisation, which verified that "
            "domain; they cannot be invited here.",
            field="email",
        )


def parse_role(value: str) -> Role:
    """A login role (an invitation or role change never makes a directory person)."""
    try:
        role = Role(value)
    except ValueError:
        raise Invalid("Choose one of the listed roles.", field="role") from None
    if role not in LOGIN_ROLES:
        raise Invalid("Choose one of the listed roles.", field="role")
    return role


def invite_user(
    session: Session, actor: Actor, *, email: str, name: str, role: str, invite_days: int
) -> tuple[User, str]:
    """Create an account and return it with its one-time invitation token (shown once)."""
    require_admin(actor)
    email = normalise_email(email)
    name = (name or "").strip()
    if not valid_email(email):
        raise Invalid("Enter a valid email address.", field="email")
    if not name or len(name) > 200 or not printable(name):
        raise Invalid(
            "Enter the person's name (at most 200 characters, no control characters).", field="name"
        )
    parsed_role = parse_role(role)
    _may_have_address(session, actor.organisation_id, email)
    # Only this organisation's rows count: whether the address has one elsewhere is not
    # this organisation's business (and an account here does not depend on it).
    existing = session.scalar(
        select(User).where(User.organisation_id == actor.organisation_id, User.email == email)
    )
    if existing is not None and existing.is_directory_person:
        return _invite_directory_person(
            session, actor, existing, parsed_role, name=name, invite_days=invite_days
        )
    if existing is not None:
        raise Invalid("An account with this email already exists.", field="email")
    user = User(
        organisation_id=actor.organisation_id,
        email=email,
        name=name,
        role=parsed_role,
        active=True,
        session_version=1,
    )
    token = _new_invitation(user, invite_days)
    session.add(user)
    session.flush()
    record(
        session,
        actor,
        "user.invited",
        target_type="user",
        target_id=user.id,
        target_label=email,
        detail={"role": parsed_role.value},
    )
    session.commit()
    return user, token


def _new_invitation(user: User, invite_days: int) -> str:
    """Give ``user`` a fresh invitation (any earlier link stops working); returns its token.
    Only the token's hash is stored."""
    token = security.new_token()
    user.invite_token_hash = security.token_hash(token)
    user.invite_expires_at = utcnow() + timedelta(days=invite_days)
    return token


def invite_to_log_in(
    session: Session, actor: Actor, user_id: int, *, role: str, invite_days: int
) -> tuple[User, str]:
    """Invite a directory person to log in with the role chosen now; their row, calendar link,
    working hours and panels stay as they are (nothing is relinked)."""
    require_admin(actor)
    user = org_user(session, actor, user_id)
    if not user.is_directory_person:
        raise Invalid(f"{user.name} can already log in; use a new invitation link instead.")
    if not user.active:
        raise Invalid(f"Reactivate {user.name} before inviting them.")
    _may_have_address(session, actor.organisation_id, user.email)
    return _invite_directory_person(
        session, actor, user, parse_role(role), name=None, invite_days=invite_days
    )


def _invite_directory_person(
    session: Session,
    actor: Actor,
    user: User,
    role: Role,
    *,
    name: str | None,
    invite_days: int,
) -> tuple[User, str]:
    user.role = role
    if name:
        user.name = name
    user.active = True
    user.password_hash = None
    user.session_version += 1
    token = _new_invitation(user, invite_days)
    record(
        session,
        actor,
        "user.invited",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail={"role": role.value, "from": "directory"},
    )
    session.commit()
    return user, token


def reissue_invite(session: Session, actor: Actor, user_id: int, *, invite_days: int) -> str:
    """Replace a user's invitation link (the old one stops working); returns the new token."""
    require_admin(actor)
    user = org_user(session, actor, user_id)
    if user.is_directory_person:
        raise Invalid(f"{user.name} has no login yet: invite them to log in, choosing a role.")
    if user.password_hash is not None:
        raise Invalid("This person has already set a password.")
    _may_have_address(session, actor.organisation_id, user.email)
    token = _new_invitation(user, invite_days)
    record(
        session,
        actor,
        "user.invite_reissued",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )
    session.commit()
    return token


def invited_user(session: Session, token: str) -> User | None:
    """The user a still-valid invitation token belongs to."""
    if not token or len(token) > 128:
        return None
    user = session.scalar(select(User).where(User.invite_token_hash == security.token_hash(token)))
    if user is None or not user.active or user.invite_expires_at is None:
        return None
    if user.invite_expires_at <= utcnow():
        return None
    return user


def accept_invite(session: Session, token: str, password: str, *, actor: Actor) -> User:
    """Set the invited user's password and consume the invitation."""
    user = invited_user(session, token)
    if user is None:
        raise Invalid(
            "This invitation link is not valid any more. Ask your IT admin for a new one."
        )
    # Invited before another organisation verified the domain: not an account to complete.
    _may_have_address(session, user.organisation_id, user.email)
    problem = security.password_problem(password)
    if problem:
        raise Invalid(problem, field="password")
    user.password_hash = password_hash(session, user, password)
    user.invite_token_hash = None
    user.invite_expires_at = None
    user.session_version += 1
    record(
        session,
        acting_as(user, actor),
        "user.invite_accepted",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )
    session.commit()
    return user


def _active_admins(session: Session, organisation_id: int) -> int:
    return (
        session.scalar(
            select(func.count(User.id)).where(
                User.organisation_id == organisation_id,
                User.role == Role.ADMIN,
                User.active.is_(True),
            )
        )
        or 0
    )


def change_role(session: Session, actor: Actor, user_id: int, role: str) -> User:
    require_admin(actor)
    user = org_user(session, actor, user_id)
    new_role = parse_role(role)
    if user.is_directory_person:
        raise Invalid(
            f"{user.name} has no login: invite them to log in, choosing their role then.",
            field="role",
        )
    if new_role is user.role:
        return user
    if (
        user.role is Role.ADMIN
        and user.active
        and _active_admins(session, user.organisation_id) <= 1
    ):
        raise Invalid("The organisation needs at least one active IT admin.", field="role")
    if user.role is Role.ADMIN:
        from webapp.services.sso.settings import guard_break_glass  # sso imports accounts

        guard_break_glass(session, user)
    old = user.role
    user.role = new_role
    user.session_version += 1
    if old is Role.COORDINATOR or new_role is Role.COORDINATOR:
        # Assignments only make sense for a coordinator and a recruiter; drop stale ones.
        for assignment in session.scalars(
            select(CoordinatorAssignment).where(
                (CoordinatorAssignment.coordinator_id == user.id)
                | (CoordinatorAssignment.manager_id == user.id)
            )
        ):
            session.delete(assignment)
    record(
        session,
        actor,
        "user.role_changed",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail={"from": old.value, "to": new_role.value},
    )
    session.commit()
    return user


def set_active(session: Session, actor: Actor, user_id: int, active: bool) -> User:
    require_admin(actor)
    user = org_user(session, actor, user_id)
    if user.active == active:
        return user
    if not active:
        if user.id == actor.user_id:
            raise Invalid("You cannot deactivate your own account.")
        if user.role is Role.ADMIN and _active_admins(session, user.organisation_id) <= 1:
            raise Invalid("The organisation needs at least one active IT admin.")
        from webapp.services.sso.settings import guard_break_glass  # sso imports accounts

        guard_break_glass(session, user)
    user.active = active
    user.session_version += 1
    detail = None
    if not active:
        # Reactivating must not bring old tokens back: the person creates new ones.
        revoked = session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        detail = {"api_tokens_revoked": rowcount(revoked)}
    record(
        session,
        actor,
        "user.reactivated" if active else "user.deactivated",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail=detail,
    )
    session.commit()
    return user


def change_password(session: Session, actor: Actor, current: str, new: str) -> User:
    """Change the actor's password; every other session of theirs ends."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound("Your account no longer exists.")
    if not security.verify_password(user.password_hash, current or ""):
        raise Invalid("Your current password is not right.", field="current_password")
    problem = security.password_problem(new or "")
    if problem:
        raise Invalid(problem, field="new_password")
    user.password_hash = password_hash(session, user, new)
    user.session_version += 1
    record(
        session,
        actor,
        "user.password_changed",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )
    session.commit()
    return user


def set_timezone(
    session: Session, actor: Actor, user_id: int, tzid: str | None, *, source: str = "chosen"
) -> User:
    """Set a person's own time zone (IANA name): anyone for themselves, an IT admin for anyone
    in their organisation. Working hours and the times a person is shown follow it.

    ``source`` says where the value came from (chosen, browser or calendar) for the audit trail.
    A name that is not a listed IANA zone is refused and nothing changes."""
    if actor.user_id != user_id:
        require_admin(actor)
    user = org_user(session, actor, user_id)
    new = person_zone(tzid)
    if user.timezone == new:
        return user
    old = user.timezone
    user.timezone = new
    record(
        session,
        actor,
        "user.timezone_changed",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail={"from": old, "to": new, "source": source if source in SOURCES else "chosen"},
    )
    session.commit()
    return user


#: Where a time zone may come from (kept in the audit entry).
SOURCES = ("chosen", "browser", "calendar")
