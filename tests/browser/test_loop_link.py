"""A candidate books a four-session loop (two sessions picked from a pool, one in a room, video)
through their self-scheduling link in a browser, on a desktop and a 390 px phone: start times
with the whole itinerary in the zone the browser reports, booked at once, the itinerary shown and
downloaded as one .ics (a VEVENT per session), then rescheduled from the confirmation page."""

from __future__ import annotations

import re

import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from models import InterviewStatus
from tests.browser.test_candidate_booking import candidate_tab, shot
from tests.webapp.conftest import admin_client  # noqa: F401  (a fixture the room needs)
from tests.webapp.loop_support import CANDIDATE, CANDIDATE_EMAIL, session_interviews
from tests.webapp.scheduling_support import make_panel, next_weekday
from tests.webapp.test_rooms import AURORA, domain, link_rooms  # noqa: F401  (domain: fixture)
from tests.webapp.test_scheduling import actor_of
from webapp import deps
from webapp.services import claims
from webapp.services.loops import compose
from webapp.services.loops import links as loop_links
from webapp.services.loops import plan as loop_plan
from webapp.services.pools import manage

WIDTHS = pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
TITLES = ["Intro", "Coding", "Design", "Systems"]


def the_loop(app, session, sandbox, org, recruiter, admin_client, domain):  # noqa: F811
    """Intro (Sam), Coding (any 1 of Backend), Design (Sam, in Aurora, no video), Systems
    (any 1 of Backend), on quiet days weeks ahead; the candidate in New York."""
    org.name = "Northwind Traders"
    session.commit()
    link_rooms(admin_client, domain, sandbox, AURORA)
    people = make_panel(app, session, sandbox, org, 4)
    (_u1, l1), (u2, _l2), (u3, _l3), (u4, _l4) = people
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    for user in (u2, u3, u4):
        manage.add_member(session, me, pool.id, user.id)
    plan = loop_plan.LoopPlan(
        title="Onsite: Staff Engineer",
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=(
            loop_plan.SessionPlan("Intro", 30, (l1.id,)),
            loop_plan.SessionPlan("Coding", 60, (), pool_id=pool.id, pool_count=1),
            loop_plan.SessionPlan("Design", 45, (l1.id,), room=AURORA, video=False),
            loop_plan.SessionPlan("Systems", 60, (), pool_id=pool.id, pool_count=1),
        ),
        start_date=next_weekday(29),
        days=3,
        tzid="America/New_York",
        candidate_tzid="America/New_York",
    )
    loop = compose.compose_loop(session, deps.sealer.of(app), me, plan)
    _link, token = loop_links.offer_loop(
        session,
        deps.sealer.of(app),
        me,
        loop.uid,
        expires_days=30,
        candidate_may_change=True,
        change_cutoff_hours=24,
    )
    return loop, token


