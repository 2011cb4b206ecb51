"""The demo's past: interviews that took place in the last days, booked the way every interview is
(availability, booking with its slot claims, the calendar write job), only earlier.

The app always runs on real time and refuses to book a time that has passed, so these bookings
are made with the process's clock moved back to the day before each interview (time-machine,
a development dependency; this module is imported by ``make run`` and the demo tests only) and
back to real time at once. Their events are written to the sandbox's calendars like any other
(by the job worker, after the clock is back) and read back from there: nothing is inserted by
hand, and the sandbox's own clock is left alone. They have no video link: the aggregator adds
none to an event that has already started (§8.2), so none is asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from webapp import deps
from webapp.dev.demo_world import DemoError
from webapp.services import Actor
from webapp.services.availability.free_slots import open_slots
from webapp.services.availability.model import Query
from webapp.services.scheduling.booking import NewInterview, create_interview


@dataclass(frozen=True)
class PastInterview:
    panel: tuple[str, ...]
    room: str | None
    #: How many weekdays before today it took place (within the aggregator's default
    #: read window of 16 days back, so pages that read events without dates still see it).
    weekdays_ago: int
    title: str
    candidate: str
    candidate_email: str
    candidate_tzid: str


PAST = (
    PastInterview(
        ("riley.chen@northwind.example", "sam.patel@contoso.example"),
        None,
        6,
        "Backend engineer – technical interview",
        "Priya Shah",
        "priya.shah@candidates.example",
        "Asia/Kolkata",
    ),
    PastInterview(
        ("riley.chen@northwind.example", "anna.becker@fabrikam.example"),
        "room.spree@fabrikam.example",
        2,
        "Office manager – on-site interview",
        "Tomás Álvarez",
        "tomas.alvarez@candidates.example",
        "Europe/Madrid",
    ),
)


def weekday_before(today: dt.date, weekdays: int) -> dt.date:
    """The weekday ``weekdays`` weekdays before ``today``."""
    day = today
    while weekdays:
        day -= dt.timedelta(days=1)
        if day.isoweekday() <= 5:
            weekdays -= 1
    return day


def schedule_past(
    session: Session,
    recruiter: Actor,
    link_ids: Callable[[Sequence[str]], tuple[int, ...]],
) -> list[str]:
    """Book each of ``PAST`` as ``recruiter`` on its day, from the day before; their titles."""
    import time_machine

    broker, cipher, sealer = deps.required_broker(), deps.cipher(), deps.sealer()
    today = dt.datetime.now(dt.UTC).date()
    booked = []
    for plan in PAST:
        day = weekday_before(today, plan.weekdays_ago)
        query = Query(
            panel_link_ids=link_ids(plan.panel),
            duration=60,
            start_date=day,
            days=1,
            tzid="Europe/London",
            room=plan.room,
        )
        the_day_before = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), dt.UTC)
        with time_machine.travel(the_day_before, tick=True):
            slots = open_slots(session, broker, recruiter, query)
            if not slots:
                raise DemoError(f"no free time on {day} for '{plan.title}'")
            new = NewInterview(
                query=query,
                start=slots[len(slots) // 2].start,
                candidate_name=plan.candidate,
                candidate_email=plan.candidate_email,
                title=plan.title,
                video=False,
                candidate_tzid=plan.candidate_tzid,
            )
            create_interview(session, broker, cipher, sealer, recruiter, new, jobs=deps.jobs())
        booked.append(f"{plan.title} (took place {day:%A %d %B})")
    return booked
