"""Accounts: logging in and out, invitations, roles, deactivation and coordinator assignments."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import (
    ApiToken,
    CoordinatorAssignment,
    LinkStatus,
    Role,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp import security
from webapp.services import Actor, printable
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


# ---------------------------------------------------------------------------------------------
# Logging in and out


def authenticate(session: Session, email: str, password: str, *, actor: Actor) -> list[User]:
    """The active accounts these credentials open; audited either way.

    One address may have an account in several organisations. Usually one of them opens (and
    is logged in here); when the same password opens several, the person chooses one with
    ``choose_account``. Unknown email, wrong password and deactivated account are
    indistinguishable to the caller, and so is the number of accounts at the address: they
    share a salt, so checking all of them costs one argon2 computation.
    """
    email = normalise_email(email)
    candidates = (
        list(session.scalars(select(User).where(User.email == email).order_by(User.id)))
        if email
        else []
    )
    matched = security.verify_passwords([u.password_hash for u in candidates], password or "")
    opened = [u for u, ok in zip(candidates, matched) if ok and u.active]
    if not opened:
        for user, ok in zip(candidates, matched):
            _login_failed(session, actor, email, user, "inactive" if ok else "wrong password")
        if not candidates:
            _login_failed(session, actor, email, None, "unknown user")
        session.commit()
        return []
    for user in opened:
        if security.password_needs_rehash(user.password_hash):
            user.password_hash = _password_hash(session, user, password)
    if len(opened) == 1:
        _logged_in(session, opened[0], actor)
    session.commit()
    return opened


def choose_account(session: Session, opened: list[int], user_id: int, *, actor: Actor) -> User:
    """Log in to one of the accounts ``authenticate`` opened (ids kept by the caller)."""
    user = session.get(User, user_id) if user_id in opened else None
    if user is None or not user.active:
        raise Invalid("Log in again: that account is not available.")
    _logged_in(session, user, actor)
    session.commit()
    return user


def login_choices(session: Session, opened: list[int]) -> list[User]:
    """The still-active accounts among those a login opened, for the person to choose from."""
    return list(
        session.scalars(
            select(User).where(User.id.in_(opened), User.active.is_(True)).order_by(User.id)
        )
    )


def _login_failed(
    session: Session, actor: Actor, email: str, user: User | None, reason: str
) -> None:
    record(
        session,
        actor,
        "auth.login_failed",
        outcome="failure",
        organisation_id=user.organisation_id if user else None,
        target_type="user",
        target_id=user.id if user else None,
        target_label=email[:320] or None,
        detail={"reason": reason},
    )


def _logged_in(session: Session, user: User, actor: Actor) -> None:
    user.last_login_at = utcnow()
    record(
        session,
        _as(user, actor),
        "auth.login",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )


def _password_hash(session: Session, user: User, password: str) -> str:
    """The user's new password hash, salted like the other accounts at their address."""
    sibling = session.scalar(
        select(User.password_hash)
        .where(User.email == user.email, User.id != user.id, User.password_hash.is_not(None))
        .order_by(User.id)
        .limit(1)
    )
    return security.hash_password(password, salt_of=sibling)


def logout(session: Session, actor: Actor) -> None:
    """End every session of the actor (their session version moves on)."""
    user = session.get(User, actor.user_id)
    if user is None:
        return
    user.session_version += 1
    record(
        session,
        actor,
        "auth.logout",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )
    session.commit()


def load_session_user(session: Session, session_id: str) -> User | None:
    """The user named by a Flask-Login id ``"<id>:<version>"`` if that session is still valid."""
    user_id, sep, version = (session_id or "").partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit():
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _as(user: User, actor: Actor) -> Actor:
    return Actor(
        user.id, user.email, user.organisation_id, user.role, actor.ip_address, actor.request_id
    )


# ---------------------------------------------------------------------------------------------
# Administration (IT admin of the same organisation only)


def _require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only an IT admin can manage users.")


def _org_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("No such user in your organisation.")
    return user


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    _require_admin(actor)
    return _org_user(session, actor, user_id)


def list_users(session: Session, actor: Actor) -> list[User]:
    _require_admin(actor)
    return list(
        session.scalars(
            select(User).where(User.organisation_id == actor.organisation_id).order_by(User.name)
        )
    )


# ---------------------------------------------------------------------------------------------
# Verified domains: who may give accounts at an address

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


def _may_have_address(session: Session, organisation_id: int, email: str) -> None:
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
    try:
        return Role(value)
    except ValueError:
        raise Invalid("Choose one of the listed roles.", field="role") from None


def invite_user(
    session: Session, actor: Actor, *, email: str, name: str, role: str, invite_days: int
) -> tuple[User, str]:
    """Create an account and return it with its one-time invitation token (shown once)."""
    _require_admin(actor)
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
    # Only this organisation's accounts count: whether the address has one elsewhere is not
    # this organisation's business (and an account here does not depend on it).
    if (
        session.scalar(
            select(User.id).where(
                User.organisation_id == actor.organisation_id, User.email == email
            )
        )
        is not None
    ):
        raise Invalid("An account with this email already exists.", field="email")
    token = security.new_token()
    user = User(
        organisation_id=actor.organisation_id,
        email=email,
        name=name,
        role=parsed_role,
        active=True,
        session_version=1,
        invite_token_hash=security.token_hash(token),
        invite_expires_at=utcnow() + timedelta(days=invite_days),
    )
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


