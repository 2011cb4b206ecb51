"""Composing a loop (the plan checked in full by ``checking.check_plan`` before anything is
stored), and reading it back: the candidate's name and email and the titles are sealed on the
loop's row (AES-GCM, bound to the loop's uid)."""

from __future__ import annotations

import functools
import json
import uuid

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from models import InterviewLoop, LoopSession, LoopState, Role
from webapp.security import Sealer
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.errors import Forbidden, NotFound
from webapp.services.link_details import email_hash
from webapp.services.loops.checking import check_plan
from webapp.services.loops.plan import (
    MAX_SEALED,
    LoopDetails,
    LoopPlan,
    SessionPlan,
)


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
