"""A job queue for tests that call services directly: it holds what a service queues, so the
test can check it and run the jobs itself, when it chooses."""

from __future__ import annotations

from typing import Any


class HeldJobs:
    """Records ``enqueue(name, *args)`` calls instead of running them (a JobQueue)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, tuple[Any, ...]]] = []

    def enqueue(self, name: str, *args: Any) -> None:
        self.queued.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _args in self.queued]
