"""Rendezvous against a naive pycronofy integration, side by side in one run (issue 10, items
1, 2 and 6).

The naive integration is written as the aggregator's sample apps do: plain pycronofy, one call
per person, one after the other, no batching — read each panel member's free/busy to draw the
schedule page, then write the interview into each member's calendar. Rendezvous draws the page
with one availability call plus free/busy reads that run concurrently, and creates the interview
with an availability re-check plus one write (the calendar invites the panel).

Both run against the same sandbox with the same latency injected on every API call, on the
calendars the benchmark lays out itself (tests/perf/_free_time.py: a future week with known free
time, so it runs on any date). Also counts the database queries of the interview list for 1 and
for 100 interviews.

    uv run python -m tests.perf.naive_comparison [--latency-ms 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pycronofy  # noqa: E402
from sqlalchemy import event  # noqa: E402

from models import (  # noqa: E402
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    ProfileLink,
)
from tests.conftest import AuthActions  # noqa: E402
from tests.perf.scheduling_bench import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    PANELS,
    api_calls,
    bench_world,
    first_slot,
)
from webapp import deps  # noqa: E402
from webapp.services import credentials  # noqa: E402


def naive_client(url: str, access_token: str) -> pycronofy.Client:
    client = pycronofy.Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token=access_token
    )
    client.request_handler.base_url = url
    client.app_base_url = url
    return client


def naive_page(url, members, start: dt.date) -> int:
    """One free/busy read per member, sequentially; slots are then computed locally."""
    busy = 0
    for token, calendar_id in members:
        periods = (
            naive_client(url, token)
            .read_free_busy(
                calendar_ids=[calendar_id],
                from_date=start.isoformat(),
                to_date=(start + dt.timedelta(days=5)).isoformat(),
                tzid="Europe/London",
                # pycronofy would write Python's True/False, which the aggregator refuses.
                include_managed="true",
                localized_times="false",
            )
            .all()
        )
        busy += len(periods)
    return busy


def naive_create(url, members, start: dt.datetime) -> None:
    """The interview written into every member's calendar, one call each."""
    event_id = f"naive-{uuid.uuid4().hex}"
    for token, calendar_id in members:
        naive_client(url, token).upsert_event(
            calendar_id,
            {
                "event_id": event_id,
                "summary": "Naive interview",
                "start": start,
                "end": start + dt.timedelta(minutes=30),
                "tzid": "Europe/London",
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    world = bench_world()
    handle, sandbox, app, links = world.handle, world.sandbox, world.app, world.link_ids
    recruiter_email, recruiter_id = world.recruiter_email, world.recruiter_id
    host_id, org_id = world.host_link_id, world.org_id
    cipher = deps.cipher.of(app)
    with deps.database.of(app).sessions() as session:
        members = []
        for link_id in links:
            link = session.get(ProfileLink, link_id)
            members.append(
                (credentials.load_credentials(link, cipher).access_token, link.target_calendar_id)
            )

    client = app.test_client()
    AuthActions(client).login(recruiter_email)
    day = world.week
    slot_time = dt.datetime.combine(day, dt.time(12, 0), dt.UTC)  # inside the free time
    sandbox.call(
        "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
    )

    def timed(fn) -> tuple[float, int]:
        time.sleep(0.5)  # stay under the client-side ceiling between runs
        sandbox.call("DELETE", "/stats")
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started, api_calls(sandbox)

    rows = []
    for size in PANELS:
        panel = links[:size]
        qs = "&".join(f"panel={i}" for i in panel) + f"&duration=30&days=5&start_date={day}"
        client.get(f"/schedule/?{qs}")  # warm-up
        ours_page = [timed(lambda qs=qs: client.get(f"/schedule/?{qs}")) for _ in range(args.runs)]
        naive_pg = [
            timed(lambda size=size: naive_page(handle.url, members[:size], day))
            for _ in range(args.runs)
        ]

        def ours_create(qs=qs):
            html = client.get(f"/schedule/?{qs}").get_data(as_text=True)
            return html

        creates = []
        for _ in range(args.runs):
            html = ours_create()
            slot = first_slot(html, size, day)
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            data = {
                "csrf_token": token,
                "panel": [str(i) for i in panel],
                "duration": "30",
                "days": "5",
                "start_date": day.isoformat(),
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
            creates.append(timed(lambda data=data: client.post("/schedule/", data=data)))
        naive_cr = [
            timed(lambda size=size: naive_create(handle.url, members[:size], slot_time))
            for _ in range(args.runs)
        ]
        rows.append((size, ours_page, naive_pg, creates, naive_cr))
    sandbox.call("DELETE", "/faults")

    # Database queries of the interview list: 1 interview, then 100.
    engine = deps.database.of(app).engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def list_queries() -> int:
        statements.clear()
        assert client.get("/interviews/").status_code == 200
        return len(statements)

    with deps.database.of(app).sessions() as session:
        session.query(CreatedEvent).delete()
        session.query(Interview).delete()
        session.commit()

    def add_interviews(n: int) -> None:
        with deps.database.of(app).sessions() as session:
            for _ in range(n):
                interview = Interview(
                    uid=uuid.uuid4().hex,
                    organisation_id=org_id,
                    created_by_id=recruiter_id,
                    host_link_id=host_id,
                    panel_link_ids=[host_id],
                    status=InterviewStatus.SCHEDULED,
                )
                session.add(interview)
                session.flush()
                session.add(
                    CreatedEvent(
                        interview_id=interview.id,
                        position=0,
                        profile_link_id=host_id,
                        calendar_id="cal_x",
                        event_id=f"rdv-{interview.uid}-0",
                        status=EventStatus.CONFIRMED,
                    )
                )
            session.commit()

    add_interviews(1)
    one = list_queries()
    add_interviews(99)
    hundred = list_queries()
    handle.stop()

    med = statistics.median
    print(
        f"Latency injected on every sandbox API call: {args.latency_ms} ms; median of "
        f"{args.runs} runs. Naive = plain pycronofy, one call per person, sequential. "
        f"Calendars laid out by the benchmark for the week of {world.week} "
        "(tests/perf/_free_time.py).\n"
    )
    print(
        "| panel | page calls: ours / naive | page time: ours / naive | ours page ratio "
        "(time ÷ 1 call × latency) | create calls: ours / naive | create time: ours / naive |"
    )
    print("|---:|---|---|---:|---|---|")
    for size, op, npg, oc, ncr in rows:
        print(
            f"| {size} | {max(c for _t, c in op)} / {max(c for _t, c in npg)} | "
            f"{med(t for t, _c in op) * 1000:.0f} ms / {med(t for t, _c in npg) * 1000:.0f} ms | "
            f"{med(t for t, _c in op) / latency:.2f} | "
            f"{max(c for _t, c in oc)} / {max(c for _t, c in ncr)} | "
            f"{med(t for t, _c in oc) * 1000:.0f} ms / {med(t for t, _c in ncr) * 1000:.0f} ms |"
        )
    print(
        "\nOur page makes one call per member too (each member's busy blocks need their own "
        "token), but they run concurrently with the availability call, so the page waits for "
        "one call's latency whatever the panel size; the naive page waits for all of them in "
        "turn. Creating writes one event (the calendar invites the panel) instead of one per "
        "member.\n"
    )
    print("## Database queries per page\n")
    print("| page | 1 interview | 100 interviews | goal |")
    print("|---|---:|---:|---|")
    print(
        f"| My interviews | {one} | {hundred} | equal ({'met' if one == hundred else 'NOT met'}) |"
    )


if __name__ == "__main__":
    main()
