"""Background pacing: while the background lane's minute cap binds, background requests are held
to ceil(minute cap × pace / 60) of their own in any 1 s window, so the minute's budget goes out
evenly instead of in a ten-second burst. The same answers in-process and in Redis (the Lua
script), on a fake clock that moves in exactly representable ticks."""

from __future__ import annotations

import math
import uuid

import pytest

from broker.ratelimit import (
    BACKGROUND,
    DEFAULT_BACKGROUND_PACE,
    INTERACTIVE,
    InProcessRateLimiter,
    RedisRateLimiter,
    _paced_cap,
    rate_limiter_from_settings,
)

TICK = 1 / 64  # exactly representable, and a whole number of microseconds (15625) for Redis
PACED = math.ceil(400 * DEFAULT_BACKGROUND_PACE / 60)  # 9 a second with the default limits


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _no_sleep(seconds: float) -> None:
    raise AssertionError("these tests only use try_acquire")


@pytest.fixture(params=["in-process", "redis"])
def make(request):
    """A limiter with the aggregator's limits (50/s, 500/min) and the default 20 % reserve."""
    if request.param == "in-process":
        yield lambda clock, **kw: InProcessRateLimiter(
            50, 500, margin=0, clock=clock, sleep=_no_sleep, **kw
        )
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda clock, **kw: RedisRateLimiter(
        client, f"pace-{uuid.uuid4().hex}", 50, 500, margin=0, clock=clock, sleep=_no_sleep, **kw
    )
    client.close()


def _run(lim, clock, seconds, tenants=(None,), interactive=None):
    """Background workers (one per tenant) ask at every tick and take all they are given;
    ``interactive(tick)`` says how many interactive calls to make at that tick (all must be
    admitted). Returns the admitted background requests as (time, tenant)."""
    admitted: list[tuple[float, str | None]] = []
    start = clock.now
    for tick in range(int(seconds / TICK)):
        clock.now = start + tick * TICK
        for _ in range(interactive(tick) if interactive else 0):
            assert lim.try_acquire(INTERACTIVE) == 0, "an interactive call was held back"
        for who in tenants:
            while lim.try_acquire(BACKGROUND, who) == 0:
                admitted.append((clock.now, who))
    return admitted


def _most_in_one_second(times: list[float], after: float = 0.0) -> int:
    """The most of ``times`` in any window (t - 1 s, t] (the limiter's own window, margin 0),
    among the windows ending at ``after`` or later."""
    times = sorted(times)
    ends = [t for t in times if t >= after]
    return max((sum(1 for s in times if t - 1.0 < s <= t) for t in ends), default=0)


def test_the_paced_cap_applies_only_while_the_minute_binds():
    assert PACED == 9
    assert _paced_cap(40, 400, 1.25) == 9  # ceil(400 × 1.25 / 60) = ceil(8.33)
    assert _paced_cap(40, 400, 1.0) == 7  # rounded up: never below the even rate
    for off in (None, 0, 0.0, -1.0):
        assert _paced_cap(40, 400, off) is None
    assert _paced_cap(5, 1000, 1.25) is None  # 300 a minute at most: the minute never binds
    assert _paced_cap(40, 400, 10.0) is None  # no tighter than the lane's own cap: no pacing
    assert _paced_cap(1, 1, 1.25) is None
    assert _paced_cap(40, 10, 1.25) == 1  # tiny minutes still leave one a second
    assert InProcessRateLimiter().paced == PACED  # on by default


def test_background_never_exceeds_the_paced_cap_and_still_gets_its_whole_minute(make):
    clock = FakeClock()
    lim = make(clock)
    start = clock.now
    admitted = [t for t, _ in _run(lim, clock, 60)]
    assert _most_in_one_second(admitted) == PACED
    # the whole minute cap (400) within the minute: >= 0.95 of it, and never more
    assert 0.95 * 400 <= len(admitted) <= 400
    # spread: the 400 take about 400 / 9 s instead of the ten seconds a 40/s burst needs
    assert max(admitted) - start >= 400 / PACED - 1
    # and the next minute, once the first requests leave the window, goes on at the same pace
    more = [t for t, _ in _run(lim, clock, 60)]
    assert _most_in_one_second(admitted[-PACED:] + more) == PACED
    assert len(more) >= 0.95 * 400


