"""Shadows (trainees) brought along: a session that picks "any N from pool X" may also bring one
of the pool's shadows, as an extra attendee who never counts toward the N.

Who is free. Cronofy's availability cannot make a participant optional: every group of a query
needs at least one of its members (``required`` is "all" or N ≥ 1), so a trainee in the loop's
one sequenced call would make a session without a free trainee impossible. Shadows are
therefore asked on their own, at booking only: for each session that brings one, ONE
availability call for exactly the session's time (``query_slots``) with the pool's shadows as a
``required: 1`` group, its buffers those of the session; the aggregator answers which of them
are free (working hours, their calendars). No answer, or none free: the session is booked
without a shadow, and the page says so. The calls run concurrently, before the booking's
transaction; a failed call counts as "none free" (the panel's own times were checked already).

Who is brought. In the booking's transaction, after ``lock_people`` (the shadows are pool
members, locked with the pool): among the free shadows not held by one of our pending bookings,
the least loaded under their own limits (``picking.pick_from_pool(shadows=True)``). Their time
is claimed in a savepoint: if another booking took it meanwhile, the shadow is left out, never
the booking. The load ledger keeps who sat in as a shadow (ids and a flag, no calendar content),
which counts toward the shadow's own load and limits and names them "(shadow)" on the loop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import InterviewLoad, InterviewLoop, SlotClaim, User
from webapp.services import claims
from webapp.services.availability import free_slots, model
from webapp.services.errors import ServiceError
from webapp.services.loops.compose import ResolvedSession
from webapp.services.pools import ledger, picking

#: What the loop page says for a session that asked for a shadow and got none.
NONE_FREE = "no shadow of the pool was free at that time, so it was booked without one"


@dataclass(frozen=True)
class Brought:
    """The shadow a session brings, with every shadow's reason."""

    member: model.PanelMember
    pool_id: int
    picks: tuple[picking.Pick, ...]


def ask_free(
    broker, sessions: Sequence[ResolvedSession], starts: Sequence[dt.datetime]
) -> list[Future | None]:
    """Send, concurrently, one availability call per session that brings a shadow: who of its
    shadows is free at exactly its time (``collect`` takes the answers)."""
    out: list[Future | None] = []
    for r, start in zip(sessions, starts, strict=True):
        if r.pool is None or not r.plan.bring_shadow or not r.shadows:
            out.append(None)
            continue
        query = model.Query(
            panel_link_ids=(),
            duration=r.plan.duration,
            buffer_before=r.plan.buffer_before,
            buffer_after=r.plan.buffer_after,
        )
        ask = model.PoolAsk(r.pool, 1, r.shadows)
        out.append(
            free_slots.pool().submit(free_slots.free_at, broker, [], query, start, asks=(ask,))
        )
    return out


def collect(pending: Sequence[Future | None]) -> list[frozenset[str]]:
    """Per session, the subs of its free shadows (none when the call failed)."""
    out: list[frozenset[str]] = []
    for future in pending:
        if future is None:
            out.append(frozenset())
            continue
        try:
            out.append(future.result() or frozenset())
        except ServiceError:
            out.append(frozenset())
    return out


