"""The queue plumbing: huey (a SQLite queue by default, Redis when REDIS_URL is set), the
``Jobs`` object views and services enqueue through, and the ``flask jobs worker`` command.

Task modules declare their tasks on a :class:`TaskGroup` (``tasks = TaskGroup("enterprise")``,
``@tasks.task("send_batches")``); webapp.jobs lists the groups and hands them to :func:`install`
inside ``create_app`` (nothing at import reads the environment). Each task names the
aggregator rate-limit lane its calls use (broker.ratelimit): ``background`` for bulk and
periodic work, so it only takes what the interactive reserve leaves free, ``interactive`` for
follow-ups of something a person just did. A task done for one organisation may name a
``tenant`` function (its arguments → the organisation id, read inside the app context); its
background calls then count against that organisation's fair share of the background lane, so
one organisation's bulk job cannot starve another's. Within the background lane a task is
``push`` work (follow-ups of a push notification), ``periodic`` (the default of periodic tasks)
or ``bulk`` (the default otherwise): periodic calls yield while push calls wait for budget.
The same lanes order the queue itself (huey task priorities, :data:`PRIORITIES`): a worker
takes interactive jobs (a person just booked) before push follow-ups, those before periodic
ticks, and those before bulk work, first in first out within each; a job keeps its priority
when retried or scheduled for later. SQLite and memory queues order by priority themselves;
Redis uses huey's ``PriorityRedisHuey`` (webapp.jobs.redis_queue, which also moves a queue left
by a release without priorities).
The queue also keeps small JSON records (``state``/``set_state``) and expiring locks
(``hold``/``let_go``) for the paced periodic passes (webapp.services.pacing). Each task runs
inside an application context, so it can use the app's database sessions, broker and cipher.
Every task
must be idempotent: a job picked up twice (a worker restart, a retry) does no harm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab

from broker.ratelimit import (
    BACKGROUND,
    BULK,
    INTERACTIVE,
    LANES,
    PERIODIC,
    PUSH,
    WORK_CLASSES,
    Lane,
    Work,
)
from broker.ratelimit import lane as rate_lane
from broker.ratelimit import tenant as rate_tenant
from broker.ratelimit import work as rate_work
from webapp import deps
from webapp.db import create_private_file
from webapp.jobs.redis_queue import PriorityQueueHuey

log = logging.getLogger("webapp.jobs")

#: huey names a queued message ``<module of the task function>.<task name>``. Every release so
#: far queued ours as ``webapp.jobs.<name>``: keep that prefix whatever module this code is in,
#: or messages already in a queue at deploy time would find no task.
WIRE_MODULE = "webapp.jobs"


@dataclass(frozen=True)
class TaskSpec:
    fn: Callable[..., Any]
    retries: int = 3
    retry_delay: int = 10
    schedule: Any = None  # a huey crontab for periodic tasks
    lane: Lane = INTERACTIVE  # the aggregator rate-limit lane its calls use
    tenant: Callable[..., int | None] | None = None  # the task's args -> its organisation id
    work: Work = BULK  # its class in the background lane: push, bulk or periodic

    @property
    def priority(self) -> int:
        """huey's priority for its jobs (higher is taken first)."""
        return PRIORITIES[INTERACTIVE if self.lane == INTERACTIVE else self.work]


#: The queue's order (huey task priority, higher first): a person is waiting for interactive
#: jobs; push follow-ups go before periodic ticks, which go before bulk work (a periodic tick
#: is one short paced slice a minute: behind a bulk backlog it would fall behind its pace).
PRIORITIES: dict[str, int] = {INTERACTIVE: 30, PUSH: 20, PERIODIC: 10, BULK: 0}


