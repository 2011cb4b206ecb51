"""The app as production serves it, for the benchmarks that time pages over HTTP.

``gunicorn -c gunicorn.conf.py wsgi:app`` (gthread workers, the repository's settings) with
``RENDEZVOUS_ENV=production``: Redis for the shared rate limiter and the job queue, secure
settings checked at start-up, and optionally one job consumer (``flask jobs worker``), as the
README's deployment runs them. The benchmark's own process keeps its in-process app for seeding
and for the bare aggregator calls the pages are compared with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.factories import TEST_TOKEN_KEYS
from tests.perf.webhook_throughput import free_port, start_redis

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "s" * 48


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{url} did not start: {log.read_text()[-2000:]}") from exc
            time.sleep(0.2)


def production_env(
    *,
    db_url: str,
    redis_url: str,
    aggregator: str,
    base: str,
    client_id: str,
    client_secret: str,
    **settings: str,
) -> dict:
    """The environment of a production deployment on loopback; ``settings`` adds or overrides
    variables (``WEB_CONCURRENCY="4"``, ``CRONOFY_RATE_PER_SECOND="50"`` …)."""
    env = dict(
        os.environ,
        RENDEZVOUS_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        RENDEZVOUS_TOKEN_KEYS=TEST_TOKEN_KEYS,
        RENDEZVOUS_SECURE_COOKIES="false",  # plain HTTP on loopback
        RENDEZVOUS_BIND=base.removeprefix("http://"),
        RENDEZVOUS_PUBLIC_BASE_URL=base,
        RENDEZVOUS_LOG_LEVEL="WARNING",
        CRONOFY_CLIENT_ID=client_id,
        CRONOFY_CLIENT_SECRET=client_secret,
        CRONOFY_API_BASE_URL=aggregator,
        CRONOFY_APP_BASE_URL=aggregator,
    )
    env.update(settings)
    return env


class Production:
    """gunicorn and, with ``job_threads``, one job consumer."""

    def __init__(self, env: dict, base: str, tmp: Path, job_threads: int | None = None):
        self.logs = [open(tmp / "gunicorn.log", "wb")]
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self.logs[0],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.worker = None
        if job_threads is not None:
            self.logs.append(open(tmp / "worker.log", "wb"))
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"]
                + ["--workers", str(job_threads)],
                cwd=ROOT,
                env=env,
                stdout=self.logs[1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_up(base + "/healthz", self.web, tmp / "gunicorn.log")

    def stop(self) -> None:
        processes = [p for p in (self.worker, self.web) if p is not None]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()


class Served:
    """A benchmark world's app served over HTTP on loopback: ``gunicorn`` (production: its own
    processes, Redis) or ``werkzeug`` (the threaded development server in this process, which
    lets the benchmark time the parts of a request inside the app).

    Made before the world (``app_config()`` is what the world's in-process app needs: with
    gunicorn, the same Redis, so the bare calls the pages are compared with go through the same
    shared rate limiter as the pages' calls), then ``start``-ed with it."""

    def __init__(self, server: str, tmp: Path):
        if server not in ("gunicorn", "werkzeug"):
            raise SystemExit(f"--server is gunicorn or werkzeug, not {server!r}")
        self.kind, self.tmp = server, tmp
        self.url = ""
        self._redis_url: str | None = None
        self._redis_pid: int | None = None
        self._production: Production | None = None
        self._live = None
        if server == "gunicorn":
            self._redis_url, self._redis_pid = start_redis(tmp)

    def app_config(self) -> dict:
        return {"REDIS_URL": self._redis_url} if self._redis_url else {}

    def start(self, world, client_id: str, client_secret: str) -> None:
        from tests.conftest import LiveServer
        from webapp import deps

        if self.kind == "werkzeug":
            self._live = LiveServer(world.app)
            self.url = self._live.url
            world.app.config.update(
                PUBLIC_BASE_URL=self.url, TRUSTED_HOSTS=["127.0.0.1", "localhost"]
            )
            return
        assert self._redis_url is not None
        engine = deps.database.of(world.app).engine
        self.url = f"http://127.0.0.1:{free_port()}"
        env = production_env(
            db_url=engine.url.render_as_string(hide_password=False),
            redis_url=self._redis_url,
            aggregator=world.handle.url,
            base=self.url,
            client_id=client_id,
            client_secret=client_secret,
            # what the world's app sealed (a loop's plan) the served app must open
            SECRET_KEY=world.app.config["SECRET_KEY"],
        )
        self._production = Production(env, self.url, self.tmp)

    @property
    def in_process(self) -> bool:
        """Served from the benchmark's process (werkzeug): asked by the reports too, after
        ``stop``, so it is the kind asked for, not whether the server still runs."""
        return self.kind == "werkzeug"

    def describe(self) -> str:
        if self.in_process:
            return "werkzeug's threaded server in the benchmark's process"
        workers = os.environ.get("WEB_CONCURRENCY") or "the default number of"
        return (
            f"gunicorn as production runs it: {workers} gthread workers of gunicorn.conf.py, "
            "`RENDEZVOUS_ENV=production`, Redis for the shared rate limiter (the bare calls' "
            "too) and the job queue, in processes of their own"
        )

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._production is not None:
            self._production.stop()
            self._production = None
        if self._redis_pid is not None:
            try:
                os.kill(self._redis_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._redis_pid = None


def measure_served(args, measure: Callable, report: Callable) -> None:
    """A page benchmark's run: the world (tests/perf/scheduling_bench.py) served as
    ``args.server`` says, ``measure(args, world, server)``'s rows, then ``report`` them once
    everything it started is stopped. The bookings' calendar writes go to the job queue (no
    worker runs), as in production."""
    from tests.perf.scheduling_bench import CLIENT_ID, CLIENT_SECRET, bench_world

    server = Served(args.server, Path(tempfile.mkdtemp(prefix="rdv-page-")))
    world = None
    try:
        world = bench_world(JOBS_IMMEDIATE=False, **server.app_config())
        server.start(world, CLIENT_ID, CLIENT_SECRET)
        rows = measure(args, world, server)
    finally:
        server.stop()
        if world is not None:
            world.handle.stop()
    report(args, world, server, rows)
