"""Background jobs on huey: a SQLite queue by default, Redis when REDIS_URL is set.

Tasks are plain functions registered here with :func:`task` (or :func:`periodic`) at import
time; the huey instance itself is built inside ``create_app`` (nothing at import reads the
environment). Each task runs inside an application context, so it can use the app's database
sessions, broker and cipher. Every task must be idempotent: a job picked up twice (a worker
restart, a retry) does no harm.

Run a worker with ``flask --app wsgi jobs worker``; ``make run`` starts one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab

from webapp import deps
from webapp.db import create_private_file

log = logging.getLogger("webapp.jobs")


@dataclass(frozen=True)
class TaskSpec:
    fn: Callable[..., Any]
    retries: int = 3
    retry_delay: int = 10
    schedule: Any = None  # a huey crontab for periodic tasks


_REGISTRY: dict[str, TaskSpec] = {}


def task(name: str, *, retries: int = 3, retry_delay: int = 10):
    """Register ``fn`` as a background task called ``name`` (retried on exceptions)."""

    def register(fn):
        _REGISTRY[name] = TaskSpec(fn, retries, retry_delay)
        return fn

    return register


def periodic(name: str, schedule):
    """Register ``fn`` to run on a huey ``crontab`` schedule."""

    def register(fn):
        _REGISTRY[name] = TaskSpec(fn, 0, 0, schedule)
        return fn

    return register


#: Waits up to this long are slept through in a task; longer ones re-queue it (keep_going).
SHORT_WAIT = 5.0


@dataclass
class Jobs:
    """The app's queue: ``enqueue(name, …)`` from views; services receive this object."""

    huey: Huey
    _tasks: dict[str, Any] = field(default_factory=dict)

    def enqueue(self, name: str, *args, **kwargs):
        return self._tasks[name](*args, **kwargs)

    def enqueue_once(self, key: str, name: str, *args, ttl: int = 600):
        """Enqueue unless a job under ``key`` is already waiting: bursts (say, change
        notifications for one link) coalesce into one job. The key is released when the job
        starts, and expires after ``ttl`` seconds in case that job is lost."""
        claim = f"once:{key}"
        redis = self._redis()
        if redis is not None:
            # One round trip (SET NX EX, any Redis version); Redis expires a lost claim itself.
            if ttl <= 0:  # take over whatever claim there is
                redis.set(self._redis_key(claim), b"1", ex=1)
            elif not redis.set(self._redis_key(claim), b"1", nx=True, ex=ttl):
                return None
            return self._tasks[name](*args, _release=claim)
        now = time.time()
        if not self.huey.put_if_empty(claim, str(now).encode()):
            held_since = self.huey.get(claim, peek=True)
            if held_since is None or now - float(held_since) < ttl:
                return None
            # An abandoned claim (its job was lost before starting): take it over. Not atomic
            # with the check, so at worst two jobs run, and the job is idempotent.
            self.huey.get(claim)
            if not self.huey.put_if_empty(claim, str(now).encode()):
                return None
        return self._tasks[name](*args, _release=claim)

    def release(self, claim: str) -> None:
        """Let later calls of ``enqueue_once`` queue a new job (the job has started)."""
        redis = self._redis()
        if redis is not None:
            redis.delete(self._redis_key(claim))
        else:
            self.huey.get(claim)

    def _redis(self):
        """The Redis client behind the queue, or None for SQLite and memory queues."""
        return (
            getattr(self.huey.storage, "conn", None) if isinstance(self.huey, RedisHuey) else None
        )

    def _redis_key(self, claim: str) -> str:
        return f"rendezvous.{self.huey.name}.{claim}"

    def keep_going(
        self, name: str, args: tuple, step: Callable[[], tuple[int, float | None]]
    ) -> int:
        """Run ``step`` (one pass of task ``name(*args)``, returning how much it did and the
        seconds the aggregator asked us to wait, or None when nothing is left) until done.
        Short waits are slept through; a longer one re-queues the task for later instead of
        holding a worker. Returns the total done by this run."""
        total = 0
        while True:
            done, retry_in = step()
            total += done
            if retry_in is None:
                return total
            if retry_in > SHORT_WAIT and not self.immediate:
                self.enqueue_in(retry_in, name, *args)
                return total
            time.sleep(min(retry_in, SHORT_WAIT))

    def enqueue_in(self, delay_seconds: float, name: str, *args, **kwargs):
        return self._tasks[name].schedule(args=args, kwargs=kwargs, delay=delay_seconds)

    @property
    def immediate(self) -> bool:
        return self.huey.immediate

    def pending(self) -> int:
        """Queue depth (for /readyz and the benchmark)."""
        return self.huey.pending_count()


def build_huey(app: Flask) -> Huey:
    config = app.config
    if config.get("JOBS_IMMEDIATE"):
        # Tests: tasks run synchronously at enqueue time, in this process.
        return MemoryHuey("rendezvous", immediate=True, utc=True)
    if config.get("REDIS_URL"):
        return RedisHuey("rendezvous", url=config["REDIS_URL"], utc=True)
    path = config.get("JOBS_SQLITE_PATH") or str(Path(app.instance_path) / "jobs.sqlite3")
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_private_file(path)  # queued jobs carry ids and arguments: this user's alone
    return SqliteHuey("rendezvous", filename=path, utc=True)


def init_app(app: Flask) -> Jobs:
    # Task modules register themselves on import.
    from webapp import tasks  # noqa: F401

    huey = build_huey(app)
    jobs = Jobs(huey)
    for name, spec in _REGISTRY.items():
        wrapped = _in_app_context(app, jobs, spec.fn)
        if spec.schedule is not None:
            jobs._tasks[name] = huey.periodic_task(spec.schedule, name=name)(wrapped)
        else:
            jobs._tasks[name] = huey.task(
                retries=spec.retries, retry_delay=spec.retry_delay, name=name
            )(wrapped)
    deps.jobs.install(app, jobs)
    app.cli.add_command(jobs_cli)
    return jobs


def _in_app_context(app: Flask, jobs: Jobs, fn):
    def run(*args, _release: str | None = None, **kwargs):
        if _release is not None:
            jobs.release(_release)  # later notifications may queue a new job from now on
        with app.app_context():
            return fn(*args, **kwargs)

    run.__name__ = fn.__name__
    return run


jobs_cli = AppGroup("jobs", help="Background job queue (huey).")


@jobs_cli.command("worker")
@click.option("--workers", default=2, show_default=True, help="Worker threads.")
def worker(workers: int) -> None:
    """Run a queue consumer until interrupted (SIGINT/SIGTERM finish the running task)."""
    from huey.consumer import Consumer

    jobs: Jobs = deps.jobs()
    if jobs.immediate:
        raise click.ClickException("This app runs jobs immediately; there is nothing to consume.")
    click.echo(f"Consuming {type(jobs.huey).__name__} queue with {workers} worker(s).")
    Consumer(jobs.huey, workers=workers, worker_type="thread", graceful_signal="TERM").run()


__all__ = ["Jobs", "crontab", "init_app", "periodic", "task"]
