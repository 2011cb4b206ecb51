"""Fairness between organisations in the background lane: while several tenants ask for
background budget, each is held to its share of the lane; one alone gets all of it; a tenant
that stops asking frees its share; interactive calls and the ceiling are unaffected — the same
decisions in-process and in the Redis script."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from broker.ratelimit import (
    BACKGROUND,
    INTERACTIVE,
    InProcessRateLimiter,
    RedisRateLimiter,
    background,
    current_tenant,
    tenant,
)
from tests.broker.adapter._ok_transport import URL, ok_transport

TICK = 1 / 64  # exactly representable: fake-clock decisions never hinge on float rounding


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _no_sleep(seconds: float) -> None:
    raise AssertionError("these tests only use try_acquire")


def _in_process(clock, per_second, per_minute, reserve, window=5.0):
    return InProcessRateLimiter(
        per_second,
        per_minute,
        margin=0,
        interactive_reserve=reserve,
        background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
        tenant_window=window,
        clock=clock,
        sleep=_no_sleep,
    )


def _redis(client, clock, per_second, per_minute, reserve, window=5.0):
    return RedisRateLimiter(
        client,
        f"tenants-{uuid.uuid4().hex}",
        per_second,
        per_minute,
        margin=0,
        interactive_reserve=reserve,
        background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
        tenant_window=window,
        clock=clock,
        sleep=_no_sleep,
    )


@pytest.fixture(params=["in-process", "redis"])
def make_limiter(request):
    if request.param == "in-process":
        yield _in_process
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda clock, *a, **k: _redis(client, clock, *a, **k)
    client.close()


def _run(lim, clock, seconds, askers, step=0.125):
    """Every ``step`` each asker in ``askers(t)`` (tenant ids, None for untenanted background)
    takes all it may; returns the admission times per asker."""
    admitted: dict[str | None, list[float]] = {}
    start = clock.now
    while clock.now < start + seconds:
        for who in askers(clock.now - start):
            while lim.try_acquire(BACKGROUND, who) == 0.0:
                admitted.setdefault(who, []).append(clock.now - start)
        clock.now += step
    return admitted


def _count(times, lo, hi):
    return sum(1 for t in times if lo <= t < hi)


def test_two_tenants_asking_continuously_each_get_half_the_lane(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 50, 500, 0.2)  # background: 40/s, 400/min
    got = _run(lim, clock, 120, lambda t: ("1", "2"))
    for lo in (0, 60):
        for who in ("1", "2"):
            assert abs(_count(got[who], lo, lo + 60) - 200) <= 0.2 * 200, (who, lo)
        # together they still use the whole lane, never more
        assert _count(got["1"], lo, lo + 60) + _count(got["2"], lo, lo + 60) == 400


def test_one_tenant_alone_gets_the_whole_background_lane(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 50, 500, 0.2)
    got = _run(lim, clock, 120, lambda t: ("1",))
    assert _count(got["1"], 0, 60) == 400
    assert _count(got["1"], 60, 120) == 400


def test_a_tenant_that_stops_asking_frees_its_share_after_the_activity_window(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 10_000, 0.0, window=5.0)  # background: 10 a second
    assert [lim.try_acquire(BACKGROUND, "a") for _ in range(5)] == [0.0] * 5
    assert [lim.try_acquire(BACKGROUND, "b") for _ in range(5)] == [0.0] * 5
    assert lim.try_acquire(BACKGROUND, "a") > 0  # each holds half while both ask
    clock.now += 1.0  # b has stopped asking, but asked within the activity window
    assert sum(lim.try_acquire(BACKGROUND, "a") == 0.0 for _ in range(10)) == 5
    clock.now += 5.0  # the window has passed: a alone gets the whole lane
    assert sum(lim.try_acquire(BACKGROUND, "a") == 0.0 for _ in range(12)) == 10


def test_over_minutes_an_idle_tenants_share_goes_to_the_one_still_asking(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 50, 500, 0.2)
    got = _run(lim, clock, 200, lambda t: ("1", "2") if t < 60 else ("1",))
    assert _count(got["2"], 60, 200) == 0
    assert _count(got["1"], 130, 190) == 400  # the whole lane again


def test_three_tenants_share_in_thirds_and_untenanted_work_takes_only_what_is_left(
    make_limiter,
):
    clock = FakeClock()
    lim = make_limiter(clock, 50, 500, 0.2)
    got = _run(lim, clock, 120, lambda t: ("1", "2", "3", None))
    for who in ("1", "2", "3"):
        assert abs(_count(got[who], 60, 120) - 400 / 3) <= 0.2 * 400 / 3, who
    total = sum(_count(times, 60, 120) for times in got.values())
    assert total == 400  # periodic work counts against the lane, never beyond it


def test_interactive_reserve_is_unchanged_while_tenants_saturate_the_lane(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 100, 0.2)  # background: 8/s, 80/min
    for second in range(180):
        for who in ("1", "2"):
            while lim.try_acquire(BACKGROUND, who) == 0.0:
                pass
        if second % 10 == 0:
            assert [lim.try_acquire(INTERACTIVE) for _ in range(2)] == [0.0, 0.0]
        clock.now += 1.0


def test_a_tenant_on_an_interactive_call_is_ignored(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 1000, 0.0)
    assert [lim.try_acquire(BACKGROUND, "b") for _ in range(1)] == [0.0]
    # "a" asking interactively is not a background tenant: it may take the rest of the second
    assert [lim.try_acquire(INTERACTIVE, "a") for _ in range(9)] == [0.0] * 9
    assert lim.try_acquire(INTERACTIVE, "a") > 0


# --- against a model ---------------------------------------------------------------------------


class Oracle:
    """Two sliding windows with per-lane caps, plus per-tenant fair shares, counted naively."""

    def __init__(self, caps, window):
        self.caps = caps
        self.window = window
        self.admitted: list[tuple[float, str, str | None]] = []
        self.seen: dict[str, float] = {}

    def allows(self, now: float, which: str, who: str | None) -> bool:
        cap_s, cap_m = self.caps[which]
        ok = (
            sum(1 for t, _, _ in self.admitted if t > now - 1.0) < cap_s
            and sum(1 for t, _, _ in self.admitted if t > now - 60.0) < cap_m
        )
        if which == BACKGROUND and who is not None:
            self.seen[who] = now
            active = sum(1 for at in self.seen.values() if at > now - self.window)
            if active > 1:
                mine = [t for t, w, x in self.admitted if w == BACKGROUND and x == who]
                share_s = max(1, math.ceil(cap_s / active))
                share_m = max(1, math.ceil(cap_m / active))
                ok = (
                    ok
                    and sum(1 for t in mine if t > now - 1.0) < share_s
                    and sum(1 for t in mine if t > now - 60.0) < share_m
                )
        return ok


def _max_in_window(times, window):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


steps = st.lists(
    st.tuples(
        st.sampled_from(
            [(INTERACTIVE, None), (BACKGROUND, None), (BACKGROUND, "a"), (BACKGROUND, "b")]
            + [(BACKGROUND, "c")]
        ),
        # mostly bursts within a second (where shares bite), sometimes past the windows
        st.one_of(st.just(0), st.integers(0, 16), st.integers(0, 64 * 8), st.integers(0, 64 * 70)),
    ),
    min_size=1,
    max_size=150,
)
limits = st.tuples(st.integers(1, 8), st.integers(1, 40), st.sampled_from([0.0, 0.2, 0.5]))
#: b asks, then a asks until its half of 4 a second is used: the share must refuse the third
SHARE_BITES = [((BACKGROUND, "b"), 0)] + [((BACKGROUND, "a"), 1)] * 3 + [((INTERACTIVE, None), 0)]


def _check(lim, clock, limits_, ops):
    per_second, per_minute, _reserve = limits_
    oracle = Oracle(lim.caps, 5.0)
    for (which, who), advance in ops:
        clock.now += advance * TICK
        expected = oracle.allows(clock.now, which, who)
        got = lim.try_acquire(which, who)
        assert (got == 0.0) == expected, (which, who, clock.now, oracle.admitted)
        if expected:
            oracle.admitted.append((clock.now, which, who))
        else:
            assert got > 0
    times = [t for t, _, _ in oracle.admitted]
    assert _max_in_window(times, 1.0) <= per_second
    assert _max_in_window(times, 60.0) <= per_minute


@settings(max_examples=60, deadline=None)
@given(limits_=limits, ops=steps)
@example(limits_=(4, 40, 0.0), ops=SHARE_BITES)
def test_in_process_matches_the_model_and_never_exceeds_the_ceiling(limits_, ops):
    clock = FakeClock()
    _check(_in_process(clock, *limits_), clock, limits_, ops)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limits_=limits, ops=steps)
@example(limits_=(4, 40, 0.0), ops=SHARE_BITES)
def test_redis_script_matches_the_model_and_never_exceeds_the_ceiling(redis_url, limits_, ops):
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        clock = FakeClock()
        _check(_redis(client, clock, *limits_), clock, limits_, ops)
    finally:
        client.close()


# --- the tenant context variable and the transport -------------------------------------------


def test_tenant_context_manager_nests_and_restores():
    assert current_tenant() is None
    with tenant(7):
        assert current_tenant() == "7"
        with tenant(None):
            assert current_tenant() is None
        assert current_tenant() == "7"
    assert current_tenant() is None


class RecordingLimiter:
    per_second = 50
    per_minute = 500

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def acquire(self, lane=INTERACTIVE, tenant=None) -> None:
        self.calls.append((lane, tenant))


def test_transport_names_the_current_tenant_to_the_limiter():
    limiter = RecordingLimiter()
    transport = ok_transport(limiter)
    url = URL
    with background():
        transport.send("GET", url, headers={}, idempotent=True)
        with tenant(3):
            transport.send("GET", url, headers={}, idempotent=True)
    assert limiter.calls == [(BACKGROUND, None), (BACKGROUND, "3")]


def test_usage_reports_the_tenants_sharing_the_background_lane(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 1000, 0.0, window=5.0)
    assert lim.usage()["tenants"] == 0
    lim.try_acquire(BACKGROUND, "a")
    lim.try_acquire(BACKGROUND, "b")
    lim.try_acquire(BACKGROUND, None)  # untenanted work is nobody's share
    lim.try_acquire(INTERACTIVE, "c")  # interactive calls are not tenants
    assert lim.usage()["tenants"] == 2
    clock.now += 3.0
    lim.try_acquire(BACKGROUND, "a")
    clock.now += 2.5  # b asked 5.5 s ago, a 2.5 s ago
    assert lim.usage()["tenants"] == 1
    clock.now += 3.0
    assert lim.usage()["tenants"] == 0
