"""One aggregator budget, three organisations (issue 21; not collected by pytest).

In one run against the sandbox aggregator with its real limits (50 requests a second and 500 a
minute for the whole application), in its own process, with the app as production runs it —
gunicorn (gthread workers), Redis as the shared rate limiter and the job queue, and a real job
consumer (``flask jobs worker``) — and a database of its own:

* organisation **B**'s recruiters load schedule pages (a panel of three each) and book the
  first free slot at a steady human rate, over HTTP, from before the bulk starts (the *idle*
  figures) to its end;
* organisation **A** asks to link 10,000 mailboxes (directory people created as it asks);
* five minutes later organisation **C** asks to link 2,000.

It reports B's page p50/p95 during A's bulk against idle (goal p95 ≤ 1.5 × idle), the 429s seen
by interactive calls (goal 0), the bulk's achieved share of what the lanes leave it (goal ≥
0.9), C's start delay and A's and C's linking pace while both run (goal: within 20 % of equal),
and the request rate the aggregator saw against its 50/s and 500/min ceilings (goal: never
exceeded). The rates are judged by the aggregator's own request log (tests/perf/_aggregator.py),
not by what the app believed it sent; linking progress and start times come from the database.

B's people and their week are laid out by the benchmark (tests/perf/_free_time.py's domain,
empty calendars, working around the clock from the benchmark week on), so it runs on any date.

    uv run python -m tests.perf.shared_budget [--scale 1.0] [--database-url postgresql+psycopg://…]

``--scale 0.1`` is a quick check (1,000 and 200 mailboxes, C after 30 s); the default is the
issue's numbers and takes about half an hour or more at the ceiling.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from broker.sandbox.client import SandboxClient  # noqa: E402
from models import (  # noqa: E402
    MailboxRequest,
    MailboxStatus,
    Organisation,
    Role,
    SchedulingPreference,
    User,
    migrate,
)
from tests.conftest import CSRF_RE  # noqa: E402
from tests.factories import PASSWORD, TEST_TOKEN_KEYS, make_user  # noqa: E402
from tests.held_jobs import HeldJobs  # noqa: E402
from tests.perf import _free_time, _production  # noqa: E402
from tests.perf._production import Production, wait_until_up  # noqa: E402
from tests.perf.webhook_throughput import free_port, start_redis  # noqa: E402
from tests.webapp.scheduling_support import link_calendar  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "budget-client", "budget-client-secret-0123456789abcdef"
SECRET_KEY = _production.SECRET_KEY
METRICS_TOKEN = "budget-metrics-token-0123456789"
PER_SECOND, PER_MINUTE = 50, 500
SLOT_RE = re.compile(r'<input[^>]*name="slot"[^>]*value="([^"]+)"')
#: aggregator request classes (tests/perf/_aggregator.route_class) and whose work they are
BULK = {"sa_batch", "token", "calendars", "POST /v1/channels"}
INTERACTIVE = {"availability", "free_busy", "event_write"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value * 1000:.0f} ms"


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes and their children still alive (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    family = set(pids)
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _cpu) in stats.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    return sum(stats[p][1] for p in family if p in stats) / tick


class Aggregator:
    """tests/perf/_aggregator.py in its own process, with the real limits."""

    def __init__(self, delivery_threads: int, log: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.perf._aggregator",
                "--port",
                str(port),
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--per-second",
                str(PER_SECOND),
                "--per-minute",
                str(PER_MINUTE),
                "--delivery-threads",
                str(delivery_threads),
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until_up(self.url + "/_sandbox/config", self.process, log)

    def requests_seen(self) -> list[tuple[float, str, int]]:
        return [tuple(e) for e in requests.get(self.url + "/_bench/log", timeout=120).json()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


def production_env(db_url: str, redis_url: str, aggregator: str, base: str, args) -> dict:
    return _production.production_env(
        db_url=db_url,
        redis_url=redis_url,
        aggregator=aggregator,
        base=base,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        RENDEZVOUS_METRICS_TOKEN=METRICS_TOKEN,
        WEB_CONCURRENCY=str(args.web_workers),
        RENDEZVOUS_THREADS=str(args.web_threads),
        CRONOFY_RATE_PER_SECOND=str(PER_SECOND),
        CRONOFY_RATE_PER_MINUTE=str(PER_MINUTE),
    )


class Recruiter(threading.Thread):
    """One of B's recruiters: a schedule page every ``think`` seconds (± 20 %), booking the
    first free slot after every second page."""

    def __init__(self, base, email, panel, first_day, think, stop, samples, errors, seed):
        super().__init__(daemon=True)
        self.base, self.email, self.panel = base, email, panel
        self.day, self.think, self.stop = first_day, think, stop
        self.samples, self.errors = samples, errors
        self.rng = random.Random(seed)

    def run(self) -> None:
        http = requests.Session()
        page = http.get(f"{self.base}/login", timeout=60)
        token = CSRF_RE.search(page.text).group(1)
        answer = http.post(
            f"{self.base}/login",
            data={"csrf_token": token, "email": self.email, "password": PASSWORD},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 302:
            self.errors.append(("login", answer.status_code))
            return
        n = 0
        while not self.stop.is_set():
            params = [("panel", str(i)) for i in self.panel] + [
                ("duration", "30"),
                ("days", "1"),
                ("start_date", self.day.isoformat()),
                ("tzid", _free_time.TZID),
            ]
            started = time.monotonic()
            try:
                page = http.get(f"{self.base}/schedule/", params=params, timeout=120)
                html = page.text
            except requests.RequestException as exc:
                self.errors.append(("page", type(exc).__name__))
                continue
            self.samples.append(("page", started, time.monotonic() - started, page.status_code))
            if page.status_code != 200:
                self.errors.append(("page", page.status_code))
            n += 1
            self.stop.wait(self.think * self.rng.uniform(0.8, 1.2))
            if n % 2 or page.status_code != 200 or self.stop.is_set():
                continue
            slot = SLOT_RE.search(html)
            if slot is None:  # this day is full for the panel: go on to the next
                self.day += dt.timedelta(days=1)
                continue
            form = dict(params)
            form.update(
                csrf_token=CSRF_RE.search(html).group(1),
                slot=slot.group(1),
                required="all",
                required_n="1",
                buffer_before="0",
                buffer_after="0",
                candidate_name="Budget Candidate",
                candidate_email="budget.candidate@gmail.example",
                title="Interview",
                notes="",
                video="on",
            )
            data = [(k, v) for k, v in form.items() if k != "panel"] + [
                ("panel", str(i)) for i in self.panel
            ]
            started = time.monotonic()
            try:
                booked = http.post(
                    f"{self.base}/schedule/", data=data, allow_redirects=False, timeout=120
                )
            except requests.RequestException as exc:
                self.errors.append(("book", type(exc).__name__))
                continue
            self.samples.append(("book", started, time.monotonic() - started, booked.status_code))
            if booked.status_code != 303:
                self.errors.append(("book", booked.status_code))
            self.stop.wait(self.think * self.rng.uniform(0.8, 1.2))


def seed_aggregator(control: SandboxClient, domains: dict[str, list[str]], b_people) -> None:
    control.seed(
        {
            "domains": [
                {"name": d, "provider_name": "exchange", "provider_service": "exchange"}
                for d in domains
            ],
            "identities": [
                {"email": f"it.admin@{d}", "name": f"IT admin {d}", "kind": "admin"}
                for d in domains
            ],
        }
    )
    for emails in domains.values():
        for start in range(0, len(emails), 1000):
            control.seed(
                {
                    "identities": [
                        {"email": e, "name": e.split("@")[0]} for e in emails[start : start + 1000]
                    ]
                }
            )
    control.seed(
        {
            "domains": [{"name": _free_time.DOMAIN, "provider_name": "google"}],
            "identities": [
                {"email": email, "name": name, "tzid": _free_time.TZID} for email, name in b_people
            ],
        }
    )


def connect_domain(app, session, broker, cipher, control, actor, domain: str) -> int:
    """The IT admin connects the domain's service account (consent at the aggregator)."""
    from webapp.services.enterprise import domains

    redirect = app.config["PUBLIC_BASE_URL"] + "/admin/calendar/enterprise/callback"
    url = domains.begin(
        session, broker, actor, provider="exchange", session_nonce="bench", redirect_uri=redirect
    )
    consent = control.consent(url, f"it.admin@{domain}", password="sandbox")
    link = domains.complete(
        session,
        broker,
        cipher,
        actor,
        state=consent.state,
        code=consent.code,
        error=None,
        session_nonce="bench",
        redirect_uri=redirect,
        jobs=HeldJobs(),
    )
    return link.id


