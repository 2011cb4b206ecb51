"""Paced periodic passes (webapp.services.pacing) against the real rate limiters on a fake clock:
a pass is spread over its period, never takes more than the background lane leaves (it defers
instead: no request beyond the limiter, so no 429), yields while push follow-ups wait, and says
when it falls behind (log line, status) until a pass finishes in time again. Every test runs
twice: the in-process limiter with a SQLite job queue keeping the pass, and the Redis limiter
with a Redis job queue."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from broker import errors
from broker.ratelimit import (
    BACKGROUND,
    PUSH,
    InProcessRateLimiter,
    NoBudget,
    RedisRateLimiter,
    background,
)
from webapp.jobs.queue import Jobs
from webapp.services import pacing

START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class FakeClock:
    """One fake time for the limiter (seconds) and the pacer (datetimes); the limiter's sleep
    moves it forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def at(self) -> datetime:
        return START + timedelta(seconds=self.now - 1000.0)

    def to_minute(self, minute: int) -> None:
        self.now = max(self.now, 1000.0 + 60 * minute)


@pytest.fixture(params=["in-process", "redis"])
def world(request, tmp_path):
    """(make_limiter, store): the limiter and the job queue keeping the pass state."""
    from huey import RedisHuey, SqliteHuey

    def in_process(clock, per_second, per_minute, reserve):
        return InProcessRateLimiter(
            per_second,
            per_minute,
            margin=0,
            interactive_reserve=reserve,
            clock=clock,
            sleep=clock.sleep,
        )

    if request.param == "in-process":
        yield in_process, Jobs(SqliteHuey("pacing", filename=str(tmp_path / "q.sqlite3")))
        return
    import redis

    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)

    def shared(clock, per_second, per_minute, reserve):
        return RedisRateLimiter(
            client,
            f"pacing-{uuid.uuid4().hex}",
            per_second,
            per_minute,
            margin=0,
            interactive_reserve=reserve,
            clock=clock,
            sleep=clock.sleep,
        )

    yield shared, Jobs(RedisHuey(f"pacing-{uuid.uuid4().hex}", url=url))
    client.close()


class Sweep:
    """A periodic task of ``items`` ids making one aggregator call each through ``limiter``,
    as the transport does (NoBudget → NotSent, nothing sent)."""

    def __init__(self, world, clock: FakeClock, limits, items: int, period_minutes: int = 15):
        make_limiter, self.store = world
        self.limiter, self.clock = make_limiter(clock, *limits), clock
        self.items = list(range(1, items + 1))
        self.calls: list[float] = []  # when each call went out
        self.seen: list[int] = []
        self.spec = pacing.PacedPass(
            name="test.sweep",
            period=timedelta(minutes=period_minutes),
            count=lambda s: len(self.items),
            after=lambda s, cursor, n: [i for i in self.items if i > (cursor or 0)][:n],
            do=self.do,
        )

    def do(self, session, item: int):
        try:
            self.limiter.acquire(BACKGROUND)
        except NoBudget as exc:
            raise errors.NotSent(retry_after=exc.wait) from None
        self.calls.append(self.clock.now)
        self.seen.append(item)
        return {"read": 1}

    def tick(self, session) -> pacing.TickReport:
        with background():
            return pacing.tick(
                session, self.store, self.spec, now=self.clock.at(), clock=self.clock.at
            )


def _status(sweep) -> pacing.PassStatus:
    [found] = [
        s for s in pacing.status(sweep.store, now=sweep.clock.at()) if s.name == "test.sweep"
    ]
    return found


