"""An assistant whose calendar account sees managers' calendars puts one of them on panels from
their calendar page; a recruiter then schedules a panel with that manager, seeing only when
they are busy. Screenshots (desktop and 390 px) of both pages go to tmp_path (or
RENDEZVOUS_SCREENSHOTS) for a person to look at."""

import os
import re
import shutil

from playwright.sync_api import expect
from sqlalchemy import select

from models import Interview, InterviewStatus, ProfileLink, Role, User
from tests.browser.conftest import log_in
from tests.browser.test_business_connect import consent
from tests.browser.test_scheduling import fill_details, show_availability
from tests.factories import make_org, make_user

SCREENSHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")
DANA = "dana.wright@contoso.example"


def shoot(page, tmp_path, name):
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        path = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        # Nothing but a scrolling table is wider than the screen.
        wide = page.evaluate(
            """w => [...document.querySelectorAll('main *')].filter(e =>
                e.getBoundingClientRect().right > w + 1 && !e.closest('.table-wrap')
            ).map(e => e.tagName)""",
            width,
        )
        assert not wide, (name, width, wide)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        if SCREENSHOTS:
            os.makedirs(SCREENSHOTS, exist_ok=True)
            shutil.copy(path, SCREENSHOTS)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_assistant_adds_a_manager_and_a_recruiter_schedules_a_panel_with_them(
    app_page, browser, live_server, sandbox, session, org, recruiter, tmp_path
):
    page = app_page
    # Another organisation has an account at the manager's address: never matched.
    neighbour = make_org(session, name="Neighbour Ltd")
    twin = make_user(session, neighbour, Role.RECRUITER, email=DANA, name="Not Dana")
    assistant = make_user(session, org, Role.RECRUITER, email="pat@northwind.example", name="Pat")
    log_in(page, assistant.email)
    page.goto("/profile/calendar/")
    consent(page, "Microsoft 365", "pa.office@contoso.example")
    colleagues = page.get_by_role("region", name="Colleagues' calendars")
    expect(colleagues).to_be_visible()
    colleagues.get_by_label("Calendar", exact=True).select_option(label="Dana Wright — Calendar")
    colleagues.get_by_label("Colleague's work email").fill(assistant.email)  # their own
    colleagues.get_by_role("button", name="Add colleague").click()
    expect(page.get_by_role("alert")).to_contain_text("That is your own address")
    colleagues = page.get_by_role("region", name="Colleagues' calendars")
    colleagues.get_by_label("Colleague's work email").fill(DANA)
    colleagues.get_by_label("Their name").fill("Dana Wright")
    colleagues.get_by_role("button", name="Add colleague").click()
    expect(page.get_by_role("status")).to_contain_text("Dana Wright can now be put on panels")
    colleagues = page.get_by_role("region", name="Colleagues' calendars")
    row = colleagues.get_by_role("row", name=re.compile("Dana Wright"))
    expect(row).to_contain_text("On panels")
    expect(row).to_contain_text(DANA)
    # Dana's calendar is no longer offered; the other two are.
    options = colleagues.get_by_label("Calendar", exact=True).locator("option")
    expect(options).to_have_text(["Lee Okafor — Calendar", "Maria Garcia — Calendar (read-only)"])
    shoot(page, tmp_path, "calendar-colleagues")
    page.get_by_role("button", name="Log out").click()

    # A recruiter schedules a panel with Dana, who has never linked anything themselves.
    log_in(page, recruiter.email)
    show_availability(page, ["Riley Chen", "Dana Wright"])
    main = page.locator("main")
    expect(main).to_contain_text("Dana Wright")
    # Busy blocks say busy, never what the events are.
    titles = [e["summary"] for e in sandbox.events(email=DANA) if len(e.get("summary") or "") > 5]
    assert titles
    body = main.inner_text()
    assert not [t for t in titles if t in body]
    shoot(page, tmp_path, "schedule-with-delegated")
    fill_details(page, "Panel with a delegated calendar")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.get_by_role("heading", name="Panel with a delegated calendar")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Scheduled")

    session.expire_all()
    dana = session.scalar(select(User).where(User.organisation_id == org.id, User.email == DANA))
    assert dana.role is Role.INTERVIEWER
    link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == dana.id))
    assert link.is_delegated and not link.has_tokens
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED and link.id in interview.panel_link_ids
    session.refresh(twin)
    assert twin.name == "Not Dana" and twin.role is Role.RECRUITER
