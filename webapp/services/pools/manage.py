"""Defining interviewer pools: a name and a note, and who is in them with their limits.

An IT admin or a recruiter manages the organisation's pools. A member is always a person of the
pool's own organisation (an account or a directory interviewer), chosen by id from that
organisation's people: an address another organisation also holds never reaches its person.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import LinkStatus, Pool, PoolMember, ProfileLink, Role, User
from webapp.services import Actor, printable
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid, NotFound

#: Who may define pools.
MANAGERS = (Role.ADMIN, Role.RECRUITER)

MAX_NAME = 80
MAX_ABOUT = 300
MAX_PER_DAY = 12
MAX_PER_WEEK = 40
#: The aggregator takes at most 50 members in one participants group.
MAX_MEMBERS = 50


def _require(actor: Actor) -> None:
    if actor.role not in MANAGERS:
        raise Forbidden("Only IT admins and recruiters manage interviewer pools.")


@dataclass(frozen=True)
class Person:
    """Someone of the organisation who may be put in a pool."""

    user: User
    has_calendar: bool


def people(session: Session, actor: Actor) -> list[Person]:
    """The organisation's active people (accounts and directory interviewers), by name, with
    whether they have a linked calendar (without one they are never free, so never picked)."""
    _require(actor)
    users = session.scalars(
        select(User)
        .where(User.organisation_id == actor.organisation_id, User.active.is_(True))
        .order_by(User.name, User.id)
    ).all()
    linked = set(
        session.scalars(
            select(ProfileLink.user_id).where(
                ProfileLink.organisation_id == actor.organisation_id,
                ProfileLink.status == LinkStatus.ACTIVE,
            )
        )
    )
    return [Person(u, u.id in linked) for u in users]


def pools(session: Session, actor: Actor) -> list[Pool]:
    """The organisation's pools, by name (anyone who schedules may read them)."""
    return list(
        session.scalars(
            select(Pool)
            .where(Pool.organisation_id == actor.organisation_id)
            .order_by(func.lower(Pool.name), Pool.id)
        )
    )


def pool_for(session: Session, actor: Actor, pool_id: int) -> Pool:
    """The actor's organisation's pool ``pool_id``, else NotFound (another organisation's pool
    reads as missing)."""
    pool = session.get(Pool, pool_id)
    if pool is None or pool.organisation_id != actor.organisation_id:
        raise NotFound("There is no such interviewer pool.")
    return pool


def _text(name: str, about: str) -> tuple[str, str]:
    name, about = (name or "").strip(), (about or "").strip()
    if not name or len(name) > MAX_NAME or not printable(name):
        raise Invalid(
            f"Give the pool a name (up to {MAX_NAME} characters, one line).", field="name"
        )
    if len(about) > MAX_ABOUT or not printable(about):
        raise Invalid(f"The note is one line of up to {MAX_ABOUT} characters.", field="about")
    return name, about


def _name_taken(session: Session, actor: Actor, name: str, pool_id: int | None = None) -> bool:
    query = select(Pool.id).where(
        Pool.organisation_id == actor.organisation_id, func.lower(Pool.name) == name.lower()
    )
    if pool_id is not None:
        query = query.where(Pool.id != pool_id)
    return session.scalar(query) is not None


def create_pool(session: Session, actor: Actor, name: str, about: str = "") -> Pool:
    """Create an empty pool."""
    _require(actor)
    name, about = _text(name, about)
    if _name_taken(session, actor, name):
        raise Invalid("Your organisation already has a pool with that name.", field="name")
    assert actor.organisation_id is not None
    pool = Pool(
        organisation_id=actor.organisation_id, name=name, about=about, created_by_id=actor.user_id
    )
    session.add(pool)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create took the name
        session.rollback()
        raise Invalid(
            "Your organisation already has a pool with that name.", field="name"
        ) from None
    record(session, actor, "pool.created", target_type="pool", target_id=pool.id, target_label=name)
    session.commit()
    return pool


def update_pool(session: Session, actor: Actor, pool_id: int, name: str, about: str = "") -> Pool:
    """Rename the pool or change its note."""
    _require(actor)
    pool = pool_for(session, actor, pool_id)
    name, about = _text(name, about)
    if _name_taken(session, actor, name, pool.id):
        raise Invalid("Your organisation already has a pool with that name.", field="name")
    pool.name, pool.about = name, about
    record(session, actor, "pool.changed", target_type="pool", target_id=pool.id, target_label=name)
    session.commit()
    return pool


