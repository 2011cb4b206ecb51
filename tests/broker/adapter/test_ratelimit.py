"""The client-side limiter: two sliding windows, in-process and shared through Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from broker.ratelimit import InProcessRateLimiter, RedisRateLimiter, rate_limiter_from_settings


class FakeClock:
    """A clock that only moves when the limiter sleeps — no real waiting in tests."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def _admitted_times(limiter, clock, n):
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(clock.now)
    return times


def _max_in_window(times, window):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_per_second_window():
    clock = FakeClock()
    lim = InProcessRateLimiter(
        per_second=5, per_minute=1000, margin=0, clock=clock, sleep=clock.sleep
    )
    times = _admitted_times(lim, clock, 23)
    assert times[:5] == [1000.0] * 5
    assert times[5] == pytest.approx(1001.0)
    assert _max_in_window(times, 1.0) == 5


def test_per_minute_window():
    clock = FakeClock()
    lim = InProcessRateLimiter(
        per_second=50, per_minute=120, margin=0, clock=clock, sleep=clock.sleep
    )
    times = _admitted_times(lim, clock, 300)
    assert _max_in_window(times, 60.0) == 120
    assert _max_in_window(times, 1.0) <= 50
    # the 121st request had to wait for the first to leave the minute window
    assert times[120] == pytest.approx(1060.0)


def test_defaults_are_cronofys_documented_limits():
    lim = InProcessRateLimiter()
    assert (lim.per_second, lim.per_minute) == (50, 500)
    assert isinstance(rate_limiter_from_settings(None), InProcessRateLimiter)


def test_try_acquire_reports_wait_without_counting():
    clock = FakeClock()
    lim = InProcessRateLimiter(
        per_second=1, per_minute=10, margin=0, clock=clock, sleep=clock.sleep
    )
    assert lim.try_acquire() == 0.0
    assert lim.try_acquire() == pytest.approx(1.0)
    assert lim.try_acquire() == pytest.approx(1.0)
    clock.now += 1.0
    assert lim.try_acquire() == 0.0


def test_thread_safety_under_contention():
    clock = FakeClock()
    lim = InProcessRateLimiter(per_second=10, per_minute=10_000, clock=clock, sleep=clock.sleep)
    admitted: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            lim.acquire()
            with lock:
                admitted.append(clock.now)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 200
    # The fake clock is shared, so concurrent sleeps may overshoot; never undershoot.
    assert _max_in_window(sorted(admitted), 1.0) <= 10


def test_safety_margin_lengthens_both_windows():
    clock = FakeClock()
    lim = InProcessRateLimiter(
        per_second=2, per_minute=3, margin=0.1, clock=clock, sleep=clock.sleep
    )
    times = _admitted_times(lim, clock, 4)
    assert times[2] == pytest.approx(1001.1)  # second window: 1.1 s
    assert times[3] == pytest.approx(1060.1)  # minute window: 60.1 s after the first


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        InProcessRateLimiter(per_second=0)


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def test_redis_limiter_counts_and_reports_wait(redis_client):
    lim = RedisRateLimiter(redis_client, "t1", per_second=3, per_minute=100)
    assert [lim.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = lim.try_acquire()
    assert 0.0 < wait <= 1.05
    assert redis_client.zcard("t1:log") == 3  # the refused attempt was not counted


def test_redis_limiter_minute_window(redis_client):
    lim = RedisRateLimiter(redis_client, "t2", per_second=100, per_minute=5)
    assert all(lim.try_acquire() == 0.0 for _ in range(5))
    wait = lim.try_acquire()
    assert 59.0 < wait <= 60.05


def test_redis_limiter_is_shared_between_processes(redis_url, tmp_path):
    """Two OS processes with their own limiter objects share one budget."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, redis\n"
        "from broker.ratelimit import RedisRateLimiter\n"
        "lim = RedisRateLimiter(redis.Redis.from_url(sys.argv[1]), 'shared', 1000, 30)\n"
        "print(sum(1 for _ in range(40) if lim.try_acquire() == 0.0))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    import redis

    redis.Redis.from_url(redis_url).delete("shared:log", "shared:seq")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), redis_url], stdout=subprocess.PIPE, env=env, text=True
        )
        for _ in range(2)
    ]
    granted = [int(p.communicate(timeout=30)[0].strip()) for p in procs]
    assert sum(granted) == 30  # never more than the shared per-minute budget


def test_redis_limiter_acquire_blocks_until_allowed(redis_client):
    sleeps: list[float] = []

    def fake_sleep(s):
        sleeps.append(s)
        redis_client.delete("t3:log")  # as if the window had passed

    lim = RedisRateLimiter(redis_client, "t3", per_second=1, per_minute=100, sleep=fake_sleep)
    lim.acquire()
    lim.acquire()
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1.05


def test_rate_limiter_from_settings_uses_redis(redis_url):
    assert isinstance(rate_limiter_from_settings(redis_url), RedisRateLimiter)
