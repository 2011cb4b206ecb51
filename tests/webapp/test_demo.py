"""The demo ``make run`` brings up: calendars linked through the real flows at the sandbox
(Business Connect, and a domain with its rooms through Enterprise Connect), interviews written
to the calendars, a candidate link used, and a recruiter able to schedule a three-person panel
across three time zones with a room and video at once."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from models import (
    EventStatus,
    Interview,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    SchedulingLink,
    User,
)
from tests.webapp.scheduling_support import managed, next_weekday
from webapp.dev import demo_history, demo_world
from webapp.dev.demo import DEMO_PASSWORD, seed_demo
from webapp.dev.demo_world import PANEL, PANEL_ROOM
from webapp.services import connect, delegation


def _users(session) -> dict[str, User]:
    return {u.email: u for u in session.scalars(select(User))}


def test_the_demo_links_calendars_schedules_and_lets_a_recruiter_book_a_panel(
    app, session, client, auth, sandbox, live_server
):
    assert seed_demo(session)
    org_id = session.scalar(select(User.organisation_id))
    done = demo_world.populate(app, org_id, sandbox.url, deliver=sandbox.deliver, timeout=60)
    session.expire_all()
    users = _users(session)

    # People linked by Business Connect, the Fabrikam mailboxes and rooms by Enterprise Connect.
    links = {email: connect.link_of(session, users[email].id) for email in users}
    for email, _provider in demo_world.BUSINESS_LINKS:
        assert links[email].status is LinkStatus.ACTIVE and links[email].mode is LinkMode.BUSINESS
    fabrikam = [e for e in users if e.endswith("@fabrikam.example")]
    linked = [e for e in fabrikam if links[e] and links[e].status is LinkStatus.ACTIVE]
    assert "anna.becker@fabrikam.example" in linked and len(linked) == len(fabrikam) - 1
    assert all(links[e].mode is LinkMode.ENTERPRISE for e in linked)
    # The CEO's office is outside the service account's scope: a real refusal, shown as such.
    assert links["ceo.office@fabrikam.example"] is None
    rooms = {
        r.email: r.status
        for r in session.scalars(
            select(MailboxRequest).where(MailboxRequest.kind == MailboxKind.ROOM)
        )
    }
    assert rooms == dict.fromkeys(demo_world.ENTERPRISE_ROOMS, MailboxStatus.LINKED)
    assert done.mailboxes["linked"] == len(fabrikam) - 1
    # Sam's account sees Noah's calendar: Noah is on panels without linking anything.
    owner, colleague, _name = demo_world.DELEGATED
    assert done.delegated == [colleague]
    noah = users[colleague]
    assert noah.role is Role.INTERVIEWER
    (noah_link,) = session.scalars(select(ProfileLink).where(ProfileLink.user_id == noah.id))
    assert noah_link.is_delegated and noah_link.delegated_from_id == links[owner].id
    assert delegation.usable(session, noah_link)

    # The interviews are in the calendars (the host's events exist at the sandbox).
    interviews = list(session.scalars(select(Interview).order_by(Interview.id)))
    assert len(interviews) == 3 + len(demo_history.PAST)
    now = dt.datetime.now(dt.UTC)
    held_events = {}
    for interview in interviews:
        assert interview.status is InterviewStatus.SCHEDULED
        assert all(ev.status is EventStatus.CONFIRMED for ev in interview.events)
        [held_events[interview.id]] = [
            e
            for e in managed(app, session, interview.host_link)
            if e.event_id == interview.events[0].event_id
        ]
    upcoming, past = interviews[:3], interviews[3:]
    for interview in upcoming:
        assert held_events[interview.id].start > now
        assert held_events[interview.id].join_url  # every upcoming demo interview has video
    # The past ones took place on the weekdays planned, booked through the same flows while
    # the clock stood on the day before; their events are in the calendars, the room's too.
    for interview, plan in zip(past, demo_history.PAST, strict=True):
        event = held_events[interview.id]
        day = demo_history.weekday_before(now.date(), plan.weekdays_ago)
        assert event.end < now and event.start.astimezone(dt.UTC).date() == day
        assert event.summary == plan.title
        attendees = {a.email: a.status for a in event.attendees}
        assert set(plan.panel[1:]) | {plan.candidate_email} <= set(attendees)
        if plan.room:
            assert attendees[plan.room] == "accepted"
        assert done.interviews[3 + demo_history.PAST.index(plan)].startswith(plan.title)
    # The first is the three-zone panel, with its room (which accepted the invitation).
    [panel_event] = [
        e
        for e in managed(app, session, interviews[0].host_link)
        if e.event_id == interviews[0].events[0].event_id
    ]
    assert {a.email: a.status for a in panel_event.attendees}[PANEL_ROOM] == "accepted"
    assert {PANEL[1], PANEL[2]} <= {a.email for a in panel_event.attendees}
    links_used = {link.state for link in session.scalars(select(SchedulingLink))}
    assert links_used == {"used", "open"}
    # Both links let the candidate change what they book, so the used link's page (printed on
    # the console) shows its candidate how, on a first run.
    assert {
        (link.candidate_may_change, link.change_cutoff_hours)
        for link in session.scalars(select(SchedulingLink))
    } == {(True, demo_world.CANDIDATE_CUTOFF_HOURS)}
    assert done.candidate_page and done.candidate_page.startswith(app.config["PUBLIC_BASE_URL"])
    candidate_page = client.get(
        done.candidate_page.removeprefix(app.config["PUBLIC_BASE_URL"])
    ).get_data(as_text=True)
    assert "Need to change it?" in candidate_page
    assert "You can reschedule or cancel until" in candidate_page
    assert "Reschedule</a>" in candidate_page and "Cancel the interview</a>" in candidate_page

    # The recruiter logs in: the three panel members are offered, and a three-zone panel with
    # a room and video can be scheduled at once.
    assert auth.login(demo_world.RECRUITER, DEMO_PASSWORD).status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert 'id="first-step"' not in home
    listed = client.get("/interviews/").get_data(as_text=True)
    upcoming_part, past_part = listed.split('id="past"')[0], listed.split('id="past"')[1]
    past_part = past_part.split('id="cancelled"')[0]
    assert "Staff engineer – panel interview" in upcoming_part
    for plan in demo_history.PAST:
        assert plan.title in past_part and plan.title not in upcoming_part
    panel_ids = [links[e].id for e in PANEL]
    assert {users[e].timezone for e in PANEL} == {
        "Europe/London",
        "America/New_York",
        "Europe/Berlin",
    }
    form = client.get("/schedule/").get_data(as_text=True)
    for link_id in panel_ids:
        assert f'value="{link_id}"' in form
    assert PANEL_ROOM in form
    day = next_weekday(1).isoformat()
    query = "&".join(f"panel={i}" for i in panel_ids)
    url = f"/schedule/?{query}&days=14&start_date={day}&tzid=Europe/London&room={PANEL_ROOM}"
    page = client.get(url).get_data(as_text=True)
    slots = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', page)
    # Their working hours (London 09:00–17:30, New York 08:00–17:00, Berlin 10:00–19:00)
    # overlap 13:00–17:30 London: a real choice of times over two weeks, not one slot.
    assert len(slots) >= 5, slots
    assert all(13 <= dt.datetime.fromisoformat(s).hour < 17 for s in slots), slots
    slot = slots[-1]
    data = {
        "panel": [str(i) for i in panel_ids],
        "duration": "60",
        "days": "14",
        "start_date": day,
        "required": "all",
        "tzid": "Europe/London",
        "room": PANEL_ROOM,
        "slot": slot,
        "candidate_name": "Kai Tanaka",
        "candidate_email": "kai.tanaka@candidates.example",
        "title": "Backend engineer – panel",
        "video": "on",
        "candidate_tzid": "Asia/Tokyo",
    }
    response = auth.post("/schedule/", data, form_page=url)
    assert response.status_code == 303, response.get_data(as_text=True)
    uid = response.headers["Location"].rsplit("/", 1)[1]
    session.expire_all()
    interview = session.scalar(select(Interview).where(Interview.uid == uid))
    assert interview.status is InterviewStatus.SCHEDULED
    sandbox.deliver()  # the aggregator assigns the conferencing link asynchronously
    [event] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    attendees = {a.email for a in event.attendees}
    assert {PANEL[1], PANEL[2], PANEL_ROOM} <= attendees
    assert {a.status for a in event.attendees if a.email == PANEL_ROOM} == {"accepted"}
    assert event.join_url  # the host's default video (Google Meet for a Google calendar)