class TaskGroup:
    """The tasks of one area, named ``<area>.<verb_object>`` (``enterprise.send_batches``).
    ``lane`` is the rate-limit lane of the group's tasks (a task may name another); periodic
    tasks are always background: nobody is waiting for them."""

    def __init__(self, area: str, *, lane: Lane = INTERACTIVE):
        if lane not in LANES:
            raise ValueError(f"unknown rate-limit lane {lane!r}")
        self.area = area
        self.lane = lane
        self.specs: dict[str, TaskSpec] = {}

    def task(
        self,
        verb_object: str,
        *,
        retries: int = 3,
        retry_delay: int = 10,
        lane: Lane | None = None,
        tenant: Callable[..., int | None] | None = None,
        work: Work = BULK,
    ):
        """Register ``fn`` as a background task (retried on exceptions). ``tenant(*args)``
        names the organisation the job works for (its fair share of the background lane);
        ``work="push"`` marks a follow-up of a push notification (it goes before periodic
        reads in the background lane)."""
        return self._register(
            verb_object,
            retries=retries,
            retry_delay=retry_delay,
            lane=lane or self.lane,
            tenant=tenant,
            work=work,
        )

    def periodic(self, verb_object: str, schedule, *, work: Work = PERIODIC):
        """Register ``fn`` to run on a huey ``crontab`` schedule (in the background lane, as
        periodic work unless it only restarts bulk work: ``work="bulk"``)."""
        return self._register(
            verb_object, retries=0, retry_delay=0, schedule=schedule, lane=BACKGROUND, work=work
        )

    def _register(self, verb_object: str, **spec):
        name = f"{self.area}.{verb_object}"
        if spec["lane"] not in LANES:
            raise ValueError(f"unknown rate-limit lane {spec['lane']!r}")
        if spec["work"] not in WORK_CLASSES:
            raise ValueError(f"unknown work class {spec['work']!r}")

        def register(fn):
            if name in self.specs:
                raise ValueError(f"task {name} is declared twice")
            self.specs[name] = TaskSpec(fn, **spec)
            return fn

        return register


#: backlog() reads at most this many queued messages of each kind (a metrics call stays cheap).
BACKLOG_SCAN = 20_000

#: Waits up to this long are slept through in a task; longer ones re-queue it (keep_going).
SHORT_WAIT = 5.0


@dataclass
class Jobs:
    """The app's queue: ``enqueue(name, …)``; services that queue follow-up work receive it."""

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

    def state(self, key: str) -> dict[str, Any] | None:
        """A small JSON record kept with the queue (the paced passes' progress), or None."""
        raw = self.huey.get(f"state:{key}", peek=True)
        return json.loads(raw) if raw else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self.huey.put(f"state:{key}", json.dumps(value))

    def hold(self, key: str, ttl: int) -> bool:
        """Take the lock ``key`` unless someone holds it; a lock older than ``ttl`` seconds
        (its holder died) is taken over. Release with :meth:`let_go`."""
        claim = f"hold:{key}"
        redis = self._redis()
        if redis is not None:
            return bool(redis.set(self._redis_key(claim), b"1", nx=True, ex=ttl))
        now = time.time()
        if self.huey.put_if_empty(claim, str(now).encode()):
            return True
        held_since = self.huey.get(claim, peek=True)
        if held_since is not None and now - float(held_since) < ttl:
            return False
        self.huey.get(claim)  # abandoned: take it over (not atomic: at worst two ticks overlap)
        return bool(self.huey.put_if_empty(claim, str(now).encode()))

    def let_go(self, key: str) -> None:
        claim = f"hold:{key}"
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

    def backlog(self, limit: int = BACKLOG_SCAN) -> dict[str, dict[str, int]]:
        """Jobs waiting per task name: ``pending`` (ready to run) and ``scheduled`` (not before
        a later time, such as a task re-queued to wait for the rate limit or a retry). Reads at
        most ``limit`` messages from the queue and from the schedule (SQLite or Redis alike)
        without taking them; ``truncated`` under ``_scan`` says when there were more."""
        result: dict[str, dict[str, int]] = {}
        truncated = 0
        for items in (
            self.huey.storage.enqueued_items(limit),
            self.huey.storage.scheduled_items(limit),
        ):
            items = list(items)
            truncated |= len(items) >= limit
            for data in items:
                try:
                    message = self.huey.serializer.deserialize(data)
                    name = message.name
                    kind = "pending" if self.huey.ready_to_run(message) else "scheduled"
                except Exception:  # a message this release cannot read still counts
                    name, kind = "unreadable", "pending"
                name = name.removeprefix(WIRE_MODULE + ".")
                counts = result.setdefault(name, {"pending": 0, "scheduled": 0})
                counts[kind] += 1
        result["_scan"] = {"limit": limit, "truncated": int(truncated)}
        return result


