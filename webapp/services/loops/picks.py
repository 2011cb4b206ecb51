"""Pool picks for a loop's itinerary: for each session that asks for "any N from pool X", the
members the aggregator found free for that session's slot (the participants of the pool's
``required: N`` group), picked by load under their limits (``pools.picking.pick_from_pool``),
with every member's reason. People picked for an earlier session of the same itinerary are left
for others when the pool has enough, so a loop spreads over its pool.

Loads are read once per pool for the whole search window (one query each), not per option.
The same picks are made again when the loop is booked, after ``lock_people``, so two bookings
picking the same person count one after the other and neither pushes them over a limit.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broker.types import Period, Slot
from webapp.services import claims
from webapp.services.availability import model
from webapp.services.loops.plan import ResolvedSession
from webapp.services.pools import picking


@dataclass(frozen=True)
class SessionPick:
    """Who was picked from the session's pool, and every member's reason."""

    pool_id: int
    members: tuple[model.PanelMember, ...]
    picks: tuple[picking.Pick, ...]

    @property
    def explanation(self) -> str:
        return picking.explain(self.picks)


def read_loads(
    session: Session, organisation_id: int, sessions: Sequence[ResolvedSession], window: Period
) -> dict[int, picking.Loads]:
    """Each pool's loads over the window (and the limits' reach around it), with its members'
    limits: one query a pool."""
    out: dict[int, picking.Loads] = {}
    # What pick_from_pool reads for a slot (its fairness windows and the slot's week): loads
    # read over less would be read again for every pick.
    start, _ = picking.span(window.start, picking.WINDOW)
    _, end = picking.span(window.end, picking.WINDOW)
    for r in sessions:
        if r.pool is None or r.pool.id in out:
            continue
        loads = picking.read_loads(
            session,
            organisation_id,
            r.pool.id,
            [m.user_id for m in r.pool.members],
            start,
            end,
        )
        # Their limits and zones too, which the first pick would read otherwise (on a page,
        # after the aggregator's answer instead of while it is awaited).
        loads.members = picking.members_of(session, r.pool)
        out[r.pool.id] = loads
    return out


def pick_itinerary(
    session: Session,
    sessions: Sequence[ResolvedSession],
    slots: Sequence[Slot],
    loads: dict[int, picking.Loads],
    *,
    held: claims.Held | None = None,
) -> list[SessionPick | None] | None:
    """Per session, its picks (None for a session without a pool); None when a session cannot
    get its N (everyone free is at a limit, or held by one of our pending bookings)."""
    taken: set[int] = set()
    out: list[SessionPick | None] = []
    for r, slot in zip(sessions, slots, strict=True):
        if r.pool is None:
            out.append(None)
            continue
        # The aggregator names who is free by account, a delegated calendar by its owner's:
        # only an account that is one candidate's tells who is free.
        shared = Counter(m.link.aggregator_sub for m in r.candidates)
        by_sub = {
            m.link.aggregator_sub: m for m in r.candidates if shared[m.link.aggregator_sub] == 1
        }
        by_user = {m.user.id: m for m in r.candidates}
        free = {
            by_sub[sub].user.id
            for sub in slot.participants
            if sub in by_sub
            and (
                held is None
                or not held.clashes(
                    [by_sub[sub].link.sub],
                    slot.start,
                    slot.end,
                    before=r.plan.buffer_before,
                    after=r.plan.buffer_after,
                )
            )
        }
        named = {m.user.id for m in r.members}
        chosen: list[picking.Pick] = []
        picks: list[picking.Pick] = []
        for exclude in (named | taken, named):
            picks = picking.pick_from_pool(
                session,
                r.pool,
                free,
                r.count,
                slot.start,
                exclude_user_ids=exclude,
                loads=loads.get(r.pool.id),
            )
            chosen = picking.picked(picks)
            if len(chosen) >= r.count:
                break
        if len(chosen) < r.count:
            return None
        taken |= {p.user_id for p in chosen}
        out.append(SessionPick(r.pool.id, tuple(by_user[p.user_id] for p in chosen), tuple(picks)))
    return out


def with_picks(
    sessions: Sequence[ResolvedSession], picks: Sequence[SessionPick | None]
) -> list[ResolvedSession]:
    """The sessions with their picked people on the panel (what a booking writes and claims)."""
    return [
        r if p is None else dataclasses.replace(r, members=r.members + p.members)
        for r, p in zip(sessions, picks, strict=True)
    ]


def picked_from(picks: Sequence[SessionPick | None]) -> list[dict[int, int]]:
    """Per session: user id → the pool they were picked from (the load ledger's ``pool_id``)."""
    return [{} if p is None else {m.user.id: p.pool_id for m in p.members} for p in picks]
