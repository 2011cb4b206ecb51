"""The shared limiter: the same windows, lanes, pacing and tenant shares as
``InProcessRateLimiter``, kept in Redis and decided atomically by one Lua script on the Redis
server clock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from broker.ratelimit import (
    BACKGROUND,
    DEFAULT_BACKGROUND_PACE,
    DEFAULT_INTERACTIVE_RESERVE,
    DEFAULT_MARGIN,
    DEFAULT_PER_MINUTE,
    DEFAULT_PER_SECOND,
    DEFAULT_PUSH_WINDOW,
    DEFAULT_TENANT_WINDOW,
    INTERACTIVE,
    LANES,
    PERIODIC,
    PUSH,
    Lane,
    Usage,
    Work,
    _acquire,
    _lane_caps,
    _paced_cap,
    _usage,
    current_work,
)

if TYPE_CHECKING:
    from redis import Redis

_LUA_ACQUIRE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now
if ARGV[6] ~= '' then
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
-- the background lane's own cap in any 1 s window (0: not paced, or not background); KEYS[6]
-- logs the background requests admitted while paced
local paced = tonumber(ARGV[11])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win_m)
local wait = 0
-- a background request for a tenant (KEYS[4] its log): mark the tenant active in KEYS[3]
-- (scored by last ask) and hold it to the caps divided by the tenants active in ARGV[8] us
local tenant = ARGV[7]
if tenant ~= '' then
  redis.call('ZADD', KEYS[3], now, tenant)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[3], math.ceil(tonumber(ARGV[8]) / 1000) + 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - win_m)
  local active = redis.call('ZCARD', KEYS[3])
  if active > 1 then
    local base_s = per_s
    if paced > 0 then base_s = paced end
    local share_s = math.max(1, math.ceil(base_s / active))
    local share_m = math.max(1, math.ceil(per_m / active))
    local nt = redis.call('ZCARD', KEYS[4])
    if nt >= share_m then
      local e = redis.call('ZRANGE', KEYS[4], nt - share_m, nt - share_m, 'WITHSCORES')
      wait = tonumber(e[2]) + win_m - now
    end
    if nt >= share_s then
      local e = redis.call('ZREVRANGE', KEYS[4], share_s - 1, share_s - 1, 'WITHSCORES')
      local w = tonumber(e[2]) + win_s - now
      if w > wait then wait = w end
    end
  end
end
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
if paced > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - win_s)
  local np = redis.call('ZCARD', KEYS[6])
  if np >= paced then
    local e = redis.call('ZREVRANGE', KEYS[6], paced - 1, paced - 1, 'WITHSCORES')
    local w = tonumber(e[2]) + win_s - now
    if w > wait then wait = w end
  end
end
-- push before periodic: a periodic request waits while a push request waited (KEYS[5] holds
-- when one last did) within the push window ARGV[10] us
local kind = ARGV[9]
local push_window = tonumber(ARGV[10])
if kind == 'periodic' then
  local pushed = redis.call('GET', KEYS[5])
  if pushed and tonumber(pushed) > now - push_window then
    local w = tonumber(pushed) + push_window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then
  if kind == 'push' then
    redis.call('SET', KEYS[5], now, 'PX', math.ceil(push_window / 1000) + 1000)
  end
  return wait
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. seq)
redis.call('PEXPIRE', KEYS[1], math.ceil(win_m / 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil(win_m / 1000) + 1000)
if paced > 0 then
  redis.call('ZADD', KEYS[6], now, ARGV[3] .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[6], math.ceil(win_s / 1000) + 1000)
end
if tenant ~= '' then
  redis.call('ZADD', KEYS[4], now, ARGV[3] .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[4], math.ceil(win_m / 1000) + 1000)
end
return 0
"""


