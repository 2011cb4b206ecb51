"""A job queue for tests that call services directly: it holds what a service queues, so the
test can check it and run the jobs itself, when it chooses."""

from __future__ import annotations

from typing import Any


class HeldJobs:
    """Records ``enqueue(name, *args)`` calls instead of running them (a JobQueue)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, tuple[Any, ...]]] = []
        self.keys: set[str] = set()

    def enqueue(self, name: str, *args: Any) -> None:
        self.queued.append((name, args))

    def enqueue_once(self, key: str, name: str, *args: Any, ttl: int = 600) -> None:
        """Like the app's queue: nothing more while a job under ``key`` is held here."""
        if key not in self.keys:
            self.keys.add(key)
            self.queued.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _args in self.queued]


class HoldingJobs:
    """The app's own queue with some tasks held back: install it on a running app (say, behind
    a live server) so that, for instance, the calendar write of an interview waits until the test
    calls :meth:`release`. Other tasks, and everything else the queue does, go to the app's
    queue unchanged."""

    def __init__(self, jobs: Any, *names: str) -> None:
        import threading

        self._jobs = jobs
        self._names = set(names)
        self._lock = threading.Lock()
        self.held: list[tuple[str, tuple[Any, ...]]] = []

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self._names and not kwargs:
            with self._lock:
                self.held.append((name, args))
            return None
        return self._jobs.enqueue(name, *args, **kwargs)

    def release(self) -> int:
        """Run the held jobs now, in order (the calendar confirms); how many ran."""
        with self._lock:
            held, self.held = self.held, []
        for name, args in held:
            self._jobs.enqueue(name, *args)
        return len(held)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._jobs, attr)
