"""Scheduling in a real browser: a panel interview with video, a coordinator for a manager, a
candidate booking through a link, and an external deletion flowing back."""

import datetime as dt
import re

from playwright.sync_api import expect
from sqlalchemy import select

from models import Interview, InterviewStatus, Role
from tests.browser.conftest import log_in
from tests.factories import assign, make_user
from tests.webapp.scheduling_support import link_calendar, make_panel, next_weekday
from tests.webapp.test_scheduling_sync import open_channel


def show_availability(page, names, *, manager=None):
    page.goto("/schedule/")
    expect(page.get_by_role("heading", name="Schedule an interview")).to_be_visible()
    if manager:
        page.get_by_label("Scheduling for").select_option(label=manager)
    for name in names:
        page.get_by_label(name).check()
    page.get_by_label("From").fill(next_weekday(1).isoformat())
    page.get_by_role("button", name="Show availability").click()
    expect(page.get_by_role("heading", name="Pick a slot")).to_be_visible()


def fill_details(page, title):
    page.locator("input[name=slot]").first.check()
    page.get_by_label("Candidate name").fill("Casey Candidate")
    page.get_by_label("Candidate email").fill("casey.candidate@gmail.example")
    page.get_by_label("Title").fill(title)


def test_recruiter_schedules_a_three_person_panel_with_a_video_link(
    app_page, app, session, sandbox, org, recruiter
):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 3)
    log_in(page, recruiter.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedule").click()
    show_availability(page, [u.name for u, _l in panel])
    fill_details(page, "Panel interview: Staff Engineer")
    expect(page.get_by_label("Add video link")).to_be_checked()
    page.get_by_role("button", name="Schedule interview").click()

    expect(page.get_by_role("heading", name="Panel interview: Staff Engineer")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Scheduled")
    sandbox.deliver()  # the aggregator assigns the Meet link
    page.reload()
    expect(page.get_by_role("link", name=re.compile("Join"))).to_have_attribute(
        "href", re.compile(r"https://meet\.sandbox\.example/")
    )
    responses = page.get_by_role("table")
    expect(responses).to_contain_text("casey.candidate@gmail.example")
    for user, _link in panel:
        expect(responses).to_contain_text(user.name)

    page.get_by_role("link", name="All my interviews").click()
    expect(page.get_by_role("heading", name="Upcoming")).to_be_visible()
    expect(page.get_by_role("link", name="Panel interview: Staff Engineer")).to_be_visible()


def test_coordinator_schedules_for_a_manager_without_seeing_their_events(
    app_page, app, session, sandbox, org
):
    page = app_page
    manager = make_user(
        session, org, Role.RECRUITER, email="dana.wright@contoso.example", name="Dana Wright"
    )
    link_calendar(app, session, sandbox, manager)
    coordinator = make_user(
        session, org, Role.COORDINATOR, email="msp@northwind.example", name="Morgan MSP"
    )
    assign(session, coordinator, manager)
    log_in(page, coordinator.email)
    show_availability(page, ["Dana Wright"], manager="Dana Wright")
    content = page.content()
    for ev in sandbox.call("GET", "/events", params={"email": manager.email})["events"]:
        for detail in [
            ev.get("summary"),
            ev.get("description"),
            (ev.get("location") or {}).get("description"),
            *[a.get("email") for a in ev.get("attendees") or []],
        ]:
            if detail and len(detail) >= 5:
                assert detail not in content, detail
    fill_details(page, "Hiring manager screen")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.locator("dl.facts")).to_contain_text("Dana Wright")
    expect(page.locator("dl.facts")).to_contain_text("Scheduled")
    page.get_by_role("link", name="Cancel interview…").click()
    # It asks first, saying who the calendar will tell.
    expect(
        page.get_by_role("heading", name=re.compile("Cancel “Hiring manager screen”"))
    ).to_be_visible()
    expect(page.get_by_role("region", name="Who is told")).to_contain_text(
        "casey.candidate@gmail.example"
    )
    page.get_by_role("button", name="Yes, cancel the interview").click()
    expect(page.locator(".flashes")).to_contain_text("cancelled")


def test_candidate_books_through_a_link(app_page, app, session, sandbox, org, recruiter):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 2)
    log_in(page, recruiter.email)
    page.goto("/schedule/links/")
    for user, _link in panel:
        page.get_by_label(user.name).check()
    page.get_by_label("Candidate name").fill("Jamie Rivera")
    page.get_by_label("Candidate email").fill("jamie.rivera@gmail.example")
    page.get_by_label("Candidate's time zone").select_option("America/New_York")
    page.get_by_label("Interview title").fill("Northwind: Data Engineer")
    page.get_by_label("Window starts").fill(next_weekday(1).isoformat())
    page.get_by_role("button", name="Create link").click()
    url = page.get_by_label("Candidate's link").input_value()
    assert "/c/" in url

    candidate = page.context.browser.new_context(base_url=page.url, timezone_id="Europe/Berlin")
    try:
        tab = candidate.new_page()
        tab.goto(url)
        expect(tab.get_by_role("heading", name=re.compile("Choose a time"))).to_be_visible()
        # The browser's zone is detected and can be changed.
        expect(tab.get_by_label("Times are shown in")).to_have_value("Europe/Berlin")
        tab.locator("input[name=slot]").first.check()
        tab.get_by_role("button", name="Book this time").click()
        expect(tab.get_by_role("heading", name="Your interview is booked")).to_be_visible()
        expect(tab.get_by_role("status")).to_contain_text("Europe/Berlin")
        # Opened again, the used link shows the booking rather than refusing.
        tab.goto(url)
        expect(tab.get_by_role("heading", name="Your interview is booked")).to_be_visible()
        expect(tab.get_by_role("status")).to_contain_text("cannot book another")
    finally:
        candidate.close()
    session.expire_all()
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED


