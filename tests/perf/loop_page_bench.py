"""Interview loop page benchmark (not collected by pytest): the loop's start-times page against
the bare sequenced availability call.

Issue 20's goal: one aggregator call for a loop's availability, and the page that shows a
loop's start times with their itineraries at most 1.15 × that call, for loops of 2, 4 and 6
sessions. With ``--latency-ms`` (default 50) injected on every aggregator API call of the sandbox
(a separate process, as the aggregator is another machine), for each loop size and run it
measures, one after the other:

* **bare sequenced call**: the same sequenced availability query the page sends, straight from
  the broker, outside any request: the floor of the page's path;
* **start times page**: ``GET /schedule/loops/<uid>`` over real HTTP on loopback (logged in
  with a session cookie, the whole body read): the loop checked against today's roster, the one
  aggregator call, our own claims, every itinerary laid out.

Each session has two people of the benchmark's own domain (their calendars laid out by
tests/perf/_free_time.py in a future week, so it measures the same thing on any date), 30
minutes, all on one day with breaks of at most an hour.

The app is served as production serves it (``--server gunicorn``, the default:
tests/perf/_production.py) or, with ``--server werkzeug``, from the benchmark's own process,
where the parts of the request inside the app are timed too.

    uv run python -m tests.perf.loop_page_bench [--latency-ms 50] [--runs 9]
        [--server gunicorn|werkzeug]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from models import Role  # noqa: E402
from tests.perf._production import measure_served  # noqa: E402
from tests.perf.schedule_page_bench import log_in  # noqa: E402
from tests.perf.scheduling_bench import (  # noqa: E402
    api_calls,
)
from webapp import deps  # noqa: E402

GOAL = 1.15
SIZES = (2, 4, 6)


class Spans:
    """The request as the WSGI app handles it, and the sequenced call it makes."""

    def __init__(self, app, broker) -> None:
        self.request: tuple[float, float] | None = None
        self.call: tuple[float, float] | None = None
        inner_app, inner_call = app.wsgi_app, broker.sequenced_availability

        def wsgi_app(environ, start_response):
            started = time.perf_counter()
            try:
                return inner_app(environ, start_response)
            finally:
                self.request = (started, time.perf_counter())

        def sequenced_availability(*args, **kwargs):
            started = time.perf_counter()
            try:
                return inner_call(*args, **kwargs)
            finally:
                self.call = (started, time.perf_counter())

        app.wsgi_app = wsgi_app
        broker.sequenced_availability = sequenced_availability

    def split(self, total: float) -> tuple[float, float, float, float]:
        """(the call, the app before it, the app after it, outside the app)."""
        (r0, r1), (c0, c1) = self.request, self.call
        return c1 - c0, c0 - r0, r1 - c1, total - (r1 - r0)


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
    from webapp.services.loops import availability, checking, compose
    from webapp.services.loops import plan as loop_plan

    me = Actor(world.recruiter_id, world.recruiter_email, world.org_id, Role.RECRUITER)
    broker, sealer = deps.broker.of(app), deps.sealer.of(app)
    spans = Spans(app, broker) if server.in_process else None
    rows = []
    try:
        sandbox.call(
            "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
        )
        for size in SIZES:
            links = world.link_ids
            plan = loop_plan.LoopPlan(
                title=f"Bench loop of {size}",
                candidate_name="Bench Candidate",
                candidate_email="bench.candidate@gmail.example",
                sessions=tuple(
                    loop_plan.SessionPlan(
                        title=f"Session {n}",
                        duration=30,
                        panel_link_ids=(
                            links[(2 * n) % len(links)],
                            links[(2 * n + 1) % len(links)],
                        ),
                        video=True,
                    )
                    for n in range(size)
                ),
                start_date=world.week,
                days=5,
                tzid="Europe/London",
            )
            with deps.database.of(app).sessions() as session:
                loop = compose.compose_loop(session, sealer, me, plan)
                uid = loop.uid
                resolved = checking.check_plan(session, me, plan)
            window = availability.search_window(plan)
            query = availability.sequenced_query(plan, resolved, window)
            assert query is not None

            def bare(query=query):
                return broker.sequenced_availability(query)

            bare()  # warm-up: connections, templates, the first query plans
            http.get(f"{base}/schedule/loops/{uid}").raise_for_status()
            bare_t, page_t, calls, parts, options = [], [], [], [], []
            bare_cpu, page_cpu = [], []
            for _ in range(args.runs):
                time.sleep(0.3)
                started, cpu = time.perf_counter(), time.process_time()
                bare()
                bare_t.append(time.perf_counter() - started)
                bare_cpu.append(time.process_time() - cpu)

                sandbox.call("DELETE", "/stats")
                started, cpu = time.perf_counter(), time.process_time()
                page = http.get(f"{base}/schedule/loops/{uid}")
                html = page.text
                page_t.append(time.perf_counter() - started)
                page_cpu.append(time.process_time() - cpu)
                if spans is not None:
                    parts.append(spans.split(page_t[-1]))
                calls.append(api_calls(sandbox))
                if page.status_code != 200 or "Book every session" not in html:
                    raise SystemExit(
                        f"the loop page of {size} sessions answered {page.status_code} "
                        "without start times"
                    )
                options.append(html.count('class="loop-option"'))
            rows.append(
                (
                    size,
                    statistics.median(bare_t),
                    statistics.median(page_t),
                    (min(bare_t), min(page_t)),
                    max(calls),
                    min(options),
                    (
                        tuple(statistics.median(p[i] for p in parts) for i in range(4))
                        if parts
                        else None
                    ),
                    (statistics.median(bare_cpu), statistics.median(page_cpu)),
                )
            )
    finally:
        sandbox.call("DELETE", "/faults")
    return rows


def report(args, world, server, rows) -> None:
    print(
        f"Latency injected on every sandbox API call: {args.latency_ms} ms; median of "
        f"{args.runs} runs, the two measurements interleaved in each run. The app over HTTP on "
        f"loopback ({server.describe()}; SQLite). Each session: two people, 30 "
        f"minutes; one day, breaks up to 60 minutes; calendars laid out by the benchmark for "
        f"the week of {world.week} (tests/perf/_free_time.py). Load average (1 min) at the end: "
        f"{os.getloadavg()[0]:.1f}.\n"
    )
    print(
        "| sessions | bare sequenced call | start times page (GET) | ratio | "
        "ratio of the fastest runs | aggregator calls per page | start times shown |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, bare_m, page_m, (bare_b, page_b), ncalls, shown, _parts, _cpu in rows:
        print(
            f"| {size} | {bare_m * 1000:.0f} ms | {page_m * 1000:.0f} ms | "
            f"{page_m / bare_m:.2f} | {page_b / bare_b:.2f} | {ncalls} | {shown} |"
        )
    if server.in_process:
        report_parts(rows)
    report_goal(rows)


def report_parts(rows) -> None:
    print(
        "\nWhere the page spends its time (medians of each part, measured in the app):\n\n"
        "| sessions | sequenced call in the page | app before the call | app after the call "
        "(claims, itineraries, template) | outside the app (HTTP) | CPU time: bare call / page |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size, _b, _p, _best, _n, _s, (call, before, after, outside), (bc, pc) in rows:
        print(
            f"| {size} | {call * 1000:.1f} ms | {before * 1000:.1f} ms | {after * 1000:.1f} ms | "
            f"{outside * 1000:.1f} ms | {bc * 1000:.1f} ms / {pc * 1000:.1f} ms |"
        )


def report_goal(rows) -> None:
    worst = max(row[2] / row[1] for row in rows)
    calls_ok = all(row[4] == 1 for row in rows)
    print(
        f"\nGoals: one aggregator call per loop page — "
        f"{'met' if calls_ok else 'NOT met'}; page ≤ {GOAL} × the bare sequenced call — worst "
        f"measured {worst:.2f} ({'met' if worst <= GOAL else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
