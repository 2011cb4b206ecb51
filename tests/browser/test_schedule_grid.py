"""The schedule page's week grid in a real browser, on a desktop and on a 390 px phone: the grid
renders, a free window is chosen with the mouse or the keyboard alone and the interview is
scheduled, the phone shows one day at a time with a day switcher and never scrolls sideways, and
the page shows progress while the aggregator is slow.

Screenshots go to $RENDEZVOUS_SCREENSHOTS (a temporary directory when unset) for review."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from models import utcnow
from tests.browser.conftest import log_in
from tests.webapp.scheduling_support import make_panel

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("RENDEZVOUS_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def monday_after_next() -> dt.date:
    """A Monday 8 to 14 days ahead: the week laid out is Mon–Fri whatever today is."""
    day = utcnow().date() + dt.timedelta(days=8)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def show_week(page, names, *, days: int = 7):
    page.goto("/schedule/")
    for name in names:
        page.get_by_label(name).check()
    page.get_by_label("From").fill(monday_after_next().isoformat())
    page.get_by_label("Days shown").fill(str(days))
    page.get_by_label("Show times in").select_option("Europe/London")
    page.get_by_role("button", name="Show availability").click()
    expect(page.get_by_role("heading", name="Pick a slot")).to_be_visible()


def fill_details(page, title: str):
    page.get_by_label("Candidate name").fill("Casey Candidate")
    page.get_by_label("Candidate email").fill("casey.candidate@gmail.example")
    page.get_by_label("Title").fill(title)


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_desktop_grid_click_a_free_window_and_schedule(
    app_page, app, session, sandbox, org, recruiter, shots
):
    page = app_page
    page.set_viewport_size(DESKTOP)
    panel = make_panel(app, session, sandbox, org, 3)
    log_in(page, recruiter.email)
    show_week(page, [u.name for u, _l in panel])

    monday = monday_after_next()
    days = page.locator("section.day")
    expect(days).to_have_count(5)  # seven days asked, the weekend hidden
    expect(days.first).to_have_attribute("id", f"day-{monday.isoformat()}")
    for user, _link in panel:  # one lane per member, named in the legend
        expect(page.get_by_role("list", name="Who is in which column")).to_contain_text(user.name)
    assert page.locator(".day-grid .work").count() >= 3 * 5  # working hours shaded per member
    expect(page.get_by_role("button", name="Show availability")).to_be_enabled()
    # The members' busy time arrives after the slots, drawn onto the same grid.
    expect(page.locator("[data-busy-status]")).to_have_text("Everyone's busy time is shown.")
    assert page.locator(".day-grid .block").count() > 0
    expect(page.get_by_text("Busy times as text")).to_be_visible()
    page.screenshot(path=str(shots / "desktop-week.png"), full_page=True)

    page.get_by_role("link", name="Show Saturdays and Sundays").click()
    expect(days).to_have_count(7)
    page.locator(".week").screenshot(path=str(shots / "desktop-weekends.png"))
    page.get_by_role("link", name="Hide Saturdays and Sundays").click()
    expect(days).to_have_count(5)

    # A free window: its start times are radios labelled with their day and time.
    pick = page.get_by_role("radio", name=re.compile(r"^\d\d:\d\d–\d\d:\d\d on \w+day")).nth(2)
    label = pick.evaluate("e => e.labels[0].textContent")
    day = dt.date.fromisoformat(pick.get_attribute("id")[len("slot-") :][:10])
    pick.locator("xpath=..").click()
    expect(pick).to_be_checked()
    page.screenshot(path=str(shots / "desktop-picked.png"), full_page=False)
    chosen = pick.get_attribute("value")

    fill_details(page, "Grid interview")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.get_by_role("heading", name="Grid interview")).to_be_visible()
    start = dt.datetime.fromisoformat(chosen).astimezone(dt.UTC)
    assert monday <= day <= monday + dt.timedelta(days=4)
    assert label.endswith(day.strftime("on %A %d %B"))
    assert dt.datetime.strptime(label[:5], "%H:%M").time() == start.astimezone(
        ZoneInfo("Europe/London")
    ).time().replace(second=0)
    assert label[:5] in page.locator("main").inner_text()


def test_keyboard_only_choice_of_a_slot(app_page, app, session, sandbox, org, recruiter):
    page = app_page
    page.set_viewport_size(DESKTOP)
    panel = make_panel(app, session, sandbox, org, 2)
    log_in(page, recruiter.email)
    show_week(page, [u.name for u, _l in panel], days=5)

    page.get_by_role("link", name=re.compile("Show Saturdays and Sundays")).focus()
    for _ in range(40):  # Tab on until a start time has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "slot":
            break
    else:
        pytest.fail("no start time is reachable with the Tab key")
    radios = page.locator("input[name=slot]")
    page.keyboard.press("Space")
    expect(radios.nth(0)).to_be_checked()
    page.keyboard.press("ArrowDown")  # the next start time, as in any radio group
    expect(radios.nth(1)).to_be_checked()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible

    page.get_by_label("Candidate name").focus()
    page.keyboard.type("Kim Keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("kim.keyboard@gmail.example")
    page.get_by_label("Title").focus()
    page.keyboard.type("Keyboard interview")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard interview")).to_be_visible()


def test_phone_shows_one_day_with_a_switcher_and_no_sideways_scroll(
    app_page, app, session, sandbox, org, recruiter, shots
):
    page = app_page
    page.set_viewport_size(PHONE)
    panel = make_panel(app, session, sandbox, org, 3)
    log_in(page, recruiter.email)
    page.goto("/schedule/")
    assert scroll_width(page) <= PHONE["width"]
    show_week(page, [u.name for u, _l in panel])
    assert scroll_width(page) <= PHONE["width"]
    page.screenshot(path=str(shots / "phone-day1.png"), full_page=True)

    days = page.locator("section.day")
    expect(days.nth(0)).to_be_visible()
    for i in range(1, 5):
        expect(days.nth(i)).to_be_hidden()
    switcher = page.get_by_role("navigation", name="Days")
    wednesday = monday_after_next() + dt.timedelta(days=2)
    switcher.get_by_role("link", name=re.compile(wednesday.strftime("%a %d %b"))).click()
    expect(days.nth(2)).to_be_visible()
    expect(days.nth(0)).to_be_hidden()
    expect(switcher.locator("[aria-current]")).to_contain_text(wednesday.strftime("%a %d %b"))
    assert scroll_width(page) <= PHONE["width"]
    page.screenshot(path=str(shots / "phone-day3.png"), full_page=True)
    page.locator(".week").screenshot(path=str(shots / "phone-day3-grid.png"))

    page.get_by_text("Busy times as text").click()  # the text alternative, open, still fits
    expect(page.get_by_role("table", name=re.compile("Busy times per person"))).to_be_visible()
    assert scroll_width(page) <= PHONE["width"]

    pick = days.nth(2).locator("input[name=slot]").first
    pick.locator("xpath=..").click()
    expect(pick).to_be_checked()
    fill_details(page, "Phone interview")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.get_by_role("heading", name="Phone interview")).to_be_visible()
    assert scroll_width(page) <= PHONE["width"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_slots_come_before_the_busy_overlay(
    app_page, app, session, sandbox, org, recruiter, shots, viewport
):
    """While the members' free/busy is slow, the free slots are on screen and can be picked;
    the busy blocks follow, on the same rows."""
    page = app_page
    page.set_viewport_size(viewport)
    panel = make_panel(app, session, sandbox, org, 3)
    log_in(page, recruiter.email)
    sandbox.add_fault(method="GET", path="/v1/free_busy", latency_ms=2500)
    try:
        show_week(page, [u.name for u, _l in panel], days=5)
        status = page.locator("[data-busy-status]")
        expect(status).to_have_text("Loading everyone's busy time…")
        assert page.locator(".day-grid .block").count() == 0
        pick = page.locator("section.day.current input[name=slot]").first
        pick.locator("xpath=..").click()
        expect(pick).to_be_checked()
        assert scroll_width(page) <= viewport["width"]
        name = "desktop" if viewport is DESKTOP else "phone"
        page.screenshot(path=str(shots / f"{name}-slots-before-busy.png"), full_page=True)
        expect(status).to_have_text("Everyone's busy time is shown.", timeout=15_000)
    finally:
        sandbox.clear_faults()
    blocks = page.locator(".day-grid .block")
    assert blocks.count() > 0
    expect(pick).to_be_checked()  # drawing the blocks keeps the choice
    # Blocks sit in member lanes, behind the panel's column.
    lanes = page.evaluate(
        "Array.from(document.querySelectorAll('.day-grid .block'))"
        ".map(b => b.className.match(/gc-(\\d+)/)[1])"
    )
    assert set(lanes) <= {"2", "3", "4"}
    assert scroll_width(page) <= viewport["width"]
    page.screenshot(path=str(shots / f"{name}-busy-drawn.png"), full_page=True)


def test_the_day_switcher_works_without_javascript(
    browser, app, live_server, session, sandbox, org, recruiter
):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, viewport=PHONE
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        panel = make_panel(app, session, sandbox, org, 2)
        log_in(page, recruiter.email)
        show_week(page, [u.name for u, _l in panel], days=5)
        days = page.locator("section.day")
        switcher = page.get_by_role("navigation", name="Days")
        switcher.get_by_role("link").nth(3).click()
        expect(days.nth(3)).to_be_visible()
        expect(days.nth(0)).to_be_hidden()
        assert scroll_width(page) <= PHONE["width"]
        # Without the script, the busy time is a link away: the same page with it inline.
        assert page.locator(".day-grid .block").count() == 0
        page.get_by_role("link", name="Show everyone's busy time").click()
        expect(page.get_by_role("heading", name="Pick a slot")).to_be_visible()
        assert page.locator(".day-grid .block").count() > 0
        expect(page.get_by_text("Busy times as text")).to_be_visible()
        assert page.locator("input[name=slot]").count() > 0
    finally:
        context.close()


def test_progress_shows_while_the_aggregator_is_slow(
    app_page, app, session, sandbox, org, recruiter
):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 2)
    log_in(page, recruiter.email)
    page.goto("/schedule/")
    for user, _link in panel:
        page.get_by_label(user.name).check()
    page.get_by_label("From").fill(monday_after_next().isoformat())
    sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=2000, count=1)
    # What the page looks like 300 ms after the click, while the aggregator has not answered:
    # kept in sessionStorage, which outlives the navigation.
    page.evaluate(
        """() => document.querySelector("form[data-progress]").addEventListener("submit", () =>
            setTimeout(() => {
                const button = document.querySelector("form[data-progress] button");
                const message = document.querySelector("[data-progress-message]");
                sessionStorage.setItem("seen", JSON.stringify({
                    disabled: button.disabled,
                    shown: !message.hidden && message.offsetParent !== null,
                    text: message.textContent.trim(),
                    busy: button.form.getAttribute("aria-busy"),
                }));
            }, 300))"""
    )
    page.get_by_role("button", name="Show availability").click()
    expect(page.get_by_role("heading", name="Pick a slot")).to_be_visible()
    # Had the page gone before 300 ms, nothing would have been seen.
    seen = json.loads(page.evaluate("sessionStorage.getItem('seen')") or "null")
    assert seen == {
        "disabled": True,
        "shown": True,
        "text": "Asking the calendars for free times…",
        "busy": "true",
    }
    expect(page.get_by_role("button", name="Show availability")).to_be_enabled()
    expect(page.locator("[data-progress-message]").first).to_be_hidden()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_owner_reads_their_own_titles_and_nobody_elses(
    app_page, app, session, sandbox, org, recruiter, shots, viewport
):
    """Riley on their own panel: their own blocks carry their events' titles (the block's
    tooltip and the busy times as text); a colleague's lane shows free/busy only."""
    page = app_page
    page.set_viewport_size(viewport)
    panel = make_panel(app, session, sandbox, org, 1)
    monday = monday_after_next()
    mine, theirs = "Reorg talk (title-5521)", "Colleague's dentist (title-8830)"
    for email, title, hour in [(recruiter.email, mine, 10), (panel[0][0].email, theirs, 11)]:
        start = dt.datetime.combine(monday, dt.time(hour), ZoneInfo("Europe/London"))
        sandbox.call(
            "POST",
            "/external-change",
            json={
                "email": email,
                "action": "create",
                "summary": title,
                "start": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (start + dt.timedelta(hours=1))
                .astimezone(dt.UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    log_in(page, recruiter.email)
    show_week(page, [recruiter.name, panel[0][0].name], days=5)
    expect(page.locator("[data-busy-status]")).to_have_text("Everyone's busy time is shown.")
    own_block = page.locator(f'.day-grid .block[title*="{mine}"]')
    expect(own_block).to_have_count(1)
    assert own_block.get_attribute("title").startswith(f"{recruiter.name}: 10:00–11:00")
    assert page.locator(f'.day-grid .block[title*="{theirs}"]').count() == 0
    page.get_by_text("Busy times as text").click()
    table = page.get_by_role("table", name=re.compile("Busy times per person"))
    expect(table).to_contain_text(f"10:00–11:00: {mine}")
    expect(table).not_to_contain_text(theirs)
    assert scroll_width(page) <= viewport["width"]
    name = "desktop" if viewport is DESKTOP else "phone"
    page.screenshot(path=str(shots / f"{name}-own-titles.png"), full_page=True)
