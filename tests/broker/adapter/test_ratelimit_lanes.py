"""Priority lanes in the client-side limiter: interactive calls keep a reserved share of both
windows, background calls only use what leaves that share free, and the total never exceeds
the ceiling — the same decisions in-process and in the Redis script."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.ratelimit import (
    BACKGROUND,
    INTERACTIVE,
    InProcessRateLimiter,
    RedisRateLimiter,
    background,
    current_lane,
    lane,
    rate_limiter_from_settings,
)
from tests.broker.adapter._ok_transport import URL, ok_transport

TICK = 1 / 64  # exactly representable: fake-clock decisions never hinge on float rounding


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _in_process(clock, per_second, per_minute, reserve):
    return InProcessRateLimiter(
        per_second,
        per_minute,
        margin=0,
        interactive_reserve=reserve,
        background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
        clock=clock,
        sleep=_no_sleep,
    )


def _redis(client, clock, per_second, per_minute, reserve):
    return RedisRateLimiter(
        client,
        f"lanes-{uuid.uuid4().hex}",
        per_second,
        per_minute,
        margin=0,
        interactive_reserve=reserve,
        background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
        clock=clock,
        sleep=_no_sleep,
    )


def _no_sleep(seconds: float) -> None:
    raise AssertionError("these tests only use try_acquire")


@pytest.fixture(params=["in-process", "redis"])
def make_limiter(request):
    """A limiter factory for each implementation, both on a fake clock."""
    if request.param == "in-process":
        yield _in_process
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda clock, *a: _redis(client, clock, *a)
    client.close()


def test_default_shares_are_a_fifth_of_each_window():
    lim = InProcessRateLimiter()
    assert lim.caps[INTERACTIVE] == (50, 500)
    assert lim.caps[BACKGROUND] == (40, 400)
    assert InProcessRateLimiter(50, 500, interactive_reserve=0).caps[BACKGROUND] == (50, 500)
    # rounding never gives less reserve than asked, and background always keeps one request
    assert InProcessRateLimiter(3, 7, interactive_reserve=0.5).caps[BACKGROUND] == (1, 3)
    assert InProcessRateLimiter(1, 1).caps[BACKGROUND] == (1, 1)
    with pytest.raises(ValueError):
        InProcessRateLimiter(interactive_reserve=1.0)
    with pytest.raises(ValueError):
        InProcessRateLimiter(interactive_reserve=-0.1)


def test_background_is_refused_while_its_share_is_used_and_interactive_still_admitted(
    make_limiter,
):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 1000, 0.2)  # background may take 8 of 10 a second
    assert [lim.try_acquire(BACKGROUND) for _ in range(8)] == [0.0] * 8
    wait = lim.try_acquire(BACKGROUND)
    assert wait == pytest.approx(1.0)  # until the first one leaves the 1 s window
    assert lim.try_acquire(INTERACTIVE) == 0.0  # the reserve is there for people
    assert lim.try_acquire() == 0.0  # the default lane is interactive
    assert lim.try_acquire(INTERACTIVE) > 0  # the ceiling holds for interactive too
    assert lim.try_acquire(BACKGROUND) > 0
    clock.now += 1.0
    assert lim.try_acquire(BACKGROUND) == 0.0  # the window moved on: background resumes


def test_background_yields_at_once_when_interactive_demand_rises(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 1000, 0.2)
    assert [lim.try_acquire(BACKGROUND) for _ in range(5)] == [0.0] * 5
    # people arrive and take 3 in the same second: 8 in the window, background must stop
    assert [lim.try_acquire(INTERACTIVE) for _ in range(3)] == [0.0] * 3
    assert lim.try_acquire(BACKGROUND) > 0
    assert [lim.try_acquire(INTERACTIVE) for _ in range(2)] == [0.0] * 2


def test_interactive_is_never_blocked_by_background(make_limiter):
    """Background taking all it may, second after second for three minutes, never refuses a
    person while interactive demand stays within its reserve (2 of 10 a second, 20 of 100 a
    minute; here 2 every 10 s = 12 a minute)."""
    clock = FakeClock()
    lim = make_limiter(clock, 10, 100, 0.2)  # background: 8/s and 80/min
    background_admitted = 0
    for second in range(180):
        while lim.try_acquire(BACKGROUND) == 0.0:
            background_admitted += 1
        if second % 10 == 0:
            assert [lim.try_acquire(INTERACTIVE) for _ in range(2)] == [0.0, 0.0]
        clock.now += 1.0
    assert background_admitted >= 3 * 80 - 36  # background still used what was left


def test_the_minute_window_has_its_own_reserve(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 100, 10, 0.3)  # background: 7 a minute
    for _ in range(7):
        assert lim.try_acquire(BACKGROUND) == 0.0
        clock.now += 1.0
    assert lim.try_acquire(BACKGROUND) == pytest.approx(53.0)  # first leaves at +60 s
    assert [lim.try_acquire(INTERACTIVE) for _ in range(3)] == [0.0] * 3
    assert lim.try_acquire(INTERACTIVE) > 0


class Oracle:
    """What a two-window sliding log with per-lane caps must decide, counted naively."""

    def __init__(self, caps):
        self.caps = caps
        self.admitted: list[tuple[float, str]] = []

    def allows(self, now: float, which: str) -> bool:
        cap_s, cap_m = self.caps[which]
        in_second = sum(1 for t, _ in self.admitted if t > now - 1.0)
        in_minute = sum(1 for t, _ in self.admitted if t > now - 60.0)
        return in_second < cap_s and in_minute < cap_m


def _max_in_window(times, window):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


steps = st.lists(
    st.tuples(
        st.sampled_from([INTERACTIVE, BACKGROUND]),
        st.one_of(st.integers(0, 16), st.integers(0, 64 * 70)),  # ticks of 1/64 s
    ),
    min_size=1,
    max_size=150,
)
limits = st.tuples(
    st.integers(1, 8), st.integers(1, 40), st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.8])
)


def _check_against_oracle(lim, clock, limits_, ops):
    per_second, per_minute, _reserve = limits_
    oracle = Oracle(lim.caps)
    for which, advance in ops:
        clock.now += advance * TICK
        expected = oracle.allows(clock.now, which)
        got = lim.try_acquire(which)
        assert (got == 0.0) == expected, (which, clock.now, oracle.admitted)
        if expected:
            oracle.admitted.append((clock.now, which))
        else:
            assert got > 0
    times = [t for t, _ in oracle.admitted]
    assert _max_in_window(times, 1.0) <= per_second
    assert _max_in_window(times, 60.0) <= per_minute
    bg_s, bg_m = lim.caps[BACKGROUND]
    for i, (t, which) in enumerate(oracle.admitted):
        if which == BACKGROUND:  # background was only admitted below its share
            before = [u for u, _ in oracle.admitted[:i]]
            assert sum(1 for u in before if u > t - 1.0) < bg_s
            assert sum(1 for u in before if u > t - 60.0) < bg_m


@settings(max_examples=60, deadline=None)
@given(limits_=limits, ops=steps)
def test_in_process_matches_the_oracle_and_never_exceeds_the_ceiling(limits_, ops):
    clock = FakeClock()
    _check_against_oracle(_in_process(clock, *limits_), clock, limits_, ops)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limits_=limits, ops=steps)
def test_redis_script_matches_the_oracle_and_never_exceeds_the_ceiling(redis_url, limits_, ops):
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        clock = FakeClock()
        _check_against_oracle(_redis(client, clock, *limits_), clock, limits_, ops)
    finally:
        client.close()


def test_redis_lanes_on_the_server_clock_share_one_log(redis_url):
    """Without a test clock the script uses Redis TIME, and both lanes count in one log."""
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"lanes-{uuid.uuid4().hex}"
    lim = RedisRateLimiter(client, prefix, per_second=5, per_minute=1000, interactive_reserve=0.4)
    assert lim.caps[BACKGROUND] == (3, 600)
    assert [lim.try_acquire(BACKGROUND) for _ in range(3)] == [0.0] * 3
    assert 0 < lim.try_acquire(BACKGROUND) <= 1.05
    assert [lim.try_acquire(INTERACTIVE) for _ in range(2)] == [0.0] * 2
    assert lim.try_acquire(INTERACTIVE) > 0
    assert client.zcard(f"{prefix}:log") == 5
    client.close()


def test_settings_factory_passes_the_reserve(redis_url):
    assert rate_limiter_from_settings(None, interactive_reserve=0.5).caps[BACKGROUND] == (25, 250)
    lim = rate_limiter_from_settings(redis_url, interactive_reserve=0.5)
    assert isinstance(lim, RedisRateLimiter) and lim.caps[BACKGROUND] == (25, 250)


# --- the lane context variable and the transport -------------------------------------------------


def test_lane_context_manager_nests_and_restores():
    assert current_lane() == INTERACTIVE
    with background():
        assert current_lane() == BACKGROUND
        with lane(INTERACTIVE):
            assert current_lane() == INTERACTIVE
        assert current_lane() == BACKGROUND
    assert current_lane() == INTERACTIVE
    with pytest.raises(ValueError):
        with lane("bulk"):  # type: ignore[arg-type]
            pass
    assert current_lane() == INTERACTIVE


class RecordingLimiter:
    per_second = 50
    per_minute = 500

    def __init__(self) -> None:
        self.lanes: list[str] = []

    def acquire(self, lane=INTERACTIVE) -> None:
        self.lanes.append(lane)


def test_transport_asks_the_limiter_in_the_current_lane():
    limiter = RecordingLimiter()
    transport = ok_transport(limiter)
    url = URL
    transport.send("GET", url, headers={}, idempotent=True)
    with background():
        transport.send("GET", url, headers={}, idempotent=True)
    transport.send("GET", url, headers={}, idempotent=True)
    assert limiter.lanes == [INTERACTIVE, BACKGROUND, INTERACTIVE]


def test_two_processes_in_different_lanes_share_one_budget(redis_url, tmp_path):
    """A background process and an interactive one, each with its own limiter object, racing
    on one Redis: the total is the ceiling, background never passes its share, and the
    interactive process gets at least the reserve."""
    import os
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, redis\n"
        "from broker.ratelimit import RedisRateLimiter\n"
        "lim = RedisRateLimiter(redis.Redis.from_url(sys.argv[1]), sys.argv[2], 1000, 30)\n"
        "print(sum(1 for _ in range(40) if lim.try_acquire(sys.argv[3]) == 0.0))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    prefix = f"lanes-{uuid.uuid4().hex}"
    procs = {
        which: subprocess.Popen(
            [sys.executable, str(script), redis_url, prefix, which],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for which in (BACKGROUND, INTERACTIVE)
    }
    granted = {which: int(p.communicate(timeout=30)[0].strip()) for which, p in procs.items()}
    assert granted[BACKGROUND] + granted[INTERACTIVE] == 30
    assert granted[BACKGROUND] <= 24  # 30 less the 20 % reserve
    assert granted[INTERACTIVE] >= 6
