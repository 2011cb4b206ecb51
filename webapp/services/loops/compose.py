"""Composing a loop: its sessions in order (title, length, who, room, video, gaps), the candidate,
and the days it may take. Checked in full before anything is stored; the candidate's name and
email and the titles are sealed on the loop's row (AES-GCM, bound to the loop's uid)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from models import (
    InterviewLoop,
    LoopSession,
    LoopState,
    Organisation,
    Pool,
    PoolMember,
    ProfileLink,
    Role,
    User,
    utcnow,
)
from webapp.security import Sealer
from webapp.services import Actor, printable
from webapp.services.accounts import valid_email
from webapp.services.audit import record
from webapp.services.availability import model, roster
from webapp.services.errors import Forbidden, Invalid, NotFound
from webapp.services.link_details import email_hash
from webapp.services.pools.manage import pool_for, shadows_of
from webapp.services.scheduling.booking import check_title_and_name
from webapp.services.scheduling.content import MAX_TITLE

#: Sessions in a loop: at least two (one is an interview), at most what one sequenced
#: availability call takes comfortably (the aggregator allows ten steps).
MIN_SESSIONS, MAX_SESSIONS = 2, 8
#: Longest break between two sessions of a one-day loop (minutes).
MAX_BREAK = 240
DEFAULT_BREAK = 60
#: Gaps a session may ask for before or after it (as availability buffers).
MAX_GAP = 120
#: Most people one session picks from a pool.
MAX_POOL_PICK = 5
#: Longest sealed details accepted (names, email, nine titles, JSON-escaped, + AES-GCM).
MAX_SEALED = 16384


@dataclass(frozen=True)
class SessionPlan:
    title: str
    duration: int = 60
    panel_link_ids: tuple[int, ...] = ()
    room: str | None = None
    video: bool = True
    buffer_before: int = 0
    buffer_after: int = 0
    #: "Any ``pool_count`` from pool ``pool_id``" besides the people named.
    pool_id: int | None = None
    pool_count: int = 0
    #: Also bring a shadow (trainee) of the pool, when one is free (never counted in the N).
    bring_shadow: bool = False


@dataclass(frozen=True)
class LoopPlan:
    title: str
    candidate_name: str
    candidate_email: str
    sessions: tuple[SessionPlan, ...]
    start_date: dt.date
    days: int = 5
    tzid: str = "Europe/London"
    candidate_tzid: str | None = None
    split_days: bool = False
    max_break: int | None = DEFAULT_BREAK
    #: A coordinator's loop: the assigned hiring manager whose calendar holds the sessions.
    on_behalf_of_id: int | None = None


@dataclass(frozen=True)
class LoopDetails:
    """What the loop's row keeps sealed."""

    candidate_name: str
    candidate_email: str
    title: str
    session_titles: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ResolvedSession:
    """A session with its people and room checked against what the actor may choose."""

    plan: SessionPlan
    members: tuple[model.PanelMember, ...]
    room: model.Room | None
    pool: Pool | None = None
    #: The pool's members who could be picked: linked calendar, not a shadow, not named.
    candidates: tuple[model.PanelMember, ...] = ()
    #: The pool's shadows who could be brought along (linked calendar, not named), when the
    #: session asks for one.
    shadows: tuple[model.PanelMember, ...] = ()

    @property
    def count(self) -> int:
        return self.plan.pool_count if self.pool is not None else 0


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


def _associated_data(uid: str) -> bytes:
    return f"interview_loop.details_sealed:{uid}".encode()


def seal_details(sealer: Sealer, loop: InterviewLoop, details: LoopDetails) -> None:
    plain = json.dumps(
        {
            "n": details.candidate_name,
            "e": details.candidate_email,
            "t": details.title,
            "s": list(details.session_titles),
        }
    )
    loop.details_sealed = sealer.seal_bytes(plain.encode(), _associated_data(loop.uid))
    loop.candidate_email_hash = email_hash(details.candidate_email)


