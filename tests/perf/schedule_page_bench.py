"""Schedule page benchmark (not collected by pytest): the page against the bare availability call.

Issue 18's goal: the schedule page, as a person uses it over HTTP, takes at most 1.15 × the
bare availability call for panels of 1, 3, 5 and 10. With ``--latency-ms`` (default 50)
injected on every aggregator API call of the sandbox (a separate process, as the aggregator is
another machine), for each panel size and run it measures, one after the other:

* **bare availability call**: the same availability query the page sends, straight from the
  broker (``free_slots.common_slots``), outside any request: the floor of the page's path;
* **show availability**: ``GET /schedule/?panel=…`` over real HTTP on loopback (logged in with
  a session cookie, the whole body read): the page a person waits for, the week grid with the
  panel's free slots to pick from and everyone's working hours;
* **busy overlay**: the request the page's script then makes (``GET /schedule/busy?…``, the
  URL the page names): every member's busy blocks for the same grid, one free/busy read per
  member; measured on its own, after the page, as the browser sends it;
* **book**: ``POST /schedule/`` of the first free slot over HTTP, up to its redirect to the
  interview page: the availability re-check, the slot claims and the commit; the calendar
  write is queued for the job worker (none runs here), as in production.

It reports the medians, the ratios to the bare call's median (goal ≤ 1.15 for showing
availability; the overlay waits for the members' free/busy reads, one call's time as they run
concurrently; booking makes the availability re-check and then its own database work) and the
aggregator calls each made. The panel's calendars are the benchmark's own
(tests/perf/_free_time.py): a week in the future with known common free time, so it measures
the same thing on any date.

The app is served as production serves it (``--server gunicorn``, the default:
tests/perf/_production.py, gunicorn.conf.py's gthread workers with ``RENDEZVOUS_ENV=production``
and Redis, in processes of their own). ``--server werkzeug`` serves it from the benchmark's own
process with werkzeug's threaded server instead, where the benchmark can also time the parts of
the request inside the app (before the call, the call, after it) and its CPU time.

    uv run python -m tests.perf.schedule_page_bench [--latency-ms 50] [--runs 9]
        [--server gunicorn|werkzeug]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from models import Role  # noqa: E402
from tests.conftest import CSRF_RE  # noqa: E402
from tests.factories import PASSWORD  # noqa: E402
from tests.perf._production import measure_served  # noqa: E402
from tests.perf.scheduling_bench import (  # noqa: E402
    PANELS,
    api_calls,
)
from webapp import deps  # noqa: E402

GOAL = 1.15
SLOT_RE = re.compile(r'<input[^>]*name="slot"[^>]*value="([^"]+)"')
OVERLAY_RE = re.compile(r'data-busy-url="([^"]+)"')


def first_slot(html: str, size: int) -> str:
    found = SLOT_RE.search(html)
    if found is None:
        raise SystemExit(
            f"the schedule page offered no slot for a panel of {size} in the week the "
            "benchmark laid out common free time in"
        )
    return found.group(1)


def log_in(http: requests.Session, base: str, email: str) -> None:
    page = http.get(f"{base}/login")
    token = CSRF_RE.search(page.text).group(1)
    answer = http.post(
        f"{base}/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"could not log in: {answer.status_code}")


class Spans:
    """Where a page's time goes, measured inside the app: the request as the WSGI app handles
    it, and the availability call it makes (the requests here come one at a time)."""

    def __init__(self, app, broker) -> None:
        self.request: tuple[float, float] | None = None
        self.availability: tuple[float, float] | None = None
        inner_app, inner_call = app.wsgi_app, broker.availability

        def wsgi_app(environ, start_response):
            started = time.perf_counter()
            try:
                return inner_app(environ, start_response)
            finally:
                self.request = (started, time.perf_counter())

        def availability(*args, **kwargs):
            started = time.perf_counter()
            try:
                return inner_call(*args, **kwargs)
            finally:
                self.availability = (started, time.perf_counter())

        app.wsgi_app = wsgi_app
        broker.availability = availability

    def clear(self) -> None:
        self.request = self.availability = None

    def split(self, total: float) -> tuple[float, float, float, float]:
        """(the availability call, the app before it, the app after it, outside the app)."""
        (r0, r1), (a0, a1) = self.request, self.availability
        return a1 - a0, a0 - r0, r1 - a1, total - (r1 - r0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--server", choices=("gunicorn", "werkzeug"), default="gunicorn")
    args = parser.parse_args()

    # The calendar write goes to the job queue (no worker runs here), as in production.
    measure_served(args, measure, report)


def measure(args, world, server) -> list:
    sandbox, app = world.sandbox, world.app
    base = server.url
    http = requests.Session()
    log_in(http, base, world.recruiter_email)

    from webapp.services import Actor
    from webapp.services.availability import free_slots, model, roster, windows

    me = Actor(world.recruiter_id, world.recruiter_email, world.org_id, Role.RECRUITER)
    broker = deps.broker.of(app)
    spans = Spans(app, broker) if server.in_process else None
    day = world.week.isoformat()
    rows = []
    try:
        sandbox.call(
            "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
        )
        for size in PANELS:
            panel = world.link_ids[:size]
            params = [("panel", str(i)) for i in panel] + [
                ("duration", "30"),
                ("days", "5"),
                ("start_date", day),
                ("tzid", "Europe/London"),
            ]
            query = model.Query(
                panel_link_ids=tuple(panel),
                duration=30,
                start_date=world.week,
                days=5,
                tzid="Europe/London",
            )
            with deps.database.of(app).sessions() as session:
                members = roster.resolve_panel(session, me, query.panel_link_ids)
                window, _days = windows.window_for(query)

            def bare(members=members, query=query, window=window):
                return free_slots.common_slots(broker, members, query, window)

            bare()  # warm-up: connections, templates, the first query plans
            http.get(f"{base}/schedule/", params=params).raise_for_status()
            bare_t, page_t, page_calls, book_t, book_calls = [], [], [], [], []
            busy_t, busy_calls = [], []
            parts: list[tuple[float, float, float, float]] = []
            bare_cpu: list[float] = []
            page_cpu: list[float] = []
            for _ in range(args.runs):
                time.sleep(0.5)  # stay under the client-side ceiling of 50 calls/s
                started, cpu = time.perf_counter(), time.process_time()
                bare()
                bare_t.append(time.perf_counter() - started)
                bare_cpu.append(time.process_time() - cpu)

                sandbox.call("DELETE", "/stats")
                if spans is not None:
                    spans.clear()
                started, cpu = time.perf_counter(), time.process_time()
                page = http.get(f"{base}/schedule/", params=params)
                html = page.text  # the whole body, as a browser reads it
                page_t.append(time.perf_counter() - started)
                page_cpu.append(time.process_time() - cpu)
                if spans is not None:
                    parts.append(spans.split(page_t[-1]))
                page_calls.append(api_calls(sandbox))
                if page.status_code != 200:
                    raise SystemExit(f"the schedule page answered {page.status_code}")
                overlay = OVERLAY_RE.search(html)
                if overlay is None:
                    raise SystemExit("the schedule page names no busy overlay")
                sandbox.call("DELETE", "/stats")
                started = time.perf_counter()
                busy = http.get(base + unescape(overlay.group(1)))
                busy.text  # noqa: B018 (the whole body, as the script reads it)
                busy_t.append(time.perf_counter() - started)
                busy_calls.append(api_calls(sandbox))
                if busy.status_code != 200 or "block-" not in busy.text:
                    raise SystemExit(f"the busy overlay answered {busy.status_code}")

                form = dict(params)
                form.update(
                    csrf_token=CSRF_RE.search(html).group(1),
                    slot=first_slot(html, size),
                    required="all",
                    required_n="1",
                    buffer_before="0",
                    buffer_after="0",
                    candidate_name="Bench Candidate",
                    candidate_email="bench.candidate@gmail.example",
                    title="Bench",
                    notes="",
                    video="on",
                )
                data = [(k, v) for k, v in form.items() if k != "panel"] + [
                    ("panel", str(i)) for i in panel
                ]
                sandbox.call("DELETE", "/stats")
                started = time.perf_counter()
                booked = http.post(f"{base}/schedule/", data=data, allow_redirects=False)
                book_t.append(time.perf_counter() - started)
                book_calls.append(api_calls(sandbox))
                if booked.status_code != 303:
                    raise SystemExit(f"booking answered {booked.status_code}: {booked.text[:300]}")
            rows.append(
                (
                    size,
                    statistics.median(bare_t),
                    statistics.median(page_t),
                    max(page_calls),
                    statistics.median(book_t),
                    max(book_calls),
                    (
                        tuple(statistics.median(p[i] for p in parts) for i in range(4))
                        + (min(p[1] for p in parts), min(p[2] for p in parts))
                        if parts
                        else None
                    ),
                    (statistics.median(bare_cpu), statistics.median(page_cpu)),
                    (min(bare_t), min(page_t)),
                    (statistics.median(busy_t), max(busy_calls)),
                )
            )
    finally:
        sandbox.call("DELETE", "/faults")
    return rows


def report(args, world, server, rows) -> None:
    print(
        f"Latency injected on every sandbox API call: {args.latency_ms} ms; median of "
        f"{args.runs} runs, the four measurements interleaved in each run. The app over HTTP on "
        f"loopback ({server.describe()}; SQLite); the calendar write of a booking "
        f"queued for the job worker. Calendars laid out by the benchmark for the week of "
        f"{world.week} (tests/perf/_free_time.py).\n"
    )
    print(
        "| panel | bare availability call | show availability (GET) | ratio | "
        "ratio of the fastest runs | aggregator calls | busy overlay (GET, after the page) | "
        "ratio | aggregator calls | book (POST) | ratio | aggregator calls |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        size, bare_m, page_m, pcalls, book_m, bcalls, _parts, _cpu, (bare_b, page_b) = row[:9]
        busy_m, ocalls = row[9]
        print(
            f"| {size} | {bare_m * 1000:.0f} ms | {page_m * 1000:.0f} ms | "
            f"{page_m / bare_m:.2f} | {page_b / bare_b:.2f} | {pcalls} | "
            f"{busy_m * 1000:.0f} ms | {busy_m / bare_m:.2f} | {ocalls} | {book_m * 1000:.0f} ms | "
            f"{book_m / bare_m:.2f} | {bcalls} |"
        )
    print(
        "\nThe ratio of the fastest runs (fastest page ÷ fastest bare call) is the one least "
        "disturbed by other work on the machine; the goal is read on the medians."
    )
    if not server.in_process:
        report_goal(rows)
        return
    print(
        "\nWhere showing availability spends its time (medians of each part, measured in the "
        "app; they need not add up to the median total):\n"
    )
    print(
        "| panel | availability call in the page | bare call | app before the call (fastest) | "
        "app after the call: claims, grid, page (fastest) | outside the app (HTTP) | "
        "CPU time: bare call / page |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, bare_m, _p, _pc, _b, _bc, parts, (bare_c, page_c), _best, _busy in rows:
        call, before, after, outside, least_before, least_after = parts
        print(
            f"| {size} | {call * 1000:.1f} ms | {bare_m * 1000:.1f} ms | {before * 1000:.1f} ms "
            f"({least_before * 1000:.1f} ms) | {after * 1000:.1f} ms "
            f"({least_after * 1000:.1f} ms) | {outside * 1000:.1f} ms | "
            f"{bare_c * 1000:.1f} ms / {page_c * 1000:.1f} ms |"
        )
    print(
        "\nCPU time is this process's (app server, pool threads and HTTP client; the sandbox is "
        "another process): it depends far less on the machine's load than the wall times. The "
        "page's CPU time beyond the bare call's is the app's own work — session and login, "
        "database reads, our slot claims, the grid and the template — and it adds to the wall "
        "time wherever it does not overlap the wait for the aggregator. The members' busy "
        "overlay (token decryption, one free/busy answer per member, its blocks) is the second "
        "request's work, not the page's."
    )
    report_goal(rows)


def report_goal(rows) -> None:
    worst = max(row[2] / row[1] for row in rows)
    print(
        f"\nGoal: showing availability ≤ {GOAL} × the bare availability call — worst "
        f"measured {worst:.2f} ({'met' if worst <= GOAL else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
