"""Start times for a whole loop, in ONE aggregator call: Cronofy's sequenced availability
(the query: ``webapp.services.loops.sequence``). The aggregator answers with one way to hold
every session per feasible start of the first (the earliest continuation each time); Rendezvous
then keeps the options that fit the loop's days (one date, or at most two, in the loop's zone)
and that none of our own bookings' claims stand in the way of (bookings whose calendars do not
show them yet), with each pool's picks made and explained. The call goes out first; our own
reads are made while it is in flight (``start_loop_times``, ``PendingLoopTimes``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Period, SequenceOption
from models import InterviewLoop, utcnow
from webapp.security import Sealer
from webapp.services import Actor, claims
from webapp.services.availability import free_slots, model
from webapp.services.credentials import broker_problem
from webapp.services.loops import picks
from webapp.services.loops.checking import check_plan
from webapp.services.loops.compose import open_details, plan_of
from webapp.services.loops.plan import LoopPlan, ResolvedSession
from webapp.services.loops.sequence import (
    fits_days,
    search_window,
    sequenced_query,
    step_id,
)
from webapp.services.pools import picking


@dataclass(frozen=True)
class Stop:
    """One session of an itinerary: when, who and where."""

    ordinal: int
    title: str
    start: dt.datetime
    end: dt.datetime
    people: tuple[str, ...]
    room: model.Room | None
    video: bool
    #: Picked from the session's pool, and why (every member's reason), for sessions with one.
    picked: tuple[str, ...] = ()
    why: str | None = None


@dataclass(frozen=True)
class Itinerary:
    stops: tuple[Stop, ...]

    @property
    def start(self) -> dt.datetime:
        return self.stops[0].start

    @property
    def end(self) -> dt.datetime:
        return self.stops[-1].end

    @property
    def value(self) -> str:
        """The form value naming this option: each session's start, in order (UTC, ISO)."""
        return ",".join(s.start.astimezone(dt.UTC).isoformat() for s in self.stops)


@dataclass(frozen=True)
class LoopTimes:
    loop: InterviewLoop
    plan: LoopPlan
    sessions: list[ResolvedSession]
    window: Period
    options: tuple[Itinerary, ...]


def held_for(
    session: Session,
    organisation_id: int,
    sessions: Sequence[ResolvedSession],
    window: Period,
    *,
    ignore: set[int] | frozenset[int] = frozenset(),
) -> claims.Held:
    """Our own bookings' claims on everyone the loop may claim (less ``ignore``'s)."""
    return claims.held(
        session,
        organisation_id,
        _all_subs(sessions),
        window.start,
        window.end,
        ignore_interviews=ignore,
    )


def _all_subs(sessions: Sequence[ResolvedSession]) -> list[str]:
    """Everyone a loop may claim: named people, pool members who may be picked, rooms."""
    return sorted(
        {m.link.sub for s in sessions for m in (*s.members, *s.candidates)}
        | {s.room.sub for s in sessions if s.room is not None}
    )


def session_subs(s: ResolvedSession) -> list[str]:
    return [m.link.sub for m in s.members] + ([s.room.sub] if s.room is not None else [])


