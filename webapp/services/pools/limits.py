"""A moved interview keeps the people picked for it from a pool, and their limits still hold.

The ledger says who on an interview was picked from a pool (``InterviewLoad.pool_id``); a move
to another day or week re-checks those people's limits there (``check_move``), counting their
other live interviews but not the one being moved. ``lock_people`` first, in the move's
transaction, so two moves (or a move and a booking) onto one person's last free place count one
after the other; the shadows sitting in are locked with them, in the same one sorted set.
``check_moves`` does it for interviews moving together (a whole loop), each
counted where it will be. ``full_starts`` answers the same for many candidate times at once,
with one read, so the reschedule page leaves out the times a move would be refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Interview, InterviewLoad, Pool
from webapp.services.errors import Invalid
from webapp.services.pools import picking


class OverLimit(Invalid):
    """A move that would take a pool-picked person over a limit of their pool. The message names
    the person and their load: for the organisation's schedulers, never for a candidate."""


@dataclass(frozen=True)
class Picked:
    """One person the interview's ledger says was picked from a pool, with that pool's limits."""

    user_id: int
    name: str
    pool_name: str
    tzid: str
    max_per_day: int | None
    max_per_week: int | None


def picked_on(session: Session, organisation_id: int, interview_id: int) -> list[Picked]:
    """The interview's pool-picked people who still have a limit in that pool."""
    rows = session.execute(
        select(InterviewLoad.user_id, InterviewLoad.pool_id).where(
            InterviewLoad.organisation_id == organisation_id,
            InterviewLoad.interview_id == interview_id,
            InterviewLoad.pool_id.is_not(None),
            InterviewLoad.is_shadow.is_(False),  # a shadow never holds a move back
        )
    ).all()
    found = []
    for user_id, pool_id in rows:
        pool = session.get(Pool, pool_id)
        if pool is None or pool.organisation_id != organisation_id:
            continue
        member = next((m for m in picking.members_of(session, pool) if m.user_id == user_id), None)
        if member is None or (member.max_per_day is None and member.max_per_week is None):
            continue  # no longer in the pool, or no limit there: nothing to hold to
        found.append(
            Picked(
                user_id,
                member.name,
                pool.name,
                member.tzid,
                member.max_per_day,
                member.max_per_week,
            )
        )
    return found


def _others(
    session: Session,
    organisation_id: int,
    user_ids: Collection[int],
    lo: dt.datetime,
    hi: dt.datetime,
    moving: Collection[int],
) -> picking.Loads:
    """The people's live interviews starting in [lo, hi), but for those being ``moving``."""
    loads = picking.Loads(start=lo, end=hi)
    rows = session.execute(
        select(InterviewLoad.user_id, InterviewLoad.starts_at)
        .join(Interview, Interview.id == InterviewLoad.interview_id)
        .where(
            InterviewLoad.organisation_id == organisation_id,
            InterviewLoad.user_id.in_(sorted(set(user_ids))),
            InterviewLoad.starts_at >= lo,
            InterviewLoad.starts_at < hi,
            InterviewLoad.interview_id.not_in(sorted(set(moving))),
            Interview.status.in_(picking.LIVE),
        )
    )
    for user_id, starts_at in rows:
        loads.starts[user_id].append(starts_at)
    return loads


def _over(p: Picked, loads: picking.Loads, start: dt.datetime) -> str | None:
    """Why a move of the interview to ``start`` would take ``p`` over a limit, or None."""
    day_lo, day_hi, week_lo, week_hi = picking._bounds(start.astimezone(dt.UTC), p.tzid)
    if p.max_per_day is not None and loads.count(p.user_id, day_lo, day_hi) >= p.max_per_day:
        return (
            f"{p.name} has reached the limit of {picking._count(p.max_per_day, 'interview')} "
            f"a day on that day for pool {p.pool_name}."
        )
    if p.max_per_week is not None and loads.count(p.user_id, week_lo, week_hi) >= p.max_per_week:
        return (
            f"{p.name} has reached the limit of {picking._count(p.max_per_week, 'interview')} "
            f"a week in that week for pool {p.pool_name}."
        )
    return None


def check_move(
    session: Session, organisation_id: int, interview_id: int, start: dt.datetime
) -> None:
    """Lock the interview's pool-picked people until the caller commits, then refuse (Invalid,
    nothing changed) a move to ``start`` that would take any of them over a limit of their pool.
    The caller rolls back on the error, which lets the lock go."""
    check_moves(session, organisation_id, [(interview_id, start)])


def check_moves(
    session: Session, organisation_id: int, moves: Sequence[tuple[int, dt.datetime]]
) -> None:
    """``check_move`` for interviews moving together (a whole loop): each picked person's other
    interviews are counted where they will be after every move of ``moves``."""
    picked = {i: picked_on(session, organisation_id, i) for i, _start in moves}
    ids = sorted({p.user_id for people in picked.values() for p in people})
    # The shadows sitting in are locked with them, in one sorted set as a booking locks its
    # candidates and shadows (two sets taken one after the other could wait in a cycle):
    # ``sitting.follow_move`` reads their limits under these locks.
    shadows = session.scalars(
        select(InterviewLoad.user_id).where(
            InterviewLoad.organisation_id == organisation_id,
            InterviewLoad.interview_id.in_(sorted({i for i, _start in moves})),
            InterviewLoad.is_shadow.is_(True),
        )
    ).all()
    picking.lock_people(session, organisation_id, [*ids, *shadows])
    if not ids:
        return
    starts = [s for _i, s in moves]
    lo = picking.span(min(starts), dt.timedelta(0))[0]
    hi = picking.span(max(starts), dt.timedelta(0))[1]
    moving = [i for i, _start in moves]
    on = session.execute(  # who sits on each moving interview (picked or named: all count)
        select(InterviewLoad.interview_id, InterviewLoad.user_id).where(
            InterviewLoad.interview_id.in_(moving), InterviewLoad.user_id.in_(ids)
        )
    ).all()
    new_start = dict(moves)
    others = _others(session, organisation_id, ids, lo, hi, moving)
    for interview_id, start in moves:
        loads = picking.Loads(start=lo, end=hi)
        for user_id, times in others.starts.items():
            loads.starts[user_id] = list(times)
        for other, user_id in on:
            if other != interview_id:
                loads.starts[user_id].append(new_start[other])
        for p in picked[interview_id]:
            why = _over(p, loads, start)
            if why is not None:
                raise OverLimit(why + " Pick a time on another day.", field="slot")


def full_starts(
    session: Session,
    organisation_id: int,
    interview_id: int,
    starts: Collection[dt.datetime],
) -> set[dt.datetime]:
    """Of ``starts``, those a move of the interview would be refused at for a pool limit (one
    read for all of them; the move itself checks again, under the lock)."""
    people = picked_on(session, organisation_id, interview_id) if starts else []
    if not people:
        return set()
    lo = picking.span(min(starts), dt.timedelta(0))[0]
    hi = picking.span(max(starts), dt.timedelta(0))[1]
    loads = _others(session, organisation_id, [p.user_id for p in people], lo, hi, [interview_id])
    return {s for s in starts if any(_over(p, loads, s) is not None for p in people)}


def without_full(
    session: Session, organisation_id: int, interview_id: int, slots: Collection
) -> tuple:
    """The slots (anything with a ``start``) a move of the interview may take."""
    full = full_starts(session, organisation_id, interview_id, {s.start for s in slots})
    return tuple(s for s in slots if s.start not in full)
