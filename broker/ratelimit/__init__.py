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

**Pacing.** When the background lane's minute cap binds (60 × its per-second cap is more than
its per-minute cap: 40/s against 400/min by default), the lane could spend its whole minute in
ten seconds and then wait for the minute to slide, a burst of work every minute. So background
requests are then also held to at most ``ceil(background per-minute cap × pace / 60)`` of their
own in any 1 s window (``background_pace``, default 1.25: 9 per second with the defaults, about
``pace`` × the even rate), counted like the other windows. Interactive calls never count
against it. The headroom above the even rate (1.25, and rounding up: 540 a minute against the
400 the minute allows) lets the lane catch up after interactive bursts held it back, so the
minute stays the binding cap; a pace of 1 or less would leave no room to catch up. A pace of 0,
a negative one or ``None`` switches pacing off (the lane may use its whole per-second cap), as
does a per-second cap that already spreads the minute.

**Tenants.** Background work done for one organisation names it (:func:`tenant`, set by the
job wrapper from the job's organisation). While more than one tenant has asked for background
budget within the last ``tenant_window`` seconds (default 5), each tenant's requests are also
capped at the background caps (the per-second one paced, see above) divided by the number of
such active tenants, in both windows:
two organisations bulk-linking at once each get half the lane, one alone gets all of it, and a
tenant that stops asking leaves its share to the others once the activity window passes.
Background calls without a tenant (periodic work) count against the lane only; interactive
calls are never held back by tenants.

**Push before periodic.** Within the background lane a request is of one *work class*
(:func:`work`): ``push`` (follow-ups of a push notification: someone's calendar just changed),
``bulk`` (the default: linking, revocations, calendar choices) or ``periodic`` (reconciliation
and other sweeps). While a push request has had to wait within the last ``push_window`` seconds
(default 2), periodic requests are not admitted at all: the budget that frees up goes to the
push follow-ups first, and periodic work resumes once push work stops waiting.

**Patience.** ``acquire()`` waits as long as it takes, unless the caller set a patience
(:func:`patience`): then a request that would wait longer raises :class:`NoBudget` (with the
wait) instead of sleeping, so a paced pass defers the rest of its work rather than hold a
worker (the transport turns it into ``broker.errors.NotSent``; nothing was sent).

**Usage.** ``usage()`` reads, without counting anything, each lane's requests in the current
1 s and 60 s windows against its caps (the background per-second cap shown paced when pacing
applies), how many tenants share the background lane, and the
429s the transport reported through ``note_rejected()`` (per process in-process, shared by
every process in Redis).

* ``InProcessRateLimiter`` — thread-safe, for one process (development, a single worker).
* ``RedisRateLimiter`` (``broker.ratelimit.shared``) — one shared budget for every
  worker/process, atomic in a Lua script using the Redis server clock (so hosts with skewed
  clocks still agree).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, Protocol, TypedDict, runtime_checkable

from broker.ratelimit.classes import (
    BULK,
    PERIODIC,
    PUSH,
    WORK_CLASSES,
    NoBudget,
    Work,
    _current_work,
    _patience,
    current_patience,
    current_work,
    patience,
    work,
)

DEFAULT_PER_SECOND = 50
DEFAULT_PER_MINUTE = 500
DEFAULT_MARGIN = 0.05
DEFAULT_INTERACTIVE_RESERVE = 0.2
DEFAULT_TENANT_WINDOW = 5.0
DEFAULT_PUSH_WINDOW = 2.0
DEFAULT_BACKGROUND_PACE = 1.25

Lane = Literal["interactive", "background"]
INTERACTIVE: Lane = "interactive"
BACKGROUND: Lane = "background"
LANES: tuple[Lane, ...] = (INTERACTIVE, BACKGROUND)

_current_lane: ContextVar[Lane] = ContextVar("rendezvous_rate_lane", default=INTERACTIVE)


_current_tenant: ContextVar[str | None] = ContextVar("rendezvous_rate_tenant", default=None)


def _acquire(
    limiter: InProcessRateLimiter | RedisRateLimiter, lane: Lane, tenant: str | None
) -> None:
    """Wait (in the limiter's sleep) until the request is admitted, within the patience."""
    limit = _patience.get()
    kind = _current_work.get()
    waited = 0.0
    while True:
        wait = limiter.try_acquire(lane, tenant, kind)
        if wait <= 0:
            return
        if limit is not None and waited + wait > limit:
            raise NoBudget(wait)
        limiter._sleep(wait)
        waited += wait


def current_tenant() -> str | None:
    """The organisation background calls made here are done for (None: nobody in particular)."""
    return _current_tenant.get()


@contextmanager
def tenant(org_id: int | str | None) -> Iterator[None]:
    """Make the background calls inside this block count against ``org_id``'s fair share."""
    token = _current_tenant.set(None if org_id is None else str(org_id))
    try:
        yield
    finally:
        _current_tenant.reset(token)


def _share(cap: int, active: int) -> int:
    """One active tenant's part of a background cap (rounded up: the lane is never left idle
    by rounding; the lane's own cap still holds)."""
    return cap if active <= 1 else max(1, math.ceil(cap / active))


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


def _paced_cap(per_second: int, per_minute: int, pace: float | None) -> int | None:
    """The background lane's own per-second cap that spreads its minute cap over the minute,
    or None when pacing is off or the minute does not bind (then nothing changes)."""
    if pace is None or pace <= 0 or 60 * per_second <= per_minute:
        return None
    paced = max(1, math.ceil(per_minute * pace / 60 - 1e-9))
    return paced if paced < per_second else None


@runtime_checkable
class RateLimiter(Protocol):
    per_second: int
    per_minute: int

    def acquire(self, lane: Lane = INTERACTIVE, tenant: str | None = None) -> None:
        """Block until one more request may be sent in ``lane`` (for ``tenant``, as the work
        class in context), then count it; raise NoBudget past the patience in context."""

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
    tenants: int  # organisations sharing the background lane now (asked within the window)
    push_waiting: bool  # push follow-ups waited within the push window: periodic work yields
    lanes: dict[str, LaneUsage]


def _usage(
    limiter: InProcessRateLimiter | RedisRateLimiter,
    scope: str,
    counts: dict[Lane, tuple[int, int]],
    rejected: dict[Lane, int],
    tenants: int = 0,
    push_waiting: bool = False,
) -> Usage:
    return {
        "per_second": limiter.per_second,
        "per_minute": limiter.per_minute,
        "scope": scope,
        "tenants": tenants,
        "push_waiting": push_waiting,
        "lanes": {
            name: {
                "second": counts[name][0],
                "minute": counts[name][1],
                "cap_second": limiter.caps[name][0]
                if name != BACKGROUND or limiter.paced is None
                else limiter.paced,
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
        tenant_window: float = DEFAULT_TENANT_WINDOW,
        push_window: float = DEFAULT_PUSH_WINDOW,
        background_pace: float | None = DEFAULT_BACKGROUND_PACE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second < 1 or per_minute < 1 or margin < 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self.caps = _lane_caps(per_second, per_minute, interactive_reserve)
        # the background lane's own cap in any 1 s window (None: not paced)
        self.paced = _paced_cap(*self.caps[BACKGROUND], background_pace)
        self._second = 1.0 + margin
        self._minute = 60.0 + margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._log: deque[tuple[float, Lane]] = deque()
        self._paced_log: deque[float] = deque()  # background admitted in the last 1 s window
        self._rejected: dict[Lane, int] = dict.fromkeys(LANES, 0)
        self._tenant_window = tenant_window
        self._tenant_seen: dict[str, float] = {}  # tenant -> last time it asked (background)
        self._tenant_logs: dict[str, deque[float]] = {}  # tenant -> its admitted background
        self._push_window = push_window
        self._push_waited: float | None = None  # when a push request last had to wait

    def _tenant_wait(self, now: float, tenant: str, cap_s: int, cap_m: int) -> float:
        """Mark ``tenant`` active and return how long it must wait for its fair share."""
        seen = self._tenant_seen
        seen[tenant] = now
        for name in [n for n, at in seen.items() if at <= now - self._tenant_window]:
            del seen[name]
        for name in [
            n for n, t in self._tenant_logs.items() if not t or t[-1] <= now - self._minute
        ]:
            del self._tenant_logs[name]  # nothing of it left in either window
        tlog = self._tenant_logs.setdefault(tenant, deque())
        while tlog and tlog[0] <= now - self._minute:
            tlog.popleft()
        active = len(seen)
        if active <= 1:
            return 0.0
        share_s, share_m = _share(cap_s, active), _share(cap_m, active)
        wait = 0.0
        if len(tlog) >= share_m:
            wait = tlog[len(tlog) - share_m] + self._minute - now
        if len(tlog) >= share_s:
            nth_recent = tlog[len(tlog) - share_s]
            if nth_recent > now - self._second:
                wait = max(wait, nth_recent + self._second - now)
        return wait

    def try_acquire(
        self, lane: Lane = INTERACTIVE, tenant: str | None = None, work: Work | None = None
    ) -> float:
        """Count a request in ``lane`` and return 0.0 if allowed now, else the seconds to wait
        (not counted). Both lanes count in one log; only the caps differ. A background request
        with a ``tenant`` must also fit that tenant's fair share of the background caps; a
        periodic one waits while push follow-ups wait (``work``: the class in context)."""
        cap_s, cap_m = self.caps[lane]
        kind = current_work() if work is None else work
        if lane != BACKGROUND:
            tenant, kind = None, BULK
        with self._lock:
            now = self._clock()
            log = self._log
            while log and log[0][0] <= now - self._minute:
                log.popleft()
            wait = 0.0
            paced = self.paced if lane == BACKGROUND else None
            if tenant is not None:
                wait = self._tenant_wait(now, tenant, paced or cap_s, cap_m)
            if len(log) >= cap_m:
                wait = log[len(log) - cap_m][0] + self._minute - now
            if len(log) >= cap_s:
                nth_recent = log[len(log) - cap_s][0]
                if nth_recent > now - self._second:
                    wait = max(wait, nth_recent + self._second - now)
            own = self._paced_log
            while own and own[0] <= now - self._second:
                own.popleft()
            if paced is not None and len(own) >= paced:
                wait = max(wait, own[len(own) - paced] + self._second - now)
            pushed = self._push_waited
            if kind == PERIODIC and pushed is not None and pushed > now - self._push_window:
                wait = max(wait, pushed + self._push_window - now)
            if wait > 0:
                if kind == PUSH:
                    self._push_waited = now
                return wait
            log.append((now, lane))
            if paced is not None:
                own.append(now)
            if tenant is not None:
                self._tenant_logs[tenant].append(now)
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
            tenants = sum(1 for at in self._tenant_seen.values() if at > now - self._tenant_window)
            pushed = self._push_waited
            push_waiting = pushed is not None and pushed > now - self._push_window
        counts_ = {k: (v[0], v[1]) for k, v in counts.items()}
        return _usage(self, "process", counts_, rejected, tenants, push_waiting)

    def acquire(self, lane: Lane = INTERACTIVE, tenant: str | None = None) -> None:
        _acquire(self, lane, tenant)


def rate_limiter_from_settings(
    redis_url: str | None,
    *,
    per_second: int = DEFAULT_PER_SECOND,
    per_minute: int = DEFAULT_PER_MINUTE,
    key_prefix: str = "rendezvous:cronofy:ratelimit",
    interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
    background_pace: float | None = DEFAULT_BACKGROUND_PACE,
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
            background_pace=background_pace,
        )
    return InProcessRateLimiter(
        per_second,
        per_minute,
        interactive_reserve=interactive_reserve,
        background_pace=background_pace,
    )


__all__ = [
    "BACKGROUND",
    "BULK",
    "INTERACTIVE",
    "LANES",
    "PERIODIC",
    "PUSH",
    "WORK_CLASSES",
    "InProcessRateLimiter",
    "Lane",
    "NoBudget",
    "RateLimiter",
    "RedisRateLimiter",
    "Usage",
    "Work",
    "background",
    "current_lane",
    "current_patience",
    "current_tenant",
    "current_work",
    "lane",
    "patience",
    "rate_limiter_from_settings",
    "tenant",
    "work",
]

# The Redis limiter uses the lanes, caps and usage helpers above; imported last so that it can.
from broker.ratelimit.shared import RedisRateLimiter  # noqa: E402
