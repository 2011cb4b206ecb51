"""Checking a loop's plan before anything is stored or asked of the aggregator: who may compose
it, every field with its form field named, and each session's people, room, pool and shadows
resolved against what the actor may choose (the first problem is refused)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Organisation, Pool, PoolMember, ProfileLink, Role, User, utcnow
from webapp.services import Actor, printable
from webapp.services.accounts import valid_email
from webapp.services.availability import model, roster
from webapp.services.errors import Forbidden, Invalid, NotFound
from webapp.services.loops.plan import (
    MAX_BREAK,
    MAX_GAP,
    MAX_POOL_PICK,
    MAX_SESSIONS,
    MIN_SESSIONS,
    LoopPlan,
    ResolvedSession,
    SessionPlan,
)
from webapp.services.pools.manage import pool_for, shadows_of
from webapp.services.scheduling.booking import check_title_and_name
from webapp.services.scheduling.content import MAX_TITLE


def _field(index: int, name: str) -> str:
    return f"s{index}_{name}"


def check_role(session: Session, actor: Actor, on_behalf_of_id: int | None) -> None:
    """Recruiters compose loops for themselves; a coordinator only for a hiring manager assigned
    to them (as on the schedule page), seeing free/busy only."""
    if actor.role is Role.COORDINATOR:
        if on_behalf_of_id is None:
            raise Invalid("Choose the hiring manager you are scheduling for.", field="on_behalf_of")
        if on_behalf_of_id not in roster.assigned_manager_ids(session, actor.user_id):
            raise Forbidden("You can only schedule for hiring managers assigned to you.")
        return
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters and coordinators compose interview loops.")


def check_plan(
    session: Session,
    actor: Actor,
    plan: LoopPlan,
    *,
    choices: Sequence[tuple[ProfileLink, User]] | None = None,
) -> list[ResolvedSession]:
    """Refuse anything wrong with the plan (the first problem, with its form field); return
    the sessions with their panel members and rooms resolved."""
    check_role(session, actor, plan.on_behalf_of_id)
    if not plan.title.strip() or len(plan.title) > MAX_TITLE or not printable(plan.title):
        raise Invalid(
            f"Give the loop a title (up to {MAX_TITLE} characters, no control characters).",
            field="title",
        )
    check_title_and_name(plan.title, plan.candidate_name)
    if not valid_email(plan.candidate_email.strip()):
        raise Invalid("Enter the candidate's email address.", field="candidate_email")
    if plan.candidate_tzid and not model.valid_zone(plan.candidate_tzid):
        raise Invalid("Choose the candidate's time zone from the list.", field="candidate_tzid")
    if not model.valid_zone(plan.tzid):
        raise Invalid("Choose a valid time zone.", field="tzid")
    if not 1 <= plan.days <= model.MAX_DAYS:
        raise Invalid(f"Search between 1 and {model.MAX_DAYS} days.", field="days")
    today = utcnow().astimezone(model.zone(plan.tzid)).date()
    if plan.start_date < today:
        raise Invalid("The first day cannot be in the past.", field="start_date")
    if plan.start_date > today + dt.timedelta(days=365):
        raise Invalid("Choose a first day within the next year.", field="start_date")
    if not plan.split_days and not (
        plan.max_break is not None and 0 <= plan.max_break <= MAX_BREAK
    ):
        raise Invalid(
            f"The longest break between sessions is 0 to {MAX_BREAK} minutes.", field="max_break"
        )
    if not MIN_SESSIONS <= len(plan.sessions) <= MAX_SESSIONS:
        raise Invalid(
            f"A loop has {MIN_SESSIONS} to {MAX_SESSIONS} sessions.", field=_field(1, "title")
        )
    if choices is None:
        choices = plan_choices(session, actor, plan)
    allowed = {link.id: (link, user) for link, user in choices}
    rooms = (
        {r.email: r for r in roster.room_choices(session, actor.organisation_id)}
        if any(s.room for s in plan.sessions)
        else {}
    )
    # Checked session by session; everyone's working hours are then read once for the loop.
    checked = []
    for n, s in enumerate(plan.sessions, start=1):
        if not s.title.strip() or len(s.title) > MAX_TITLE or not printable(s.title):
            raise Invalid(
                f"Give session {n} a title (up to {MAX_TITLE} characters).",
                field=_field(n, "title"),
            )
        if s.duration not in model.DURATIONS:
            raise Invalid(
                f"Choose one of the listed lengths for session {n}.", field=_field(n, "duration")
            )
        for name in ("buffer_before", "buffer_after"):
            if not 0 <= getattr(s, name) <= MAX_GAP:
                raise Invalid(
                    f"Gaps around session {n} are 0 to {MAX_GAP} minutes.", field=_field(n, name)
                )
        if not s.panel_link_ids and not (s.pool_id and s.pool_count):
            raise Invalid(
                f"Choose who interviews in session {n} (people, a pool, or both).",
                field=_field(n, "panel"),
            )
        ids = list(dict.fromkeys(s.panel_link_ids))
        if any(i not in allowed for i in ids):
            raise Invalid(
                f"Session {n}: choose the people from those listed.", field=_field(n, "panel")
            )
        if len(ids) > model.MAX_PANEL:
            raise Invalid(
                f"Session {n} has at most {model.MAX_PANEL} people.", field=_field(n, "panel")
            )
        room = None
        if s.room:
            room = rooms.get(s.room.strip().lower())
            if room is None:
                raise Invalid(
                    f"Session {n}: choose one of the listed rooms.", field=_field(n, "room")
                )
        named = [allowed[i][1] for i in ids]
        pool, eligible = _pool_pick(session, actor, n, s, named, allowed)
        trainees = (
            shadows_of(pool, named, {u.id for _l, u in allowed.values()})
            if pool is not None and s.bring_shadow
            else []
        )
        checked.append((s, ids, room, pool, eligible, trainees))
    users = {
        u.id: u
        for _s, ids, _r, _p, el, sh in checked
        for u in [allowed[i][1] for i in ids] + el + sh
    }
    org = session.get_one(Organisation, actor.organisation_id)
    hours = roster.hours_for(session, list(users.values()), org)
    links = {user.id: link for link, user in choices}

    def member(user: User) -> model.PanelMember:
        return model.PanelMember(links[user.id], user, hours[user.id])

    return [
        ResolvedSession(
            s,
            tuple(
                model.PanelMember(allowed[i][0], allowed[i][1], hours[allowed[i][1].id])
                for i in ids
            ),
            room,
            pool,
            tuple(member(u) for u in eligible),
            tuple(member(u) for u in trainees),
        )
        for s, ids, room, pool, eligible, trainees in checked
    ]


def plan_choices(session: Session, actor: Actor, plan: LoopPlan) -> list[tuple[ProfileLink, User]]:
    """``roster.panel_choices`` for the people a plan may put on its panels (those it names and
    its pools' members), by the same rules, without reading the whole organisation."""
    among = {i for s in plan.sessions for i in s.panel_link_ids}
    pool_ids = {s.pool_id for s in plan.sessions if s.pool_id and s.pool_count}
    if pool_ids:
        among.update(
            session.scalars(
                select(ProfileLink.id)
                .join(PoolMember, PoolMember.user_id == ProfileLink.user_id)
                .where(
                    ProfileLink.organisation_id == actor.organisation_id,
                    PoolMember.organisation_id == actor.organisation_id,
                    PoolMember.pool_id.in_(pool_ids),
                )
            )
        )
    return roster.panel_choices(session, actor, among=sorted(among))


def _pool_pick(
    session: Session,
    actor: Actor,
    n: int,
    s: SessionPlan,
    named: Sequence[User],
    allowed: dict[int, tuple[ProfileLink, User]],
) -> tuple[Pool | None, list[User]]:
    """The session's pool and the people it may pick from (a linked calendar, not a shadow,
    not named), checked."""
    if not s.pool_id:
        if s.pool_count:
            raise Invalid(f"Choose the pool for session {n}.", field=_field(n, "pool"))
        if s.bring_shadow:
            raise Invalid(
                f"Session {n}: a shadow comes from the session's pool; choose the pool.",
                field=_field(n, "pool"),
            )
        return None, []
    if not 1 <= s.pool_count <= MAX_POOL_PICK:
        raise Invalid(
            f"Session {n} picks 1 to {MAX_POOL_PICK} people from its pool.",
            field=_field(n, "pool_count"),
        )
    try:
        pool = pool_for(session, actor, s.pool_id)
    except NotFound:
        raise Invalid(
            f"Session {n}: choose one of the listed pools.", field=_field(n, "pool")
        ) from None
    linked = {user.id for _link, user in allowed.values()}
    taken = {u.id for u in named}
    eligible = [
        m.user
        for m in pool.members
        if not m.is_shadow and m.user_id in linked and m.user_id not in taken and m.user.active
    ]
    if len(eligible) < s.pool_count:
        raise Invalid(
            f"Session {n}: {pool.name} has {len(eligible)} people who could be picked "
            "(a linked calendar, not a shadow, not already named).",
            field=_field(n, "pool_count"),
        )
    if len(named) + s.pool_count > model.MAX_PANEL:
        raise Invalid(
            f"Session {n} has at most {model.MAX_PANEL} people.", field=_field(n, "pool_count")
        )
    return pool, eligible
