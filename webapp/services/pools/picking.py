"""Picking "any N" from a pool: among the members the aggregator found free, the least loaded,
never above a person's limit, with a reason for every member.

Load is counted from our own ledger (:class:`models.InterviewLoad`): the interviews Rendezvous
booked that the person sits on (named or picked), live ones only. Nobody's calendar is read
for it, so an interview someone booked outside Rendezvous does not count.

- **Limits**: at most ``max_per_day`` interviews on the slot's day and ``max_per_week`` in its
  week (Monday to Sunday), both in the person's own time zone (the organisation's until they
  set one). A person at a limit is never picked.
- **Fairness**: the fewest interviews within ``window`` either side of the slot (a rolling
  window, 7 days by default); between equals, the fewest within four windows either side (so
  loads even out beyond one week too), then whoever this pool picked least recently, then a
  stable hash of (pool, person, slot), so equal people take turns rather than the first by name
  always winning.
- **Shadows** (trainees) are never picked to make up N. A session that brings a shadow picks
  one among the pool's shadows the same way (``shadows=True``), on top of its N.

``pick_from_pool`` is the one entry point (the schedule grid, the booking and interview loops
call it). At booking time, ``lock_people`` first, in the booking's transaction: two bookings
picking the same person then count one after the other, so neither pushes them over a limit.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import (
    Interview,
    InterviewLoad,
    InterviewStatus,
    Organisation,
    Pool,
    PoolMember,
)
from webapp.services.availability.model import zone
from webapp.services.zones import known_zone

#: How far either side of a slot the fairness load looks.
WINDOW = dt.timedelta(days=7)

#: Between people equally loaded in the window, the fewest over this many windows either side.
LONG = 4

#: Interviews that still take someone's time.
LIVE = (InterviewStatus.PENDING, InterviewStatus.SCHEDULED)

_NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Pick:
    """One member of the pool, for one slot: picked or not, and why."""

    user_id: int
    name: str
    picked: bool
    #: Free, not a shadow, under every limit: could have been picked.
    eligible: bool
    is_shadow: bool
    free: bool
    #: Our interviews within the fairness window around the slot.
    load: int
    #: Our interviews on the slot's day and in its week (the person's zone).
    day: int
    week: int
    reason: str


@dataclass(frozen=True)
class Member:
    """A pool member as a pick reads them: plain values, read from the rows once."""

    user_id: int
    name: str
    tzid: str
    max_per_day: int | None
    max_per_week: int | None
    is_shadow: bool


def members_of(session: Session, pool: Pool) -> list[Member]:
    org_zone = _org_zone(session, pool.organisation_id)
    return [
        Member(
            m.user_id,
            m.user.name,
            _zone_of(m.user.timezone) or org_zone,
            m.max_per_day,
            m.max_per_week,
            m.is_shadow,
        )
        for m in pool.members
    ]


@dataclass
class Loads:
    """Our own live interviews of some people over a stretch of time, read once (one query), so
    a grid can explain every slot without a query per slot."""

    #: user id → start times of their live interviews.
    starts: dict[int, list[dt.datetime]] = field(default_factory=lambda: defaultdict(list))
    #: user id → when this pool last picked them.
    last_picked: dict[int, dt.datetime] = field(default_factory=dict)
    #: The stretch read: [start, end).
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    #: The pool's members, read once for every slot these loads serve (``members_of``).
    members: list[Member] | None = None

    def covers(self, at: dt.datetime, window: dt.timedelta) -> bool:
        lo, hi = span(at, window)
        return (
            self.start is not None and self.end is not None and self.start <= lo and hi <= self.end
        )

    def count(self, user_id: int, lo: dt.datetime, hi: dt.datetime) -> int:
        return sum(1 for s in self.starts.get(user_id, ()) if lo <= s < hi)


def span(at: dt.datetime, window: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    """What a pick at ``at`` reads: the fairness windows, and the slot's whole week in any zone
    (a week is 7 days and a zone at most 14 hours off UTC)."""
    reach = max(window * LONG, dt.timedelta(days=8))
    return at - reach, at + reach


def read_loads(
    session: Session,
    organisation_id: int,
    pool_id: int | None,
    user_ids: Collection[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    ignore_interview: int | None = None,
) -> Loads:
    """Our live interviews of ``user_ids`` starting in [start, end), and when ``pool_id`` last
    picked each of them."""
    loads = Loads(start=start, end=end)
    if not user_ids:
        return loads
    ids = sorted(set(user_ids))
    query = (
        select(InterviewLoad.user_id, InterviewLoad.starts_at)
        .join(Interview, Interview.id == InterviewLoad.interview_id)
        .where(
            InterviewLoad.organisation_id == organisation_id,
            InterviewLoad.user_id.in_(ids),
            InterviewLoad.starts_at >= start,
            InterviewLoad.starts_at < end,
            Interview.status.in_(LIVE),
        )
    )
    if ignore_interview is not None:
        query = query.where(InterviewLoad.interview_id != ignore_interview)
    for user_id, starts_at in session.execute(query):
        loads.starts[user_id].append(starts_at)
    if pool_id is not None:
        last = (
            select(InterviewLoad.user_id, func.max(InterviewLoad.booked_at))
            .where(InterviewLoad.pool_id == pool_id, InterviewLoad.user_id.in_(ids))
            .group_by(InterviewLoad.user_id)
        )
        loads.last_picked = {u: when for u, when in session.execute(last) if when is not None}
    return loads


def lock_people(session: Session, organisation_id: int, user_ids: Iterable[int]) -> None:
    """Hold these people's pool memberships until the caller commits: a concurrent booking
    picking any of them waits here, then counts with this booking's ledger rows in view.
    PostgreSQL locks the rows (in id order, so two bookings never wait on each other in a
    cycle); SQLite, which locks the whole database, takes its write lock now."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    where = (PoolMember.organisation_id == organisation_id, PoolMember.user_id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(PoolMember.id).where(*where).order_by(PoolMember.id).with_for_update()
        ).all()
    else:
        session.execute(
            update(PoolMember).where(*where).values(is_shadow=PoolMember.is_shadow),
            execution_options={"synchronize_session": False},
        )


