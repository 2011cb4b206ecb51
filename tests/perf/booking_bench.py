"""Booking benchmark (not collected by pytest): what the slot claim costs, and booking under
contention.

Lays out its own free time, so it runs on any date: its people (``tests/perf/_free_time``'s
bench.example domain, added to the sandbox with empty calendars) work 00:00–24:00 every day, and
each booking takes an hour nobody else has, from two days ahead on. With ``--latency-ms``
(default 50) injected on every aggregator API call of the sandbox (its own process):

1. Per panel size (1, 3, 5, 10): aggregator calls per booking through the JSON API (the
   availability re-check and the calendar write, jobs inline) and per settle check (the job
   that lets the claim go once the calendar shows the interview), claim rows written, and the
   booking's time. The claim adds rows, not calls.
2. Booking latency without and with contention, over real HTTP against gunicorn in production
   (4 workers × 4 threads, SQLite, Redis for rate limits and the job queue; calendar writes
   queued for the job worker, which is not running, so no booking's event reaches a calendar
   during a race): one booking at a time; then N bookings of one slot at once (exactly one
   wins, the rest get 409 with fresh slots); then N bookings of N different slots of the same
   panel at once (all win).

    uv run python -m tests.perf.booking_bench [--latency-ms 50] [--runs 7] [--racers 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from broker.sandbox.client import SandboxClient  # noqa: E402
from models import Organisation, Role, SchedulingPreference, SlotClaim, migrate  # noqa: E402
from tests.conftest import make_test_config  # noqa: E402
from tests.factories import TEST_TOKEN_KEYS, make_user  # noqa: E402
from tests.perf import _free_time  # noqa: E402
from tests.perf.scheduling_bench import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    SandboxProcess,
    api_calls,
)
from tests.perf.webhook_throughput import start_redis  # noqa: E402
from tests.webapp.scheduling_support import link_calendar  # noqa: E402
from webapp import deps  # noqa: E402

PANELS = (1, 3, 5, 10)
UTC = dt.UTC
DAYS_AHEAD = 2


class Hours:
    """Distinct free hours, one per booking: 01:00, 02:00, … UTC from DAYS_AHEAD days on."""

    def __init__(self):
        self.first = dt.datetime.combine(
            dt.date.today() + dt.timedelta(days=DAYS_AHEAD), dt.time(0), UTC
        )
        self.n = 0

    def next(self) -> dt.datetime:
        self.n += 1
        return self.first + dt.timedelta(hours=self.n)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def world(tmp: Path, sandbox_url: str):
    """The database, an in-process app, the recruiter (with an API token) and ten panel members,
    all with empty calendars and working around the clock."""
    sandbox = SandboxClient(sandbox_url, timeout=60)
    people = _free_time.seed_payload(_free_time.bench_week())
    sandbox.call("POST", "/seed", json={**people, "events": []})
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    migrate.upgrade(url)
    from webapp import create_app
    from webapp.services import Actor, api_tokens

    app = create_app(
        make_test_config(
            url,
            tmp / "instance",
            CRONOFY_CLIENT_ID=CLIENT_ID,
            CRONOFY_CLIENT_SECRET=CLIENT_SECRET,
            CRONOFY_API_BASE_URL=sandbox_url,
            CRONOFY_APP_BASE_URL=sandbox_url,
            LOG_LEVEL="WARNING",
            API_RATE_LIMIT="100000 per minute",
        )
    )
    with deps.database.of(app).sessions() as session:
        org = Organisation(name="Bench", timezone=_free_time.TZID, business_connect_enabled=True)
        session.add(org)
        session.commit()
        session.add(
            SchedulingPreference(
                organisation_id=org.id,
                user_id=None,
                start_minute=0,
                end_minute=24 * 60,
                weekdays="1234567",
            )
        )
        (host_email, host_name), *members = _free_time.PEOPLE
        recruiter = make_user(session, org, Role.RECRUITER, email=host_email, name=host_name)
        link_calendar(app, session, sandbox, recruiter)
        links = []
        for email, name in members:
            user = make_user(session, org, Role.RECRUITER, email=email, name=name)
            links.append(link_calendar(app, session, sandbox, user).id)
        _row, token = api_tokens.create_token(
            session,
            Actor(recruiter.id, recruiter.email, org.id, Role.RECRUITER),
            name="bench",
            days=30,
        )
    return url, app, token, links


def booking(panel: list[int], start: dt.datetime) -> dict:
    return {
        "panel": panel,
        "start": start.isoformat(),
        "duration": 60,
        "title": "Bench",
        "candidate_name": "Bench Candidate",
        "candidate_email": "bench@gmail.example",
        "video": False,
    }


def calls_per_booking(
    app, sandbox: SandboxClient, token: str, links: list[int], runs: int, hours: Hours
) -> list[tuple]:
    """Part 1, in process with the calendar write inline."""
    from webapp.services import claims

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    rows = []
    for size in PANELS:
        panel = links[:size]
        times, calls, settle_calls, claim_rows = [], [], [], []
        for _ in range(runs):
            time.sleep(0.3)  # stay well under the client-side ceiling of 50 calls/s
            with deps.database.of(app).sessions() as session:
                before = session.scalar(select(func.count()).select_from(SlotClaim))
            sandbox.call("DELETE", "/stats")
            started = time.perf_counter()
            response = client.post(
                "/api/v1/interviews", json=booking(panel, hours.next()), headers=headers
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 201, response.get_data(as_text=True)[:300]
            calls.append(api_calls(sandbox))
            with deps.database.of(app).sessions() as session:
                claim_rows.append(
                    session.scalar(select(func.count()).select_from(SlotClaim)) - before
                )
                sandbox.call("DELETE", "/stats")
                report = claims.settle(session, deps.broker.of(app), limit=1)
                assert report.get("checked") == 1, report
                settle_calls.append(api_calls(sandbox))
        rows.append(
            (
                size,
                max(calls),
                min(calls),
                max(settle_calls),
                statistics.median(claim_rows),
                statistics.median(times),
            )
        )
    return rows


class Gunicorn:
    def __init__(self, db_url: str, sandbox_url: str, redis_url: str, tmp: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            RENDEZVOUS_ENV="production",
            SECRET_KEY="b" * 48,
            DATABASE_URL=db_url,
            RENDEZVOUS_TOKEN_KEYS=TEST_TOKEN_KEYS,
            RENDEZVOUS_SECURE_COOKIES="false",
            RENDEZVOUS_BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY="4",
            RENDEZVOUS_THREADS="4",
            RENDEZVOUS_LOG_LEVEL="WARNING",
            RENDEZVOUS_API_RATE_LIMIT="100000 per minute",
            CRONOFY_CLIENT_ID=CLIENT_ID,
            CRONOFY_CLIENT_SECRET=CLIENT_SECRET,
            CRONOFY_API_BASE_URL=sandbox_url,
            CRONOFY_APP_BASE_URL=sandbox_url,
            RENDEZVOUS_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            REDIS_URL=redis_url,
        )
        self.log = open(tmp / "gunicorn.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.base + "/healthz", timeout=2)
                return
            except requests.RequestException as exc:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit(
                        "gunicorn did not start: " + (tmp / "gunicorn.log").read_text()[-2000:]
                    ) from exc
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


def post_all(base: str, token: str, bodies: list[dict]) -> list[tuple[int, float]]:
    """POST the bookings at once (each on its own connection); (status, seconds) each."""
    barrier = threading.Barrier(len(bodies))

    def go(body):
        with requests.Session() as own:
            barrier.wait()
            started = time.perf_counter()
            response = own.post(
                base + "/api/v1/interviews",
                json=body,
                timeout=120,
                headers={"Authorization": f"Bearer {token}"},
            )
            return response.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(go, bodies))


def contention(
    base: str, token: str, links: list[int], runs: int, racers: int, hours: Hours
) -> list[tuple]:
    """Part 2: latency alone, racing for one slot, and many bookings of different slots."""
    panel = links[:3]
    post_all(base, token, [booking(panel, hours.next()) for _ in range(4)])  # warm the workers
    alone = []
    for _ in range(runs * 3):
        time.sleep(0.2)
        [(status, took)] = post_all(base, token, [booking(panel, hours.next())])
        assert status == 201, status
        alone.append(took)
    rows = [("one booking at a time", len(alone), f"{len(alone)} × 201", alone, [])]
    winners, losers, outcomes = [], [], []
    for _ in range(runs):
        time.sleep(1)
        results = post_all(base, token, [booking(panel, hours.next())] * racers)
        won = [t for s, t in results if s == 201]
        lost = [t for s, t in results if s == 409]
        assert len(won) == 1 and len(lost) == racers - 1, [s for s, _t in results]
        winners += won
        losers += lost
        outcomes.append(len(won))
    rows.append(
        (
            f"{runs} races of {racers} at once for one slot each",
            runs * racers,
            f"one 201 per race ({sum(outcomes)}), {len(losers)} × 409",
            winners,
            losers,
        )
    )
    spread = []
    for _ in range(runs):
        time.sleep(1)
        results = post_all(base, token, [booking(panel, hours.next()) for _ in range(racers)])
        assert all(s == 201 for s, _t in results), [s for s, _t in results]
        spread += [t for _s, t in results]
    rows.append(
        (
            f"{runs} rounds of {racers} at once for {racers} different slots",
            len(spread),
            f"{len(spread)} × 201",
            spread,
            [],
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--racers", type=int, default=20)
    args = parser.parse_args()

    handle = SandboxProcess()
    sandbox = SandboxClient(handle.url, timeout=60)
    tmp = Path(tempfile.mkdtemp(prefix="rdv-booking-bench-"))
    redis_url, redis_pid = start_redis(tmp)
    server = None
    try:
        db_url, app, token, links = world(tmp, handle.url)
        hours = Hours()
        sandbox.call(
            "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
        )
        per_size = calls_per_booking(app, sandbox, token, links, args.runs, hours)
        deps.database.of(app).engine.dispose()
        server = Gunicorn(db_url, handle.url, redis_url, tmp)
        raced = contention(server.base, token, links, args.runs, args.racers, hours)
    finally:
        if server is not None:
            server.stop()
        handle.stop()
        os.kill(redis_pid, signal.SIGTERM)

    print(
        f"Latency injected on every sandbox API call: {args.latency_ms} ms. The benchmark's own "
        "people, with empty calendars, working 00:00–24:00; each booking a free hour.\n"
    )
    print(
        f"## Aggregator calls per booking, with the claim ({args.runs} bookings per panel; "
        "calendar write inline)\n"
    )
    print(
        "| panel | calls per booking (check + write) | calls per settle check | "
        "claim rows per booking | booking time (median) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for size, most, least, settle, claim_rows, took in per_size:
        calls = f"{most}" if most == least else f"{least}–{most}"
        print(f"| {size} | {calls} | {settle} | {claim_rows:.0f} | {ms(took)} |")
    constant = len({r[1] for r in per_size}) == 1 and len({r[3] for r in per_size}) == 1
    print(
        f"\nCalls per booking {'stay constant' if constant else 'DO NOT stay constant'} in "
        "panel size: the claim is rows in the booking's own transaction (one per person per "
        "5 minutes), and the settle job asks once per interview, whatever the panel.\n"
    )
    print(
        "## Booking latency without and with contention (JSON API over HTTP, gunicorn 4 × 4 "
        "threads in production, SQLite, Redis, panel of 3; writes queued for the job worker)\n"
    )
    print("| load | requests | outcome | p50 | p95 | max | losers' p50 | losers' max |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for label, count, outcome, times, lost in raced:
        loser = (ms(statistics.median(lost)), ms(max(lost))) if lost else ("–", "–")
        every = times + lost
        print(
            f"| {label} | {count} | {outcome} | {ms(statistics.median(every))} | "
            f"{ms(pct(every, 0.95))} | {ms(max(every))} | {loser[0]} | {loser[1]} |"
        )
    print(
        "\nNo job worker runs, so no booking reaches a calendar and every racer's availability "
        "check passes: the database's unique constraint on the claim alone lets one commit. A "
        "loser's 409 carries fresh slots, which costs it one more availability call. "
        "On two shared cores the 4 × 4 server threads and the client threads compete for the "
        "same CPUs, so latencies under load include queueing for them."
    )


if __name__ == "__main__":
    main()