@WIDTHS
def test_the_candidate_books_a_loop_downloads_it_and_reschedules_it(
    browser,
    app,
    live_server,
    session,
    sandbox,
    org,
    recruiter,
    admin_client,  # noqa: F811
    domain,  # noqa: F811
    width,
    tmp_path,
):
    loop, token = the_loop(app, session, sandbox, org, recruiter, admin_client, domain)
    context, tab = candidate_tab(browser, live_server, width, "Asia/Tokyo")
    try:
        tab.goto(f"/c/{token}")
        # The browser's zone is detected (the page reloads once with it).
        expect(tab.get_by_label("Times are shown in")).to_have_value("Asia/Tokyo")
        expect(tab.get_by_text("Northwind Traders")).to_be_visible()
        expect(tab.get_by_role("heading", name="Onsite: Staff Engineer")).to_be_visible()
        expect(tab.get_by_role("heading", name="Choose a start time")).to_be_visible()
        options = tab.locator("fieldset.times:visible .loop-option")
        expect(options.first).to_be_visible()
        first = options.first
        for title in TITLES:
            expect(first.locator(".itinerary")).to_contain_text(title)
        expect(first.locator(".itinerary")).to_contain_text("with ")
        shot(tab, "loop-offer", width)

        # Another day, its start times; one picked and booked.
        days = tab.locator(".loop-days a.cal-day.available")
        assert days.count() >= 2
        second = days.nth(1)
        day = second.get_attribute("data-day")
        second.click()
        expect(second).to_have_attribute("aria-current", "date")
        expect(tab.locator("fieldset.times:visible")).to_have_count(1)
        option = tab.locator(f"#times-{day} .loop-option").first
        span = option.locator(".loop-option-start").inner_text().strip()
        option.locator("input[type=radio]").check()
        shot(tab, "loop-picked", width)
        tab.get_by_role("button", name="Book these interviews").click()
        expect(tab.get_by_role("heading", name="Your interviews are booked")).to_be_visible()
        status = tab.get_by_role("status")
        expect(status).to_contain_text(span[:5])
        expect(status).to_contain_text("Asia/Tokyo")
        expect(tab.locator(".candidate-itinerary li")).to_have_count(4)
        expect(tab.locator(".candidate-itinerary .add-links")).to_have_count(4)
        shot(tab, "loop-booked", width)

        with tab.expect_download() as waiting:
            tab.get_by_role("link", name="Download the itinerary (.ics)").click()
        path = tmp_path / "itinerary.ics"
        waiting.value.save_as(path)
        events = Calendar.from_ical(path.read_bytes()).walk("VEVENT")
        booked = session_interviews(session, loop)
        assert [str(e["UID"]) for e in events] == [
            f"interview-{i.uid}@{re.sub(r'^https?://|:.*$', '', live_server.url)}" for i in booked
        ]
        assert [str(e["SUMMARY"]) for e in events] == TITLES
        assert all(i.status is InterviewStatus.SCHEDULED for i in booked)
        before = [e.decoded("DTSTART") for e in events]

        # Reschedule every session from the confirmation page.
        tab.get_by_role("link", name="Reschedule all sessions").click()
        expect(tab.get_by_role("heading", name="Choose a new start time")).to_be_visible()
        shot(tab, "loop-reschedule", width)
        last = tab.locator(".loop-days a.cal-day.available").last
        target = last.get_attribute("data-day")
        last.click()
        new = tab.locator(f"#times-{target} .loop-option").last
        moved_to = new.locator(".loop-option-start").inner_text().strip()
        new.locator("input[type=radio]").check()
        tab.get_by_role("button", name="Move all sessions to this time").click()
        expect(tab.get_by_role("heading", name="Your interviews were moved")).to_be_visible()
        expect(tab.get_by_role("status")).to_contain_text(moved_to[:5])
        shot(tab, "loop-moved", width)

        # Then only the first session, to an earlier time (the others stay).
        tab.get_by_text("Change one session only").click()
        tab.get_by_role("link", name="move Intro").click()
        expect(tab.get_by_role("heading", name="Move Intro")).to_be_visible()
        shot(tab, "loop-session-move", width)
        tab.locator(".session-times .time-choice input").last.check()
        tab.get_by_role("button", name="Move this session").click()
        expect(tab.get_by_role("heading", name="A session was moved")).to_be_visible()
        shot(tab, "loop-session-moved", width)
    finally:
        context.close()
    moved = session_interviews(session, loop)
    assert [i.id for i in moved] == [i.id for i in booked]  # the same sessions, moved
    assert all(i.status.live for i in moved)
    now = [claims.booked_time(session, i.id) for i in moved]
    assert all(now) and [t[0] for t in now] != before  # type: ignore[index]


def test_the_loop_page_works_without_javascript(
    browser,
    app,
    live_server,
    session,
    sandbox,
    org,
    recruiter,
    admin_client,  # noqa: F811
    domain,  # noqa: F811
):
    loop, token = the_loop(app, session, sandbox, org, recruiter, admin_client, domain)
    context, tab = candidate_tab(browser, live_server, 390, "Asia/Tokyo", javascript=False)
    try:
        tab.goto(f"/c/{token}")
        # No detection without JavaScript: the candidate's zone from the link, changeable.
        expect(tab.get_by_label("Times are shown in")).to_have_value("America/New_York")
        day = tab.locator(".loop-days a.cal-day.available").nth(1)
        chosen = day.get_attribute("data-day")
        day.click()
        assert f"day={chosen}" in tab.url
        expect(tab.locator(f"#times-{chosen}")).to_be_visible()
        expect(tab.locator("fieldset.times:visible")).to_have_count(1)
        shot(tab, "loop-nojs", 390)
        tab.locator(f"#times-{chosen} .loop-option input[type=radio]").first.check()
        tab.get_by_role("button", name="Book these interviews").click()
        expect(tab.get_by_role("heading", name="Your interviews are booked")).to_be_visible()
        expect(tab.locator(".candidate-itinerary li")).to_have_count(4)
    finally:
        context.close()
    assert len(session_interviews(session, loop)) == 4