def test_an_external_deletion_shows_as_cancelled_after_delivery(
    app_page, app, session, sandbox, org, recruiter
):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 1)
    log_in(page, recruiter.email)
    show_availability(page, [panel[0][0].name])
    fill_details(page, "Phone screen")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.locator("dl.facts")).to_contain_text("Scheduled")
    interview = session.scalar(select(Interview))
    open_channel(app, session, interview.host_link)
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": interview.host_link.account_email,
            "action": "delete",
            "event_id": interview.events[0].event_id,
        },
    )
    sandbox.deliver()
    page.goto("/interviews/")
    expect(page.get_by_role("alert")).to_contain_text("changed in a calendar")
    expect(page.get_by_role("cell", name="Cancelled in calendar")).to_be_visible()
    page.get_by_role("link", name="Phone screen").click()
    expect(page.get_by_role("alert")).to_contain_text("cancelled in the calendar")


def test_admin_links_a_room_and_a_recruiter_books_it(
    app_page, app, browser, live_server, session, sandbox, org, recruiter
):
    page = app_page
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    log_in(page, admin.email)
    page.goto("/admin/calendar/enterprise/")
    page.get_by_role("button", name="Connect Google Workspace").click()
    # The aggregator's Enterprise Connect page: the Workspace administrator signs in.
    page.get_by_role("button", name="Google Workspace").click()
    page.get_by_label(re.compile("alex.kim@northwind.example")).check()
    page.get_by_label("Password").fill("sandbox")
    page.get_by_role("button", name="Approve").click()
    domain = page.get_by_role("region", name=re.compile("northwind.example"))
    rooms = domain.get_by_role("table", name="Rooms of northwind.example")
    expect(rooms).to_contain_text("Aurora (6 seats)")
    rooms.get_by_label("Link Aurora (6 seats)").check()
    domain.get_by_role("button", name="Link the chosen rooms").click()
    expect(page.get_by_role("status")).to_contain_text("Linking 1 room")
    sandbox.deliver()  # the aggregator answers the room's authorization request
    page.reload()
    aurora = page.get_by_role("row", name=re.compile("Aurora"))
    expect(aurora).to_contain_text("Linked")
    expect(aurora.get_by_role("link", name="Unlink room.aurora@northwind.example…")).to_be_visible()

    context = browser.new_context(base_url=live_server.url)  # the recruiter's own browser
    mine = context.new_page()
    log_in(mine, recruiter.email)
    mine.goto("/schedule/")
    mine.get_by_label("Riley Chen").check()
    mine.get_by_label("From").fill(next_weekday(1).isoformat())
    mine.get_by_label("Room (optional)").select_option(label="Aurora (6 seats)")
    mine.get_by_role("button", name="Show availability").click()
    expect(mine.get_by_text("every slot shown has it free")).to_be_visible()
    fill_details(mine, "Onsite with a room")
    mine.get_by_role("button", name="Schedule interview").click()
    expect(mine.get_by_role("heading", name="Onsite with a room")).to_be_visible()
    # The room answered the invitation like any attendee: it accepted, which books it.
    expect(
        mine.get_by_role("row", name=re.compile("room.aurora@northwind.example"))
    ).to_contain_text("Accepted")
    context.close()