def build_huey(app: Flask) -> Huey:
    config = app.config
    if config.get("JOBS_IMMEDIATE"):
        # Tests: tasks run synchronously at enqueue time, in this process.
        return MemoryHuey("rendezvous", immediate=True, utc=True)
    if config.get("REDIS_URL"):
        return PriorityQueueHuey("rendezvous", url=config["REDIS_URL"], utc=True)
    path = config.get("JOBS_SQLITE_PATH") or str(Path(app.instance_path) / "jobs.sqlite3")
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_private_file(path)  # queued jobs carry ids and arguments: this user's alone
    return SqliteHuey("rendezvous", filename=path, utc=True)


def install(
    app: Flask, groups: Iterable[TaskGroup], former_names: Mapping[str, str] | None = None
) -> Jobs:
    """Build the app's queue with the groups' tasks. ``former_names`` (old name → current name)
    registers each old name as a plain task running the current one, so messages queued under
    it by the previous release still run; nothing new is queued or scheduled under it."""
    huey = build_huey(app)
    jobs = Jobs(huey)
    specs: dict[str, TaskSpec] = {}
    for group in groups:
        for name, spec in group.specs.items():
            if name in specs:
                raise ValueError(f"task {name} is declared twice")
            specs[name] = spec
    for name, spec in specs.items():
        wrapped = _in_app_context(app, jobs, spec.fn, spec.lane, spec.tenant, spec.work)
        if spec.schedule is not None:
            jobs._tasks[name] = huey.periodic_task(
                spec.schedule, priority=spec.priority, name=name
            )(wrapped)
        else:
            jobs._tasks[name] = huey.task(
                retries=spec.retries,
                retry_delay=spec.retry_delay,
                priority=spec.priority,
                name=name,
            )(wrapped)
    for old, new in (former_names or {}).items():
        spec = specs[new]
        huey.task(
            retries=spec.retries, retry_delay=spec.retry_delay, priority=spec.priority, name=old
        )(_in_app_context(app, jobs, spec.fn, spec.lane, spec.tenant, spec.work))
    deps.jobs.install(app, jobs)
    app.cli.add_command(jobs_cli)
    return jobs


def _in_app_context(
    app: Flask,
    jobs: Jobs,
    fn,
    lane: Lane = INTERACTIVE,
    tenant: Callable[..., int | None] | None = None,
    work: Work = BULK,
):
    def run(*args, _release: str | None = None, **kwargs):
        if _release is not None:
            jobs.release(_release)  # later notifications may queue a new job from now on
        with app.app_context(), rate_lane(lane), rate_work(work):
            org_id = tenant(*args, **kwargs) if tenant is not None else None
            with rate_tenant(org_id):
                return fn(*args, **kwargs)

    run.__name__ = fn.__name__
    run.__module__ = WIRE_MODULE
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
    if isinstance(jobs.huey, PriorityQueueHuey):
        jobs.huey.move_old_queue()  # a list queue left by the release before, if any
    click.echo(f"Consuming {type(jobs.huey).__name__} queue with {workers} worker(s).")
    Consumer(jobs.huey, workers=workers, worker_type="thread", graceful_signal="TERM").run()


__all__ = ["Jobs", "TaskGroup", "crontab", "install"]