def delete_pool(session: Session, actor: Actor, pool_id: int) -> None:
    """Delete the pool and its memberships (interviews booked from it stay)."""
    _require(actor)
    pool = pool_for(session, actor, pool_id)
    record(
        session,
        actor,
        "pool.deleted",
        target_type="pool",
        target_id=pool.id,
        target_label=pool.name,
        detail={"members": len(pool.members)},
    )
    session.delete(pool)
    session.commit()


def parse_limit(raw: str | None, field: str, most: int) -> int | None:
    """A limit as typed: empty for no limit, else a whole number from 1 to ``most``."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise Invalid(
            f"A limit is a whole number from 1 to {most}, or empty for no limit.", field=field
        )
    return value


def _check_limits(per_day: int | None, per_week: int | None) -> None:
    if per_day is not None and per_week is not None and per_day > per_week:
        raise Invalid("The daily limit cannot be above the weekly limit.", field="max_per_day")


def add_member(
    session: Session,
    actor: Actor,
    pool_id: int,
    user_id: int,
    *,
    max_per_day: int | None = None,
    max_per_week: int | None = None,
    is_shadow: bool = False,
) -> PoolMember:
    """Put a person of the organisation in the pool, with their limits."""
    _require(actor)
    pool = pool_for(session, actor, pool_id)
    person = session.get(User, user_id)
    if person is None or person.organisation_id != pool.organisation_id or not person.active:
        raise Invalid("Choose someone of your organisation from the list.", field="user")
    _check_limits(max_per_day, max_per_week)
    if any(m.user_id == person.id for m in pool.members):
        raise Invalid(f"{person.name} is already in this pool.", field="user")
    if len(pool.members) >= MAX_MEMBERS:
        raise Invalid(f"A pool has at most {MAX_MEMBERS} people.", field="user")
    member = PoolMember(
        organisation_id=pool.organisation_id,
        pool_id=pool.id,
        user_id=person.id,
        max_per_day=max_per_day,
        max_per_week=max_per_week,
        is_shadow=is_shadow,
    )
    pool.members.append(member)
    try:
        session.flush()
    except IntegrityError:  # added twice at once
        session.rollback()
        raise Invalid(f"{person.name} is already in this pool.", field="user") from None
    record(
        session,
        actor,
        "pool.member_added",
        target_type="pool",
        target_id=pool.id,
        target_label=pool.name,
        detail=_limits_detail(member, person),
    )
    session.commit()
    return member


def _limits_detail(member: PoolMember, person: User) -> dict:
    return {
        "user_id": person.id,
        "max_per_day": member.max_per_day,
        "max_per_week": member.max_per_week,
        "shadow": member.is_shadow,
    }


def _member_for(session: Session, actor: Actor, pool_id: int, member_id: int) -> PoolMember:
    pool = pool_for(session, actor, pool_id)
    member = next((m for m in pool.members if m.id == member_id), None)
    if member is None:
        raise NotFound("That person is not in this pool.")
    return member


def update_member(
    session: Session,
    actor: Actor,
    pool_id: int,
    member_id: int,
    *,
    max_per_day: int | None,
    max_per_week: int | None,
    is_shadow: bool,
) -> PoolMember:
    """Change a member's limits or shadow flag."""
    _require(actor)
    member = _member_for(session, actor, pool_id, member_id)
    _check_limits(max_per_day, max_per_week)
    member.max_per_day, member.max_per_week, member.is_shadow = (
        max_per_day,
        max_per_week,
        is_shadow,
    )
    record(
        session,
        actor,
        "pool.member_changed",
        target_type="pool",
        target_id=member.pool_id,
        target_label=member.pool.name,
        detail=_limits_detail(member, member.user),
    )
    session.commit()
    return member


def remove_member(session: Session, actor: Actor, pool_id: int, member_id: int) -> None:
    """Take a person out of the pool (their past interviews still count toward their load)."""
    _require(actor)
    member = _member_for(session, actor, pool_id, member_id)
    record(
        session,
        actor,
        "pool.member_removed",
        target_type="pool",
        target_id=member.pool_id,
        target_label=member.pool.name,
        detail={"user_id": member.user_id},
    )
    member.pool.members.remove(member)
    session.commit()


def shadows_of(pool: Pool, named: Sequence[User], linked: Collection[int]) -> list[User]:
    """The pool's shadows a session may bring along: active, with a linked calendar (user ids
    in ``linked``), not already named on it."""
    taken = {u.id for u in named}
    return [
        m.user
        for m in pool.members
        if m.is_shadow and m.user_id in linked and m.user_id not in taken and m.user.active
    ]
