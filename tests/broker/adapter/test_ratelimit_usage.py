"""What operators see of the limiter: each lane's requests in the current 1 s and 60 s windows
against its caps, and the 429s the aggregator answered per lane. ``usage()`` only reads — the
same answers in-process and in Redis (where it is one script, and the 429 counts are shared by
every process)."""

from __future__ import annotations

import uuid

import pytest

from broker.ratelimit import BACKGROUND, INTERACTIVE, InProcessRateLimiter, RedisRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["in-process", "redis"])
def make(request):
    """Limiters of 10/s and 20/min, unpaced unless a test asks (pacing: test_ratelimit_pace.py)."""
    if request.param == "in-process":
        yield lambda clock, **kw: InProcessRateLimiter(
            10, 20, margin=0, clock=clock, **{"background_pace": None, **kw}
        )
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"usage-{uuid.uuid4().hex}"
    yield lambda clock, **kw: RedisRateLimiter(
        client, prefix, 10, 20, margin=0, clock=clock, **{"background_pace": None, **kw}
    )
    client.close()


def _counts(usage):
    return {name: (lane["second"], lane["minute"]) for name, lane in usage["lanes"].items()}


def test_usage_counts_each_lane_in_both_windows_and_changes_nothing(make):
    clock = FakeClock()
    lim = make(clock)
    assert _counts(lim.usage()) == {INTERACTIVE: (0, 0), BACKGROUND: (0, 0)}
    for _ in range(3):
        assert lim.try_acquire(BACKGROUND) == 0
    clock.now += 2  # those three leave the 1 s window, stay in the 60 s one
    assert lim.try_acquire(INTERACTIVE) == 0
    assert lim.try_acquire(BACKGROUND) == 0
    usage = lim.usage()
    assert _counts(usage) == {INTERACTIVE: (1, 1), BACKGROUND: (1, 4)}
    assert usage["per_second"] == 10 and usage["per_minute"] == 20
    assert (
        usage["lanes"][INTERACTIVE]["cap_second"],
        usage["lanes"][INTERACTIVE]["cap_minute"],
    ) == (
        10,
        20,
    )
    assert (usage["lanes"][BACKGROUND]["cap_second"], usage["lanes"][BACKGROUND]["cap_minute"]) == (
        8,
        16,
    )
    # read-only: asking again (any number of times) neither counts nor frees anything
    for _ in range(5):
        assert _counts(lim.usage()) == {INTERACTIVE: (1, 1), BACKGROUND: (1, 4)}
    clock.now += 60  # everything leaves both windows
    assert _counts(lim.usage()) == {INTERACTIVE: (0, 0), BACKGROUND: (0, 0)}


def test_usage_agrees_with_what_acquire_admits(make):
    """Filling the background lane to its cap: usage says so, and the next one must wait."""
    clock = FakeClock()
    lim = make(clock)
    admitted = 0
    while lim.try_acquire(BACKGROUND) == 0:
        admitted += 1
    lanes = lim.usage()["lanes"]
    assert admitted == lanes[BACKGROUND]["second"] == lanes[BACKGROUND]["cap_second"] == 8
    assert lim.try_acquire(INTERACTIVE) == 0  # the reserve is still there
    assert lim.usage()["lanes"][INTERACTIVE]["second"] == 1


def test_rejections_are_counted_per_lane(make):
    lim = make(FakeClock())
    lim.note_rejected(BACKGROUND)
    lim.note_rejected(BACKGROUND)
    lim.note_rejected(INTERACTIVE)
    lanes = lim.usage()["lanes"]
    assert (lanes[INTERACTIVE]["rejected"], lanes[BACKGROUND]["rejected"]) == (1, 2)


def test_in_process_counts_are_this_process_only():
    assert InProcessRateLimiter().usage()["scope"] == "process"


def test_redis_usage_and_rejections_are_shared_between_processes(redis_url):
    """Two limiters on one Redis (two workers): each sees the other's requests and 429s."""
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"shared-{uuid.uuid4().hex}"
    first = RedisRateLimiter(client, prefix, 10, 20)
    second = RedisRateLimiter(client, prefix, 10, 20)
    first.acquire(BACKGROUND)
    second.acquire(INTERACTIVE)
    second.note_rejected(BACKGROUND)
    usage = first.usage()  # on the Redis server clock
    assert usage["scope"] == "shared"
    assert _counts(usage) == {INTERACTIVE: (1, 1), BACKGROUND: (1, 1)}
    assert usage["lanes"][BACKGROUND]["rejected"] == 1
    assert usage["lanes"][INTERACTIVE]["rejected"] == 0
    client.close()