def pick(
    session: Session,
    organisation_id: int,
    sessions: Sequence[ResolvedSession],
    starts: Sequence[dt.datetime],
    free: Sequence[frozenset[str]],
) -> list[Brought | None]:
    """Per session, the shadow it brings (None: it asks for none, or none is free under their
    limits and clear of our pending bookings). Call after ``lock_people``."""
    out: list[Brought | None] = []
    brought: set[int] = set()
    for r, start, subs in zip(sessions, starts, free, strict=True):
        if r.pool is None or not subs:
            out.append(None)
            continue
        shared = Counter(m.link.aggregator_sub for m in r.shadows)
        by_sub = {m.link.aggregator_sub: m for m in r.shadows if shared[m.link.aggregator_sub] == 1}
        end = start + dt.timedelta(minutes=r.plan.duration)
        held = claims.held(
            session,
            organisation_id,
            [by_sub[s].link.sub for s in subs if s in by_sub],
            start,
            end,
        )
        free_ids = {
            by_sub[s].user.id
            for s in subs
            if s in by_sub
            and not held.clashes(
                [by_sub[s].link.sub],
                start,
                end,
                before=r.plan.buffer_before,
                after=r.plan.buffer_after,
            )
        }
        on_panel = {m.user.id for m in r.members}
        chosen: list[picking.Pick] = []
        picks: list[picking.Pick] = []
        for exclude in (on_panel | brought, on_panel):  # spread over the shadows when it can
            picks = picking.pick_from_pool(
                session, r.pool, free_ids, 1, start, exclude_user_ids=exclude, shadows=True
            )
            chosen = picking.picked(picks)
            if chosen:
                break
        if not chosen:
            out.append(None)
            continue
        member = next(m for m in r.shadows if m.user.id == chosen[0].user_id)
        brought.add(member.user.id)
        out.append(Brought(member, r.pool.id, tuple(picks)))
    return out


def bring(
    session: Session,
    organisation_id: int,
    staged: Sequence[tuple],
    sessions: Sequence[ResolvedSession],
    starts: Sequence[dt.datetime],
    chosen: Sequence[Brought | None],
) -> list[tuple]:
    """Add each chosen shadow to its session (flushed, in the booking's transaction): their time
    claimed in a savepoint (taken meanwhile: left out), a ledger row flagged shadow, and the
    event's attendee. The staged (interview, content) pairs, with the shadows invited."""
    out = []
    seen: set[tuple[str, dt.datetime]] = set()
    for (interview, content), r, start, b in zip(staged, sessions, starts, chosen, strict=True):
        if b is None:
            out.append((interview, content))
            continue
        hold = claims.hold_of(
            [b.member.link.sub],
            start,
            r.plan.duration,
            before=r.plan.buffer_before,
            after=r.plan.buffer_after,
        )
        rows = [
            {
                "organisation_id": organisation_id,
                "interview_id": interview.id,
                "sub": b.member.link.sub,
                "bucket_start": bucket,
                "starts_at": hold.start,
                "ends_at": hold.end,
            }
            for bucket in hold.buckets()
            if (b.member.link.sub, bucket) not in seen
        ]
        try:
            with session.begin_nested():
                if rows:
                    session.execute(insert(SlotClaim), rows)
                ledger.write(
                    session,
                    organisation_id,
                    interview.id,
                    [b.member.user.id],
                    start,
                    {b.member.user.id: b.pool_id},
                    shadow=True,
                )
                session.flush()
        except IntegrityError:
            out.append((interview, content))  # taken meanwhile: booked without the shadow
            continue
        seen |= {(b.member.link.sub, bucket) for bucket in hold.buckets()}
        invited = (*content.attendees, (b.member.email, b.member.user.name))
        out.append((interview, dataclasses.replace(content, attendees=invited)))
    return out


def names(session: Session, interview_ids: Sequence[int]) -> dict[int, list[str]]:
    """Interview id → the names of the shadows sitting in (from the ledger: ids only)."""
    if not interview_ids:
        return {}
    out: dict[int, list[str]] = {}
    for interview_id, name in session.execute(
        select(InterviewLoad.interview_id, User.name)
        .join(User, User.id == InterviewLoad.user_id)
        .where(InterviewLoad.interview_id.in_(interview_ids), InterviewLoad.is_shadow.is_(True))
        .order_by(InterviewLoad.id)
    ):
        out.setdefault(interview_id, []).append(name)
    return out


def missing(session: Session, loop: InterviewLoop) -> list[int]:
    """The ordinals of the loop's booked sessions that asked for a shadow and have none."""
    asked = {s.interview_id: s.ordinal for s in loop.sessions if s.bring_shadow and s.interview_id}
    have = names(session, list(asked))
    return sorted(n for i, n in asked.items() if i not in have)