_LUA_USAGE = """
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
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
-- the tenants sharing the background lane: those that asked within the activity window
result[5] = redis.call('ZCOUNT', KEYS[2], '(' .. (now - tonumber(ARGV[3])), '+inf')
-- whether push follow-ups waited within the push window (periodic work yields meanwhile)
local pushed = redis.call('GET', KEYS[3])
result[6] = 0
if pushed and tonumber(pushed) > now - tonumber(ARGV[5]) then result[6] = 1 end
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
        tenant_window: float = DEFAULT_TENANT_WINDOW,
        push_window: float = DEFAULT_PUSH_WINDOW,
        background_pace: float | None = DEFAULT_BACKGROUND_PACE,
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
        self.paced = _paced_cap(*self.caps[BACKGROUND], background_pace)
        self._clock = clock
        self._windows_us = [int((1.0 + margin) * 1e6), int((60.0 + margin) * 1e6)]
        self._keys = [f"{key_prefix}:log", f"{key_prefix}:seq"]
        self._key_prefix = key_prefix
        self._tenant_window_us = int(tenant_window * 1e6)
        self._push_window_us = int(push_window * 1e6)
        self._push_key = f"{key_prefix}:push-waited"
        self._rejected_key = f"{key_prefix}:rejected"
        self._member_prefix = uuid.uuid4().hex[:12]
        self._redis = redis_client
        self._script = redis_client.register_script(_LUA_ACQUIRE)
        self._usage_script = redis_client.register_script(_LUA_USAGE)
        self._sleep = sleep

    def try_acquire(
        self, lane: Lane = INTERACTIVE, tenant: str | None = None, work: Work | None = None
    ) -> float:
        """Count a request in ``lane`` and return 0.0 if allowed now, else the seconds to wait
        (not counted). One atomic script: check both windows against the lane's caps (the
        background pace, a background tenant's fair share, push before periodic) and add."""
        cap_s, cap_m = self.caps[lane]
        kind = current_work() if work is None else work
        if lane != BACKGROUND:
            tenant, kind = None, "bulk"
        member = f"{self._member_prefix}:{lane}"  # the lane is in the name, for usage()
        args: list[int | str] = [cap_s, cap_m, member, *self._windows_us]
        args.append("" if self._clock is None else int(self._clock() * 1_000_000))
        args += ["" if tenant is None else tenant, self._tenant_window_us]
        args += [kind if kind in (PUSH, PERIODIC) else "", self._push_window_us]
        args.append((self.paced or 0) if lane == BACKGROUND else 0)
        tenant_log = f"{self._key_prefix}:tenant:{tenant or ''}"
        keys = [*self._keys, f"{self._key_prefix}:tenants", tenant_log, self._push_key]
        keys.append(f"{self._key_prefix}:paced")
        wait_us = int(self._script(keys=keys, args=args))
        return wait_us / 1_000_000 if wait_us > 0 else 0.0

    def note_rejected(self, lane: Lane = INTERACTIVE) -> None:
        """Count a 429 in one Redis hash that every process shares (never expires)."""
        self._redis.hincrby(self._rejected_key, lane, 1)

    def usage(self) -> Usage:
        """Read-only: both windows counted per lane in one script (one consistent moment);
        the 429 counts are shared by every process using this Redis (``scope`` "shared")."""
        args: list[int | str] = [*self._windows_us, self._tenant_window_us]
        args.append("" if self._clock is None else int(self._clock() * 1_000_000))
        args.append(self._push_window_us)
        keys = [self._keys[0], f"{self._key_prefix}:tenants", self._push_key]
        i_s, b_s, i_m, b_m, tenants, pushed = (
            int(n) for n in self._usage_script(keys=keys, args=args)
        )
        stored = cast(
            "list[bytes | str | None]", self._redis.hmget(self._rejected_key, list(LANES))
        )
        rejected: dict[Lane, int] = {
            name: int(value or 0) for name, value in zip(LANES, stored, strict=True)
        }
        counts: dict[Lane, tuple[int, int]] = {INTERACTIVE: (i_s, i_m), BACKGROUND: (b_s, b_m)}
        return _usage(self, "shared", counts, rejected, tenants, bool(pushed))

    def acquire(self, lane: Lane = INTERACTIVE, tenant: str | None = None) -> None:
        _acquire(self, lane, tenant)
