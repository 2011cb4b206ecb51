"""Benchmark: sandbox availability for 10 members over 4 weeks with 2,000 events, over real HTTP.

Not collected by pytest (no ``test_`` prefix). Run with
``uv run python -m tests.perf.sandbox_availability [--runs 50]``; prints markdown table rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import statistics
import time

import requests

from broker.sandbox.server import start_sandbox

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"
MEMBERS, EVENTS, DAYS = 10, 2000, 28
ZONES = ["Europe/London", "America/New_York", "Europe/Berlin"]


def seed_payload(start: dt.date, rng: random.Random) -> dict:
    people = [
        {"email": f"member{i}@bench.example", "name": f"Member {i}", "tzid": ZONES[i % 3]}
        for i in range(MEMBERS)
    ]
    events = []
    for n in range(EVENTS):
        person = people[n % MEMBERS]
        day = start + dt.timedelta(days=rng.randrange(DAYS))
        minute = rng.randrange(0, 24 * 60, 15)  # three time zones: busy around the clock
        begin = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
        end = begin + dt.timedelta(minutes=rng.choice([15, 30, 45, 60, 90]))
        events.append(
            {
                "email": person["email"],
                "summary": f"Busy {n}",
                "start": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "transparency": "transparent" if n % 17 == 0 else "opaque",
            }
        )
    return {
        "domains": [{"name": "bench.example", "provider_name": "google"}],
        "identities": people,
        "events": events,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    handle = start_sandbox(CLIENT_ID, CLIENT_SECRET, rate_limit_enabled=False, auto_deliver=False)
    try:
        start = dt.date.today() + dt.timedelta(days=1)
        seeded = handle.client.request("POST", "/seed", seed_payload(start, random.Random(7)))
        seeded.raise_for_status()
        subs = [row["sub"] for row in seeded.json()["identities"]]
        for i in range(MEMBERS):  # authorize each member for the app, as linking would
            handle.client.request(
                "POST", "/tokens", {"email": f"member{i}@bench.example"}
            ).raise_for_status()
        periods = [
            {
                "start": f"{start + dt.timedelta(days=d)}T06:00:00Z",
                "end": f"{start + dt.timedelta(days=d)}T22:00:00Z",
            }
            for d in range(DAYS)
        ]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {CLIENT_SECRET}"
        print("| request | members | span | events | results | runs | p50 ms | p95 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for fmt, required in (
            ("periods", "all"),
            ("slots", "all"),
            ("overlapping_slots", "all"),
            ("slots", 5),
        ):
            body = {
                "participants": [{"members": [{"sub": s} for s in subs], "required": required}],
                "required_duration": {"minutes": 30},
                "query_periods": periods,
                "buffer": {"before": {"minutes": 10}, "after": {"minutes": 10}},
                "start_interval": {"minutes": 15},
                "response_format": fmt,
                "max_results": 512,
            }
            timings = []
            found = 0
            for run in range(args.runs + 5):
                began = time.perf_counter()
                response = session.post(handle.url + "/v1/availability", json=body, timeout=30)
                elapsed = (time.perf_counter() - began) * 1000
                response.raise_for_status()
                found = len(next(iter(response.json().values())))
                if run >= 5:  # warm-up excluded
                    timings.append(elapsed)
            print(
                f"| availability ({fmt}, required {required}) | {MEMBERS} | {DAYS} days "
                f"| {EVENTS} | {found} | {len(timings)} | "
                f"{statistics.median(timings):.1f} | {percentile(timings, 0.95):.1f} |"
            )
        session.close()
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
