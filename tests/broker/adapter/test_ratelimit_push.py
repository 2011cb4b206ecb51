"""Work classes in the background lane and the caller's patience: push follow-ups go before
periodic reads (a periodic request is not admitted while a push request waits), and a caller
with a patience hears NoBudget (the transport: NotSent, nothing sent) instead of waiting longer
-- the same decisions in-process and in the Redis script, on a fake clock."""

from __future__ import annotations

import uuid

import pytest

from broker import errors
from broker.ratelimit import (
    BACKGROUND,
    BULK,
    INTERACTIVE,
    PERIODIC,
    PUSH,
    InProcessRateLimiter,
    NoBudget,
    RedisRateLimiter,
    background,
    current_work,
    patience,
    work,
)
from tests.broker.adapter._ok_transport import URL, ok_transport


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _in_process(clock, per_second, per_minute, reserve=0.0, push_window=2.0):
    return InProcessRateLimiter(
        per_second,
        per_minute,
        margin=0,
        interactive_reserve=reserve,
        background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
        push_window=push_window,
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.fixture(params=["in-process", "redis"])
def make_limiter(request):
    if request.param == "in-process":
        yield _in_process
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))

    def make(clock, per_second, per_minute, reserve=0.0, push_window=2.0):
        return RedisRateLimiter(
            client,
            f"push-{uuid.uuid4().hex}",
            per_second,
            per_minute,
            margin=0,
            interactive_reserve=reserve,
            background_pace=None,  # pacing has its own tests (test_ratelimit_pace.py)
            push_window=push_window,
            clock=clock,
            sleep=clock.sleep,
        )

    yield make
    client.close()


def _fill_second(lim, kind=BULK):
    while lim.try_acquire(BACKGROUND, None, kind) == 0.0:
        pass


def test_periodic_is_held_back_while_push_work_waits_then_resumes(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 10_000)  # background: 10 a second
    _fill_second(lim)
    assert lim.try_acquire(BACKGROUND, None, PUSH) > 0  # a push follow-up has to wait
    clock.now += 1.0  # the second has passed: the lane has room again
    assert lim.try_acquire(BACKGROUND, None, PERIODIC) > 0  # but push waited: periodic yields
    assert lim.try_acquire(BACKGROUND, None, BULK) == 0.0  # (bulk work is not held back)
    assert lim.try_acquire(BACKGROUND, None, PUSH) == 0.0  # the push follow-up goes
    assert lim.usage()["push_waiting"] is True
    clock.now += 2.0  # no push request has waited for the whole push window
    assert lim.usage()["push_waiting"] is False
    assert lim.try_acquire(BACKGROUND, None, PERIODIC) == 0.0


def test_under_contention_push_gets_the_freed_budget_and_periodic_none(make_limiter):
    """Push follow-ups and a periodic pass both ask every 1/8 s for a lane of 4 a second: while
    push work keeps waiting, every admitted request is a push one."""
    clock = FakeClock()
    lim = make_limiter(clock, 4, 10_000)
    got = {PUSH: 0, PERIODIC: 0}
    for _ in range(8 * 30):
        for kind in (PERIODIC, PUSH):
            while lim.try_acquire(BACKGROUND, None, kind) == 0.0:
                got[kind] += 1
        clock.now += 0.125
    assert got[PERIODIC] <= 4  # at most the first second, before any push request waited
    assert got[PUSH] >= 4 * 29
    # once push work stops asking, periodic work has the lane again
    clock.now += 2.0
    assert [lim.try_acquire(BACKGROUND, None, PERIODIC) for _ in range(4)] == [0.0] * 4


def test_push_precedence_leaves_the_interactive_lane_alone(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 10_000, reserve=0.2)  # background: 8 a second
    _fill_second(lim)
    assert lim.try_acquire(BACKGROUND, None, PUSH) > 0
    # interactive calls use the reserve whatever push or periodic work does
    assert [lim.try_acquire(INTERACTIVE) for _ in range(2)] == [0.0, 0.0]
    # and an interactive call is never taken for periodic work, whatever the context says
    clock.now += 1.0
    with work(PERIODIC):
        assert lim.try_acquire(INTERACTIVE) == 0.0


def test_the_work_class_comes_from_the_context(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 10_000)
    assert current_work() == BULK
    _fill_second(lim)
    with work(PUSH):
        assert lim.try_acquire(BACKGROUND) > 0  # a push request waited
    clock.now += 1.0
    with work(PERIODIC):
        assert lim.try_acquire(BACKGROUND) > 0
    assert lim.try_acquire(BACKGROUND) == 0.0  # bulk
    with pytest.raises(ValueError):
        with work("urgent"):  # type: ignore[arg-type]
            pass


def test_with_a_patience_acquire_raises_no_budget_instead_of_waiting_longer(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 5, 10, reserve=0.0)
    for _ in range(10):
        lim.acquire(BACKGROUND)  # within the minute: 5, wait a second, 5 more
    assert clock.slept and sum(clock.slept) <= 1.0 + 1e-6
    clock.slept.clear()
    with patience(5.0), pytest.raises(NoBudget) as raised:
        lim.acquire(BACKGROUND)  # the minute is spent: ~59 s to wait, more than 5
    assert raised.value.wait > 5.0
    assert clock.slept == []  # it did not sleep at all
    assert lim.usage()["lanes"]["background"]["minute"] == 10  # nothing counted
    # a wait within the patience is slept through as before
    clock.now += 60.0
    for _ in range(5):
        lim.acquire(BACKGROUND)
    with patience(2.0):
        lim.acquire(BACKGROUND)
    assert 0 < sum(clock.slept) <= 2.0


def test_a_periodic_request_with_a_patience_gives_up_while_push_work_waits(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 10, 10_000, push_window=2.0)
    _fill_second(lim)
    with work(PUSH):
        assert lim.try_acquire(BACKGROUND) > 0
    clock.now += 1.0
    with work(PERIODIC), patience(0.5), pytest.raises(NoBudget):
        lim.acquire(BACKGROUND)


def test_the_transport_turns_no_budget_into_not_sent_and_sends_nothing(make_limiter):
    clock = FakeClock()
    lim = make_limiter(clock, 2, 10_000)
    transport = ok_transport(lim)
    with background():
        for _ in range(2):
            transport.send("GET", URL, headers={}, idempotent=True)
        with patience(0.1), pytest.raises(errors.NotSent) as raised:
            transport.send("GET", URL, headers={}, idempotent=True)
    assert isinstance(raised.value, errors.RateLimited) and raised.value.status is None
    assert 0 < raised.value.retry_after <= 1.0
    usage = lim.usage()
    assert usage["lanes"]["background"]["second"] == 2
    assert usage["lanes"]["background"]["rejected"] == 0  # no 429 was seen or counted
