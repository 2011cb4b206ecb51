"""Pool picks (not collected by pytest): aggregator calls per availability, and fairness.

1. **Aggregator calls.** The schedule page for a named person plus "any 1 from a pool of 10",
   and the booking from it, against the sandbox with ``--latency-ms`` (default 50) injected on
   every aggregator call: how many availability calls each makes (goal: one per availability,
   whatever the pool's size), the other calls, and the page time over that one call.
2. **Fairness.** 1,000 simulated bookings, each "any 1" from a pool of 10 people with equal
   availability, picked by ``picking.pick_from_pool`` and recorded in the load ledger exactly as
   a booking records them (no aggregator: the pick is what is measured). The bookings' times
   are laid out half-hourly on the weekdays of the coming months, 09:00–17:00, and booked in a
   shuffled order (people book interviews for next week and next month alike). Scenarios:
   everyone free at every slot; each person free at each slot with probability 0.7
   (independently, the same for everyone); the same with limits of 3 a day and 10 a week.
   Reported: each person's total, and max/min load (goal ≤ 1.2).

The calendars are the benchmark's own (tests/perf/_free_time.py), in a week always in the
future; the simulated bookings start 30 days ahead: it measures the same thing on any date.

    uv run python -m tests.perf.pick_fairness [--latency-ms 50] [--runs 5] [--bookings 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models import Interview, InterviewStatus, Pool, Role, utcnow  # noqa: E402
from tests.conftest import AuthActions  # noqa: E402
from tests.perf.scheduling_bench import bench_world  # noqa: E402
from webapp import deps  # noqa: E402
from webapp.services import Actor  # noqa: E402
from webapp.services.pools import ledger, manage, picking  # noqa: E402

POOL_SIZE = 10
SEED = 20261205


def calls(sandbox) -> dict[str, int]:
    return dict(sandbox.call("GET", "/stats")["requests"])


def aggregator_calls(world, args) -> list[str]:
    """Part 1: calls and time of the schedule page and the booking with a pool ask."""
    app, sandbox = world.app, world.sandbox
    me = Actor(world.recruiter_id, world.recruiter_email, world.org_id, Role.RECRUITER)
    with deps.database.of(app).sessions() as session:
        pool = manage.create_pool(session, me, "Bench pool")
        from models import ProfileLink

        for link_id in world.link_ids[:POOL_SIZE]:
            user_id = session.get_one(ProfileLink, link_id).user_id
            manage.add_member(session, me, pool.id, user_id)
        pool_id = pool.id
    client = app.test_client()
    AuthActions(client).login(world.recruiter_email)
    day = world.week.isoformat()
    qs = (
        f"panel={world.host_link_id}&pools={pool_id}:1&duration=30&days=5&start_date={day}"
        "&tzid=Europe/London"
    )
    client.get(f"/schedule/?{qs}")  # warm-up
    sandbox.call(
        "POST", "/faults", json={"method": "*", "path": "/v1/*", "latency_ms": args.latency_ms}
    )
    page_times, page_calls, book_calls, plain_times = [], [], [], []
    plain = qs.replace(f"&pools={pool_id}:1", "")
    for _ in range(args.runs):
        time.sleep(0.5)
        started = time.perf_counter()
        assert client.get(f"/schedule/?{plain}").status_code == 200
        plain_times.append(time.perf_counter() - started)
        time.sleep(0.5)
        sandbox.call("DELETE", "/stats")
        started = time.perf_counter()
        page = client.get(f"/schedule/?{qs}")
        page_times.append(time.perf_counter() - started)
        page_calls.append(calls(sandbox))
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Who the pools would pick" in html, page.status_code
        slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', html).group(1)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        sandbox.call("DELETE", "/stats")
        booked = client.post(
            "/schedule/",
            data={
                "csrf_token": token,
                "panel": str(world.host_link_id),
                "pools": f"{pool_id}:1",
                "duration": "30",
                "days": "5",
                "start_date": day,
                "required": "all",
                "tzid": "Europe/London",
                "slot": slot,
                "candidate_name": "Bench Candidate",
                "candidate_email": "bench.candidate@gmail.example",
                "title": "Bench",
            },
        )
        assert booked.status_code == 303, booked.get_data(as_text=True)[:300]
        book_calls.append(calls(sandbox))
    sandbox.call("DELETE", "/faults")

    def most(samples, route):
        return max(s.get(route, 0) for s in samples)

    page_t = statistics.median(page_times)
    latency = args.latency_ms / 1000
    return [
        f"## Aggregator calls: a named person plus any 1 from a pool of {POOL_SIZE} "
        f"({args.runs} runs, {args.latency_ms} ms injected per aggregator call)",
        "",
        "| | availability calls | free/busy reads | event writes | median time | time / one call |",
        "|---|---:|---:|---:|---:|---:|",
        f"| schedule page (5 days) | {most(page_calls, 'POST /v1/availability')} | "
        f"{most(page_calls, 'GET /v1/free_busy')} | 0 | {page_t * 1000:.0f} ms | "
        f"{page_t / latency:.2f} |",
        f"| the same page without the pool | | | | {statistics.median(plain_times) * 1000:.0f} ms"
        f" | {statistics.median(plain_times) / latency:.2f} |",
        f"| booking (re-check and pick, then write) | {most(book_calls, 'POST /v1/availability')}"
        f" | {most(book_calls, 'GET /v1/free_busy')} | "
        f"{most(book_calls, 'POST /v1/calendars/<calendar_id>/events')} | | |",
        "",
        "The pool's ten people are one participants group (`required: 1`) of the page's single "
        "availability call; the page reads no free/busy itself (the named person's busy overlay "
        "comes in its own request, and pool members get no lane). The booking re-checks the "
        "exact slot in one more availability call, whose answer lists who of the pool is free, "
        "and picks again under the lock. The difference between the two pages is the pick for "
        "every start time shown (71 here) and its explanation.",
        "",
    ]


def weekday_slots(count: int) -> list[dt.datetime]:
    """``count`` half-hour starts, 09:00–16:30 London, weekdays from 30 days ahead."""
    tz = ZoneInfo("Europe/London")
    day = utcnow().astimezone(tz).date() + dt.timedelta(days=30)
    out: list[dt.datetime] = []
    while len(out) < count:
        if day.isoweekday() <= 5:
            for n in range(16):
                start = dt.datetime.combine(day, dt.time(9, 0), tz) + dt.timedelta(minutes=30 * n)
                out.append(start.astimezone(dt.UTC))
        day += dt.timedelta(days=1)
    return out[:count]


def simulate(world, name: str, bookings: int, free_p: float, limits) -> dict:
    """Book ``bookings`` times from a fresh pool of ten; return the loads and timings."""
    app = world.app
    me = Actor(world.recruiter_id, world.recruiter_email, world.org_id, Role.RECRUITER)
    rng = random.Random(f"{SEED}:{name}")
    with deps.database.of(app).sessions() as session:
        from models import ProfileLink

        pool = manage.create_pool(session, me, f"Fairness {name}")
        people = []
        for link_id in world.link_ids[:POOL_SIZE]:
            user_id = session.get_one(ProfileLink, link_id).user_id
            manage.add_member(
                session, me, pool.id, user_id, max_per_day=limits[0], max_per_week=limits[1]
            )
            people.append(user_id)
        pool = session.get_one(Pool, pool.id)
        starts = weekday_slots(bookings)
        rng.shuffle(starts)
        load = dict.fromkeys(people, 0)
        unfilled, pick_ms = 0, []
        for n, at in enumerate(starts):
            free = [p for p in people if free_p >= 1 or rng.random() < free_p]
            began = time.perf_counter()
            picks = picking.pick_from_pool(session, pool, free, 1, at)
            pick_ms.append((time.perf_counter() - began) * 1000)
            chosen = picking.picked(picks)
            if not chosen:
                unfilled += 1
                continue
            interview = Interview(
                uid=f"fair{name}{n:05d}",
                organisation_id=world.org_id,
                host_link_id=world.host_link_id,
                panel_link_ids=[],
                status=InterviewStatus.SCHEDULED,
            )
            session.add(interview)
            session.flush()
            ledger.write(
                session,
                world.org_id,
                interview.id,
                [chosen[0].user_id],
                at,
                {chosen[0].user_id: pool.id},
            )
            session.commit()
            load[chosen[0].user_id] += 1
        # The next scenario starts from nobody loaded: these were the same people.
        session.execute(delete(Interview).where(Interview.uid.like(f"fair{name}%")))
        session.commit()
    values = sorted(load.values())
    return {
        "name": name,
        "loads": values,
        "ratio": values[-1] / values[0] if values[0] else float("inf"),
        "unfilled": unfilled,
        "pick_ms": statistics.median(pick_ms),
    }


def fairness(world, args) -> list[str]:
    scenarios = (
        ("everyone free", 1.0, (None, None)),
        ("each free with p = 0.7", 0.7, (None, None)),
        ("p = 0.7, limits 3 a day / 10 a week", 0.7, (3, 10)),
    )
    results = [simulate(world, name, args.bookings, p, limits) for name, p, limits in scenarios]
    lines = [
        f"## Pick fairness: {args.bookings} simulated bookings, any 1 from a pool of {POOL_SIZE}",
        "",
        "| availability | interviews per person (sorted) | max / min load | not filled | "
        "median pick time |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {', '.join(map(str, r['loads']))} | {r['ratio']:.2f} | "
            f"{r['unfilled']} | {r['pick_ms']:.1f} ms |"
        )
    worst = max(r["ratio"] for r in results)
    lines += [
        "",
        f"Goal: max/min ≤ 1.2 — {'met' if worst <= 1.2 else 'NOT met'} (worst {worst:.2f}). "
        "Loads count the interviews Rendezvous booked (the ledger), within 7 days either side "
        "of the slot; between equals, the fewest within 4 weeks either side, then whoever the "
        "pool picked least recently, then a stable hash of (pool, person, slot). "
        '"Not filled": bookings where nobody free was under their '
        "limits (the slot would not be offered).",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--fairness-only", action="store_true", help="skip the aggregator part")
    args = parser.parse_args()
    world = bench_world()
    try:
        lines = [] if args.fairness_only else aggregator_calls(world, args)
        lines += fairness(world, args)
    finally:
        world.handle.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
