"""Factories for organisations and users (indico's testing/fixtures style)."""

from __future__ import annotations

import base64
import itertools

from sqlalchemy.orm import Session

from models import CoordinatorAssignment, Organisation, Role, User
from webapp import security

PASSWORD = "correct horse battery staple"
#: The test apps' ``PASSWORD_HASHING``: argon2id with argon2-cffi's cheapest parameters (a
#: production app refuses them; tests/webapp/test_config.py checks that it keeps ``strong``).
TEST_PASSWORD_HASHING = "cheapest"
#: Every test user shares this password, hashed once as the test apps hash.
_PASSWORD_HASH = security.password_hasher(TEST_PASSWORD_HASHING).hash(PASSWORD)
TEST_TOKEN_KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()

_counter = itertools.count(1)


def make_org(session: Session, name: str | None = None) -> Organisation:
    org = Organisation(name=name or f"Org {next(_counter)}", timezone="Europe/London")
    session.add(org)
    session.commit()
    return org


def make_user(
    session: Session,
    org: Organisation,
    role: Role = Role.RECRUITER,
    *,
    email: str | None = None,
    name: str | None = None,
    active: bool = True,
    password: bool = True,
) -> User:
    n = next(_counter)
    user = User(
        organisation_id=org.id,
        email=email or f"{role.value}{n}@northwind.example",
        name=name or f"{role.value.title()} {n}",
        role=role,
        password_hash=_PASSWORD_HASH if password else None,
        active=active,
        session_version=1,
    )
    session.add(user)
    session.commit()
    return user


def assign(session: Session, coordinator: User, manager: User) -> CoordinatorAssignment:
    assignment = CoordinatorAssignment(
        organisation_id=coordinator.organisation_id,
        coordinator_id=coordinator.id,
        manager_id=manager.id,
    )
    session.add(assignment)
    session.commit()
    return assignment
