"""The sandbox's clock: real time unless a test sets it through the control API.

Everything in the sandbox that depends on the time — token and code expiry, the rate limiter's
windows, notification delivery and retries, ``updated`` stamps, the read-events window and the
seeded world (laid out from the clock's day at reset) — asks this clock. A test sets it to an
instant (``PUT /_sandbox/clock``), freezes it there or lets it run from there, moves it forward
(``POST /_sandbox/clock/advance``) instead of sleeping, and ``/_sandbox/reset`` or
``DELETE /_sandbox/clock`` put it back to real time. Only the sandbox has such a clock: the app
always runs on real time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

UTC = dt.UTC


class Clock:
    """Real time plus an offset, or frozen at an instant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = None

    def time(self) -> float:
        """Seconds since the epoch, like ``time.time()``."""
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def now(self) -> dt.datetime:
        """The current instant in UTC, to the second (the wire's resolution)."""
        return dt.datetime.fromtimestamp(int(self.time()), UTC)

    def today(self, tz: dt.tzinfo = UTC) -> dt.date:
        return dt.datetime.fromtimestamp(self.time(), tz).date()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @property
    def is_real(self) -> bool:
        with self._lock:
            return self._frozen_at is None and self._offset == 0.0

    def set(self, instant: dt.datetime, *, frozen: bool = False) -> None:
        """Make ``instant`` (timezone-aware) the current time; frozen, it stays there."""
        if instant.tzinfo is None:
            raise ValueError("the instant needs a time zone")
        target = instant.timestamp()
        with self._lock:
            if frozen:
                self._frozen_at, self._offset = target, 0.0
            else:
                self._frozen_at, self._offset = None, target - time.time()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back: tokens, stamps and windows assume time goes on)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def use_real_time(self) -> None:
        with self._lock:
            self._frozen_at, self._offset = None, 0.0

    def describe(self) -> dict:
        now = self.time()
        return {
            "now": dt.datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timestamp": now,
            "frozen": self.frozen,
            "real": self.is_real,
        }
