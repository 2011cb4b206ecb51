"""Client-side rate limiting so the application stays under the aggregator's per-app limits.

Cronofy allows 50 requests/second and 500 requests/minute *per application* (reference §11).
Both windows are enforced as sliding logs (strictly "at most N in any window"), which is never
looser than whatever window the server uses, and each window is lengthened by a small safety
``margin`` (default 50 ms): requests admitted exactly one window apart can otherwise reach the
server less than a window apart (network and scheduling jitter) and be refused with 429.
``acquire()`` blocks until a request may be sent.

**Lanes.** Every request is counted in the same windows, but it asks in one of two lanes:
``interactive`` (a person is waiting: pages, API requests, candidate bookings, OAuth exchanges)
or ``background`` (bulk linking, revocations, reconciliation, push follow-ups). A share of each
window (``interactive_reserve``, default 20 %) is reserved for interactive calls: a background
request is admitted only while the total in *each* window is below ``limit − reserve``, so
background work stops taking the moment interactive demand eats into the reserve, while
interactive calls may use the whole budget. The lane comes from a context variable
(:func:`lane`, :func:`background`), set by the job worker for background tasks; anything that
does not set it is interactive, so existing callers keep their behaviour.

**Usage.** ``usage()`` reads, without counting anything, each lane's requests in the current
1 s and 60 s windows against its caps, and the 429s the transport reported through
``note_rejected()`` (per process in-process, shared by every process in Redis).

* ``InProcessRateLimiter`` — thread-safe, for one process (development, a single worker).
* ``RedisRateLimiter`` — one shared budget for every worker/process, atomic in a Lua script
  using the Redis server clock (so hosts with skewed clocks still agree).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, cast, runtime_checkable

if TYPE_CHECKING:
    from redis import Redis

DEFAULT_PER_SECOND = 50
DEFAULT_PER_MINUTE = 500
DEFAULT_MARGIN = 0.05
DEFAULT_INTERACTIVE_RESERVE = 0.2

Lane = Literal["interactive", "background"]
INTERACTIVE: Lane = "interactive"
BACKGROUND: Lane = "background"
LANES: tuple[Lane, ...] = (INTERACTIVE, BACKGROUND)

_current_lane: ContextVar[Lane] = ContextVar("rendezvous_rate_lane", default=INTERACTIVE)


def current_lane() -> Lane:
    """The lane aggregator calls made here go through (interactive unless set otherwise)."""
    return _current_lane.get()


@contextmanager
def lane(name: Lane) -> Iterator[None]:
    """Make the aggregator calls inside this block use lane ``name``."""
    if name not in LANES:
        raise ValueError(f"unknown rate-limit lane {name!r}")
    token = _current_lane.set(name)
    try:
        yield
    finally:
        _current_lane.reset(token)


def background() -> contextlib.AbstractContextManager[None]:
    """Shorthand for ``lane("background")``: work no person is waiting for."""
    return lane(BACKGROUND)


def _lane_caps(per_second: int, per_minute: int, reserve: float) -> dict[Lane, tuple[int, int]]:
    """How many requests each lane may see in the 1 s and 60 s windows before it waits. The
    reserve is rounded up (never less than asked), but background always keeps one request per
    window, or it could never run at all under tiny limits."""
    if not 0 <= reserve < 1:
        raise ValueError("the interactive reserve is a fraction in [0, 1)")

    def cap(limit: int) -> int:
        return max(1, limit - math.ceil(limit * reserve - 1e-9))

    return {
        INTERACTIVE: (per_second, per_minute),
        BACKGROUND: (cap(per_second), cap(per_minute)),
    }


@runtime_checkable
class RateLimiter(Protocol):
    per_second: int
    per_minute: int

    def acquire(self, lane: Lane = INTERACTIVE) -> None:
        """Block until one more request may be sent in ``lane``, then count it."""

    def note_rejected(self, lane: Lane = INTERACTIVE) -> None:
        """Count one 429 the aggregator answered to a request of ``lane``."""

    def usage(self) -> Usage:
        """What each lane sent in the current 1 s and 60 s windows, the caps, and the 429s."""


class LaneUsage(TypedDict):
    second: int  # requests of this lane in the current 1 s window
    minute: int  # ... and in the current 60 s window
    cap_second: int  # what the lane may reach in each window before it waits
    cap_minute: int
    rejected: int  # 429s the aggregator answered to this lane (see ``scope``)


class Usage(TypedDict):
    per_second: int
    per_minute: int
    scope: str  # "process" (this process only) or "shared" (every process on the Redis)
    lanes: dict[str, LaneUsage]


def _usage(
    limiter: InProcessRateLimiter | RedisRateLimiter,
    scope: str,
    counts: dict[Lane, tuple[int, int]],
    rejected: dict[Lane, int],
) -> Usage:
    return {
        "per_second": limiter.per_second,
        "per_minute": limiter.per_minute,
        "scope": scope,
        "lanes": {
            name: {
                "second": counts[name][0],
                "minute": counts[name][1],
                "cap_second": limiter.caps[name][0],
                "cap_minute": limiter.caps[name][1],
                "rejected": rejected[name],
            }
            for name in LANES
        },
    }


class InProcessRateLimiter:
    """Sliding-log limiter over two windows (1 s and 60 s), safe to share between threads."""

    def __init__(
        self,
        per_second: int = DEFAULT_PER_SECOND,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        margin: float = DEFAULT_MARGIN,
        interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second < 1 or per_minute < 1 or margin < 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self.caps = _lane_caps(per_second, per_minute, interactive_reserve)
        self._second = 1.0 + margin
        self._minute = 60.0 + margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._log: deque[tuple[float, Lane]] = deque()
        self._rejected: dict[Lane, int] = dict.fromkeys(LANES, 0)

    def try_acquire(self, lane: Lane = INTERACTIVE) -> float:
        """Count a request in ``lane`` and return 0.0 if allowed now, else the seconds to wait
        (not counted). Both lanes count in one log; only the caps differ."""
        cap_s, cap_m = self.caps[lane]
        with self._lock:
            now = self._clock()
            log = self._log
            while log and log[0][0] <= now - self._minute:
                log.popleft()
            wait = 0.0
            if len(log) >= cap_m:
                wait = log[len(log) - cap_m][0] + self._minute - now
            if len(log) >= cap_s:
                nth_recent = log[len(log) - cap_s][0]
                if nth_recent > now - self._second:
                    wait = max(wait, nth_recent + self._second - now)
            if wait > 0:
                return wait
            log.append((now, lane))
            return 0.0

    def note_rejected(self, lane: Lane = INTERACTIVE) -> None:
        with self._lock:
            self._rejected[lane] += 1

    def usage(self) -> Usage:
        """Read-only: counts per lane in the windows as they are now; 429s since this process
        started (``scope`` "process": each worker process keeps its own count)."""
        with self._lock:
            now = self._clock()
            counts: dict[Lane, list[int]] = {name: [0, 0] for name in LANES}
            for at, name in self._log:
                if at > now - self._minute:
                    counts[name][1] += 1
                    if at > now - self._second:
                        counts[name][0] += 1
            rejected = dict(self._rejected)
        return _usage(self, "process", {k: (v[0], v[1]) for k, v in counts.items()}, rejected)

    def acquire(self, lane: Lane = INTERACTIVE) -> None:
        while True:
            wait = self.try_acquire(lane)
            if wait <= 0:
                return
            self._sleep(wait)


_LUA_ACQUIRE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now
if ARGV[6] then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- the caps of the lane asking: the whole limit (interactive) or limit - reserve (background)
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


_LUA_USAGE = """
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- read-only: count each lane's members (named <process>:<lane>:<seq>) in both windows
local result = {}
for i, w in ipairs({tonumber(ARGV[1]), tonumber(ARGV[2])}) do
  local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - w), '+inf')
  local bg = 0
  for _, m in ipairs(members) do
    if string.find(m, ':background:', 1, true) then bg = bg + 1 end
  end
  result[2 * i - 1] = #members - bg
  result[2 * i] = bg
