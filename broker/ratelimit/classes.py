"""Work classes within the background lane (push before periodic) and a caller's patience: the
context the limiters read when they decide (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

Work = Literal["push", "bulk", "periodic"]
PUSH: Work = "push"
BULK: Work = "bulk"
PERIODIC: Work = "periodic"
WORK_CLASSES: tuple[Work, ...] = (PUSH, BULK, PERIODIC)

_current_work: ContextVar[Work] = ContextVar("rendezvous_rate_work", default=BULK)
_patience: ContextVar[float | None] = ContextVar("rendezvous_rate_patience", default=None)


class NoBudget(Exception):
    """The lane has no room within the caller's patience; ``wait`` is the time until it may."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no aggregator budget for {wait:.2f} s")
        self.wait = wait


def current_work() -> Work:
    """The work class of background calls made here (``bulk`` unless set otherwise)."""
    return _current_work.get()


@contextmanager
def work(kind: Work) -> Iterator[None]:
    """Make the background calls inside this block count as ``kind`` (push, bulk, periodic)."""
    if kind not in WORK_CLASSES:
        raise ValueError(f"unknown work class {kind!r}")
    token = _current_work.set(kind)
    try:
        yield
    finally:
        _current_work.reset(token)


def current_patience() -> float | None:
    return _patience.get()


@contextmanager
def patience(seconds: float | None) -> Iterator[None]:
    """Inside this block ``acquire()`` waits at most ``seconds`` in all for one request, then
    raises :class:`NoBudget` instead (None: wait as long as it takes)."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)
