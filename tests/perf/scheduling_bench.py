"""Scheduling benchmark (not collected by pytest): broker calls and page time per panel size.

With ``--latency-ms`` (default 50) injected on every aggregator API call of the sandbox, for
panels of 1, 3, 5 and 10 people it measures

* "open the schedule page" (week grid: one availability call, free/busy per member run
  concurrently with it) and "create the interview" (availability re-check, then one upsert per
  calendar written; jobs run inline as in tests, so the write is on the request's path);
* the number of broker calls each made (from the sandbox's own request counter);
* the ratio page time / (broker calls on the critical path × latency) — goal ≤ 1.15. Calls on
  the critical path: 1 for the page (the concurrent reads overlap the availability call), 2 for
  creating (re-check, then write).

The panel's calendars are the benchmark's own (tests/perf/_free_time.py): a week in the future
with known meetings and known common free time, so it measures the same thing on any date.

    uv run python -m tests.perf.scheduling_bench [--latency-ms 50] [--runs 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from broker.sandbox.client import SandboxClient  # noqa: E402
from models import Organisation, Role, migrate  # noqa: E402
from tests.conftest import AuthActions, make_test_config  # noqa: E402
from tests.factories import make_user  # noqa: E402
from tests.perf import _free_time  # noqa: E402
from tests.webapp.scheduling_support import link_calendar  # noqa: E402
from webapp import deps  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret-0123456789abcdef"
PANELS = (1, 3, 5, 10)


class SandboxProcess:
    """The sandbox aggregator in its own process, as the real one is on another machine: its
    request handling does not compete with the app's threads for one interpreter lock."""

    def __init__(self):
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker.sandbox",
                "--port",
                str(port),
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--no-rate-limit",
                "--no-auto-deliver",
                "--quiet",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/_sandbox/config", timeout=1).raise_for_status()
                return
            except requests.RequestException as exc:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit("the sandbox did not start") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def api_calls(sandbox: SandboxClient) -> int:
    return sum(sandbox.call("GET", "/stats")["requests"].values())


@dataclass
class BenchWorld:
    """A sandbox and an app with a recruiter and ten panel members whose calendars are linked,
    and the future week whose free time the benchmark laid out (``week`` is its Monday)."""

    handle: Any
    sandbox: SandboxClient
    app: Any
    org_id: int
    recruiter_id: int
    recruiter_email: str
    host_link_id: int
    link_ids: list[int]
    week: dt.date


def bench_world(**config: Any) -> BenchWorld:
    """``config`` overrides the test app's settings (say, ``JOBS_IMMEDIATE=False``)."""
    handle = SandboxProcess()
    sandbox = SandboxClient(handle.url, timeout=60)
    week = _free_time.bench_week()
    sandbox.call("POST", "/seed", json=_free_time.seed_payload(week))
    tmp = Path(tempfile.mkdtemp(prefix="rdv-bench-"))
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    migrate.upgrade(url)
    from webapp import create_app

    app = create_app(
        make_test_config(
            url,
            tmp / "instance",
            CRONOFY_CLIENT_ID=CLIENT_ID,
            CRONOFY_CLIENT_SECRET=CLIENT_SECRET,
            CRONOFY_API_BASE_URL=handle.url,
            CRONOFY_APP_BASE_URL=handle.url,
            LOG_LEVEL="WARNING",
            **config,
        )
    )
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with deps.database.of(app).sessions() as session:
        org = Organisation(name="Bench", timezone=_free_time.TZID, business_connect_enabled=True)
        session.add(org)
        session.commit()
        (host_email, host_name), *members = _free_time.PEOPLE
        recruiter = make_user(session, org, Role.RECRUITER, email=host_email, name=host_name)
        host = link_calendar(app, session, sandbox, recruiter)
        links = []
        for email, name in members:
            user = make_user(session, org, Role.RECRUITER, email=email, name=name)
            links.append(link_calendar(app, session, sandbox, user).id)
        return BenchWorld(
            handle, sandbox, app, org.id, recruiter.id, recruiter.email, host.id, links, week
        )