def reissue_invite(session: Session, actor: Actor, user_id: int, *, invite_days: int) -> str:
    """Replace a user's invitation link (the old one stops working); returns the new token."""
    _require_admin(actor)
    user = _org_user(session, actor, user_id)
    if user.password_hash is not None:
        raise Invalid("This person has already set a password.")
    _may_have_address(session, actor.organisation_id, user.email)
    token = security.new_token()
    user.invite_token_hash = security.token_hash(token)
    user.invite_expires_at = utcnow() + timedelta(days=invite_days)
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
    user.password_hash = _password_hash(session, user, password)
    user.invite_token_hash = None
    user.invite_expires_at = None
    user.session_version += 1
    record(
        session,
        _as(user, actor),
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
    _require_admin(actor)
    user = _org_user(session, actor, user_id)
    new_role = parse_role(role)
    if new_role is user.role:
        return user
    if (
        user.role is Role.ADMIN
        and user.active
        and _active_admins(session, user.organisation_id) <= 1
    ):
        raise Invalid("The organisation needs at least one active IT admin.", field="role")
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
    _require_admin(actor)
    user = _org_user(session, actor, user_id)
    if user.active == active:
        return user
    if not active:
        if user.id == actor.user_id:
            raise Invalid("You cannot deactivate your own account.")
        if user.role is Role.ADMIN and _active_admins(session, user.organisation_id) <= 1:
            raise Invalid("The organisation needs at least one active IT admin.")
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
        detail = {"api_tokens_revoked": revoked.rowcount or 0}
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


def assignments(session: Session, actor: Actor) -> list[CoordinatorAssignment]:
    _require_admin(actor)
    return list(
        session.scalars(
            select(CoordinatorAssignment)
            .where(CoordinatorAssignment.organisation_id == actor.organisation_id)
            .order_by(CoordinatorAssignment.id)
        )
    )


def assign_coordinator(
    session: Session, actor: Actor, coordinator_id: int, manager_id: int
) -> CoordinatorAssignment:
    """Let a coordinator schedule on behalf of a hiring manager (a recruiter)."""
    _require_admin(actor)
    coordinator = _org_user(session, actor, coordinator_id)
    manager = _org_user(session, actor, manager_id)
    if coordinator.role is not Role.COORDINATOR:
        raise Invalid("Choose a user with the coordinator role.", field="coordinator_id")
    if manager.role is not Role.RECRUITER:
        raise Invalid("Choose a recruiter / hiring manager.", field="manager_id")
    if (
        session.scalar(
            select(CoordinatorAssignment.id).where(
                CoordinatorAssignment.coordinator_id == coordinator.id,
                CoordinatorAssignment.manager_id == manager.id,
            )
        )
        is not None
    ):
        raise Invalid(f"{coordinator.name} is already assigned to {manager.name}.")
    assignment = CoordinatorAssignment(
        organisation_id=actor.organisation_id, coordinator_id=coordinator.id, manager_id=manager.id
    )
    session.add(assignment)
    session.flush()
    record(
        session,
        actor,
        "assignment.created",
        target_type="assignment",
        target_id=assignment.id,
        target_label=f"{coordinator.email} → {manager.email}",
    )
    session.commit()
    return assignment


def unassign_coordinator(session: Session, actor: Actor, assignment_id: int) -> None:
    _require_admin(actor)
    assignment = session.get(CoordinatorAssignment, assignment_id)
    if assignment is None or assignment.organisation_id != actor.organisation_id:
        raise NotFound("No such assignment.")
    label = f"{assignment.coordinator.email} → {assignment.manager.email}"
    session.delete(assignment)
    record(
        session,
        actor,
        "assignment.removed",
        target_type="assignment",
        target_id=assignment_id,
        target_label=label,
    )
    session.commit()


# ---------------------------------------------------------------------------------------------
# Own profile


def change_password(session: Session, actor: Actor, current: str, new: str) -> User:
    """Change the actor's password; every other session of theirs ends."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound("No such user.")
    if not security.verify_password(user.password_hash, current or ""):
        raise Invalid("Your current password is not right.", field="current_password")
    problem = security.password_problem(new or "")
    if problem:
        raise Invalid(problem, field="new_password")
    user.password_hash = _password_hash(session, user, new)
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
        _require_admin(actor)
    user = _org_user(session, actor, user_id)
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


def managers_of(session: Session, coordinator_id: int) -> list[User]:
    """Hiring managers a coordinator may schedule for."""
    return list(
        session.scalars(
            select(User)
            .join(CoordinatorAssignment, CoordinatorAssignment.manager_id == User.id)
            .where(CoordinatorAssignment.coordinator_id == coordinator_id, User.active.is_(True))
            .order_by(User.name)
        )
    )
