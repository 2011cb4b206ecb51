"""Interviewer pools in a real browser, on a desktop and on a 390 px phone: a recruiter defines a
pool, schedules a panel of a named person plus "any 1 from the pool", sees who would be picked
and why, and books.

Screenshots go to $RENDEZVOUS_SCREENSHOTS (a temporary directory when unset) for review."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import InterviewLoad, Pool
from tests.browser.conftest import log_in
from tests.browser.test_schedule_grid import DESKTOP, PHONE, monday_after_next, scroll_width
from tests.webapp.scheduling_support import make_panel


@pytest.fixture
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("RENDEZVOUS_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def define_pool(page, people) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pools").click()
    page.get_by_label("Name").fill("Backend interviewers")
    page.get_by_label("Note (optional)").fill("Python and SQL")
    page.get_by_role("button", name="Create pool").click()
    expect(page.get_by_role("heading", name="Backend interviewers", level=1)).to_be_visible()
    for n, (user, _link) in enumerate(people):
        page.get_by_label("Person", exact=True).select_option(label=f"{user.name} ({user.email})")
        if n == 0:
            page.get_by_label("At most a day", exact=True).last.fill("2")
        page.get_by_role("button", name="Add to the pool").click()
        expect(page.locator(".flash-success")).to_contain_text(f"{user.name} added")
    # Limits that cannot both hold are a clear error, on the form they belong to.
    page.get_by_label("At most a day", exact=True).last.fill("5")
    page.get_by_label("At most a week", exact=True).last.fill("2")
    page.get_by_role("button", name="Add to the pool").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be above the weekly limit")
    expect(page.get_by_label("At most a day", exact=True).last).to_have_value("5")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_recruiter_defines_a_pool_and_books_any_one_from_it(
    app_page, app, session, sandbox, org, recruiter, shots, viewport
):
    page = app_page
    page.set_viewport_size(DESKTOP if viewport == "desktop" else PHONE)
    colleagues = make_panel(app, session, sandbox, org, 4)
    named, pool_people = colleagues[0], colleagues[1:]
    log_in(page, recruiter.email)
    if viewport == "phone":  # the navigation sits behind a menu button on a phone, if any
        page.goto("/")
    define_pool(page, pool_people)
    page.screenshot(path=str(shots / f"{viewport}-pool.png"), full_page=True)
    assert scroll_width(page) <= page.viewport_size["width"]

    page.goto("/schedule/")
    page.get_by_label(named[0].name).check()
    page.get_by_label("Backend interviewers").select_option(label="Any 1 from Backend interviewers")
    page.get_by_label("From").fill(monday_after_next().isoformat())
    page.get_by_label("Days shown").fill("1")
    page.get_by_label("Show times in").select_option("Europe/London")
    page.get_by_role("button", name="Show availability").click()
    expect(page.get_by_role("heading", name="Pick a slot")).to_be_visible()

    # Every start time says who would be picked and why, in the list under the grid ...
    reasons = page.locator(".pick-reasons li")
    assert reasons.count() >= 1
    pool_names = [u.name for u, _l in pool_people]
    first = reasons.first.inner_text()
    assert re.search(r"Backend interviewers: (" + "|".join(pool_names) + ")", first)
    assert "interviews within 7 days" in first and ", picked" in first
    assert "limit 2 a day" in page.locator(".pool-picks-list").inner_text()
    # ... and, for the start time chosen, right under the grid.
    pick = page.get_by_role("radio", name=re.compile(r"picks Backend interviewers: ")).first
    pick.locator("xpath=..").click()
    explanation = page.locator("#pick-explanation")
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text("Backend interviewers: ")
    expect(explanation).to_contain_text("picked")
    who = re.search(r"Backend interviewers: ([^\n]+)\n", explanation.inner_text()).group(1)
    assert who in pool_names
    expect(page.locator(".pool-ask-hint")).to_contain_text(
        "The panel also takes any 1 from Backend interviewers"
    )
    explanation.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"{viewport}-explained.png"), full_page=False)
    explanation.screenshot(path=str(shots / f"{viewport}-explanation.png"))
    assert scroll_width(page) <= page.viewport_size["width"]

    page.get_by_label("Candidate name").fill("Casey Candidate")
    page.get_by_label("Candidate email").fill("casey.candidate@gmail.example")
    page.get_by_label("Title").fill("Pool interview")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.get_by_role("heading", name="Pool interview")).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text(
        f"with {who} (Backend interviewers) picked from the pool"
    )
    page.screenshot(path=str(shots / f"{viewport}-booked.png"), full_page=True)
    pool = session.scalar(select(Pool))
    session.expire_all()
    [(picked,)] = session.execute(
        select(InterviewLoad.user_id).where(InterviewLoad.pool_id == pool.id)
    ).all()
    assert picked == next(u.id for u, _l in pool_people if u.name == who)
