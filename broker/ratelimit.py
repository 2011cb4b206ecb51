"""Client-side rate limiting so the application stays under the aggregator's per-app limits.

Cronofy allows 50 requests/second and 500 requests/minute *per application* (reference §11).
Both windows are enforced as sliding logs (strictly "at most N in any window"), which is never
looser than whatever window the server uses, and each window is lengthened by a small safety
``margin`` (default 50 ms): requests admitted exactly one window apart can otherwise reach the
server less than a window apart (network and scheduling jitter) and be refused with 429.
``acquire()`` blocks until a request may be sent.

* ``InProcessRateLimiter`` — thread-safe, for one process (development, a single worker).
* ``RedisRateLimiter`` — one shared budget for every worker/process, atomic in a Lua script
  using the Redis server clock (so hosts with skewed clocks still agree).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from redis import Redis

DEFAULT_PER_SECOND = 50
DEFAULT_PER_MINUTE = 500
DEFAULT_MARGIN = 0.05


@runtime_checkable
class RateLimiter(Protocol):
    per_second: int
    per_minute: int

    def acquire(self) -> None:
        """Block until one more request may be sent, then count it."""


class InProcessRateLimiter:
    """Sliding-log limiter over two windows (1 s and 60 s), safe to share between threads."""

    def __init__(
        self,
        per_second: int = DEFAULT_PER_SECOND,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second < 1 or per_minute < 1 or margin < 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self._second = 1.0 + margin
        self._minute = 60.0 + margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._log: deque[float] = deque()

    def try_acquire(self) -> float:
        """Count a request and return 0.0 if allowed now, else the seconds to wait (not counted)."""
        with self._lock:
            now = self._clock()
            log = self._log
            while log and log[0] <= now - self._minute:
                log.popleft()
            wait = 0.0
            if len(log) >= self.per_minute:
                wait = log[len(log) - self.per_minute] + self._minute - now
            if len(log) >= self.per_second:
                nth_recent = log[len(log) - self.per_second]
                if nth_recent > now - self._second:
                    wait = max(wait, nth_recent + self._second - now)
            if wait > 0:
                return wait
            log.append(now)
            return 0.0

    def acquire(self) -> None:
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            self._sleep(wait)


_LUA_ACQUIRE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local per_s = tonumber(ARGV[1])
local per_m = tonumber(ARGV[2])
local win_s = tonumber(ARGV[4])
local win_m = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win_m)
local wait = 0
local n = redis.call('ZCARD', KEYS[1])
if n >= per_m then
  local e = redis.call('ZRANGE', KEYS[1], n - per_m, n - per_m, 'WITHSCORES')
  wait = tonumber(e[2]) + win_m - now
end
if n >= per_s then
  local e = redis.call('ZREVRANGE', KEYS[1], per_s - 1, per_s - 1, 'WITHSCORES')
  local w = tonumber(e[2]) + win_s - now
  if w > wait then wait = w end
end
if wait > 0 then return wait end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. seq)
redis.call('PEXPIRE', KEYS[1], math.ceil(win_m / 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil(win_m / 1000) + 1000)
return 0
"""


class RedisRateLimiter:
    """The same two windows, shared by every process that uses the same Redis and key prefix."""

    def __init__(
        self,
        redis_client: Redis,
        key_prefix: str = "rendezvous:cronofy:ratelimit",
        per_second: int = DEFAULT_PER_SECOND,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        margin: float = DEFAULT_MARGIN,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second < 1 or per_minute < 1 or margin < 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self._windows_us = [int((1.0 + margin) * 1e6), int((60.0 + margin) * 1e6)]
        self._keys = [f"{key_prefix}:log", f"{key_prefix}:seq"]
        self._member_prefix = uuid.uuid4().hex[:12]
        self._script = redis_client.register_script(_LUA_ACQUIRE)
        self._sleep = sleep

    def try_acquire(self) -> float:
        """Count a request and return 0.0 if allowed now, else the seconds to wait (not counted)."""
        wait_us = int(
            self._script(
                keys=self._keys,
                args=[self.per_second, self.per_minute, self._member_prefix, *self._windows_us],
            )
        )
        return wait_us / 1_000_000 if wait_us > 0 else 0.0

    def acquire(self) -> None:
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            self._sleep(wait)


def rate_limiter_from_settings(
    redis_url: str | None,
    *,
    per_second: int = DEFAULT_PER_SECOND,
    per_minute: int = DEFAULT_PER_MINUTE,
    key_prefix: str = "rendezvous:cronofy:ratelimit",
) -> RateLimiter:
    """Shared Redis limiter when Redis is configured, else an in-process one."""
    if redis_url:
        import redis  # imported lazily: only deployments with Redis need it

        return RedisRateLimiter(redis.Redis.from_url(redis_url), key_prefix, per_second, per_minute)
    return InProcessRateLimiter(per_second, per_minute)