def open_details(sealer: Sealer, loop: InterviewLoop) -> LoopDetails | None:
    """The loop's sealed details, or None if they do not open (another key, a moved row)."""
    blob = loop.details_sealed
    if not blob or len(blob) > MAX_SEALED:
        return None
    opened = sealer.open_bytes(bytes(blob), _associated_data(loop.uid))
    if opened is None:
        return None
    try:
        value = json.loads(opened)
        return LoopDetails(
            str(value["n"]), str(value["e"]), str(value["t"]), tuple(str(t) for t in value["s"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def compose_loop(session: Session, sealer: Sealer, actor: Actor, plan: LoopPlan) -> InterviewLoop:
    """Check the plan and store it as a draft loop (no aggregator call); audited."""
    check_plan(session, actor, plan)
    loop = InterviewLoop(
        uid=uuid.uuid4().hex,
        organisation_id=actor.organisation_id,
        created_by_id=actor.user_id,
        state=LoopState.DRAFT,
        tzid=plan.tzid,
        start_date=plan.start_date,
        days=plan.days,
        split_days=plan.split_days,
        max_break=None if plan.split_days else plan.max_break,
        candidate_tzid=plan.candidate_tzid,
        on_behalf_of_id=plan.on_behalf_of_id if actor.role is Role.COORDINATOR else None,
    )
    seal_details(
        sealer,
        loop,
        LoopDetails(
            plan.candidate_name.strip(),
            plan.candidate_email.strip(),
            plan.title.strip(),
            tuple(s.title.strip() for s in plan.sessions),
        ),
    )
    loop.sessions = [
        LoopSession(
            ordinal=n,
            duration_minutes=s.duration,
            panel_link_ids=list(dict.fromkeys(s.panel_link_ids)),
            room_email=s.room.strip().lower() if s.room else None,
            video=s.video,
            buffer_before=s.buffer_before,
            buffer_after=s.buffer_after,
            pool_id=s.pool_id if s.pool_count else None,
            pool_count=s.pool_count if s.pool_id else 0,
            bring_shadow=bool(s.bring_shadow and s.pool_id and s.pool_count),
        )
        for n, s in enumerate(plan.sessions, start=1)
    ]
    session.add(loop)
    session.flush()
    record(
        session,
        actor,
        "loop.composed",
        target_type="interview_loop",
        target_id=loop.id,
        detail={"sessions": len(plan.sessions), "split_days": plan.split_days},
    )
    session.commit()
    return loop


def plan_of(sealer: Sealer, loop: InterviewLoop) -> LoopPlan:
    """The loop as a plan again (to check it against today's roster, or to edit it)."""
    details = open_details(sealer, loop) or LoopDetails("", "", "", ())
    titles = details.session_titles
    return LoopPlan(
        title=details.title,
        candidate_name=details.candidate_name,
        candidate_email=details.candidate_email,
        sessions=tuple(
            SessionPlan(
                title=titles[s.ordinal - 1]
                if s.ordinal - 1 < len(titles)
                else f"Session {s.ordinal}",
                duration=s.duration_minutes,
                panel_link_ids=tuple(s.panel_link_ids),
                room=s.room_email,
                video=s.video,
                buffer_before=s.buffer_before,
                buffer_after=s.buffer_after,
                pool_id=s.pool_id,
                pool_count=s.pool_count if s.pool_id else 0,
                bring_shadow=bool(s.bring_shadow and s.pool_id),
            )
            for s in loop.sessions
        ),
        start_date=loop.start_date,
        days=loop.days,
        tzid=loop.tzid,
        candidate_tzid=loop.candidate_tzid,
        split_days=loop.split_days,
        max_break=loop.max_break,
        on_behalf_of_id=loop.on_behalf_of_id,
    )


@functools.cache
def _loop_statement() -> Select[InterviewLoop]:
    """The actor's loop by uid, its sessions in the same query (one round trip, where the
    relationship's own load is a second): built once per process, only values are bound."""
    return (
        select(InterviewLoop)
        .where(
            InterviewLoop.uid == bindparam("uid"),
            InterviewLoop.organisation_id == bindparam("organisation_id"),
            InterviewLoop.created_by_id == bindparam("user_id"),
        )
        .options(joinedload(InterviewLoop.sessions))
    )


def loop_for(session: Session, actor: Actor, uid: str) -> InterviewLoop:
    """The loop ``uid`` if the actor composed it (inside their organisation)."""
    if actor.role not in (Role.RECRUITER, Role.COORDINATOR):
        raise Forbidden("Only recruiters and coordinators compose interview loops.")
    if not uid or len(uid) > 32:
        raise NotFound("There is no interview loop with this id that you can see.")
    found = (
        session.scalars(
            _loop_statement(),
            {"uid": uid, "organisation_id": actor.organisation_id, "user_id": actor.user_id},
        )
        .unique()
        .one_or_none()
    )
    if found is None:
        raise NotFound("There is no interview loop with this id that you can see.")
    return found


def list_loops(session: Session, actor: Actor, limit: int = 50) -> list[InterviewLoop]:
    """The actor's loops, newest first."""
    if actor.role not in (Role.RECRUITER, Role.COORDINATOR):
        raise Forbidden("Only recruiters and coordinators compose interview loops.")
    return list(
        session.scalars(
            select(InterviewLoop)
            .where(
                InterviewLoop.organisation_id == actor.organisation_id,
                InterviewLoop.created_by_id == actor.user_id,
            )
            .order_by(InterviewLoop.created_at.desc(), InterviewLoop.id.desc())
            .limit(limit)
        )
    )
