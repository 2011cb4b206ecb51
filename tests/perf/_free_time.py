"""The calendars the scheduling benchmarks measure against, laid out by the benchmark itself.

The sandbox's generated calendars are random and laid out from the day the sandbox starts (their
shape follows the weekday it starts on), so a benchmark that borrowed them found a ten-person
panel with no common half hour on some days (every Monday start: `make bench` crashed on
2026-11-30 with ``StatisticsError``). Benchmarks therefore use people of their own domain,
``bench.example``, whose calendars hold exactly the busy time below, in a week that is always in
the future: the Monday of the week after next, whatever the date and the time of day.

Every weekday of that week each person has two meetings between 14:00 and 16:00 London time
(staggered by person and day, so panels of different sizes see different busy blocks) and a
transparent all-day "Working from home" on Fridays for every other person (which must not count
as busy), so the whole panel is free 09:00–14:00 and 16:00–17:30: 65 half hours a week, more
than the benchmarks book.

(Not a benchmark itself: the leading underscore keeps ``make bench`` from running it.)
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DOMAIN = "bench.example"
TZID = "Europe/London"
#: The recruiter who hosts every benchmark interview, then the panel members.
PEOPLE = [("riley@bench.example", "Riley Bench")] + [
    (f"member{n:02d}@bench.example", f"Member {n:02d}") for n in range(1, 11)
]
#: Whole-panel free time every weekday of the week, in TZID (working hours are 09:00–17:30).
FREE = ((dt.time(9, 0), dt.time(14, 0)), (dt.time(16, 0), dt.time(17, 30)))


def bench_week(today: dt.date | None = None) -> dt.date:
    """The Monday of the week after next: 8 to 14 days ahead, never today or a weekend."""
    today = today or dt.date.today()
    return today + dt.timedelta(days=14 - today.weekday())


def busy_blocks(person: int, weekday: int) -> list[tuple[dt.time, int]]:
    """(start in TZID, minutes) of person ``person``'s meetings on ``weekday`` (0 = Monday)."""
    first = dt.time(14, 15 * (person % 4))  # 14:00–15:15
    second = dt.time(15, 15 * ((person + weekday) % 3))  # 15:00–16:00
    return [(first, 30), (second, 30 if (person + weekday) % 3 == 2 else 45)]


def seed_payload(week: dt.date) -> dict:
    """The ``POST /_sandbox/seed`` body: the domain, its people, and their week."""
    zone = ZoneInfo(TZID)
    events = []
    for person, (email, _name) in enumerate(PEOPLE):
        for weekday in range(5):
            day = week + dt.timedelta(days=weekday)
            for start, minutes in busy_blocks(person, weekday):
                begin = dt.datetime.combine(day, start, tzinfo=zone)
                end = begin + dt.timedelta(minutes=minutes)
                events.append(
                    {
                        "email": email,
                        "summary": "Team meeting",
                        "tzid": TZID,
                        "start": begin.isoformat(timespec="seconds"),
                        "end": end.isoformat(timespec="seconds"),
                    }
                )
            if weekday == 4 and person % 2:
                events.append(
                    {
                        "email": email,
                        "summary": "Working from home",
                        "start": day.isoformat(),
                        "end": (day + dt.timedelta(days=1)).isoformat(),
                        "transparency": "transparent",
                    }
                )
    return {
        "domains": [{"name": DOMAIN, "provider_name": "google"}],
        "identities": [{"email": email, "name": name, "tzid": TZID} for email, name in PEOPLE],
        "events": events,
    }
