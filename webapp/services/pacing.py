"""Periodic passes paced over their period, within the aggregator budget left to them.

A periodic task that makes aggregator calls per item (reconciliation reads each interviewing
calendar every 15 minutes) does not do its whole list at once. Its job runs every minute (a
*tick*) and does the part of the pass due by the end of that minute: a pass of N items over a
period P does about N × 60 s / P items a tick, in id order, so its calls are spread over the
period instead of arriving in one burst. Each item's calls are *periodic* work in the background
lane (``broker.ratelimit``): they take only what the interactive reserve and other background
work leave, yield while push follow-ups wait, and wait at most :data:`PATIENCE` for budget. When
there is none the tick stops (a *deferral*: the item is given back, nothing was sent, so there
is no 429) and the next tick goes on from the same item.

A pass not finished by the end of its period is *falling behind*: logged once as a warning (the
task, items left, how late) and reported by :func:`status` (in /metrics and on the mailbox page)
until a later pass finishes within its period. A late pass goes on where it is, at up to
:data:`CATCH_UP` times its pace while the budget allows, and the next pass starts as soon as it
finishes; a pass finished early waits for its period to end before the next one starts.

The state is a small record per task kept with the job queue (``PassStore``: counts, times and
the id reached; no organisation, person or calendar), not in the database: it is the queue's
bookkeeping, like its claims. A tick holds the task's lock while it works, so two ticks at once
(two schedulers, an overrunning tick) never do an item twice; a lock left by a dead worker
expires after :data:`HOLD` seconds.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.ratelimit import PERIODIC, patience, work
from models import utcnow
from webapp.services.errors import NoBudgetNow

log = logging.getLogger("webapp.services.pacing")

#: How often a paced task's job runs (its crontab: every minute).
TICK = timedelta(minutes=1)
#: Seconds one call of a pass may wait for budget before the tick defers the rest.
PATIENCE = 1.0
#: An overdue pass catches up at up to this many times its normal pace a tick.
CATCH_UP = 2
#: Items read from the database at a time.
BATCH = 100
#: A tick's lock expires after this many seconds (its worker died mid-tick).
HOLD = 600
#: The store's key listing every paced task (for status()).
INDEX = "pass:index"

Outcome = Literal["idle", "paced", "finished", "deferred", "raced"]


class PassStore(Protocol):
    """Where pass states live (the job queue: ``webapp.jobs.queue.Jobs``)."""

    def state(self, key: str) -> dict[str, Any] | None: ...

    def set_state(self, key: str, value: dict[str, Any]) -> None: ...

    def hold(self, key: str, ttl: int) -> bool: ...

    def let_go(self, key: str) -> None: ...


@dataclass(frozen=True)
class PacedPass:
    """A periodic task's pass: ``count`` its items now, ``after(session, cursor, n)`` the next
    ``n`` item ids after ``cursor`` (None: from the start) in id order, ``do(session, id)`` one
    item's work (it commits; it returns counts to add up, and raises ``NoBudgetNow`` or
    ``broker.errors.NotSent`` to defer), ``after_tick`` database-only work after each tick."""

    name: str
    period: timedelta
    count: Callable[[Session], int]
    after: Callable[[Session, int | None, int], list[int]]
    do: Callable[[Session, int], Mapping[str, int] | None]
    after_tick: Callable[[Session], None] | None = None


@dataclass
class TickReport:
    name: str
    outcome: Outcome
    done: int = 0  # items this tick did
    retry_in: float | None = None  # a deferral: seconds until the budget has room
    counts: dict[str, int] = field(default_factory=dict)  # what the items reported

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "done": self.done, **self.counts}


@dataclass
class _State:
    """One task's pass as stored (JSON): times as ISO strings."""

    pass_no: int
    started_at: datetime
    due_at: datetime
    total: int
    finished_at: datetime | None = None
    done: int = 0
    cursor: int | None = None
    overdue_noted: bool = False
    late_passes: int = 0
    last_lag_seconds: int = 0
    deferrals: int = 0

    @classmethod
    def load(cls, raw: dict[str, Any]) -> _State:
        finished = raw.get("finished_at")
        return cls(
            pass_no=int(raw["pass_no"]),
            started_at=datetime.fromisoformat(raw["started_at"]),
            due_at=datetime.fromisoformat(raw["due_at"]),
            total=int(raw["total"]),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            done=int(raw.get("done", 0)),
            cursor=raw.get("cursor"),
            overdue_noted=bool(raw.get("overdue_noted")),
            late_passes=int(raw.get("late_passes", 0)),
            last_lag_seconds=int(raw.get("last_lag_seconds", 0)),
            deferrals=int(raw.get("deferrals", 0)),
        )

    def dump(self) -> dict[str, Any]:
        raw = dict(self.__dict__)
        for k in ("started_at", "due_at", "finished_at"):
            raw[k] = raw[k].isoformat() if raw[k] is not None else None
        return raw


def _key(name: str) -> str:
    return f"pass:{name}"


def _save(store: PassStore, name: str, state: _State) -> None:
    store.set_state(_key(name), state.dump())