end
return result
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
        interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` is for tests only: without it (always in production) the Redis server's
        clock decides, so workers on hosts with skewed clocks still agree."""
        if per_second < 1 or per_minute < 1 or margin < 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self.caps = _lane_caps(per_second, per_minute, interactive_reserve)
        self._clock = clock
        self._windows_us = [int((1.0 + margin) * 1e6), int((60.0 + margin) * 1e6)]
        self._keys = [f"{key_prefix}:log", f"{key_prefix}:seq"]
        self._rejected_key = f"{key_prefix}:rejected"
        self._member_prefix = uuid.uuid4().hex[:12]
        self._redis = redis_client
        self._script = redis_client.register_script(_LUA_ACQUIRE)
        self._usage_script = redis_client.register_script(_LUA_USAGE)
        self._sleep = sleep

    def try_acquire(self, lane: Lane = INTERACTIVE) -> float:
        """Count a request in ``lane`` and return 0.0 if allowed now, else the seconds to wait
        (not counted). One atomic script: check both windows against the lane's caps and add."""
        cap_s, cap_m = self.caps[lane]
        member = f"{self._member_prefix}:{lane}"  # the lane is in the name, for usage()
        args: list[int | str] = [cap_s, cap_m, member, *self._windows_us]
        if self._clock is not None:
            args.append(int(self._clock() * 1_000_000))
        wait_us = int(self._script(keys=self._keys, args=args))
        return wait_us / 1_000_000 if wait_us > 0 else 0.0

    def note_rejected(self, lane: Lane = INTERACTIVE) -> None:
        """Count a 429 in one Redis hash that every process shares (never expires)."""
        self._redis.hincrby(self._rejected_key, lane, 1)

    def usage(self) -> Usage:
        """Read-only: both windows counted per lane in one script (one consistent moment);
        the 429 counts are shared by every process using this Redis (``scope`` "shared")."""
        args: list[int] = list(self._windows_us)
        if self._clock is not None:
            args.append(int(self._clock() * 1_000_000))
        i_s, b_s, i_m, b_m = (int(n) for n in self._usage_script(keys=self._keys[:1], args=args))
        stored = cast(
            "list[bytes | str | None]", self._redis.hmget(self._rejected_key, list(LANES))
        )
        rejected: dict[Lane, int] = {
            name: int(value or 0) for name, value in zip(LANES, stored, strict=True)
        }
        counts: dict[Lane, tuple[int, int]] = {INTERACTIVE: (i_s, i_m), BACKGROUND: (b_s, b_m)}
        return _usage(self, "shared", counts, rejected)

    def acquire(self, lane: Lane = INTERACTIVE) -> None:
        while True:
            wait = self.try_acquire(lane)
            if wait <= 0:
                return
            self._sleep(wait)


def rate_limiter_from_settings(
    redis_url: str | None,
    *,
    per_second: int = DEFAULT_PER_SECOND,
    per_minute: int = DEFAULT_PER_MINUTE,
    key_prefix: str = "rendezvous:cronofy:ratelimit",
    interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
) -> RateLimiter:
    """Shared Redis limiter when Redis is configured, else an in-process one."""
    if redis_url:
        import redis  # imported lazily: only deployments with Redis need it

        return RedisRateLimiter(
            redis.Redis.from_url(redis_url),
            key_prefix,
            per_second,
            per_minute,
            interactive_reserve=interactive_reserve,
        )
    return InProcessRateLimiter(per_second, per_minute, interactive_reserve=interactive_reserve)