def _tiebreak(pool_id: int, user_id: int, at: dt.datetime) -> str:
    """The same for the same pool, person and slot; different people take turns across slots."""
    return hashlib.sha256(f"{pool_id}:{user_id}:{at.isoformat()}".encode()).hexdigest()


def _bounds(
    at: dt.datetime, tzid: str
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """The slot's day and week (Monday to Sunday) in zone ``tzid``, as UTC bounds."""
    return _day_bounds(at.astimezone(zone(tzid)).date(), tzid)


@functools.lru_cache(maxsize=4096)
def _day_bounds(
    day: dt.date, tzid: str
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """A day's and its week's bounds in UTC (a grid asks the same few days for every slot)."""
    tz = zone(tzid)
    monday = day - dt.timedelta(days=day.weekday())

    def midnight(d: dt.date) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(0), tz).astimezone(dt.UTC)

    return (
        midnight(day),
        midnight(day + dt.timedelta(days=1)),
        midnight(monday),
        midnight(monday + dt.timedelta(days=7)),
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def pick_from_pool(
    session: Session,
    pool: Pool,
    available_member_ids: Collection[int],
    count: int,
    at: dt.datetime,
    window: dt.timedelta = WINDOW,
    *,
    exclude_user_ids: Collection[int] = (),
    loads: Loads | None = None,
    ignore_interview: int | None = None,
    shadows: bool = False,
) -> list[Pick]:
    """Pick ``count`` members of ``pool`` for a slot starting at ``at``, among
    ``available_member_ids`` (user ids the aggregator found free for the slot). Returns every
    member of the pool but those in ``exclude_user_ids`` (already on the panel), picked ones
    first, each with its reason; fewer than ``count`` are picked when fewer are eligible (the
    caller then cannot book the slot). ``loads``: read once by the caller for many slots
    (``read_loads`` over ``span``); read here otherwise. ``shadows``: pick among the pool's
    shadows instead (a trainee brought along), by the same load and limits; the others are
    left out."""
    at = at.astimezone(dt.UTC)
    if loads is None or not loads.covers(at, window):
        loads = read_loads(
            session,
            pool.organisation_id,
            pool.id,
            [m.user_id for m in pool.members],
            *span(at, window),
            ignore_interview=ignore_interview,
        )
    if loads.members is None:
        loads.members = members_of(session, pool)
    excluded = set(exclude_user_ids)
    members = [
        m for m in loads.members if m.user_id not in excluded and (not shadows or m.is_shadow)
    ]
    free = set(available_member_ids)
    rows = []
    for m in members:
        day_lo, day_hi, week_lo, week_hi = _bounds(at, m.tzid)
        day = loads.count(m.user_id, day_lo, day_hi)
        week = loads.count(m.user_id, week_lo, week_hi)
        load = loads.count(m.user_id, at - window, at + window)
        longer = loads.count(m.user_id, at - window * LONG, at + window * LONG)
        blocked = None
        if m.max_per_day is not None and day >= m.max_per_day:
            blocked = f"{_count(day, 'interview')} that day (daily limit {m.max_per_day} reached)"
        elif m.max_per_week is not None and week >= m.max_per_week:
            blocked = (
                f"{_count(week, 'interview')} that week (weekly limit {m.max_per_week} reached)"
            )
        is_free = m.user_id in free
        eligible = is_free and m.is_shadow == shadows and blocked is None
        rows.append((m, day, week, load, blocked, is_free, eligible, longer))
    ranked = sorted(
        (r for r in rows if r[6]),
        key=lambda r: (
            r[3],
            r[7],
            loads.last_picked.get(r[0].user_id, _NEVER),
            _tiebreak(pool.id, r[0].user_id, at),
        ),
    )
    chosen = {r[0].user_id for r in ranked[: max(count, 0)]}
    days = window.days if window.days and not window.seconds else None
    around = f"within {days} days" if days else "in the window"
    picks = []
    for m, day, week, load, blocked, is_free, eligible, _longer in rows:
        name = m.name
        if m.is_shadow and not shadows:
            why = "shadow (not counted toward the number needed)"
        elif not is_free:
            why = "not free at this time"
        elif blocked is not None:
            why = blocked
        else:
            why = f"{_count(load, 'interview')} {around} ({week} that week, {day} that day)" + (
                (", brought as shadow" if shadows else ", picked") if m.user_id in chosen else ""
            )
            if shadows:
                why = "shadow, " + why
            limits = [
                f"{m.max_per_day} a day" if m.max_per_day is not None else "",
                f"{m.max_per_week} a week" if m.max_per_week is not None else "",
            ]
            limits = [x for x in limits if x]
            if limits:
                why += f"; limit {' and '.join(limits)}"
        picks.append(
            Pick(
                user_id=m.user_id,
                name=name,
                picked=m.user_id in chosen,
                eligible=eligible,
                is_shadow=m.is_shadow,
                free=is_free,
                load=load,
                day=day,
                week=week,
                reason=f"{name}: {why}",
            )
        )
    order = {r[0].user_id: i for i, r in enumerate(ranked)}
    picks.sort(
        key=lambda p: (not p.picked, p.user_id not in order, order.get(p.user_id, 0), p.name)
    )
    return picks


def picked(picks: Sequence[Pick]) -> list[Pick]:
    return [p for p in picks if p.picked]


def explain(picks: Sequence[Pick]) -> str:
    """One line: every member's reason, picked first ("Sam: 1 …, picked; Anna: …")."""
    return "; ".join(p.reason for p in picks)


@functools.lru_cache(maxsize=512)
def _zone_of(name: str | None) -> str | None:
    return known_zone(name)


def _org_zone(session: Session, organisation_id: int) -> str:
    org = session.get(Organisation, organisation_id)
    return (org.timezone if org else None) or "Europe/London"
