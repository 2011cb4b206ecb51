"""Per-application rate limiting (§11) and request/connection statistics for the control API."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable


class RateLimiter:
    """Sliding windows of one second and one minute per application, on ``clock`` (the
    sandbox's clock, so a test moves past a window instead of sleeping through it)."""

    def __init__(
        self,
        per_second: int,
        per_minute: int,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.per_second = per_second
        self.per_minute = per_minute
        self.enabled = enabled
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        per_second: int | None = None,
        per_minute: int | None = None,
        enabled: bool | None = None,
    ) -> None:
        with self._lock:
            if per_second is not None:
                self.per_second = per_second
            if per_minute is not None:
                self.per_minute = per_minute
            if enabled is not None:
                self.enabled = enabled
            self._hits.clear()

    def settings(self) -> dict:
        return {
            "enabled": self.enabled,
            "per_second": self.per_second,
            "per_minute": self.per_minute,
        }

    def check(self, key: str) -> float | None:
        """Record a request; return seconds to wait if it is over the limit (then not recorded)."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - 60:
                hits.popleft()
            last_second = sum(1 for t in reversed(hits) if t > now - 1) if hits else 0
            if last_second >= self.per_second:
                oldest = [t for t in hits if t > now - 1][0]
                return max(0.0, oldest + 1 - now)
            if len(hits) >= self.per_minute:
                return max(0.0, hits[0] + 60 - now)
            hits.append(now)
            return None


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


class Stats:
    """Requests per route and distinct client connections (to prove connection pooling)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.connections: set[tuple[str, str]] = set()
            self.total = 0
            self.rate_limited = 0
            self.faults = 0

    def record(self, route: str, remote: tuple[str, str]) -> None:
        with self._lock:
            self.requests[route] += 1
            self.connections.add(remote)
            self.total += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "total": self.total,
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "connections": len(self.connections),
                "rate_limited": self.rate_limited,
                "faults": self.faults,
            }