def _most_in(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_a_pass_is_spread_over_its_period_and_finishes_in_time(world, session):
    clock = FakeClock()
    sweep = Sweep(world, clock, (50, 500, 0.2), items=150)
    reports = []
    for minute in range(15):
        clock.to_minute(minute)
        reports.append(sweep.tick(session))
    # 150 reads over 15 minutes: 10 each minute, never the whole list at once
    assert [r.done for r in reports] == [10] * 15
    assert reports[-1].outcome == "finished" and reports[0].counts == {"read": 10}
    assert sorted(sweep.seen) == sweep.items and len(set(sweep.seen)) == 150  # each once
    assert _most_in(sweep.calls, 60.0) == 10
    status = _status(sweep)
    assert not status.running and not status.behind and status.late_passes == 0
    # the next pass waits for the period to end, then starts afresh
    clock.to_minute(14)
    clock.now += 30
    assert sweep.tick(session).outcome == "idle"
    clock.to_minute(15)
    report = sweep.tick(session)
    assert report.done == 10 and sweep.store.state("pass:test.sweep")["pass_no"] == 2


def test_short_of_budget_a_pass_defers_never_exceeds_the_lane_and_reports_falling_behind(
    world, session, caplog
):
    clock = FakeClock()
    sweep = Sweep(world, clock, (50, 25, 0.2), items=600)  # needs 40 a minute; lane: 20
    limiter = sweep.limiter
    caplog.set_level(logging.INFO, logger="webapp.services.pacing")
    minute = 0
    while True:
        clock.to_minute(minute)
        report = sweep.tick(session)
        lane = limiter.usage()["lanes"]["background"]
        assert lane["minute"] <= lane["cap_minute"] == 20  # never beyond what the lane leaves
        if report.outcome == "finished":
            break
        assert report.outcome == "deferred" and report.retry_in and report.retry_in > 1.0
        if minute == 14:
            assert not _status(sweep).behind  # not yet: its period has not ended
        minute += 1
        assert minute < 60
    assert _most_in(sweep.calls, 60.0) <= 20
    assert sorted(sweep.seen) == sweep.items  # every item once, none lost to deferrals
    status = _status(sweep)
    assert status.behind and status.late_passes == 1 and status.lag_seconds >= 14 * 60
    assert status.deferrals >= 15
    behind = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("test.sweep is falling behind" in m for m in behind)
    assert sum("is falling behind" in m for m in behind) == 1  # said once per pass, not a tick
    assert any("finished" in m and "s after its period ended" in m for m in behind)
    # a later pass that finishes within its period clears it
    sweep.items = sweep.items[:15]
    for later in range(minute + 1, minute + 40):
        clock.to_minute(later)
        if sweep.tick(session).outcome == "finished":
            break
    status = _status(sweep)
    assert not status.behind and status.late_passes == 1 and status.lag_seconds == 0


def test_a_pass_yields_while_push_follow_ups_wait(world, session):
    clock = FakeClock()
    sweep = Sweep(world, clock, (10, 10_000, 0.0), items=150)
    limiter = sweep.limiter
    assert sweep.tick(session).done == 10
    clock.to_minute(1)
    while limiter.try_acquire(BACKGROUND, None, PUSH) == 0.0:  # push work fills the second
        pass  # ... and then waits
    report = sweep.tick(session)
    assert report.outcome == "deferred" and report.done == 0  # the pass gave way
    clock.to_minute(2)  # push work no longer waits: the pass catches up on what was due
    assert sweep.tick(session).done == 20
    assert sorted(sweep.seen) == sweep.items[:30]


def test_ticks_running_at_once_never_do_an_item_twice(world, session):
    clock = FakeClock()
    sweep = Sweep(world, clock, (50, 500, 0.0), items=30)
    inner: list[pacing.TickReport] = []
    do = sweep.do

    def overlapping(s, item):
        if not inner:  # a second tick starts while the first is on its first item
            inner.append(sweep.tick(s))
        return do(s, item)

    sweep.spec = pacing.PacedPass(
        name=sweep.spec.name,
        period=sweep.spec.period,
        count=sweep.spec.count,
        after=sweep.spec.after,
        do=overlapping,
    )
    first = sweep.tick(session)
    assert inner[0].outcome == "raced" and inner[0].done == 0  # it left the pass to the first
    assert first.outcome == "paced" and first.done == 2
    for minute in range(1, 15):
        clock.to_minute(minute)
        sweep.tick(session)
    assert sorted(sweep.seen) == sweep.items  # each item exactly once
    assert not _status(sweep).running


def test_a_lock_left_by_a_dead_worker_expires(world, session):
    import time

    from huey import RedisHuey

    clock = FakeClock()
    sweep = Sweep(world, clock, (50, 500, 0.0), items=30)
    jobs = sweep.store
    assert jobs.hold("pass:test.sweep", pacing.HOLD)  # a tick whose worker then died
    assert sweep.tick(session).outcome == "raced"
    if isinstance(jobs.huey, RedisHuey):  # Redis expires the lock itself
        ttl = jobs._redis().ttl(jobs._redis_key("hold:pass:test.sweep"))
        assert 0 < ttl <= pacing.HOLD
        jobs._redis().delete(jobs._redis_key("hold:pass:test.sweep"))  # (as Redis will)
    else:  # the queue's own store: a lock older than HOLD is taken over
        jobs.huey.get("hold:pass:test.sweep")
        jobs.huey.put_if_empty("hold:pass:test.sweep", str(time.time() - pacing.HOLD - 1).encode())
    assert sweep.tick(session).done == 2