def request_link(app, actor, link_id: int, emails: list[str]) -> float:
    """The IT admin's list of mailboxes, queued with the sending job on the real queue (the
    directory people made as it is queued); returns when it was asked (monotonic)."""
    from webapp import deps
    from webapp.callbacks import service_account_callback_url
    from webapp.services.enterprise import mailboxes
    from webapp.services.enterprise.address_list import Address

    asked = time.monotonic()
    with app.test_request_context(base_url=app.config["PUBLIC_BASE_URL"]):
        with deps.database.of(app).sessions() as session:
            report = mailboxes.request_mailboxes(
                session,
                actor,
                link_id,
                addresses=[
                    Address(e, e.split("@")[0].title(), "Europe/Berlin", line=k + 1)
                    for k, e in enumerate(emails)
                ],
                callback_url=service_account_callback_url,
                jobs=deps.jobs.of(app),
            )
    assert report.queued == len(emails), report
    return asked


def window_peak(times: list[float], width: float) -> int:
    """The most requests in any window [t, t + width) (times sorted)."""
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_left(times, t + width, lo=i) - i)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="0.1 for a quick check")
    parser.add_argument("--mailboxes-a", type=int, default=10_000)
    parser.add_argument("--mailboxes-c", type=int, default=2_000)
    parser.add_argument("--c-after", type=float, default=300.0, help="seconds after A starts")
    parser.add_argument("--idle", type=float, default=120.0, help="B alone before A starts (s)")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=6,
        help="B's first pages, discarded (the app's workers start up: first database "
        "connections, templates, imports)",
    )
    parser.add_argument(
        "--idle-pages",
        type=int,
        default=40,
        help="at least this many pages measured idle (after the warm-up) before A starts",
    )
    parser.add_argument("--recruiters", type=int, default=3)
    parser.add_argument("--think", type=float, default=12.0, help="seconds between actions")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--job-threads", type=int, default=4)
    parser.add_argument("--delivery-threads", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    args = parser.parse_args()
    n_a = max(50, round(args.mailboxes_a * args.scale))
    n_c = max(50, round(args.mailboxes_c * args.scale))
    c_after = args.c_after * args.scale
    idle = max(30.0, args.idle * args.scale)

    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rdv-budget-"))
    redis_url, redis_pid = start_redis(tmp)
    aggregator = None
    try:
        aggregator = Aggregator(args.delivery_threads, tmp / "aggregator.log")
        result = run(args, tmp, redis_url, aggregator, n_a, n_c, c_after, idle, load_start)
    finally:
        if aggregator is not None:
            aggregator.stop()
        os.kill(redis_pid, signal.SIGTERM)
    report(result)


def run(args, tmp, redis_url, aggregator, n_a, n_c, c_after, idle, load_start):
    from webapp import create_app, deps
    from webapp.public_urls import oauth_redirect_uris
    from webapp.services import Actor

    control = SandboxClient(aggregator.url, timeout=300)
    a_emails = [f"person{k:05d}@a-bulk.example" for k in range(n_a)]
    c_emails = [f"person{k:05d}@c-bulk.example" for k in range(n_c)]
    recruiters = [
        (f"recruiter{k}@{_free_time.DOMAIN}", f"Recruiter {k}") for k in range(args.recruiters)
    ]
    members = [
        (f"panel{k:02d}@{_free_time.DOMAIN}", f"Panel {k:02d}") for k in range(3 * len(recruiters))
    ]
    print(f"seeding {n_a} + {n_c} mailboxes …", file=sys.stderr, flush=True)
    seed_aggregator(
        control, {"a-bulk.example": a_emails, "c-bulk.example": c_emails}, recruiters + members
    )

    db_url = args.database_url or f"sqlite:///{tmp / 'budget.sqlite3'}"
    migrate.upgrade(db_url)
    base = f"http://127.0.0.1:{free_port()}"
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp / "instance"),
            "ENVIRONMENT": "testing",
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": SECRET_KEY,
            "TOKEN_KEYS": TEST_TOKEN_KEYS,
            "REDIS_URL": redis_url,
            "JOBS_IMMEDIATE": False,
            "PUBLIC_BASE_URL": base,
            "CRONOFY_CLIENT_ID": CLIENT_ID,
            "CRONOFY_CLIENT_SECRET": CLIENT_SECRET,
            "CRONOFY_API_BASE_URL": aggregator.url,
            "CRONOFY_APP_BASE_URL": aggregator.url,
            "CRONOFY_RATE_PER_SECOND": PER_SECOND,
            "CRONOFY_RATE_PER_MINUTE": PER_MINUTE,
            "LOG_LEVEL": "WARNING",
        }
    )
    control.update_config(allowed_redirect_uris=oauth_redirect_uris(app))
    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    week = _free_time.bench_week()
    panels = []
    with deps.database.of(app).sessions() as session:
        orgs = {}
        for key in "ABC":
            orgs[key] = Organisation(
                name=f"Organisation {key}",
                timezone=_free_time.TZID,
                business_connect_enabled=key == "B",
            )
            session.add(orgs[key])
        session.commit()
        session.add(
            SchedulingPreference(
                organisation_id=orgs["B"].id,
                user_id=None,
                start_minute=0,
                end_minute=24 * 60,
                weekdays="1234567",
            )
        )
        session.commit()
        for k, (email, name) in enumerate(recruiters):
            user = make_user(session, orgs["B"], Role.RECRUITER, email=email, name=name)
            link_calendar(app, session, control, user)
            panel = []
            for m_email, m_name in members[3 * k : 3 * k + 3]:
                member = make_user(session, orgs["B"], Role.RECRUITER, email=m_email, name=m_name)
                panel.append(link_calendar(app, session, control, member).id)
            panels.append(panel)
        links, actors = {}, {}
        for key, domain in (("A", "a-bulk.example"), ("C", "c-bulk.example")):
            admin = make_user(session, orgs[key], Role.ADMIN, email=f"it@{domain}", name="IT")
            actors[key] = Actor(admin.id, admin.email, orgs[key].id, Role.ADMIN)
            links[key] = connect_domain(app, session, broker, cipher, control, actors[key], domain)
    deps.database.of(app).engine.dispose()

    env = production_env(db_url, redis_url, aggregator.url, base, args)
    production = Production(env, base, tmp, args.job_threads)
    try:
        return measure(
            args,
            app,
            production,
            aggregator,
            base,
            recruiters,
            panels,
            week,
            links,
            actors,
            a_emails,
            c_emails,
            c_after,
            idle,
            load_start,
            db_url,
        )
    finally:
        production.stop()


