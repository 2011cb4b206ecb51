"""A panel's "any N from pool X": who can be picked, and who each slot would pick.

The aggregator answers which members of each pool are free for each slot (one availability
call: each ask is a participants group with ``required: N``, and every slot lists the members
free in it). Rendezvous then takes out anyone our own bookings hold at that time (their
calendar may not show it yet) and picks among the rest with ``picking.pick_from_pool``; a slot
where some ask cannot be filled (too few free, or the free ones at their limits) is not offered.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.types import Period, Slot
from models import Organisation, Pool, ProfileLink, User
from webapp.services import Actor, claims
from webapp.services.availability.model import MAX_PANEL, PanelMember, PoolAsk, Query
from webapp.services.availability.roster import hours_for, panel_choices
from webapp.services.errors import Invalid
from webapp.services.pools import picking

#: Pools one panel may ask (each is a participants group; the aggregator takes ten groups).
MAX_ASKS = 5


@dataclass(frozen=True)
class SlotPicks:
    """What one ask picks for one slot: every member with its reason, picked ones first."""

    ask: PoolAsk
    picks: tuple[picking.Pick, ...]

    @property
    def chosen(self) -> list[picking.Pick]:
        return picking.picked(self.picks)

    @property
    def summary(self) -> str:
        """ "Backend: Sam Patel" (who goes on the panel)."""
        return f"{self.ask.pool.name}: {', '.join(p.name for p in self.chosen)}"

    @property
    def reasons(self) -> str:
        return picking.explain(self.picks)


def validate(query: Query) -> None:
    """The asks' shape: known pools once each, 1 to MAX_PANEL each, a panel of at most
    MAX_PANEL in all."""
    ids = [pool_id for pool_id, _n in query.pools]
    if len(ids) > MAX_ASKS:
        raise Invalid(f"Ask at most {MAX_ASKS} pools for one panel.", field="pools")
    if len(set(ids)) != len(ids):
        raise Invalid("Ask for each pool once.", field="pools")
    if any(not 1 <= n <= MAX_PANEL for _id, n in query.pools):
        raise Invalid(f"Pick between 1 and {MAX_PANEL} people from a pool.", field="pools")
    if len(query.panel_link_ids) + sum(n for _id, n in query.pools) > MAX_PANEL:
        raise Invalid(f"A panel has at most {MAX_PANEL} people.", field="pools")
    if not set(query.shadows) <= set(ids) or len(set(query.shadows)) != len(query.shadows):
        raise Invalid("A shadow comes from a pool the panel asks for.", field="pools")


def resolve(
    session: Session,
    actor: Actor,
    query: Query,
    named: Sequence[PanelMember],
    *,
    choices: Sequence[tuple[ProfileLink, User]] | None = None,
) -> tuple[PoolAsk, ...]:
    """The query's asks, refusing a pool of another organisation and an ask more people than
    the pool can give. Candidates are the pool's members the actor could put on a panel
    (``roster.panel_choices``: a usable calendar), not shadows, not named already.
    ``choices``: the actor's whole ``panel_choices`` when already read (not a panel's own)."""
    if not query.pools:
        if query.shadows:
            raise Invalid("A shadow comes from a pool the panel asks for.", field="pools")
        return ()
    validate(query)
    named_ids = {m.user.id for m in named}
    pools = {
        p.id: p
        for p in session.scalars(
            select(Pool).where(
                Pool.organisation_id == actor.organisation_id,
                Pool.id.in_([pool_id for pool_id, _n in query.pools]),
            )
        )
    }
    if choices is None:  # the same rules as any panel, reading only the pools' people
        people_ids = {m.user_id for p in pools.values() for m in p.members}
        links = session.scalars(
            select(ProfileLink.id).where(
                ProfileLink.organisation_id == actor.organisation_id,
                ProfileLink.user_id.in_(people_ids),
            )
        ).all()
        choices = panel_choices(session, actor, among=links) if links else []
    by_user = {user.id: (link, user) for link, user in choices}
    org = session.get_one(Organisation, actor.organisation_id)
    asks = []
    for pool_id, count in query.pools:
        pool = pools.get(pool_id)
        if pool is None:
            raise Invalid("Choose a pool from the list.", field="pools")
        people = [
            by_user[m.user_id]
            for m in pool.members
            if not m.is_shadow and m.user_id in by_user and m.user_id not in named_ids
        ]
        if len(people) < count:
            raise Invalid(
                f"{pool.name} has {len(people)} "
                f"{'person' if len(people) == 1 else 'people'} who can be picked (a linked "
                "calendar, not a shadow, not already on the panel): ask for fewer.",
                field="pools",
            )
        trainees = (
            [
                by_user[m.user_id]
                for m in pool.members
                if m.is_shadow and m.user_id in by_user and m.user_id not in named_ids
            ]
            if pool_id in query.shadows
            else []
        )
        hours = hours_for(session, [u for _l, u in people + trainees], org)
        asks.append(
            PoolAsk(
                pool,
                count,
                tuple(PanelMember(link, u, hours[u.id]) for link, u in people),
                tuple(PanelMember(link, u, hours[u.id]) for link, u in trainees),
            )
        )
    return tuple(asks)


def candidate_subs(asks: Sequence[PoolAsk]) -> list[str]:
    return list(dict.fromkeys(m.link.sub for a in asks for m in a.candidates))


def pick_slot(
    session: Session,
    asks: Sequence[PoolAsk],
    start: dt.datetime,
    end: dt.datetime,
    participants: Collection[str],
    held: claims.Held,
    query: Query,
    *,
    named_user_ids: Collection[int] = (),
    loads: dict[int, picking.Loads] | None = None,
    ignore_interview: int | None = None,
) -> tuple[SlotPicks, ...] | None:
    """Who each ask picks for the slot [start, end): among the candidates the aggregator listed
    free (``participants``: the accounts asked about) and our claims do not hold; None when an
    ask cannot be filled. Asks pick in order, never someone on the panel already (named or
    picked). An account asked about for two candidates (a delegated calendar and its owner)
    tells neither apart: neither counts as free through it."""
    taken = set(named_user_ids)
    wanted = claims.buckets(
        start - dt.timedelta(minutes=query.buffer_before),
        end + dt.timedelta(minutes=query.buffer_after),
    )
    out = []
    for ask in asks:
        shared = Counter(m.link.aggregator_sub for m in ask.candidates)
        free = {
            m.user.id
            for m in ask.candidates
            if m.link.aggregator_sub in participants
            and shared[m.link.aggregator_sub] == 1
            and not any(b in held.buckets.get(m.link.sub, ()) for b in wanted)
        }
        picks = picking.pick_from_pool(
            session,
            ask.pool,
            free,
            ask.count,
            start,
            exclude_user_ids=taken,
            loads=(loads or {}).get(ask.pool.id),
            ignore_interview=ignore_interview,
        )
        chosen = picking.picked(picks)
        if len(chosen) < ask.count:
            return None
        taken.update(p.user_id for p in chosen)
        out.append(SlotPicks(ask, tuple(picks)))
    return tuple(out)


def read_all_loads(
    session: Session, asks: Sequence[PoolAsk], start: dt.datetime, end: dt.datetime
) -> dict[int, picking.Loads]:
    """Each ask's pool's loads over every slot starting in [start, end) (one query per pool)."""
    out = {}
    for ask in asks:
        lo, _ = picking.span(start, picking.WINDOW)
        _, hi = picking.span(end, picking.WINDOW)
        out[ask.pool.id] = picking.read_loads(
            session,
            ask.pool.organisation_id,
            ask.pool.id,
            [m.user_id for m in ask.pool.members],
            lo,
            hi,
        )
    return out


def members_of(picks: Sequence[SlotPicks]) -> tuple[list[PanelMember], dict[int, int]]:
    """The picked people as panel members, and user id → the pool each was picked from."""
    members, picked_from = [], {}
    for sp in picks:
        by_user = {m.user.id: m for m in sp.ask.candidates}
        for p in sp.chosen:
            members.append(by_user[p.user_id])
            picked_from[p.user_id] = sp.ask.pool.id
    return members, picked_from


def picked_slots(
    session: Session,
    asks: Sequence[PoolAsk],
    slots: Sequence[Slot],
    members: Sequence[PanelMember],
    query: Query,
    window: Period,
) -> tuple[tuple[Slot, ...], dict[str, tuple[SlotPicks, ...]]]:
    """The slots every pool ask can be filled for, and who each would pick and why (the pool
    members' claims and loads read once for all the slots)."""
    org_id = asks[0].pool.organisation_id
    held = claims.held(session, org_id, candidate_subs(asks), window.start, window.end)
    loads = read_all_loads(session, asks, window.start, window.end)
    named = {m.user.id for m in members}
    kept, picks = [], {}
    for slot in slots:
        found = pick_slot(
            session,
            asks,
            slot.start,
            slot.end,
            set(slot.participants),
            held,
            query,
            named_user_ids=named,
            loads=loads,
        )
        if found is not None:
            kept.append(slot)
            picks[slot.start.isoformat()] = found
    return tuple(kept), picks


def pick_at_booking(
    session: Session,
    actor: Actor,
    asks: Sequence[PoolAsk],
    query: Query,
    start: dt.datetime,
    end: dt.datetime,
    free: Collection[str],
    named: Sequence[PanelMember],
) -> tuple[SlotPicks, ...] | None:
    """Pick again, now, for a booking of [start, end) (``free``: subs the aggregator has just
    found free then). The candidates stay locked until the booking commits
    (``picking.lock_people``): a concurrent booking then counts this one before it picks, so
    nobody is pushed over a limit; our claims are read after the lock too. None when an ask can
    no longer be filled."""
    assert actor.organisation_id is not None
    picking.lock_people(
        session, actor.organisation_id, [m.user.id for a in asks for m in a.candidates]
    )
    held = claims.held(session, actor.organisation_id, candidate_subs(asks), start, end)
    return pick_slot(
        session, asks, start, end, free, held, query, named_user_ids=[m.user.id for m in named]
    )
