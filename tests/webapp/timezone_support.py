"""Arranging time-zone tests: a London + New York + Berlin panel whose zones are set the way
people set them (own profile, a proposal from the calendar, the IT admin), and a week that spans
the European and the US daylight-saving changes."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from models import LinkMode, ProfileLink, Role, User
from tests.factories import make_user
from tests.webapp.scheduling_support import link_calendar

LONDON, NEW_YORK, BERLIN = "Europe/London", "America/New_York", "Europe/Berlin"
DAY_START, DAY_END = 9 * 60, 17 * 60 + 30  # everyone's default working day, in their own zone
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@dataclass
class Person:
    user: User
    link: ProfileLink
    tzid: str


@dataclass
class Panel:
    riley: Person
    sam: Person
    anna: Person
    admin: User

    @property
    def people(self) -> list[Person]:
        return [self.riley, self.sam, self.anna]

    @property
    def link_ids(self) -> tuple[int, ...]:
        return tuple(p.link.id for p in self.people)


def _csrf(client, path: str) -> tuple[str, str]:
    html = client.get(path).get_data(as_text=True)
    return CSRF.search(html).group(1), html


def _post(client, path: str, form_page: str, data: dict):
    token, _html = _csrf(client, form_page)
    return client.post(path, data={"csrf_token": token, **data})


def three_zone_panel(app, session, sandbox, org, client, auth, recruiter) -> Panel:
    """Riley (London) sets her zone under My profile; Sam takes the zone his calendar reports
    (the sandbox gives him America/New_York); the IT admin sets Anna's (Berlin), whose mailbox
    is linked through Enterprise Connect and who never signs in."""
    sam = make_user(
        session, org, Role.RECRUITER, email="sam.patel@contoso.example", name="Sam Patel"
    )
    sam_link = link_calendar(app, session, sandbox, sam)
    anna = make_user(
        session,
        org,
        Role.RECRUITER,
        email="anna.becker@fabrikam.example",
        name="Anna Becker",
        password=False,
    )
    anna_link = link_calendar(app, session, sandbox, anna, mode=LinkMode.ENTERPRISE)
    admin = make_user(session, org, Role.ADMIN, email="alex.kim@northwind.example", name="Alex Kim")
    riley_link = session.query(ProfileLink).filter_by(user_id=recruiter.id).one()

    auth.login(recruiter.email)
    done = _post(client, "/profile/timezone", "/profile/", {"timezone": LONDON})
    assert done.status_code == 303, done.status_code
    auth.logout()

    auth.login(sam.email)
    token, html = _csrf(client, "/profile/")
    assert "Your calendar account reports <strong>America/New_York</strong>" in html
    done = client.post(
        "/profile/timezone", data={"csrf_token": token, "timezone": NEW_YORK, "source": "calendar"}
    )
    assert done.status_code == 303, done.status_code
    auth.logout()

    auth.login(admin.email)
    token, html = _csrf(client, f"/admin/users/{anna.id}")
    assert "<strong>Europe/Berlin</strong>" in html  # proposed from Anna's calendar account
    done = client.post(
        f"/admin/users/{anna.id}/timezone",
        data={"csrf_token": token, "timezone": BERLIN, "source": "calendar"},
    )
    assert done.status_code == 303, done.status_code
    auth.logout()

    for user in (recruiter, sam, anna):
        session.refresh(user)
    assert (recruiter.timezone, sam.timezone, anna.timezone) == (LONDON, NEW_YORK, BERLIN)
    return Panel(
        Person(recruiter, riley_link, LONDON),
        Person(sam, sam_link, NEW_YORK),
        Person(anna, anna_link, BERLIN),
        admin,
    )


# --- the week that spans both daylight-saving changes -----------------------------------------


def _sundays(year: int, month: int) -> list[dt.date]:
    day = dt.date(year, month, 1)
    out = []
    while day.month == month:
        if day.isoweekday() == 7:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


@dataclass(frozen=True)
class DstWeek:
    """Friday before Europe's autumn change (last Sunday of October) to the Monday after the
    US one (first Sunday of November): London–New York is 5 h, then 4 h for a week, then 5 h."""

    first: dt.date
    eu_change: dt.date
    us_change: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def clock(self) -> dt.datetime:
        """A 'now' for the availability service: noon UTC the Monday before (the week is then
        at most a few days ahead, whatever the real date)."""
        return dt.datetime.combine(self.first - dt.timedelta(days=4), dt.time(12), dt.UTC)


def dst_week(after: dt.date) -> DstWeek:
    """The first such week starting more than 30 days after ``after`` (beyond the sandbox's
    seeded events, so every calendar is free there and only working hours shape the slots)."""
    year = after.year
    while True:
        eu, us = _sundays(year, 10)[-1], _sundays(year, 11)[0]
        week = DstWeek(eu - dt.timedelta(days=2), eu, us, us + dt.timedelta(days=1))
        if week.first > after + dt.timedelta(days=30):
            return week
        year += 1


def inside_own_hours(
    start: dt.datetime,
    end: dt.datetime,
    tzid: str,
    day_start: int = DAY_START,
    day_end: int = DAY_END,
) -> bool:
    """[start, end) lies within one working day (Mon–Fri, day_start–day_end) in ``tzid``."""
    tz = ZoneInfo(tzid)
    a, b = start.astimezone(tz), end.astimezone(tz)
    return (
        (a.date() == b.date() or (b.time() == dt.time(0) and day_end == 24 * 60))
        and a.isoweekday() <= 5
        and a.hour * 60 + a.minute >= day_start
        and b.hour * 60 + b.minute <= day_end
    )


def expected_starts(
    zones, first: dt.date, days: int, duration: int = 60, not_before: dt.datetime | None = None
) -> list[dt.datetime]:
    """Every quarter-hour start whose interview fits in every zone's own working day: worked
    out here from the zone database alone, independently of the app."""
    utc = dt.UTC
    moment = dt.datetime.combine(first - dt.timedelta(days=1), dt.time(0), utc)
    stop = dt.datetime.combine(first + dt.timedelta(days=days + 1), dt.time(0), utc)
    london = ZoneInfo(LONDON)
    out = []
    while moment < stop:
        end = moment + dt.timedelta(minutes=duration)
        in_window = first <= moment.astimezone(london).date() < first + dt.timedelta(days=days)
        if (
            in_window
            and (not_before is None or moment >= not_before)
            and all(inside_own_hours(moment, end, z) for z in zones)
        ):
            out.append(moment)
        moment += dt.timedelta(minutes=15)
    return out
