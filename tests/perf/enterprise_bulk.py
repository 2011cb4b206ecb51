"""Enterprise Connect bulk-linking benchmark (not collected by pytest).

Links N sandbox mailboxes (default 10,000), none of whose people has a login (each becomes a
directory person as it is requested), through a service account, with the sandbox's rate
limit and the app's client-side ceiling set to the same known values, and reports:

* the time from the first batch request until every mailbox has its answer, against the least
  time the ceiling allows for the calls needed (ceil(N / 50) batch requests + one code exchange
  per linked mailbox) — the ratio ideal / actual, goal ≥ 0.9. The ceiling is the one the lanes
  leave bulk work: every one of these calls is in the background lane (the batches from the
  sending job, the code exchanges from the callbacks), which may use the limits less the
  interactive reserve (20 % by default: 40/s of 50/s), never the reserve kept for people;
* how many mailboxes failed because of 429 (goal 0), and how many 429s the sandbox sent at all.

The app runs for real: a threaded HTTP server, SQLite, the real services and callback endpoint.
The sandbox delivers callbacks from several threads (Cronofy does not deliver one at a time).
Each callback queues its code for the ``enterprise.redeem_code`` job; ``--job-threads`` threads
of this process run those jobs as a job worker with that many workers would (a job deferred for
budget runs again when it asked to).
Choosing each mailbox's primary calendar is a separate background job (one calendar read per
mailbox, one job per domain choosing a few per run); it is queued during the run and not part
of the linking calls (no job worker runs here), and the script reports the queue's depth. The
sending loop keeps at most ``EC_MAX_AWAITED`` callbacks awaited, as the sending job does.

    uv run python tests/perf/enterprise_bulk.py [--mailboxes 10000] [--per-second 50]
        [--per-minute 3000] [--delivery-threads 16] [--database-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from broker.ratelimit import BACKGROUND, background, tenant  # noqa: E402
from broker.sandbox import notify  # noqa: E402
from broker.sandbox.client import SandboxClient  # noqa: E402
from broker.sandbox.server import start_sandbox  # noqa: E402
from models import MailboxRequest, MailboxStatus, Organisation, Role, User, migrate  # noqa: E402
from tests.factories import TEST_TOKEN_KEYS  # noqa: E402
from tests.held_jobs import HeldJobs  # noqa: E402
from webapp import create_app, deps  # noqa: E402
from webapp.public_urls import oauth_redirect_uris  # noqa: E402
from webapp.services import Actor  # noqa: E402
from webapp.services.enterprise import domains, mailboxes, sending  # noqa: E402
from webapp.services.enterprise.address_list import Address  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret-0123456789abcdef"
DOMAIN = "bulk.example"
ADMIN = f"it.admin@{DOMAIN}"


def seed_sandbox(control: SandboxClient, emails: list[str]) -> None:
    control.seed(
        {
            "domains": [
                {"name": DOMAIN, "provider_name": "exchange", "provider_service": "exchange"}
            ],
            "identities": [{"email": ADMIN, "name": "Bulk IT Admin", "kind": "admin"}],
        },
    )
    for start in range(0, len(emails), 1000):
        control.seed(
            {
                "identities": [
                    {"email": e, "name": e.split("@")[0]} for e in emails[start : start + 1000]
                ]
            },
        )


def deliver_concurrently(
    sandbox_app, stop: threading.Event, threads: int
) -> list[threading.Thread]:
    """Deliver due callbacks from several threads, each claiming its own items."""
    state = sandbox_app.extensions["sandbox"].state

    def worker(index: int) -> None:
        while not stop.is_set():
            with state.lock:
                now = time.time()
                due = sorted(
                    (i for i in state.world.outbox.values() if i.next_attempt_at <= now),
                    key=lambda i: i.next_attempt_at,
                )
                mine = [i.item_id for n, i in enumerate(due) if n % threads == index][:20]
            claimed = notify._claim(state, mine)
            for item in claimed:
                notify.process(state, item)
            if not claimed:
                time.sleep(0.02)

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    return pool


class RedemptionWorkers:
    """Run the app's ``enterprise.redeem_code`` jobs on a pool of threads, as a job worker
    with that many workers would; a job re-queued for later runs again after its delay. Every
    other job goes to the app's queue as usual (nothing consumes it here)."""

    NAME = "enterprise.redeem_code"

    def __init__(self, jobs, threads: int):
        from concurrent.futures import ThreadPoolExecutor

        self.jobs, self.task = jobs, jobs._tasks[self.NAME]
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.real_enqueue, self.real_enqueue_in = jobs.enqueue, jobs.enqueue_in
        jobs.enqueue, jobs.enqueue_in = self.enqueue, self.enqueue_in
        self.deferred = 0

    def enqueue(self, name, *args, **kwargs):
        if name != self.NAME:
            return self.real_enqueue(name, *args, **kwargs)
        return self.pool.submit(self.task.call_local, *args)

    def enqueue_in(self, delay, name, *args, **kwargs):
        if name != self.NAME:
            return self.real_enqueue_in(delay, name, *args, **kwargs)
        self.deferred += 1
        timer = threading.Timer(delay, self.enqueue, (name, *args))
        timer.daemon = True
        timer.start()
        return timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--per-second", type=int, default=50)
    parser.add_argument("--per-minute", type=int, default=3000)
    parser.add_argument("--delivery-threads", type=int, default=16)
    parser.add_argument("--job-threads", type=int, default=8, help="code-redemption workers")
    parser.add_argument(
        "--database-url",
        default=None,
        help="an empty PostgreSQL database (default: SQLite in a temp dir)",
    )
    args = parser.parse_args()
    n, per_second, per_minute = args.mailboxes, args.per_second, args.per_minute

    sandbox = start_sandbox(
        CLIENT_ID,
        CLIENT_SECRET,
        auto_deliver=False,
        rate_limit_enabled=True,
        rate_limit_per_second=per_second,
        rate_limit_per_minute=per_minute,
        delivery_timeout=30.0,
    )
    control = SandboxClient(sandbox.url, timeout=120)
    control.rate_limit(per_second=per_second, per_minute=per_minute, enabled=True)
    workdir = Path(tempfile.mkdtemp(prefix="ec-bench-"))
    db_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    db_kind = db_url.split(":", 1)[0].split("+")[0]
    migrate.upgrade(db_url)
    app = create_app(
        {
            "INSTANCE_PATH": str(workdir / "instance"),
            "ENVIRONMENT": "testing",
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "bench-secret-key",
            "TOKEN_KEYS": TEST_TOKEN_KEYS,
            "JOBS_IMMEDIATE": False,
            "JOBS_SQLITE_PATH": str(workdir / "jobs.sqlite3"),
            "CRONOFY_CLIENT_ID": CLIENT_ID,
            "CRONOFY_CLIENT_SECRET": CLIENT_SECRET,
            "CRONOFY_API_BASE_URL": sandbox.url,
            "CRONOFY_APP_BASE_URL": sandbox.url,
            "CRONOFY_RATE_PER_SECOND": per_second,
            "CRONOFY_RATE_PER_MINUTE": per_minute,
            "LOG_LEVEL": "WARNING",
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    control.update_config(allowed_redirect_uris=oauth_redirect_uris(app))  # as at Cronofy
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("huey").setLevel(logging.ERROR)

    emails = [f"person{k:05d}@{DOMAIN}" for k in range(n)]
    print(f"seeding {n} mailboxes …", file=sys.stderr, flush=True)
    seed_sandbox(control, emails)
    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    sessions = deps.database.of(app).sessions
    with sessions() as db:
        org = Organisation(name="Bulk Org", timezone="Europe/London")
        db.add(org)
        db.flush()
        admin = User(
            organisation_id=org.id,
            email="it@bulk-admin.example",
            name="IT",
            role=Role.ADMIN,
            active=True,
            session_version=1,
        )
        db.add(admin)
        # None of the mailboxes' people has a login: linking makes them directory people.
        db.commit()
        actor = Actor(admin.id, admin.email, org.id, Role.ADMIN)
        held = HeldJobs()
        with app.test_request_context(base_url=base):
            from webapp.callbacks import service_account_callback_url

            url = domains.begin(
                db,
                broker,
                actor,
                provider="exchange",
                session_nonce="bench",
                redirect_uri=base + "/admin/calendar/enterprise/callback",
            )
            consent = control.consent(url, ADMIN, password="sandbox")
            link = domains.complete(
                db,
                broker,
                cipher,
                actor,
                state=consent.state,
                code=consent.code,
                error=None,
                session_nonce="bench",
                redirect_uri=base + "/admin/calendar/enterprise/callback",
                jobs=held,
            )
            requested = time.monotonic()
            report = mailboxes.request_mailboxes(
                db,
                actor,
                link.id,
                addresses=[
                    Address(e, f"Person {k:05d}", "Europe/Berlin", line=k + 1)
                    for k, e in enumerate(emails)
                ],
                callback_url=service_account_callback_url,
                jobs=held,  # the benchmark sends the batches itself, below
            )
            requested = time.monotonic() - requested
        link_id, org_id = link.id, org.id
        people = db.scalar(
            select(func.count(User.id)).where(
                User.organisation_id == org.id, User.role == Role.INTERVIEWER
            )
        )
    assert report.queued == n, report
    assert people == n, people
    control.clear_stats()
    print(
        f"linking {n} mailboxes at {per_second}/s, {per_minute}/min …", file=sys.stderr, flush=True
    )

    stop = threading.Event()
    workers = RedemptionWorkers(deps.jobs.of(app), args.job_threads)
    pool = deliver_concurrently(sandbox.app, stop, args.delivery_threads)
    load = os.getloadavg()
    started, cpu_started = time.monotonic(), time.process_time()
    sender_report = {}

    def send():
        # as the sending job runs: in the background lane, for the organisation
        with app.app_context(), sessions() as db, background(), tenant(org_id):
            while True:
                r = sending.send_batches(
                    db, broker, cipher, link_id, max_awaited=app.config["EC_MAX_AWAITED"]
                )
                sender_report.setdefault("batches", 0)
                sender_report["batches"] += r.batches
                if r.retry_in is None:
                    return
                time.sleep(r.retry_in)

    sender = threading.Thread(target=send)
    sender.start()
    last_print = 0.0
    with sessions() as db:
        while True:
            counts = mailboxes.counts(db, link_id)
            if counts["linked"] + counts["failed"] >= n:
                break
            if time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                print(
                    f"  {time.monotonic() - started:6.1f} s  {counts}", file=sys.stderr, flush=True
                )
            time.sleep(0.2)
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu_started
    stop.set()
    sender.join()
    for t in pool:
        t.join(5)

    stats = control.stats()
    with sessions() as db:
        counts = mailboxes.counts(db, link_id)
        failures = [
            r.error_key
            for r in db.scalars(
                select(MailboxRequest).where(MailboxRequest.status == MailboxStatus.FAILED)
            )
        ]
    batches = math.ceil(n / sending.BATCH_SIZE)
    calls = batches + counts["linked"]
    lane_s, lane_m = broker.rate_limiter.caps[BACKGROUND]  # what the lanes leave bulk work
    ideal = max(calls / lane_s, calls / lane_m * 60)
    pending_jobs = deps.jobs.of(app).pending()
    reasons = {k: failures.count(k) for k in set(failures)}
    print(
        f"Link {n} sandbox mailboxes through one service account; sandbox and app both capped at "
        f"{per_second} requests/s and {per_minute}/min; callbacks delivered by "
        f"{args.delivery_threads} threads; codes redeemed by {args.job_threads} job threads "
        f"(re-queued for budget {workers.deferred} times); database {db_kind}.\n"
    )
    print("| measure | value |")
    print("|---|---|")
    print(f"| linked / failed | {counts['linked']} / {counts['failed']} {reasons or ''} |")
    print(
        f"| calls needed | {calls} ({batches} batch requests + {counts['linked']} code exchanges) |"
    )
    print(
        f"| directory people created (no login) | {people}, with their requests, in "
        f"{requested:.1f} s |"
    )
    print(f"| calls the sandbox saw | {stats['total']} {stats['requests']} |")
    print(
        f"| least time the ceiling allows (the background lane: {lane_s}/s, {lane_m}/min of "
        f"{per_second}/s, {per_minute}/min) | {ideal:.1f} s |"
    )
    print(f"| time taken | {elapsed:.1f} s |")
    print(f"| **ideal / actual** (goal ≥ 0.9) | **{ideal / elapsed:.3f}** |")
    print(f"| 429 responses from the sandbox | {stats['rate_limited']} |")
    print(
        f"| **mailboxes failed by 429** (goal 0) | **{failures.count('aggregator_unavailable')}** |"
    )
    print(f"| calendar-choice jobs queued for afterwards (one per domain) | {pending_jobs} |")
    print(
        f"| CPU time of this process (app, sandbox and callback delivery) | {cpu:.0f} s "
        f"({cpu / elapsed:.2f} cores); load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end |"
    )
    server.shutdown()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