def test_interactive_calls_get_the_full_budget_at_once(make):
    clock = FakeClock()
    lim = make(clock)
    for _ in range(20):
        assert lim.try_acquire(INTERACTIVE) == 0
    # background would have 20 left of its 40 in this second, but is paced to 9 of its own
    got = 0
    while lim.try_acquire(BACKGROUND) == 0:
        got += 1
    assert got == PACED
    # interactive calls do not count against the pace and still reach the whole 50
    for _ in range(50 - 20 - PACED):
        assert lim.try_acquire(INTERACTIVE) == 0
    assert lim.try_acquire(INTERACTIVE) > 0  # the application's 50 a second: nothing more
    fresh = make(FakeClock())
    assert all(fresh.try_acquire(INTERACTIVE) == 0 for _ in range(50))


def test_interactive_bursts_are_served_at_once_and_background_catches_up(make):
    """People burst 25 calls every 15 s (100 a minute): each burst goes through at once, and the
    background lane still gets >= 0.95 of what the lanes leave it (400 - 100 a minute)."""
    clock = FakeClock()
    lim = make(clock)
    every = int(15 / TICK)
    admitted = _run(lim, clock, 180, interactive=lambda t: 25 if t % every == 0 else 0)
    times = [t for t, _ in admitted]
    assert _most_in_one_second(times) <= PACED
    start = 1000.0
    in_last_two_minutes = sum(1 for t in times if t >= start + 60)
    assert in_last_two_minutes >= 0.95 * 2 * (400 - 100)


def test_two_tenants_split_the_paced_cap_evenly(make):
    clock = FakeClock()
    lim = make(clock)
    admitted = _run(lim, clock, 120, tenants=("org-a", "org-b"))
    a = [t for t, who in admitted if who == "org-a"]
    b = [t for t, who in admitted if who == "org-b"]
    share = math.ceil(PACED / 2)  # 5: each tenant's per-second share of the paced 9
    # the first to ask is alone for an instant (as without pacing): from the next second on,
    # neither tenant gets more than its share of the paced cap, nor both more than the cap
    settled = 1000.0 + 1.0
    assert _most_in_one_second(a, settled) <= share and _most_in_one_second(b, settled) <= share
    assert _most_in_one_second(a + b) <= PACED
    # an odd paced cap splits 5 : 4 within a second when one always asks first; each tenant's
    # share of the minute (200) evens it out: over whole minutes they get the same
    assert min(len(a), len(b)) / max(len(a), len(b)) >= 0.95
    # and together they keep the lane's whole minute
    assert len(a) + len(b) >= 0.95 * 2 * 400


@pytest.mark.parametrize("off", [None, 0, -1.0])
def test_pacing_off_restores_the_burst(make, off):
    clock = FakeClock()
    lim = make(clock, background_pace=off)
    assert lim.paced is None
    admitted = [t for t, _ in _run(lim, clock, 60)]
    assert _most_in_one_second(admitted) == 40  # the lane's whole per-second cap at once
    assert len(admitted) == 400
    assert max(admitted) - 1000.0 < 10.1  # the minute spent in about ten seconds
    assert lim.usage()["lanes"][BACKGROUND]["cap_second"] == 40


def test_usage_shows_the_paced_cap_as_the_background_per_second_cap(make):
    clock = FakeClock()
    lim = make(clock)
    _run(lim, clock, 2)
    lanes = lim.usage()["lanes"]
    assert lanes[BACKGROUND]["cap_second"] == PACED
    assert lanes[BACKGROUND]["cap_minute"] == 400
    assert lanes[BACKGROUND]["second"] <= PACED
    assert (lanes[INTERACTIVE]["cap_second"], lanes[INTERACTIVE]["cap_minute"]) == (50, 500)
    assert lim.caps[BACKGROUND] == (40, 400)  # the lane caps themselves are unchanged


def test_a_custom_pace_sets_the_cap(make):
    clock = FakeClock()
    lim = make(clock, background_pace=2.0)
    assert lim.paced == math.ceil(400 * 2 / 60) == 14
    admitted = [t for t, _ in _run(lim, clock, 5)]
    assert _most_in_one_second(admitted) == 14


def test_rate_limiter_from_settings_passes_the_pace(redis_url):
    assert rate_limiter_from_settings(None).usage()["lanes"][BACKGROUND]["cap_second"] == PACED
    assert rate_limiter_from_settings(None, background_pace=None).paced is None
    shared = rate_limiter_from_settings(redis_url, background_pace=1.5)
    assert isinstance(shared, RedisRateLimiter) and shared.paced == 10
