"""The recruiter's self-scheduling links in a browser, on a desktop and a 390 px phone: each
row names the candidate and title, the open link copies to the clipboard with one button (the
browser context is granted clipboard access) and the page says so; nothing scrolls sideways.
Without JavaScript the button stays hidden and the link is still there to select."""

from __future__ import annotations

import os
from html import unescape

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_candidate_links import NAME, new_link
from tests.webapp.test_scheduling import actor_of
from webapp.services import candidate_links

SHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")


def links(app, session, sandbox, org, recruiter):
    panel = make_panel(app, session, sandbox, org, 2)
    recruiter.timezone = "Asia/Tokyo"
    session.commit()
    first, token = new_link(app, session, recruiter, panel)
    second, _token = new_link(
        app,
        session,
        recruiter,
        panel,
        candidate_name="Robin Zhou-Fairweather",
        candidate_email="robin.zhou@mail.example",
        title="Portfolio review: Senior Product Designer, Payments",
    )
    third, _token = new_link(
        app, session, recruiter, panel, candidate_name="Ana Lima", title="Phone screen"
    )
    candidate_links.revoke(session, actor_of(recruiter), third.id)
    return first, token


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_the_list_names_each_link_and_copies_it(
    browser, live_server, app, session, sandbox, org, recruiter, width, tmp_path
):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    first, token = links(app, session, sandbox, org, recruiter)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, recruiter.email)
        page.goto("/schedule/links/")
        rows = page.locator("table.links-list tbody tr")
        expect(rows).to_have_count(3)
        row = rows.filter(has_text=NAME)
        expect(row).to_contain_text("Interview with Northwind (cand-title-4411)")
        expect(rows.filter(has_text="Ana Lima")).to_contain_text("Revoked")
        expect(page.get_by_text("Times in your time zone, Asia/Tokyo.")).to_be_visible()

        button = page.get_by_role("button", name=f"Copy the link for {NAME}")
        expect(button).to_be_visible()
        button.click()
        expect(button).to_have_text("Copied")
        expect(page.locator("#copy-status")).to_have_text("Link copied to the clipboard.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{live_server.url}/c/{token}"
        # The revoked link offers nothing to copy.
        expect(rows.filter(has_text="Ana Lima").locator("button[data-copy]")).to_have_count(0)

        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
        inside = page.evaluate(
            "(w => w.scrollWidth - w.clientWidth)(document.querySelector('.table-wrap'))"
        )
        assert inside <= 0, f"the list scrolls {inside}px sideways at {width}px"
        shots = SHOTS or str(tmp_path)
        page.screenshot(path=os.path.join(shots, f"links-{width}.png"), full_page=True)
        page.locator("table.links-list").screenshot(
            path=os.path.join(shots, f"links-list-{width}.png")
        )
    finally:
        context.close()


def test_without_javascript_the_link_is_still_there_to_select(
    browser, live_server, app, session, sandbox, org, recruiter
):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    _first, token = links(app, session, sandbox, org, recruiter)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, recruiter.email)
        page.goto("/schedule/links/")
        field = page.get_by_role("textbox", name=f"Link for {NAME}")
        expect(field).to_have_value(f"{live_server.url}/c/{token}")
        expect(page.locator("button[data-copy]").first).to_be_hidden()
        assert token in unescape(page.content())
    finally:
        context.close()