def test_recruiter_moves_an_interview_to_another_week_and_the_notes_survive(
    app_page, app, session, sandbox, org, recruiter
):
    page = app_page
    panel = make_panel(app, session, sandbox, org, 2)
    notes = "Ask about the migration project.\nThe candidate prefers a whiteboard."
    log_in(page, recruiter.email)
    show_availability(page, [u.name for u, _l in panel])
    fill_details(page, "Onsite: Platform Engineer")
    page.get_by_label("Notes for the panel and candidate").fill(notes)
    page.get_by_role("button", name="Schedule interview").click()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Scheduled")
    expect(facts).to_contain_text("Ask about the migration project.")
    when_before = facts.locator("dd").nth(1).inner_text()

    page.get_by_role("link", name="Reschedule…").click()
    expect(
        page.get_by_role("heading", name=re.compile("Reschedule “Onsite: Platform Engineer”"))
    ).to_be_visible()
    expect(page.locator("#current-time")).to_contain_text(when_before.split(" (")[0])
    page.get_by_role("link", name="Next week →").click()
    page.get_by_role("link", name="Next week →").click()
    expect(page.get_by_role("link", name="← Previous week")).to_be_visible()
    page.get_by_label("Duration").select_option("45")
    page.get_by_role("button", name="Show free times").click()
    expect(page.get_by_role("group", name=re.compile("Free start times on"))).not_to_have_count(0)
    page.locator("input[name=slot]").first.check()
    page.get_by_role("button", name="Move the interview").click()

    expect(page.locator(".flashes")).to_contain_text("moved")
    expect(facts).to_contain_text("Scheduled")
    expect(facts).not_to_contain_text(when_before)
    # Two weeks on, 45 minutes, and the notes are still there, in the calendar too.
    times = re.search(r"(\d\d:\d\d)–(\d\d:\d\d)", facts.locator("dd").nth(1).inner_text())
    start, end = (dt.datetime.strptime(t, "%H:%M") for t in times.groups())
    assert end - start == dt.timedelta(minutes=45)
    expect(facts).to_contain_text("The candidate prefers a whiteboard.")
    interview = session.scalar(select(Interview))
    event = next(
        e
        for e in sandbox.call("GET", "/events", params={"email": recruiter.email})["events"]
        if e.get("event_id") == interview.events[0].event_id
    )
    assert event["description"].replace("\r\n", "\n") == notes  # a form sends CRLF
    assert dt.datetime.fromisoformat(event["start"].replace("Z", "+00:00")).date() >= next_weekday(
        1
    ) + dt.timedelta(days=7)
