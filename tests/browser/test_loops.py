"""An interview loop in a real browser: a recruiter composes a four-session onsite (a room, video,
two sessions picking from an interviewer pool), picks a start time from the itineraries and books
every session; the pages on a desktop and on a 390 px phone (screenshots to look at)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import Interview, InterviewLoop, InterviewStatus, LoopState, Role
from tests.browser.conftest import log_in
from tests.conftest import AuthActions
from tests.factories import make_user
from tests.webapp.scheduling_support import make_panel, next_weekday
from tests.webapp.test_enterprise import connect_domain
from tests.webapp.test_rooms import AURORA, link_rooms
from tests.webapp.test_scheduling import actor_of
from webapp.services.pools import manage

#: Where to copy the screenshots for a person to look at (unset: they stay in tmp_path).
SHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")


def shot(target, tmp_path, name: str, **kw):
    path = os.path.join(SHOTS or str(tmp_path), f"loop-{name}.png")
    target.screenshot(path=path, **kw)


@pytest.fixture
def world(app, session, org, sandbox, live_server, recruiter):
    """Riley (recruiter), Morgan (named), a pool "Backend" of three and a shadow, the room
    Aurora linked through Enterprise Connect."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(admin.email)
    domain = connect_domain(client, auth, session, sandbox, "google")
    link_rooms((client, auth), domain, sandbox, AURORA)
    people = make_panel(app, session, sandbox, org, 5)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    for user, _link in people[1:4]:
        manage.add_member(session, me, pool.id, user.id)
    manage.add_member(session, me, pool.id, people[4][0].id, is_shadow=True)
    return {
        "named": people[0][0],
        "pool": [u for u, _l in people[1:4]],
        "shadow": people[4][0],
        "pool_id": pool.id,
    }


def no_sideways_scroll(page):
    width = page.evaluate("document.scrollingElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"page scrolls sideways: {width} > {viewport}"


SESSIONS = [
    # title, length, named?, pool?, room?
    ("Intro", "45", True, False, True),
    ("Coding", "60", False, True, False),
    ("System design", "60", True, False, True),
    ("Values", "45", False, True, False),
]


def compose(page, world, email="ada@gmail.example"):
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Loops").click()
    expect(page.get_by_role("heading", name="Interview loops")).to_be_visible()
    page.get_by_label("Loop title").fill("Onsite: Staff Engineer")
    page.get_by_label("Candidate name").fill("Ada Lovelace")
    page.get_by_label("Candidate email").fill(email)
    # Weeks ahead, where the seeded calendars are quiet.
    page.get_by_label("Search from").fill(next_weekday(29).isoformat())
    page.get_by_label("For (days)").fill("3")
    for n, (title, length, named, pooled, room) in enumerate(SESSIONS, start=1):
        block = page.locator(f"#session-{n}")
        block.get_by_label("Title").fill(title)
        block.get_by_label("Length").select_option(length)
        if named:
            block.get_by_label(world["named"].name, exact=True).check()
        if pooled:
            block.get_by_label("from the pool").select_option(label="Backend")
            block.get_by_label("and any").fill("1")
        if room:
            block.get_by_label("Room").select_option(AURORA)
    page.get_by_role("button", name="Find start times").click()


def test_recruiter_books_a_four_session_loop_with_a_room_video_and_pool_picks(
    browser, live_server, session, sandbox, recruiter, world, tmp_path
):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    log_in(page, recruiter.email)
    # A mistake first: the form comes back with the reason at the field and everything typed.
    compose(page, world, email="not-an-address")
    problem = page.locator("#candidate_email-error")
    expect(problem).to_contain_text("candidate's email")
    expect(page.get_by_label("Candidate email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#session-3").get_by_label("Title")).to_have_value("System design")
    expect(page.locator("#session-2").get_by_label("from the pool")).to_have_value(
        str(world["pool_id"])
    )
    shot(
        page.locator("section[aria-labelledby=compose-heading]"), tmp_path, "compose-error-desktop"
    )
    page.get_by_label("Candidate email").fill("ada@gmail.example")
    page.get_by_role("button", name="Find start times").click()
    expect(page.get_by_role("heading", name="Start times")).to_be_visible()
    options = page.locator(".loop-option")
    expect(options.first).to_be_visible()
    first = options.first
    expect(first.locator(".itinerary li")).to_have_count(4)
    expect(first).to_contain_text("Aurora")
    expect(first).to_contain_text("Picked")
    pool_names = [u.name for u in world["pool"]]
    reason = first.locator(".itinerary-why").first
    reason.get_by_text("Why").click()  # folded: the list stays readable
    why = reason.inner_text()
    coding_pick = reason.locator("summary").inner_text().removeprefix("Why ").rstrip("?")
    assert coding_pick in pool_names
    assert all(name in why for name in pool_names) and "shadow" in why
    shot(page, tmp_path, "options-desktop", full_page=True)
    shot(first, tmp_path, "first-option-desktop")
    page.get_by_role("button", name="Book every session").click()
    expect(page.get_by_role("heading", name="Itinerary")).to_be_visible()
    expect(page.locator(".itinerary.booked > li")).to_have_count(4)
    # The booked panel is the one shown: the Coding session's pick.
    expect(page.locator("#booked-2")).to_contain_text(coding_pick)
    shot(page, tmp_path, "booked-desktop", full_page=True)

    session.expire_all()
    loop = session.scalar(select(InterviewLoop))
    assert loop.state is LoopState.BOOKED
    interviews = [session.get(Interview, s.interview_id) for s in loop.sessions]
    assert all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    events = {
        e["event_id"]: e
        for e in sandbox.call("GET", "/events", params={"email": recruiter.email})["events"]
        if (e.get("event_id") or "").startswith("rdv-")
    }
    assert len(events) == 4
    for (title, _len, _named, pooled, room), interview in zip(SESSIONS, interviews, strict=True):
        event = events[interview.events[0].event_id]
        emails = {a["email"] for a in event.get("attendees", [])}
        assert (AURORA in emails) is room, title
        assert "ada@gmail.example" in emails
        assert event.get("conferencing") or event.get("conferencing_profile_id") or True
        if pooled:
            assert emails & {u.email for u in world["pool"]}
            assert world["shadow"].email not in emails

    # The same pages on a phone: nothing scrolls sideways.
    context.close()
    phone = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    phone.set_default_timeout(20_000)
    tab = phone.new_page()
    log_in(tab, recruiter.email)
    tab.goto(f"/schedule/loops/{loop.uid}")
    expect(tab.get_by_role("heading", name="Itinerary")).to_be_visible()
    no_sideways_scroll(tab)
    shot(tab, tmp_path, "booked-phone", full_page=True)
    tab.goto(f"/schedule/loops/{loop.uid}/reschedule")
    expect(tab.get_by_role("heading", name="Move the loop to")).to_be_visible()
    no_sideways_scroll(tab)
    shot(tab, tmp_path, "move-phone", full_page=True)
    shot(tab.locator(".loop-option").first, tmp_path, "move-option-phone")
    tab.goto("/schedule/loops/")
    no_sideways_scroll(tab)
    shot(tab, tmp_path, "compose-phone", full_page=True)
    phone.close()
