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

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import InterviewLoad, InterviewLoop, User
from webapp.services.availability import model
from webapp.services.loops.plan import ResolvedSession
from webapp.services.pools import picking, sitting

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
    return [
        sitting.ask_free(
            broker,
            r.pool,
            r.shadows,
            start,
            r.plan.duration,
            r.plan.buffer_before,
            r.plan.buffer_after,
        )
        if r.pool is not None and r.plan.bring_shadow
        else None
        for r, start in zip(sessions, starts, strict=True)
    ]


def collect(pending: Sequence[Future | None]) -> list[frozenset[str]]:
    """Per session, the subs of its free shadows (none when the call failed)."""
    return [sitting.answer(future) for future in pending]


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
        found = (
            sitting.choose(
                session,
                organisation_id,
                r.pool,
                r.shadows,
                subs,
                start,
                r.plan.duration,
                r.plan.buffer_before,
                r.plan.buffer_after,
                on_panel={m.user.id for m in r.members},
                avoid=brought,
            )
            if r.pool is not None and subs
            else None
        )
        if found is None:
            out.append(None)
            continue
        member, picks = found
        brought.add(member.user.id)
        out.append(Brought(member, r.pool.id, picks))  # type: ignore[union-attr]
    return out


def bring(
    session: Session,
    organisation_id: int,
    staged: Sequence[tuple],
    sessions: Sequence[ResolvedSession],
    starts: Sequence[dt.datetime],
    chosen: Sequence[Brought | None],
) -> list[tuple]:
    """Seat each chosen shadow on its session (``sitting.seat``: claimed in a savepoint, a ledger
    row flagged shadow, invited); one taken meanwhile is left out. The staged (interview,
    content) pairs, with the shadows invited."""
    out = []
    seen: set[tuple[str, dt.datetime]] = set()
    for (interview, content), r, b in zip(staged, sessions, chosen, strict=True):
        seated = (
            sitting.seat(
                session,
                organisation_id,
                interview.id,
                b.member,
                b.pool_id,
                content,
                r.plan.buffer_before,
                r.plan.buffer_after,
                seen,
            )
            if b is not None
            else None
        )
        out.append((interview, seated or content))
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