class PendingLoopTimes:
    """A loop's start times whose one aggregator call is in flight: the caller reads our own
    side (:meth:`read_own`: claims, loads, the sealed titles) and does its own work meanwhile,
    then takes :meth:`result` (in the same thread and database session as
    :func:`start_loop_times`)."""

    def __init__(
        self,
        session: Session,
        sealer: Sealer,
        loop: InterviewLoop,
        plan: LoopPlan,
        resolved: list[ResolvedSession],
        window: Period,
        pending: Future[tuple[SequenceOption, ...]] | None,
        ignore_loop_claims: bool,
    ) -> None:
        self.loop, self.plan, self.sessions, self.window = loop, plan, resolved, window
        self._session, self._sealer, self._pending = session, sealer, pending
        self._ignore_loop_claims = ignore_loop_claims
        self._own: tuple[claims.Held, tuple[str, ...], dict[int, picking.Loads]] | None = None

    def read_own(self) -> None:
        """Our own side of the answer, read while the aggregator answers: what our bookings
        hold, each pool's loads and the sessions' titles."""
        if self._own is not None or self._pending is None:
            return
        loop, resolved = self.loop, self.sessions
        own = (
            {s.interview_id for s in loop.sessions if s.interview_id is not None}
            if self._ignore_loop_claims
            else set()
        )
        held = held_for(self._session, loop.organisation_id, resolved, self.window, ignore=own)
        details = open_details(self._sealer, loop)
        loads = picks.read_loads(self._session, loop.organisation_id, resolved, self.window)
        self._own = (held, details.session_titles if details else (), loads)

    def result(self) -> LoopTimes:
        """The options: the aggregator's, less those that start too soon, do not fit the
        loop's days, meet one of our own claims, or cannot get their pool picks."""
        if self._pending is None:
            return LoopTimes(self.loop, self.plan, self.sessions, self.window, ())
        self.read_own()
        assert self._own is not None
        held, titles, loads = self._own
        try:
            found = self._pending.result()
        except broker_errors.BrokerError as exc:
            raise broker_problem(exc) from None
        return LoopTimes(
            self.loop,
            self.plan,
            self.sessions,
            self.window,
            self._kept(found, held, titles, loads),
        )

    def _kept(
        self,
        found: Sequence[SequenceOption],
        held: claims.Held,
        titles: Sequence[str],
        loads: dict[int, picking.Loads],
    ) -> tuple[Itinerary, ...]:
        plan, resolved, session = self.plan, self.sessions, self._session
        ids = [step_id(n) for n in range(1, len(resolved) + 1)]
        # Only a session some claim of ours is near can meet one (most pages: none).
        subs = [session_subs(r) for r in resolved]
        claimed = [any(held.buckets.get(sub) for sub in s) for s in subs]
        # What a stop shows but its time: the same for every option (pool picks aside).
        shown = [
            (
                titles[n] if n < len(titles) else r.plan.title,
                tuple(m.user.name for m in r.members),
            )
            for n, r in enumerate(resolved)
        ]
        pooled = any(r.pool is not None for r in resolved)
        earliest = utcnow() + model.LEAD_TIME
        kept = []
        for option in found:
            by_id = dict(option.slots)
            slots = [by_id[i] for i in ids]
            if slots[0].start < earliest:
                continue
            if not fits_days(plan, [s.start for s in slots], [s.end for s in slots]):
                continue
            if any(
                claimed[n]
                and held.clashes(
                    subs[n],
                    slot.start,
                    slot.end,
                    before=r.plan.buffer_before,
                    after=r.plan.buffer_after,
                )
                for n, (r, slot) in enumerate(zip(resolved, slots, strict=True))
            ):
                continue
            chosen = (
                picks.pick_itinerary(session, resolved, slots, loads, held=held)
                if pooled
                else [None] * len(resolved)
            )
            if chosen is None:
                continue
            kept.append(
                Itinerary(
                    tuple(
                        Stop(
                            ordinal=n,
                            title=title,
                            start=slot.start,
                            end=slot.end,
                            people=people + (tuple(m.user.name for m in p.members) if p else ()),
                            room=r.room,
                            video=r.plan.video,
                            picked=tuple(m.user.name for m in p.members) if p else (),
                            why=p.explanation if p else None,
                        )
                        for n, (r, slot, p, (title, people)) in enumerate(
                            zip(resolved, slots, chosen, shown, strict=True), start=1
                        )
                    )
                )
            )
        return tuple(kept)


def start_loop_times(
    session: Session,
    broker: CalendarBroker,
    sealer: Sealer,
    actor: Actor,
    loop: InterviewLoop,
    *,
    plan: LoopPlan | None = None,
    ignore_loop_claims: bool = False,
    fixed: Sequence[ResolvedSession] | None = None,
) -> PendingLoopTimes:
    """Check the loop against today's roster and send its one aggregator call; the answer is
    :meth:`PendingLoopTimes.result`. Arguments as :func:`loop_times`."""
    plan = plan or plan_of(sealer, loop)
    resolved = list(fixed) if fixed is not None else check_plan(session, actor, plan)
    window = search_window(plan)
    query = sequenced_query(plan, resolved, window) if window.end > window.start else None
    pending = None
    if query is not None:
        # The call leaves before our own reads (claims, loads, the sealed titles) start.
        pending = free_slots.send_first(broker.sequenced_availability, query)
    return PendingLoopTimes(
        session, sealer, loop, plan, resolved, window, pending, ignore_loop_claims
    )


def loop_times(
    session: Session,
    broker: CalendarBroker,
    sealer: Sealer,
    actor: Actor,
    loop: InterviewLoop,
    *,
    plan: LoopPlan | None = None,
    ignore_loop_claims: bool = False,
    fixed: Sequence[ResolvedSession] | None = None,
) -> LoopTimes:
    """The loop's candidate start times with their itineraries (one aggregator call), pool
    picks made and explained for each. ``ignore_loop_claims``: the loop's own sessions' claims
    do not count; ``fixed``: the sessions with the people they have now (moving the loop).
    The call goes first; our own reads (claims, loads, the sealed titles) are made while the
    aggregator answers, so the page waits for about the call alone."""
    return start_loop_times(
        session,
        broker,
        sealer,
        actor,
        loop,
        plan=plan,
        ignore_loop_claims=ignore_loop_claims,
        fixed=fixed,
    ).result()


def parse_option(value: str, count: int) -> tuple[dt.datetime, ...] | None:
    """Each session's start from an option's form value, or None if it is malformed."""
    parts = (value or "").split(",")
    if len(parts) != count or len(value) > 64 * count:
        return None
    try:
        starts = tuple(dt.datetime.fromisoformat(p) for p in parts)
    except ValueError:
        return None
    if any(s.tzinfo is None for s in starts):
        return None
    return tuple(s.astimezone(dt.UTC) for s in starts)