def measure(
    args,
    app,
    production,
    aggregator,
    base,
    recruiters,
    panels,
    week,
    links,
    actors,
    a_emails,
    c_emails,
    c_after,
    idle,
    load_start,
    db_url,
):
    from webapp import deps
    from webapp.services.enterprise import mailboxes

    stop = threading.Event()
    samples: list[tuple] = []
    errors: list[tuple] = []
    crew = [
        Recruiter(base, email, panel, week, args.think, stop, samples, errors, seed=k)
        for k, ((email, _name), panel) in enumerate(zip(recruiters, panels, strict=True))
    ]
    cpu_pids = [production.web.pid, production.worker.pid, aggregator.process.pid]
    cpu_start = cpu_seconds(cpu_pids)
    t_warm = time.monotonic()
    for r in crew:
        r.start()
        time.sleep(args.think / max(1, len(crew)))

    def pages_so_far():
        return sum(1 for s in list(samples) if s[0] == "page")

    print(f"B warms up ({args.warm_up} pages) …", file=sys.stderr, flush=True)
    while pages_so_far() < args.warm_up:
        time.sleep(0.2)
    # The idle phase starts after the warm-up pages (discarded: the workers' first requests
    # open connections and load templates) and lasts until enough pages for an honest p95.
    t_idle = time.monotonic()
    print(
        f"B alone for at least {idle:.0f} s and {args.idle_pages} pages …",
        file=sys.stderr,
        flush=True,
    )
    while time.monotonic() - t_idle < idle or pages_so_far() - args.warm_up < args.idle_pages:
        time.sleep(0.5)
    t_a = request_link(app, actors["A"], links["A"], a_emails)
    print(f"A asked for {len(a_emails)} mailboxes", file=sys.stderr, flush=True)
    t_c = None
    progress: list[tuple[float, dict, dict]] = []
    sessions = deps.database.of(app).sessions
    done = {}
    last_print = 0.0
    metrics = {}
    while len(done) < 2:
        now = time.monotonic()
        if t_c is None and now - t_a >= c_after:
            t_c = request_link(app, actors["C"], links["C"], c_emails)
            print(f"C asked for {len(c_emails)} mailboxes", file=sys.stderr, flush=True)
        with sessions() as session:
            counts = {k: mailboxes.counts(session, v) for k, v in links.items()}
        progress.append((now, counts["A"], counts["C"]))
        for key, n in (("A", len(a_emails)), ("C", len(c_emails))):
            if key not in done and counts[key]["linked"] + counts[key]["failed"] >= n:
                done[key] = now
        if now - last_print > 30:
            last_print = now
            try:
                metrics = requests.get(
                    base + "/metrics",
                    headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                    timeout=30,
                ).json()
            except (requests.RequestException, ValueError):
                pass
            print(
                f"  {now - t_a:6.0f} s  A {counts['A']['linked']}/{len(a_emails)}  "
                f"C {counts['C']['linked']}/{len(c_emails)}  pages {len(samples)}  "
                f"lanes {_lane_summary(metrics)}  backlog {_backlog(metrics)}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(2)
    t_end = time.monotonic()
    stop.set()
    for r in crew:
        r.join(150)
    cpu_used = cpu_seconds(cpu_pids) - cpu_start
    final_metrics = requests.get(
        base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=60
    ).json()
    seen = aggregator.requests_seen()
    wall_offset = time.time() - time.monotonic()
    with sessions() as session:
        per_org = {}
        for key, link_id in links.items():
            rows = session.execute(
                select(
                    MailboxRequest.sent_at, MailboxRequest.completed_at, MailboxRequest.status
                ).where(MailboxRequest.service_account_link_id == link_id)
            ).all()
            per_org[key] = rows
        people = session.scalar(select(func.count(User.id)).where(User.role == Role.INTERVIEWER))
    return dict(
        args=args,
        samples=samples,
        errors=errors,
        seen=seen,
        progress=progress,
        t_idle=t_idle,
        t_warm=t_warm,
        t_a=t_a,
        t_c=t_c,
        t_end=t_end,
        done=done,
        per_org=per_org,
        wall_offset=wall_offset,
        metrics=final_metrics,
        people=people,
        n_a=len(a_emails),
        n_c=len(c_emails),
        load_start=load_start,
        load_end=os.getloadavg(),
        cpu=cpu_used,
        db=db_url.split(":", 1)[0].split("+")[0],
        c_after=c_after,
        idle=idle,
    )


def mono(r: dict, stamp) -> float | None:
    """A database timestamp (UTC) on this machine's monotonic clock (the aggregator's too)."""
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp() - r["wall_offset"]


def background_caps() -> tuple[int, int]:
    from broker.ratelimit import DEFAULT_INTERACTIVE_RESERVE, _lane_caps

    return _lane_caps(PER_SECOND, PER_MINUTE, DEFAULT_INTERACTIVE_RESERVE)["background"]


def report(r: dict) -> None:
    args, seen = r["args"], r["seen"]
    t_a, t_c, done = r["t_a"], r["t_c"], r["done"]
    t_bulk_end = max(done.values())
    bg_s, bg_m = background_caps()
    pages = [s for s in r["samples"] if s[0] == "page"]

    def linked_times(key):
        return sorted(
            mono(r, done_at)
            for _sent, done_at, status in r["per_org"][key]
            if status == MailboxStatus.LINKED and done_at is not None
        )

    a_linked, c_linked = linked_times("A"), linked_times("C")
    books = [s for s in r["samples"] if s[0] == "book"]

    def during(rows, start, end):
        return [s[2] for s in rows if start <= s[1] < end]

    print(
        f"Organisation A links {r['n_a']} mailboxes; {r['c_after']:.0f} s after it starts, C "
        f"links {r['n_c']}; B's {args.recruiters} recruiters each load a schedule page (a panel "
        f"of three) every {args.think:.0f} s (± 20 %) and book the first free slot after every "
        f"second page, from before A starts (after {args.warm_up} warm-up pages, discarded, at "
        f"least {r['idle']:.0f} s and {args.idle_pages} pages idle) until A and C are done (scale "
        f"{args.scale:g}). The aggregator: the sandbox in its own process with its real limits "
        f"({PER_SECOND}/s, {PER_MINUTE}/min for the application), callbacks delivered by "
        f"{args.delivery_threads} threads. The app: gunicorn {args.web_workers} × "
        f"{args.web_threads} threads in production, one job consumer (`flask jobs worker "
        f"--workers {args.job_threads}`), Redis for the shared rate limiter and the job queue, "
        f"{r['db']}; the default interactive reserve (20 %), so background work may use "
        f"{bg_s}/s and {bg_m}/min. Load average (1 / 5 min) {r['load_start'][0]:.1f} / "
        f"{r['load_start'][1]:.1f} at the start and {r['load_end'][0]:.1f} / "
        f"{r['load_end'][1]:.1f} at the end (2 cores, shared with other work); the app's and the "
        f"aggregator's processes used {r['cpu']:.0f} s of CPU in the "
        f"{r['t_end'] - r['t_warm']:.0f} s measured ({r['cpu'] / (r['t_end'] - r['t_warm']):.2f} "
        "cores on average).\n"
    )

    # B's pages
    print("**B's recruiters** (over HTTP; the time to the whole page or the booking's redirect)\n")
    print("| phase | pages | page p50 | page p95 | bookings | booking p50 | booking p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    phases = [
        ("idle (before A)", r["t_idle"], t_a),
        ("during A's bulk", t_a, done["A"]),
        ("A and C both linking", c_linked[0] if c_linked else t_a, min(done.values())),
    ]
    figures = {}
    for label, start, end in phases:
        p, b = during(pages, start, end), during(books, start, end)
        figures[label] = (pct(p, 0.5), pct(p, 0.95))
        print(
            f"| {label} | {len(p)} | {ms(pct(p, 0.5))} | {ms(pct(p, 0.95))} | {len(b)} | "
            f"{ms(pct(b, 0.5))} | {ms(pct(b, 0.95))} |"
        )
    idle_p95 = figures["idle (before A)"][1]
    bulk_p95 = figures["during A's bulk"][1]
    ratio = bulk_p95 / idle_p95 if idle_p95 else float("nan")
    print(
        f"\n**B's page p95 during A's bulk ÷ idle: {ratio:.2f}** (goal ≤ 1.5: "
        f"{'met' if ratio <= 1.5 else 'NOT met'}). B's errors: "
        f"{dict(_count(e for e in r['errors'])) or 'none'}.\n"
    )

    # 429s
    refused = [e for e in seen if e[2] == 429]
    by_kind = dict(
        _count(
            ("interactive" if e[1] in INTERACTIVE else "bulk" if e[1] in BULK else "other")
            for e in refused
        )
    )
    aggregator = r["metrics"].get("aggregator")
    lanes = aggregator.get("lanes", {}) if isinstance(aggregator, dict) else {}
    print(
        f"**429s**: the aggregator refused {len(refused)} requests in all "
        f"({by_kind or 'none'}); interactive calls refused: **{by_kind.get('interactive', 0)}** "
        f"(goal 0). The app's own count (/metrics, shared through Redis): "
        + ", ".join(f"{k} {v.get('rejected')}" for k, v in lanes.items())
        + ".\n"
    )

    # the bulk's share of what the lanes leave it
    kinds = sorted({e[1] for e in seen})
    in_bulk = [e for e in seen if t_a <= e[0] < t_bulk_end]
    bulk_n = sum(1 for e in in_bulk if e[1] in BULK and e[2] != 429)
    left = 0.0
    minute = t_a
    rows = []
    while minute < t_bulk_end:
        end = min(minute + 60, t_bulk_end)
        frac = (end - minute) / 60
        inside = [e for e in in_bulk if minute <= e[0] < end and e[2] != 429]
        inter = sum(1 for e in inside if e[1] in INTERACTIVE)
        other = sum(1 for e in inside if e[1] not in INTERACTIVE and e[1] not in BULK)
        bulk = sum(1 for e in inside if e[1] in BULK)
        room = max(0.0, min(bg_m * frac - other, PER_MINUTE * frac - inter - other))
        left += room
        rows.append((minute - t_a, bulk, inter, other, room))
        minute = end
    share = bulk_n / left if left else float("nan")
    print(
        f"**The bulk's share of what the lanes leave it: {share:.3f}** (goal ≥ 0.9: "
        f"{'met' if share >= 0.9 else 'NOT met'}). From A's start to the last mailbox answered "
        f"({t_bulk_end - t_a:.0f} s) the aggregator answered {bulk_n} bulk requests (service-"
        "account batches, code exchanges, calendar lists of the calendar-choice jobs, channels); "
        f"per minute the lanes leave the bulk min({bg_m} − other background, {PER_MINUTE} − "
        "interactive − other background), "
        f"{left:.0f} in all. Per minute:\n"
    )
    print("| minute from A's start | bulk | interactive | other | left to the bulk |")
    print("|---:|---:|---:|---:|---:|")
    for start, bulk, inter, other, room in rows:
        print(f"| {start / 60:.0f} | {bulk} | {inter} | {other} | {room:.0f} |")

    # A and C
    c_sent = [mono(r, sent) for sent, _d, _s in r["per_org"]["C"] if sent is not None]
    print()
    if t_c is not None and c_linked:
        first_sent = min(c_sent) - t_c if c_sent else float("nan")
        first_linked = c_linked[0] - t_c
        start, end = c_linked[0], min(done.values())
        a_in = sum(1 for t in a_linked if start <= t < end)
        c_in = sum(1 for t in c_linked if start <= t < end)
        span = max(1e-9, end - start)
        even = min(a_in, c_in) / max(a_in, c_in) if max(a_in, c_in) else float("nan")
        print(
            f"**C's start**: its first batch accepted {first_sent:.1f} s and its first mailbox "
            f"linked {first_linked:.1f} s after C asked. **While both link** ({span:.0f} s, "
            f"from C's first mailbox linked until {'A' if done['A'] <= done['C'] else 'C'} "
            f"finished): A linked {a_in} ({a_in / span * 60:.0f}/min), C linked {c_in} "
            f"({c_in / span * 60:.0f}/min): **smaller ÷ larger {even:.2f}** (goal ≥ 0.8, "
            f"within 20 % of equal: {'met' if even >= 0.8 else 'NOT met'}).\n"
        )
    for key, n in (("A", r["n_a"]), ("C", r["n_c"])):
        rows_ = r["per_org"][key]
        linked = sum(1 for _s, _d, status in rows_ if status == MailboxStatus.LINKED)
        failed = sum(1 for _s, _d, status in rows_ if status == MailboxStatus.FAILED)
        start = t_a if key == "A" else t_c
        print(
            f"- {key}: {linked} of {n} linked, {failed} failed, all answered "
            f"{done[key] - start:.0f} s after it asked"
        )
    print(f"- directory people created: {r['people']}")

    # the ceilings, as the aggregator saw them
    arrivals = sorted(e[0] for e in seen)
    admitted = sorted(e[0] for e in seen if e[2] != 429)
    print(
        f"\n**Request rate at the aggregator** (its own log, {len(seen)} API requests from B's "
        f"start to the end): most in any 1 s **{window_peak(admitted, 1.0)}** (ceiling "
        f"{PER_SECOND}), in any 60 s **{window_peak(admitted, 60.0)}** (ceiling {PER_MINUTE}); "
        f"counting refused requests too: {window_peak(arrivals, 1.0)} and "
        f"{window_peak(arrivals, 60.0)}. Requests by kind: "
        + ", ".join(f"{k} {sum(1 for e in seen if e[1] == k)}" for k in kinds)
        + "."
    )
    print(f"\nJob backlog at the end (/metrics): {_backlog(r['metrics'])}.")


def _lane_summary(metrics: dict) -> str:
    aggregator = metrics.get("aggregator")
    if not isinstance(aggregator, dict):
        return "?"
    return " ".join(
        f"{name} {lane['minute']}/min ({lane['rejected']} × 429)"
        for name, lane in aggregator.get("lanes", {}).items()
    )


def _backlog(metrics: dict) -> str:
    backlog = metrics.get("backlog")
    if not isinstance(backlog, dict):
        return "?"
    return (
        ", ".join(
            f"{name} {c['pending']}+{c['scheduled']}"
            for name, c in backlog.items()
            if not name.startswith("_") and (c["pending"] or c["scheduled"])
        )
        or "empty"
    )


def _count(items):
    counts: dict = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


if __name__ == "__main__":
    main()
