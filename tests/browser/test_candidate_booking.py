"""The candidate's booking page in a browser, on a desktop and a 390 px phone: the zone detected
from the browser and changeable, a day picked on the date picker, a time picked, booked; then,
from the confirmation, rescheduled and cancelled. And the same page without JavaScript."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import Interview, InterviewStatus
from tests.webapp.test_candidate_changes import friday_ahead
from tests.webapp.test_candidate_links import new_link

SHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")
WIDTHS = pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])


def shot(tab, name: str, width: int) -> None:
    overflow = tab.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{overflow}px of sideways scrolling on {name} at {width}px"
    if SHOTS:
        tab.screenshot(path=os.path.join(SHOTS, f"candidate-{name}-{width}.png"), full_page=True)


def candidate_tab(browser, live_server, width: int, zone: str, *, javascript: bool = True):
    context = browser.new_context(
        base_url=live_server.url,
        timezone_id=zone,
        viewport={"width": width, "height": 900},
        java_script_enabled=javascript,
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def touch_targets_are_large(tab) -> None:
    # Measured once the page has loaded: a navigation's DOM can be laid out before its
    # stylesheet arrives (a race seen on a loaded machine: 20 x 19 px unstyled links).
    tab.wait_for_load_state("load")
    sizes = tab.evaluate(
        """() => [...document.querySelectorAll('a.cal-day.available, .time-choice label')]
              .filter(e => e.offsetParent !== null)
              .map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"""
    )
    assert sizes and all(w >= 44 and h >= 44 for w, h in sizes), sizes


@WIDTHS
def test_book_then_reschedule_then_cancel(
    browser, app, live_server, session, sandbox, org, recruiter, panel, width
):
    org.name = "Northwind Traders"
    session.commit()
    friday = friday_ahead(sandbox)
    _link, token = new_link(
        app,
        session,
        recruiter,
        panel,
        start_date=friday,
        days=4,
        candidate_may_change=True,
        change_cutoff_hours=24,
    )
    context, tab = candidate_tab(browser, live_server, width, "Asia/Tokyo")
    try:
        tab.goto(f"/c/{token}")
        # The browser's zone is detected (the page reloads once with it).
        expect(tab.get_by_label("Times are shown in")).to_have_value("Asia/Tokyo")
        expect(tab.get_by_text("Northwind Traders")).to_be_visible()
        expect(tab.get_by_role("heading", name=re.compile("cand-title-4411"))).to_be_visible()
        expect(tab.get_by_role("heading", name="Choose a time")).to_be_visible()
        touch_targets_are_large(tab)
        shot(tab, "booking", width)

        # Days are on the date picker; picking another day shows its times.
        days = tab.locator("a.cal-day.available")
        assert days.count() >= 2
        second = days.nth(1)
        chosen_day = second.get_attribute("data-day")
        second.click()
        expect(second).to_have_attribute("aria-current", "date")
        times = tab.locator(f"#times-{chosen_day} .time-choice label")
        expect(times.first).to_be_visible()
        expect(tab.locator("fieldset.times:visible")).to_have_count(1)
        picked = times.first.inner_text().strip()[:5]
        tab.get_by_role("radio", name=re.compile(f"^{picked}")).click()
        shot(tab, "time-picked", width)
        tab.get_by_role("button", name="Book this time").click()
        expect(tab.get_by_role("heading", name="Your interview is booked")).to_be_visible()
        expect(tab.get_by_role("status")).to_contain_text(picked)
        expect(tab.get_by_role("status")).to_contain_text("Asia/Tokyo")
        expect(tab.get_by_role("link", name="download (.ics)")).to_be_visible()
        shot(tab, "booked", width)

        session.expire_all()
        interview = session.scalar(select(Interview))
        first_id = interview.id
        assert interview.status is InterviewStatus.SCHEDULED

        # Reschedule from the confirmation.
        tab.get_by_role("link", name="Reschedule").click()
        expect(tab.get_by_role("heading", name="Choose a new time")).to_be_visible()
        shot(tab, "reschedule", width)
        last_day = tab.locator("a.cal-day.available").last
        target_day = last_day.get_attribute("data-day")
        last_day.click()
        new_time = tab.locator(f"#times-{target_day} .time-choice label").last
        moved_to = new_time.inner_text().strip()[:5]
        tab.locator(f"#times-{target_day} .time-choice input").last.click()
        tab.get_by_role("button", name="Move to this time").click()
        expect(tab.get_by_role("heading", name="Your interview was moved")).to_be_visible()
        expect(tab.get_by_role("status")).to_contain_text(moved_to)
        shot(tab, "moved", width)
        session.expire_all()
        assert session.scalar(select(Interview)).id == first_id  # the same interview

        # Cancel, after confirming.
        tab.get_by_role("link", name="Cancel the interview").click()
        expect(tab.get_by_role("heading", name="Cancel your interview?")).to_be_visible()
        shot(tab, "cancel", width)
        tab.get_by_role("button", name="Yes, cancel the interview").click()
        expect(tab.get_by_role("heading", name="Your interview is cancelled")).to_be_visible()
        shot(tab, "cancelled", width)
    finally:
        context.close()
    session.expire_all()
    assert session.scalar(select(Interview)).status is InterviewStatus.CANCELLED


def test_the_zone_can_be_changed_by_hand(
    browser, live_server, app, session, sandbox, recruiter, panel
):
    _link, token = new_link(app, session, recruiter, panel, start_date=friday_ahead(sandbox))
    context, tab = candidate_tab(browser, live_server, 1280, "Europe/Berlin")
    try:
        tab.goto(f"/c/{token}")
        expect(tab.get_by_label("Times are shown in")).to_have_value("Europe/Berlin")
        berlin = tab.locator("fieldset.times:visible .time-choice label").first.inner_text()
        tab.get_by_label("Times are shown in").select_option("America/Los_Angeles")
        tab.get_by_role("button", name="Change time zone").click()
        expect(tab.get_by_label("Times are shown in")).to_have_value("America/Los_Angeles")
        # Chosen by hand, it is not replaced by the browser's zone again.
        tab.wait_for_load_state("networkidle")
        expect(tab.get_by_label("Times are shown in")).to_have_value("America/Los_Angeles")
        la = tab.locator("fieldset.times .time-choice label").first.inner_text()
        assert berlin.strip()[:5] != la.strip()[:5]
        assert "tz=America%2FLos_Angeles" in tab.url
    finally:
        context.close()


@WIDTHS
def test_the_booking_page_works_without_javascript(
    browser, live_server, app, session, sandbox, recruiter, panel, width
):
    friday = friday_ahead(sandbox)
    monday = friday + dt.timedelta(days=3)
    _link, token = new_link(app, session, recruiter, panel, start_date=friday, days=4)
    context, tab = candidate_tab(browser, live_server, width, "Asia/Tokyo", javascript=False)
    try:
        tab.goto(f"/c/{token}")
        # No detection without JavaScript: the zone the recruiter set, changeable by the form.
        expect(tab.get_by_label("Times are shown in")).to_have_value("America/New_York")
        tab.locator(f'a.cal-day.available[data-day="{monday.isoformat()}"]').click()
        assert f"day={monday.isoformat()}" in tab.url
        expect(tab.locator(f"#times-{monday.isoformat()}")).to_be_visible()
        touch_targets_are_large(tab)
        shot(tab, "nojs", width)
        tab.locator(f"#times-{monday.isoformat()} .time-choice input").first.click()
        tab.get_by_role("button", name="Book this time").click()
        expect(tab.get_by_role("heading", name="Your interview is booked")).to_be_visible()
        expect(tab.get_by_text("Changes through this link are not possible")).to_be_visible()
    finally:
        context.close()
