"""Scheduling end to end against the sandbox aggregator: availability, interviews with video,
reschedule, cancel, coordinators, and what is (not) stored."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import event, select, text

from models import (
    AuditEntry,
    EventStatus,
    Interview,
    InterviewStatus,
    Role,
    SchedulingPreference,
    utcnow,
)
from tests.factories import assign, make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, make_panel, managed, next_weekday
from webapp import deps
from webapp.services import Actor
from webapp.services.availability import free_slots, model
from webapp.services.errors import Forbidden, Invalid, NotFound, SlotTaken
from webapp.services.scheduling import access, booking, reading, rescheduling

TITLE = "Onsite: Staff Engineer (secret-title-7731)"
CANDIDATE = "Casey Candidate"
CANDIDATE_EMAIL = "casey.candidate@gmail.example"
NOTES = "Bring the system design notes (secret-notes-9912)"


@pytest.fixture
def panel_of_three(app, session, sandbox, org, recruiter):
    """Three colleagues with linked calendars besides Riley (``panel`` has two)."""
    return make_panel(app, session, sandbox, org, 3)


def actor_of(user) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role)


def broker_cipher(app):
    return (deps.broker.of(app), deps.cipher.of(app))


def query_for(panel, **kw) -> model.Query:
    return model.Query(
        panel_link_ids=tuple(link.id for _u, link in panel),
        start_date=kw.pop("start_date", next_weekday(1)),
        days=kw.pop("days", 5),
        **kw,
    )


def first_slot(app, session, user, query):
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(user), query)
    assert grid.slots, "the seeded panel should have a common free slot"
    return grid.slots[0]


def schedule(app, session, user, query, slot_start, *, video=True, run=True):
    broker, cipher = broker_cipher(app)
    interview, payload = booking.create_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(user),
        booking.NewInterview(
            query=query,
            start=slot_start,
            candidate_name=CANDIDATE,
            candidate_email=CANDIDATE_EMAIL,
            title=TITLE,
            notes=NOTES,
            video=video,
        ),
        jobs=deps.jobs.of(app) if run else HeldJobs(),  # run: the write job runs at once
    )
    session.expire_all()
    return session.get(Interview, interview.id), payload


def sealer_of(app):
    return deps.sealer.of(app)


def requests_of(sandbox, route: str) -> int:
    return sandbox.stats()["requests"].get(route, 0)


# --- availability ------------------------------------------------------------------------------


def test_grid_is_one_availability_call_and_respects_working_hours_and_now(
    app, session, sandbox, recruiter, panel_of_three
):
    sandbox.call("DELETE", "/stats")
    query = query_for(panel_of_three)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    assert grid.slots
    assert requests_of(sandbox, "POST /v1/availability") == 1
    assert requests_of(sandbox, "GET /v1/free_busy") == 3  # one read per member, concurrently
    london = model.zone("Europe/London")
    now = utcnow()
    for slot in grid.slots:
        local_start, local_end = slot.start.astimezone(london), slot.end.astimezone(london)
        assert slot.start > now
        assert local_start.isoweekday() <= 5
        assert local_start.hour * 60 + local_start.minute >= 9 * 60
        assert local_end.hour * 60 + local_end.minute <= 17 * 60 + 30
        assert slot.end - slot.start == dt.timedelta(minutes=60)
    # Busy blocks are times and status only (titles only ever on the viewer's own lane, when
    # asked for: tests/webapp/test_own_titles.py).
    for blocks in grid.busy.values():
        for block in blocks:
            assert set(
                vars(block) if hasattr(block, "__dict__") else block.__dataclass_fields__
            ) == {"start", "end", "status", "titles"}
            assert block.titles == ()


def test_the_last_local_day_keeps_its_evening_in_the_busy_overlay(
    app, session, sandbox, recruiter, panel_of_three
):
    """Free/busy is asked for by date in the viewer's zone, ``to`` being the day after the last
    day shown: an evening event on the last day in Los Angeles (already the next day in UTC)
    stays on the overlay. The strict sandbox refuses the UTC instants sent before (422)."""
    user, link = panel_of_three[0]
    query = query_for(panel_of_three, days=3, tzid="America/Los_Angeles")
    last = query.start_date + dt.timedelta(days=2)
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": link.account_email,
            "action": "create",
            "summary": "Late call",
            "start": {"time": f"{last}T20:00:00", "tzid": "America/Los_Angeles"},
            "end": {"time": f"{last}T21:00:00", "tzid": "America/Los_Angeles"},
        },
    )
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    assert grid.busy_problems == {}
    days = free_slots.by_day(grid, "America/Los_Angeles")
    assert days[-1].date == last
    assert "20:00–21:00" in {times for times, _status in days[-1].busy[link.id]}


def test_per_user_working_hours_override_the_organisation_default(
    app, session, sandbox, recruiter, panel_of_three, org
):
    user, _link = panel_of_three[0]
    session.add(
        SchedulingPreference(
            organisation_id=org.id,
            user_id=user.id,
            start_minute=13 * 60,
            end_minute=15 * 60,
            weekdays="12345",
        )
    )
    session.commit()
    slot = first_slot(app, session, recruiter, query_for(panel_of_three, days=3))
    assert slot.start.astimezone(model.zone("Europe/London")).hour >= 13


def test_at_least_n_of_m_finds_slots_when_all_must_attend_finds_fewer(
    app, session, sandbox, recruiter, panel_of_three
):
    broker, cipher = broker_cipher(app)
    every = free_slots.grid(
        session, broker, cipher, actor_of(recruiter), query_for(panel_of_three, days=2)
    )
    some = free_slots.grid(
        session, broker, cipher, actor_of(recruiter), query_for(panel_of_three, days=2, required=1)
    )
    assert len(some.slots) >= len(every.slots) and len(some.slots) < 512, len(some.slots)
    assert all(len(s.participants) == 3 for s in every.slots)
    assert all(len(s.participants) >= 1 for s in some.slots)


def test_bad_queries_are_refused_with_a_message(app, session, sandbox, recruiter, panel_of_three):
    broker, cipher = broker_cipher(app)
    me = actor_of(recruiter)
    for bad in (
        query_for(panel_of_three, duration=7),
        query_for(panel_of_three, days=40),
        query_for(panel_of_three, required=9),
        query_for(panel_of_three, tzid="Mars/Base"),
        query_for(panel_of_three, start_date=dt.date.today() - dt.timedelta(days=2)),
        model.Query(panel_link_ids=()),
    ):
        with pytest.raises(Invalid):
            free_slots.grid(session, broker, cipher, me, bad)


# --- create, read back, reschedule, cancel ------------------------------------------------------


def test_three_person_panel_interview_with_video_is_written_once_and_read_back(
    app, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three)
    slot = first_slot(app, session, recruiter, query)
    sandbox.call("DELETE", "/stats")
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    # One availability re-check plus one write for the host's calendar.
    assert requests_of(sandbox, "POST /v1/availability") == 1
    assert requests_of(sandbox, "POST /v1/calendars/<calendar_id>/events") == 1
    assert interview.status is InterviewStatus.SCHEDULED
    [row] = interview.events
    assert row.status is EventStatus.CONFIRMED
    assert row.event_id == f"rdv-{interview.uid}-0"
    host = interview.host_link
    sandbox.deliver()  # the aggregator assigns the conferencing link asynchronously
    [ev] = [e for e in managed(app, session, host) if e.event_id == row.event_id]
    assert ev.summary == TITLE and ev.start == slot.start
    emails = {a.email for a in ev.attendees}
    assert emails == {CANDIDATE_EMAIL} | {link.account_email for _u, link in panel_of_three}
    assert ev.join_url and "meet.sandbox.example" in ev.join_url

    view = reading.view_interview(session, *broker_cipher(app), actor_of(recruiter), interview.uid)
    assert view.event.join_url == ev.join_url
    assert {a.status for a in view.event.attendees} <= {"needs_action", "accepted", None}


def test_nothing_of_the_event_is_stored_in_the_database_or_audit(
    app, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three)
    slot = first_slot(app, session, recruiter, query)
    schedule(app, session, recruiter, query, slot.start)
    engine = deps.database.of(app).engine
    from models import Base

    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                blob = repr(tuple(row))
                for secret in (
                    "secret-title-7731",
                    "secret-notes-9912",
                    CANDIDATE_EMAIL,
                    CANDIDATE,
                ):
                    assert secret not in blob, (table.name, secret)


def test_interview_page_shows_the_time_in_the_viewers_zone_and_the_join_link(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    recruiter.timezone = "America/New_York"
    session.commit()
    query = query_for(panel_of_three)
    slot = first_slot(app, session, recruiter, query)
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    sandbox.deliver()
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    local = slot.start.astimezone(model.zone("America/New_York"))
    assert local.strftime("%A %d %B %Y, %H:%M") in page and "America/New_York" in page
    assert "meet.sandbox.example" in page and TITLE in page and "No reply" in page


def test_reschedule_moves_the_same_event(app, session, sandbox, recruiter, panel_of_three):
    query = query_for(panel_of_three)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    interview, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    later = grid.slots[-1].start
    moved, payload = rescheduling.reschedule_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(recruiter),
        interview.uid,
        later,
        jobs=deps.jobs.of(app),  # the write job runs at once
    )
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.SCHEDULED
    ours = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id.startswith(f"rdv-{interview.uid}")
    ]
    assert len(ours) == 1 and ours[0].start == later and ours[0].summary == TITLE
    assert {a.email for a in ours[0].attendees} >= {CANDIDATE_EMAIL}


def test_cancel_deletes_the_event(app, client, auth, session, sandbox, recruiter, panel_of_three):
    query = query_for(panel_of_three)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    auth.login(recruiter.email)
    # It tells the whole panel and the candidate, so it asks first: the page says who.
    show = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert f'href="/interviews/{interview.uid}/cancel"' in show
    confirm = client.get(f"/interviews/{interview.uid}/cancel").get_data(as_text=True)
    assert CANDIDATE_EMAIL in confirm and "Yes, cancel the interview" in confirm
    for user, _link in panel_of_three:
        assert user.email in confirm
    unconfirmed = auth.post(
        f"/interviews/{interview.uid}/cancel", form_page=f"/interviews/{interview.uid}/cancel"
    )
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["Location"].endswith(f"/interviews/{interview.uid}/cancel")
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.SCHEDULED
    response = auth.post(
        f"/interviews/{interview.uid}/cancel",
        {"confirm": "yes"},
        form_page=f"/interviews/{interview.uid}/cancel",
    )
    assert response.status_code == 303
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.CANCELLED
    assert interview.events[0].status is EventStatus.DELETED
    assert not [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert "interview.cancelled" in [a.action for a in session.scalars(select(AuditEntry))]


def test_schedule_page_flow_over_http(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    auth.login(recruiter.email)
    panel_qs = "&".join(f"panel={link.id}" for _u, link in panel_of_three)
    day = next_weekday(1).isoformat()
    page = client.get(
        f"/schedule/?{panel_qs}&duration=60&days=5&start_date={day}&tzid=Europe/London"
    ).get_data(as_text=True)
    assert "Free start times on" in page
    slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', page).group(1)
    data = {
        "panel": [str(link.id) for _u, link in panel_of_three],
        "duration": "60",
        "days": "5",
        "start_date": day,
        "required": "all",
        "required_n": "1",
        "buffer_before": "0",
        "buffer_after": "0",
        "tzid": "Europe/London",
        "slot": slot,
        "candidate_name": CANDIDATE,
        "candidate_email": CANDIDATE_EMAIL,
        "title": TITLE,
        "notes": "",
        "video": "on",
        "candidate_tzid": "America/New_York",
    }
    response = auth.post("/schedule/", data, form_page=f"/schedule/?{panel_qs}&start_date={day}")
    assert response.status_code == 303, response.get_data(as_text=True)
    uid = response.headers["Location"].rsplit("/", 1)[1]
    interview = session.scalar(select(Interview).where(Interview.uid == uid))
    assert interview.status is InterviewStatus.SCHEDULED
    # Bad input: clear message, nothing written.
    before = session.scalar(select(text("count(*)")).select_from(Interview))
    bad = auth.post(
        "/schedule/",
        dict(data, candidate_email="not-an-email"),
        form_page=f"/schedule/?{panel_qs}&start_date={day}",
    )
    assert bad.status_code == 400 and "candidate&#39;s email" in bad.get_data(as_text=True)
    assert session.scalar(select(text("count(*)")).select_from(Interview)) == before


def test_a_taken_slot_is_refused_with_fresh_slots(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three)
    slot = first_slot(app, session, recruiter, query)
    host_email = panel_of_three[0][1].account_email
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": host_email,
            "action": "create",
            "summary": "Dentist",
            "start": slot.start.isoformat().replace("+00:00", "Z"),
            "end": slot.end.isoformat().replace("+00:00", "Z"),
        },
    )
    with pytest.raises(SlotTaken):
        schedule(app, session, recruiter, query, slot.start)
    assert session.scalar(select(Interview)) is None


# --- who may do what ----------------------------------------------------------------------------


@pytest.fixture
def coordinator_setup(app, session, sandbox, org):
    manager = make_user(
        session, org, Role.RECRUITER, email="dana.wright@contoso.example", name="Dana Wright"
    )
    link_calendar(app, session, sandbox, manager)
    other = make_user(
        session, org, Role.RECRUITER, email="lee.okafor@contoso.example", name="Lee Okafor"
    )
    link_calendar(app, session, sandbox, other)
    coordinator = make_user(
        session, org, Role.COORDINATOR, email="msp@northwind.example", name="Morgan MSP"
    )
    assign(session, coordinator, manager)
    return coordinator, manager, other


def test_coordinator_schedules_for_an_assigned_manager_and_sees_free_busy_only(
    app, client, auth, session, sandbox, coordinator_setup
):
    coordinator, manager, other = coordinator_setup
    mlink = access.host_link_for(session, actor_of(manager), None)[0]
    auth.login(coordinator.email)
    day = next_weekday(1).isoformat()
    asked = f"/schedule/?panel={mlink.id}&on_behalf_of={manager.id}&days=10&start_date={day}"
    slots_page = client.get(asked).get_data(as_text=True)
    assert "Free start times on" in slots_page and "block-busy" not in slots_page
    overlay = unescape(re.search(r'data-busy-url="([^"]+)"', slots_page).group(1))
    fragment = client.get(overlay).get_data(as_text=True)
    inline = client.get(asked + "&busy=1").get_data(as_text=True)
    assert "block-busy" in fragment and "block-busy" in inline
    assert "Free start times on" in inline
    seeded = sandbox.call("GET", "/events", params={"email": manager.email})["events"]
    assert seeded, "the sandbox seeds events for the manager"
    for ev in seeded:
        for detail in [
            ev.get("summary"),
            ev.get("description"),
            (ev.get("location") or {}).get("description"),
            *[a.get("email") for a in ev.get("attendees") or []],
        ]:
            if detail and len(detail) >= 5 and detail not in ("Busy",):
                for page in (slots_page, fragment, inline):
                    assert detail not in page, detail
    # The service result carries no event fields either.
    query = model.Query(
        panel_link_ids=(mlink.id,), start_date=next_weekday(1), days=10, on_behalf_of_id=manager.id
    )
    grid = free_slots.grid(session, *broker_cipher(app), actor_of(coordinator), query)
    assert all(type(b) is model.Block for blocks in grid.busy.values() for b in blocks)
    interview, _ = schedule(app, session, coordinator, query, grid.slots[0].start)
    assert interview.status is InterviewStatus.SCHEDULED
    assert interview.host_link_id == mlink.id and interview.on_behalf_of_id == manager.id
    # The coordinator may move and cancel what the app created for the manager.
    held = HeldJobs()
    booking.cancel_interview(session, actor_of(coordinator), interview.uid, jobs=held)
    assert held.queued == [("scheduling.delete_interview", (interview.id,))]


def test_coordinator_cannot_schedule_for_or_see_unassigned_managers(
    app, session, sandbox, coordinator_setup
):
    coordinator, manager, other = coordinator_setup
    olink = access.host_link_for(session, actor_of(other), None)[0]
    broker, cipher = broker_cipher(app)
    with pytest.raises(Forbidden):  # not a manager assigned to the coordinator
        free_slots.grid(
            session,
            broker,
            cipher,
            actor_of(coordinator),
            model.Query(panel_link_ids=(olink.id,), on_behalf_of_id=other.id),
        )
    with pytest.raises(Forbidden):
        access.host_link_for(session, actor_of(coordinator), other.id)
    query = model.Query(panel_link_ids=(olink.id,), start_date=next_weekday(1))
    slot = first_slot(app, session, other, query)
    interview, _ = schedule(app, session, other, query, slot.start)
    with pytest.raises(NotFound):
        reading.view_interview(session, broker, cipher, actor_of(coordinator), interview.uid)
    held = HeldJobs()
    with pytest.raises(NotFound):
        booking.cancel_interview(session, actor_of(coordinator), interview.uid, jobs=held)
    assert held.queued == []


def test_interviews_of_another_organisation_cannot_be_targeted(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    outsider = make_user(session, make_org(session), Role.RECRUITER)
    auth.login(outsider.email)
    assert client.get(f"/interviews/{interview.uid}").status_code == 404
    token_page = client.get("/interviews/")
    assert token_page.status_code == 200
    from tests.conftest import csrf_token

    token = csrf_token(client, "/interviews/")
    assert (
        client.post(f"/interviews/{interview.uid}/cancel", data={"csrf_token": token}).status_code
        == 404
    )
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.SCHEDULED


# --- constant queries ---------------------------------------------------------------------------


def test_interview_list_issues_a_constant_number_of_queries(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three[:1], days=10)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    assert len(grid.slots) >= 20
    engine = deps.database.of(app).engine
    auth.login(recruiter.email)

    def count_queries() -> int:
        statements = []

        def listen(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert client.get("/interviews/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return len(statements)

    schedule(app, session, recruiter, query, grid.slots[0].start)
    one = count_queries()
    for slot in grid.slots[1:20]:
        schedule(app, session, recruiter, query, slot.start, run=False)
    twenty = count_queries()
    assert session.scalar(select(text("count(*)")).select_from(Interview)) == 20
    assert twenty == one


def test_reschedule_over_http_offers_slots_of_the_same_length(
    app, client, auth, session, sandbox, recruiter, panel_of_three
):
    query = query_for(panel_of_three, duration=45)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{interview.uid}/reschedule").get_data(as_text=True)
    assert "Free start times on" in page
    slots = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', page)
    first = re.search(r'class="pick-time">(\d\d:\d\d)–(\d\d:\d\d)', page)
    start, end = (dt.datetime.strptime(t, "%H:%M") for t in first.groups())
    assert end - start == dt.timedelta(minutes=45)
    target = slots[-1]
    response = auth.post(
        f"/interviews/{interview.uid}/reschedule",
        {"slot": target},
        form_page=f"/interviews/{interview.uid}/reschedule",
    )
    assert response.status_code == 303
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert ev.start == dt.datetime.fromisoformat(target)
    assert ev.end - ev.start == dt.timedelta(minutes=45)
    bad = auth.post(
        f"/interviews/{interview.uid}/reschedule",
        {"slot": "yesterday"},
        form_page=f"/interviews/{interview.uid}/reschedule",
    )
    assert bad.status_code == 302  # back to the form with a message; nothing changed


def test_an_enterprise_linked_panel_gets_the_event_in_each_members_calendar(
    app, session, sandbox, org
):
    from models import LinkMode

    host_user = make_user(
        session, org, Role.RECRUITER, email="riley.chen@northwind.example", name="Riley Chen"
    )
    link_calendar(app, session, sandbox, host_user, mode=LinkMode.ENTERPRISE)
    members = []
    for email in ("morgan.lee@northwind.example", "taylor.nguyen@northwind.example"):
        user = make_user(session, org, Role.RECRUITER, email=email, name=email.split("@")[0])
        members.append((user, link_calendar(app, session, sandbox, user, mode=LinkMode.ENTERPRISE)))
    query = query_for(members)
    interview, _ = schedule(
        app, session, host_user, query, first_slot(app, session, host_user, query).start
    )
    assert interview.status is InterviewStatus.SCHEDULED
    assert [e.position for e in interview.events] == [0, 1, 2]
    assert {e.profile_link_id for e in interview.events} == {
        interview.host_link_id,
        *(link.id for _u, link in members),
    }
    for row in interview.events:
        link = next(
            candidate
            for candidate in [interview.host_link, *(link for _u, link in members)]
            if candidate.id == row.profile_link_id
        )
        [ev] = [e for e in managed(app, session, link) if e.event_id == row.event_id]
        assert ev.summary == TITLE
        # Only the host's event invites; the members' copies carry no attendees of their own.
        assert bool(ev.attendees) == (row.position == 0)
    booking.cancel_interview(session, actor_of(host_user), interview.uid, jobs=deps.jobs.of(app))
    for _u, link in members:
        assert not [
            e for e in managed(app, session, link) if e.event_id.startswith(f"rdv-{interview.uid}")
        ]