def tick(
    session: Session,
    store: PassStore,
    spec: PacedPass,
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> TickReport:
    """Do the part of ``spec``'s pass that is due now, within the budget; start the next pass
    when the period of a finished one is over."""
    now = now or clock()
    if not store.hold(_key(spec.name), HOLD):
        return TickReport(spec.name, "raced")  # another tick is at it
    try:
        report = _tick(session, store, spec, now, clock)
    finally:
        store.let_go(_key(spec.name))
        if spec.after_tick is not None:
            spec.after_tick(session)
    return report


def _tick(
    session: Session,
    store: PassStore,
    spec: PacedPass,
    now: datetime,
    clock: Callable[[], datetime],
) -> TickReport:
    raw = store.state(_key(spec.name))
    state = _State.load(raw) if raw else None
    names = set((store.state(INDEX) or {}).get("names", []))
    if spec.name not in names:  # (checked every tick: two tasks' first ticks may race on it)
        store.set_state(INDEX, {"names": sorted(names | {spec.name})})
    if state is not None and state.finished_at is not None and now < state.due_at:
        return TickReport(spec.name, "idle")
    if state is None or state.finished_at is not None:
        before = state
        state = _State(
            pass_no=1 if before is None else before.pass_no + 1,
            started_at=now,
            due_at=now + spec.period,
            total=spec.count(session),
        )
        if before is not None:  # how earlier passes went is kept
            state.late_passes = before.late_passes
            state.last_lag_seconds = before.last_lag_seconds
            state.deferrals = before.deferrals
        _save(store, spec.name, state)
    report = TickReport(spec.name, "paced")
    allowed = _allowed(spec, state, now)
    _save(store, spec.name, state)  # (overdue_noted)
    counts: defaultdict[str, int] = defaultdict(int)
    try:
        while report.done < allowed:
            ids = spec.after(session, state.cursor, min(allowed - report.done, BATCH))
            if not ids:
                break
            for item in ids:
                try:
                    with work(PERIODIC), patience(PATIENCE):
                        got = spec.do(session, item)
                except (NoBudgetNow, broker_errors.NotSent) as exc:
                    session.rollback()  # the item is left for the next tick
                    state.deferrals += 1
                    _save(store, spec.name, state)
                    retry = getattr(exc, "retry_in", None) or getattr(exc, "retry_after", None)
                    report.outcome, report.retry_in = "deferred", retry
                    log.info(
                        "periodic pass %s deferred: no aggregator budget (%d done this tick)",
                        spec.name,
                        report.done,
                    )
                    return report
                state.cursor, state.done = item, state.done + 1
                _save(store, spec.name, state)
                report.done += 1
                for key, value in (got or {}).items():
                    counts[key] += value
        if not spec.after(session, state.cursor, 1):
            _finish(store, spec, state, clock())
            report.outcome = "finished"
        return report
    finally:
        report.counts = dict(counts)


def _allowed(spec: PacedPass, state: _State, now: datetime) -> int:
    """How many items this tick may do: the pass's share due by the end of this tick, or its
    catch-up pace once overdue (saying so once, loudly)."""
    period = max((state.due_at - state.started_at).total_seconds(), 1.0)
    tick_s = TICK.total_seconds()
    per_tick = max(1, math.ceil(state.total * tick_s / period))
    if now >= state.due_at:
        if not state.overdue_noted:
            state.overdue_noted = True
            log.warning(
                "periodic pass %s is falling behind: %d of %d items left %d s after its "
                "%d s period ended",
                spec.name,
                max(state.total - state.done, 0),
                state.total,
                (now - state.due_at).total_seconds(),
                period,
            )
        return per_tick * CATCH_UP
    elapsed = (now - state.started_at).total_seconds()
    target = math.ceil(state.total * min(1.0, (elapsed + tick_s) / period))
    last_tick = elapsed + tick_s >= period
    return max(target - state.done, per_tick if last_tick else 0)


def _finish(store: PassStore, spec: PacedPass, state: _State, at: datetime) -> None:
    lag = max(0, math.ceil((at - state.due_at).total_seconds()))
    state.finished_at, state.last_lag_seconds = at, lag
    state.late_passes += 1 if lag else 0
    _save(store, spec.name, state)
    if lag:
        log.warning(
            "periodic pass %s finished %d s after its period ended (%d items): falling behind",
            spec.name,
            lag,
            state.done,
        )


@dataclass(frozen=True)
class PassStatus:
    """Where a paced task stands, as /metrics and the mailbox page show it."""

    name: str
    running: bool
    started_at: datetime
    due_at: datetime
    finished_at: datetime | None
    total: int
    done: int
    behind: bool  # overdue now, or the last pass finished late
    lag_seconds: int  # how late: the running pass's overrun, else the last pass's
    late_passes: int
    deferrals: int

    def as_dict(self) -> dict[str, object]:
        return {
            "running": self.running,
            "started_at": self.started_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "total": self.total,
            "done": self.done,
            "behind": self.behind,
            "lag_seconds": self.lag_seconds,
            "late_passes": self.late_passes,
            "deferrals": self.deferrals,
        }


def status(store: PassStore, *, now: datetime | None = None) -> list[PassStatus]:
    """Every paced task's pass, by name (read-only)."""
    now = now or utcnow()
    result = []
    for name in (store.state(INDEX) or {}).get("names", []):
        raw = store.state(_key(name))
        if not raw:
            continue
        state = _State.load(raw)
        running = state.finished_at is None
        overdue = running and now > state.due_at
        lag = math.ceil((now - state.due_at).total_seconds()) if overdue else state.last_lag_seconds
        result.append(
            PassStatus(
                name=name,
                running=running,
                started_at=state.started_at,
                due_at=state.due_at,
                finished_at=state.finished_at,
                total=state.total,
                done=state.done,
                behind=overdue or state.last_lag_seconds > 0,
                lag_seconds=lag,
                late_passes=state.late_passes,
                deferrals=state.deferrals,
            )
        )
    return result
