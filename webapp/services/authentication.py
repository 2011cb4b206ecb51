"""Logging in and out, and the sessions a login opens."""

from __future__ import annotations

import functools

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from models import (
    Role,
    User,
    utcnow,
)
from webapp import security
from webapp.services import Actor
from webapp.services.accounts import acting_as, normalise_email, password_hash
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid
from webapp.services.sso import settings as sso_settings


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
        list(
            session.scalars(
                select(User)
                .where(User.email == email, User.role != Role.INTERVIEWER)
                .order_by(User.id)
            )
        )
        if email
        else []
    )
    matched = security.verify_passwords([u.password_hash for u in candidates], password or "")
    opened = [u for u, ok in zip(candidates, matched, strict=True) if ok and u.active]
    kept_off = [u for u in opened if not sso_settings.password_allowed(session, u)]
    if kept_off:
        # Their organisation signs in through its identity provider only.
        for user in kept_off:
            _login_failed(session, actor, email, user, "password login off")
        opened = [u for u in opened if u not in kept_off]
        if not opened:
            session.commit()
            raise PasswordLoginOff(
                "Your organisation signs in with single sign-on: use “Sign in with SSO”."
            )
    if not opened:
        for user, ok in zip(candidates, matched, strict=True):
            _login_failed(session, actor, email, user, "inactive" if ok else "wrong password")
        if not candidates:
            _login_failed(session, actor, email, None, "unknown user")
        session.commit()
        return []
    for user in opened:
        if user.password_hash and security.password_needs_rehash(user.password_hash):
            user.password_hash = password_hash(session, user, password)
    if len(opened) == 1:
        _logged_in(session, opened[0], actor)
    session.commit()
    return opened


class PasswordLoginOff(Forbidden):
    """The password was right, but the account's organisation turned password login off."""


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
        acting_as(user, actor),
        "auth.login",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
    )


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


@functools.cache
def _session_user() -> Select[User]:
    """The signed-in user's row with their organisation's, in one query built once: most pages
    need the organisation too (the time zone assumed for people without their own, a panel's
    working hours), and then read it from the session instead of asking again."""
    return (
        select(User).options(joinedload(User.organisation)).where(User.id == bindparam("user_id"))
    )


def load_session_user(session: Session, session_id: str) -> User | None:
    """The user named by a Flask-Login id ``"<id>:<version>"`` if that session is still valid
    (read from the database on every request: a deactivation or a role change ends it)."""
    user_id, sep, version = (session_id or "").partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit():
        return None
    user = session.scalars(_session_user(), {"user_id": int(user_id)}).one_or_none()
    if (
        user is None
        or not user.active
        or user.role is Role.INTERVIEWER  # a directory person has no login
        or user.session_version != int(version)
    ):
        return None
    return user
