"""Time zones in a real browser: the browser's zone proposed at login, the IT admin taking a
panel member's zone from their calendar, and the grid saying each member's hours in the
viewer's zone and their own, with every offered slot inside everyone's own day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from models import LinkMode, Role
from tests.browser.conftest import log_in
from tests.factories import make_user
from tests.webapp.scheduling_support import link_calendar, next_weekday
from tests.webapp.timezone_support import BERLIN, LONDON, NEW_YORK, inside_own_hours


@pytest.fixture
def zone_people(app, session, sandbox, org, recruiter, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    sam = make_user(
        session, org, Role.RECRUITER, email="sam.patel@contoso.example", name="Sam Patel"
    )
    link_calendar(app, session, sandbox, sam)
    anna = make_user(
        session,
        org,
        Role.RECRUITER,
        email="anna.becker@fabrikam.example",
        name="Anna Becker",
        password=False,
    )
    link_calendar(app, session, sandbox, anna, mode=LinkMode.ENTERPRISE)
    admin = make_user(session, org, Role.ADMIN, email="alex.kim@northwind.example", name="Alex Kim")
    return {"riley": recruiter, "sam": sam, "anna": anna, "admin": admin}


def browser_in(browser, live_server, tzid: str):
    context = browser.new_context(base_url=live_server.url, timezone_id=tzid)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def accept_browser_zone(page, tzid: str):
    banner = page.get_by_role("complementary", name="Your time zone")
    expect(banner).to_contain_text(f"Your browser reports {tzid}")
    banner.get_by_role("button", name=f"Use {tzid}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Your time zone is {tzid}")
    expect(page.get_by_role("complementary", name="Your time zone")).to_have_count(0)


def day_in(tzid: str, there: str, day: dt.date, minutes: int) -> str:
    moment = dt.datetime.combine(day, dt.time(0), ZoneInfo(tzid)) + dt.timedelta(minutes=minutes)
    return f"{moment.astimezone(ZoneInfo(there)):%H:%M}"


def legend(page, name: str):
    """The grid's legend line of one panel member (their name and working hours)."""
    return (
        page.get_by_role("list", name="Who is in which column")
        .get_by_role("listitem")
        .filter(has_text=name)
    )


def test_the_time_zone_grid(browser, live_server, session, sandbox, zone_people):
    # Sam signs in from New York: his browser's zone is proposed, and he takes it.
    context, sam = browser_in(browser, live_server, NEW_YORK)
    log_in(sam, zone_people["sam"].email)
    accept_browser_zone(sam, NEW_YORK)
    context.close()

    # The IT admin sets Anna's zone (linked through Enterprise Connect, she never signs in)
    # from what her calendar account reports.
    context, admin = browser_in(browser, live_server, LONDON)
    log_in(admin, zone_people["admin"].email)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="Manage Anna Becker").click()
    section = admin.get_by_role("region", name="Time zone")
    expect(section).to_contain_text(f"Their calendar account reports {BERLIN}")
    section.get_by_role("button", name=f"Use {BERLIN}").click()
    expect(admin.get_by_role("status")).to_contain_text(f"Anna Becker's time zone is {BERLIN}")
    expect(admin.locator("dl.facts")).to_contain_text(BERLIN)
    context.close()

    # Riley, in London, takes her browser's zone and looks at the three of them.
    context, page = browser_in(browser, live_server, LONDON)
    log_in(page, zone_people["riley"].email)
    accept_browser_zone(page, LONDON)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedule").click()
    for name in ("Riley Chen", "Sam Patel", "Anna Becker"):
        page.get_by_label(name).check()
    day = next_weekday(1)
    page.get_by_label("From").fill(day.isoformat())
    page.get_by_label("Days shown").fill("10")
    page.get_by_role("button", name="Show availability").click()
    expect(page.locator("section.day").first).to_have_attribute("id", f"day-{day.isoformat()}")
    start, end = 9 * 60, 17 * 60 + 30
    sam_row = legend(page, "Sam Patel")
    expect(sam_row).to_contain_text(
        f"works 09:00–17:30 New York = {day_in(NEW_YORK, LONDON, day, start)}–"
        f"{day_in(NEW_YORK, LONDON, day, end)} London"
    )
    expect(legend(page, "Anna Becker")).to_contain_text(
        f"works 09:00–17:30 Berlin = {day_in(BERLIN, LONDON, day, start)}–"
        f"{day_in(BERLIN, LONDON, day, end)} London"
    )
    slots = page.locator("input[name=slot]")
    expect(slots.first).to_be_attached()
    values = [slots.nth(i).get_attribute("value") for i in range(slots.count())]
    for value in values:
        begins = dt.datetime.fromisoformat(value)
        for tzid in (LONDON, NEW_YORK, BERLIN):
            assert inside_own_hours(begins, begins + dt.timedelta(hours=1), tzid), (value, tzid)

    # The same panel seen in New York time: Riley's day moves, Sam's is his own.
    page.get_by_label("Show times in").select_option(NEW_YORK)
    page.get_by_role("button", name="Show availability").click()
    expect(legend(page, "Riley Chen")).to_contain_text(
        f"works 09:00–17:30 London = {day_in(LONDON, NEW_YORK, day, start)}–"
        f"{day_in(LONDON, NEW_YORK, day, end)} New York"
    )
    expect(legend(page, "Sam Patel")).to_contain_text("works 09:00–17:30 New York")
    labels = page.locator("label.pick")
    first = labels.first.inner_text()
    assert int(first[:2]) >= 9, first  # nothing before 09:00 New York
    context.close()
