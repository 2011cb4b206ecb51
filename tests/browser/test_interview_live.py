"""The interview page follows its calendar write by itself: scheduled or moved while the write is
held back, it shows "being written", then, once the calendar confirms, the status, title and time
without a reload. Without JavaScript it offers a Refresh link and reloads itself."""

from __future__ import annotations

import os
import re
import shutil

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.test_scheduling import fill_details, show_availability
from tests.held_jobs import HoldingJobs
from tests.webapp.scheduling_support import make_panel
from webapp import deps

TITLE = "Onsite: Site Reliability Engineer"
#: Where to copy the screenshots for a person to look at (unset: they stay in tmp_path).
SCREENSHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")
WRITE = "scheduling.write_interview"


def hold_calendar_writes(app) -> HoldingJobs:
    holding = HoldingJobs(deps.jobs.of(app), WRITE)
    deps.jobs.install(app, holding)
    return holding


def mark_page(page) -> None:
    """Tag this document: the tag survives in-page updates, not a reload."""
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def shoot(page, tmp_path, name: str) -> None:
    """Screenshots at desktop width and at 390 px (a phone), which must not scroll sideways,
    the page nor a table in it (the Responses table fits, its badges in view)."""
    desktop = page.viewport_size
    for width in (desktop["width"], 390):
        page.set_viewport_size({"width": width, "height": desktop["height"]})
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
        inside = page.evaluate(
            "Math.max(0, ...[...document.querySelectorAll('.table-wrap')]"
            ".map(w => w.scrollWidth - w.clientWidth))"
        )
        assert inside <= 0, f"a table (Responses) scrolls {inside}px sideways at {width}px"
        path = tmp_path / f"interview-{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        if SCREENSHOTS:
            shutil.copy(path, SCREENSHOTS)
    page.set_viewport_size(desktop)


def test_page_updates_itself_after_scheduling_and_after_moving(
    app_page, app, session, sandbox, org, recruiter, tmp_path
):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 3)
    holding = hold_calendar_writes(app)
    log_in(page, recruiter.email)
    show_availability(page, [u.name for u, _l in panel])
    fill_details(page, TITLE)
    page.get_by_role("button", name="Schedule interview").click()

    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Being written to the calendar")
    expect(facts).to_contain_text("not in the calendar yet")
    expect(page.get_by_role("link", name="Refresh")).to_be_visible()
    expect(page.get_by_role("link", name="Reschedule…")).to_have_count(0)
    shoot(page, tmp_path, "pending")
    mark_page(page)
    page.wait_for_timeout(1500)  # a poll or two while nothing has changed
    expect(facts).to_contain_text("Being written to the calendar")

    assert holding.release() == 1  # the calendar confirms
    expect(facts).to_contain_text("Scheduled", timeout=15_000)
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    when = facts.locator("dd").nth(1)
    expect(when).to_have_text(re.compile(r"\d\d:\d\d–\d\d:\d\d \(Europe/London\)"))
    expect(page.get_by_role("link", name="Refresh")).to_have_count(0)
    expect(page.locator('[data-role="live-announcement"]')).to_contain_text("Scheduled")
    assert same_document(page), "the page reloaded instead of updating itself"
    shoot(page, tmp_path, "confirmed")
    before = when.inner_text()

    page.get_by_role("link", name="Reschedule…").click()
    page.get_by_role("link", name="Next week →").click()
    expect(page.get_by_role("group", name=re.compile("Free start times on"))).not_to_have_count(0)
    page.locator("input[name=slot]").first.check()
    page.get_by_role("button", name="Move the interview").click()

    expect(facts).to_contain_text("Being written to the calendar")
    expect(facts).to_contain_text(before.split(" (")[0])  # the old time, until confirmed
    expect(facts).to_contain_text("(as the calendar has it now; a change is being written)")
    shoot(page, tmp_path, "moving")
    mark_page(page)

    assert holding.release() == 1
    expect(facts).to_contain_text("Scheduled", timeout=15_000)
    expect(when).not_to_have_text(before)
    expect(facts).not_to_contain_text("being written")
    expect(page.get_by_role("link", name="Reschedule…")).to_be_visible()
    assert same_document(page), "the page reloaded instead of updating itself"


def test_without_javascript_a_refresh_link_and_a_reload_follow_the_write(
    app, session, sandbox, org, recruiter, browser, live_server
):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    panel = make_panel(app, session, sandbox, org, 1)
    holding = hold_calendar_writes(app)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, recruiter.email)
        show_availability(page, [u.name for u, _l in panel])
        fill_details(page, TITLE)
        page.get_by_role("button", name="Schedule interview").click()
        facts = page.locator("dl.facts")
        expect(facts).to_contain_text("Being written to the calendar")
        page.get_by_role("link", name="Refresh").click()  # by hand: still being written
        expect(facts).to_contain_text("Being written to the calendar")

        holding.release()
        # The page reloads itself (a <noscript> refresh every ten seconds while pending).
        expect(facts).to_contain_text("Scheduled", timeout=20_000)
        expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
        expect(page.get_by_role("link", name="Refresh")).to_have_count(0)
    finally:
        context.close()