def first_slot(html: str, size: int, day: dt.date) -> str:
    """The first slot the grid offers; none means the laid-out free time was not found."""
    slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', html)
    if slot is None:
        raise SystemExit(
            f"the schedule page offered no slot for a panel of {size} in the week "
            f"of {day}, where the benchmark laid out common free time"
        )
    return slot.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    world = bench_world()
    handle, sandbox, app, links = world.handle, world.sandbox, world.app, world.link_ids
    recruiter_email = world.recruiter_email
    from webapp.services import Actor

    me = Actor(world.recruiter_id, world.recruiter_email, world.org_id, Role.RECRUITER)

    client = app.test_client()
    auth = AuthActions(client)
    auth.login(recruiter_email)
    day = world.week.isoformat()
    sandbox.call(
        "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
    )
    rows = []
    for size in PANELS:
        panel = links[:size]
        qs = "&".join(f"panel={i}" for i in panel) + f"&duration=30&days=5&start_date={day}"
        page_times, page_calls, create_times, create_calls = [], [], [], []
        client.get(f"/schedule/?{qs}")  # warm-up (connections, templates)
        time.sleep(1)
        for _ in range(args.runs):
            time.sleep(0.5)  # stay under the client-side ceiling of 50 calls/s between runs
            sandbox.call("DELETE", "/stats")
            started = time.perf_counter()
            page = client.get(f"/schedule/?{qs}")
            page_times.append(time.perf_counter() - started)
            page_calls.append(api_calls(sandbox))
            assert page.status_code == 200, page.status_code
            html = page.get_data(as_text=True)
            slot = first_slot(html, size, world.week)
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            data = {
                "csrf_token": token,
                "panel": [str(i) for i in panel],
                "duration": "30",
                "days": "5",
                "start_date": day,
                "required": "all",
                "required_n": "1",
                "buffer_before": "0",
                "buffer_after": "0",
                "tzid": "Europe/London",
                "slot": slot,
                "candidate_name": "Bench Candidate",
                "candidate_email": "bench.candidate@gmail.example",
                "title": "Bench",
                "notes": "",
                "video": "on",
            }
            sandbox.call("DELETE", "/stats")
            started = time.perf_counter()
            created = client.post("/schedule/", data=data)
            create_times.append(time.perf_counter() - started)
            create_calls.append(api_calls(sandbox))
            assert created.status_code == 303, created.get_data(as_text=True)[:500]
        # The floor: the grid's aggregator calls made directly, without the app around them.
        from webapp.services.availability import free_slots, model, roster, windows

        floors = []
        with deps.database.of(app).sessions() as session:
            query = model.Query(
                panel_link_ids=tuple(panel), duration=30, start_date=world.week, days=5
            )
            members = roster.resolve_panel(session, me, query.panel_link_ids)
            window, _days = windows.window_for(query)
            for _ in range(args.runs):
                time.sleep(0.5)
                started = time.perf_counter()
                free_slots.common_slots(deps.broker.of(app), members, query, window)
                floors.append(time.perf_counter() - started)
        floor = statistics.median(floors)
        page_t, create_t = statistics.median(page_times), statistics.median(create_times)
        rows.append(
            (
                size,
                max(page_calls),
                page_t,
                page_t / (1 * latency),
                floor,
                max(create_calls),
                create_t,
                create_t / (2 * latency),
            )
        )
    sandbox.call("DELETE", "/faults")
    handle.stop()

    print(
        f"Latency injected on every sandbox API call: {args.latency_ms} ms; median of "
        f"{args.runs} runs; jobs inline (the calendar write is on the request's path). "
        f"Calendars laid out by the benchmark for the week of {world.week} "
        "(tests/perf/_free_time.py).\n"
    )
    print(
        "| panel | page: broker calls | page time | page ratio (1 call on path) | "
        "bare availability call | create: broker calls | create time | "
        "create ratio (2 calls on path) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, pc, pt, pr, fl, cc, ct, cr in rows:
        print(
            f"| {size} | {pc} | {pt * 1000:.0f} ms | {pr:.2f} | {fl * 1000:.0f} ms | {cc} | "
            f"{ct * 1000:.0f} ms | {cr:.2f} |"
        )
    print(
        "\n“Bare availability call”: the same availability query sent straight from the broker, "
        "outside any request — the injected latency plus the sandbox's own work and the HTTP "
        "round trip, i.e. the floor of the page's critical path."
    )
    worst = max(max(r[3], r[7]) for r in rows)
    print(
        f"\nGoal: ratio ≤ 1.15 — worst measured {worst:.2f} "
        f"({'met' if worst <= 1.15 else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
