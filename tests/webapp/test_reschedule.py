"""Reschedule and cancel keep what the recruiter wrote: a move rewrites the whole event as the
calendar holds it (only the time changes), on the web and through the API; the reschedule page
reaches any week and length; cancelling asks first; "My interviews" shows cancelled ones apart
and includes the interviews where I sit on the panel."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from models import Interview, InterviewStatus, Role, utcnow
from tests.api.conftest import ApiClient, issue_token
from tests.factories import make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, next_weekday
from tests.webapp.test_rooms import AURORA, link_rooms
from tests.webapp.test_scheduling import (
    CANDIDATE_EMAIL,
    NOTES,
    TITLE,
    actor_of,
    broker_cipher,
    query_for,
    schedule,
)
from webapp import deps
from webapp.services.availability import free_slots, model
from webapp.services.errors import NotFound
from webapp.services.scheduling import booking, reading

SLOT_RE = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')
EDITED_NOTES = "Panel: focus on the design exercise; the candidate uses a screen reader."


def held(sandbox, email: str, event_id: str) -> dict:
    """The event as the provider holds it (the read-events shape plus reminders)."""
    return next(
        e
        for e in sandbox.call("GET", "/events", params={"email": email})["events"]
        if e.get("event_id") == event_id
    )


def invitations(sandbox, email: str) -> list[dict]:
    return [
        e
        for e in sandbox.call("GET", "/events", params={"email": email})["events"]
        if e["event_uid"].startswith("evt_invite_")
    ]


def zone_of(app, session, interview) -> str | None:
    broker, cipher = broker_cipher(app)
    found, _problems = reading.read_events(
        session,
        broker,
        cipher,
        interview.events[:1],
        {interview.host_link_id: interview.host_link},
        localized=True,
    )
    return found[interview.events[0].event_id].tzid


def booked_with_everything(app, session, sandbox, recruiter, panel, admin_client):
    """An interview with notes, a panel, the candidate, a room and a video link; the host then
    edits the notes in their own calendar and adds a location and a reminder there."""
    link_rooms(admin_client, domain_of(admin_client, session, sandbox), sandbox, AURORA)
    query = query_for(panel, room=AURORA)
    broker, cipher = broker_cipher(app)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    interview, _payload = booking.create_interview(
        session,
        broker,
        cipher,
        sealer(app),
        actor_of(recruiter),
        booking.NewInterview(
            query=query,
            start=slots[0].start,
            candidate_name="Casey Candidate",
            candidate_email=CANDIDATE_EMAIL,
            title=TITLE,
            notes=NOTES,
            candidate_tzid="America/New_York",
        ),
        jobs=deps.jobs.of(app),  # the write job runs at once
    )
    sandbox.deliver()  # the aggregator assigns the video link
    event_id = interview.events[0].event_id
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": recruiter.email,
            "action": "update",
            "event_id": event_id,
            "description": EDITED_NOTES,
            "location": {"description": "Building 2, floor 3"},
            "reminders": [{"minutes": 25}],
        },
    )
    session.expire_all()
    return session.get(Interview, interview.id), slots


def domain_of(admin_client, session, sandbox):
    from tests.webapp.test_enterprise import connect_domain

    client, auth = admin_client
    return connect_domain(client, auth, session, sandbox, "google")


def sealer(app):
    from tests.webapp.test_scheduling import sealer_of

    return sealer_of(app)


#: What may differ after a move: the time itself, and the modification stamp.
MOVED = {"start", "end", "updated"}


@pytest.mark.parametrize("path", ["web", "api"])
def test_a_move_rewrites_the_whole_event_and_only_the_time_changes(
    app, client, auth, session, sandbox, recruiter, panel, admin_client, path
):
    interview, slots = booked_with_everything(app, session, sandbox, recruiter, panel, admin_client)
    event_id = interview.events[0].event_id
    before = held(sandbox, recruiter.email, event_id)
    assert before["description"] == EDITED_NOTES and before["reminders"] == [{"minutes": 25}]
    assert before["conferencing"]["join_url"].startswith("https://")
    assert {a["email"] for a in before["attendees"]} == {
        CANDIDATE_EMAIL,
        AURORA,
        *(link.account_email for _u, link in panel),
    }
    assert zone_of(app, session, interview) == "America/New_York"
    # A later day, a different length (45 minutes instead of 60).
    day = (slots[0].start + dt.timedelta(days=1)).date()
    if path == "web":
        auth.login(recruiter.email)
        form_page = f"/interviews/{interview.uid}/reschedule?start_date={day}&duration=45"
        page = client.get(form_page).get_data(as_text=True)
        target = dt.datetime.fromisoformat(SLOT_RE.findall(page)[0])
        response = auth.post(
            f"/interviews/{interview.uid}/reschedule",
            {"slot": target.isoformat(), "duration": "45", "start_date": day.isoformat()},
            form_page=form_page,
        )
        assert response.status_code == 303, response.get_data(as_text=True)
    else:
        api = ApiClient(client, issue_token(session, recruiter))
        query = query_for(panel, room=AURORA, duration=45, start_date=day, days=7)
        broker, cipher = broker_cipher(app)
        target = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[0].start
        moved = api.post(
            f"/interviews/{interview.uid}/reschedule",
            json={"start": target.isoformat(), "duration": 45},
        )
        assert moved.status_code == 200, moved.get_json()
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.SCHEDULED
    after = held(sandbox, recruiter.email, event_id)
    # Field by field: everything but the time is as it was.
    assert set(after) == set(before)
    for name in sorted(set(before) - MOVED - {"attendees"}):
        assert after[name] == before[name], name
    # The same guests, names included (their answers are asked again at a new time).
    assert [(a["email"], a["display_name"]) for a in after["attendees"]] == [
        (a["email"], a["display_name"]) for a in before["attendees"]
    ]
    assert (after["start"], after["end"]) == (
        target.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (target + dt.timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert zone_of(app, session, interview) == "America/New_York"
    # The room accepted the new time, and every panel member's invitation moved, notes intact.
    assert next(a["status"] for a in after["attendees"] if a["email"] == AURORA) == "accepted"
    for _user, link in panel:
        [copy] = invitations(sandbox, link.account_email)
        assert copy["start"] == after["start"] and copy["description"] == EDITED_NOTES
        assert copy["conferencing"] == before["conferencing"]


def test_the_reschedule_page_reaches_any_week_and_length_and_shows_the_current_time(
    app, client, auth, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    interview, _ = schedule(app, session, recruiter, query, slots[0].start)
    auth.login(recruiter.email)
    base = f"/interviews/{interview.uid}/reschedule"
    page = client.get(base).get_data(as_text=True)
    london = model.zone("Europe/London")
    now_shown = slots[0].start.astimezone(london).strftime("%A %d %B %Y, %H:%M")
    assert now_shown in page  # the current time
    today = utcnow().astimezone(london).date()
    assert f'type="date" id="start_date" name="start_date" min="{today}" value="{today}"' in page
    assert 'option value="60" selected' in page  # the interview's own length
    assert "Previous week" not in page  # nothing before today
    week_on = today + dt.timedelta(days=7)
    assert f'{base}?start_date={week_on}&amp;duration=60">Next week' in page
    # Five weeks ahead, 90 minutes: the grid shows that week with 90-minute slots.
    far = next_weekday(35)
    far_page = client.get(f"{base}?start_date={far}&duration=90").get_data(as_text=True)
    assert f'<section class="day current" id="day-{far}"' in far_page  # the week shown first
    assert f'start_date={far - dt.timedelta(days=7)}&amp;duration=90">← Previous week' in far_page
    first = re.search(r'class="pick-time">(\d\d:\d\d)–(\d\d:\d\d)', far_page)
    start, end = (dt.datetime.strptime(t, "%H:%M") for t in first.groups())
    assert end - start == dt.timedelta(minutes=90)
    assert dt.datetime.fromisoformat(SLOT_RE.findall(far_page)[0]).date() >= far
    assert 'name="duration" value="90"' in far_page  # the move keeps the chosen length
    # Bad input: a clear message, no grid, nothing changed.
    for bad, message in (
        (f"start_date={today - dt.timedelta(days=1)}", "cannot start in the past"),
        ("start_date=soon", "Dates look like"),
        ("duration=7", "durations"),
    ):
        response = client.get(f"{base}?{bad}")
        assert response.status_code == 400, bad
        assert message in response.get_data(as_text=True) and not SLOT_RE.findall(
            response.get_data(as_text=True)
        )
    refused = auth.post(
        base, {"slot": SLOT_RE.findall(far_page)[0], "duration": "7"}, form_page=base
    )
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.SCHEDULED


def test_a_cancelled_future_interview_is_listed_apart_not_under_past(
    app, client, auth, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    kept, _ = schedule(app, session, recruiter, query, slots[0].start)
    dropped, _ = schedule(app, session, recruiter, query, slots[-1].start)
    booking.cancel_interview(session, actor_of(recruiter), dropped.uid, jobs=deps.jobs.of(app))
    listed = reading.list_interviews(session, broker, cipher, actor_of(recruiter))
    assert [x.interview.uid for x in listed.upcoming] == [kept.uid]
    assert listed.past == []
    assert [x.interview.uid for x in listed.cancelled] == [dropped.uid]
    assert listed.cancelled[0].planned_start == slots[-1].start  # read from the deleted event
    auth.login(recruiter.email)
    page = client.get("/interviews/").get_data(as_text=True)
    past = page[page.index('id="past"') : page.index('id="cancelled"')]
    assert "No past interviews." in past and dropped.uid not in past
    assert dropped.uid in page[page.index('id="cancelled"') :]
    api = ApiClient(client, issue_token(session, recruiter))
    items = {i["uid"]: i["status"] for i in api.get("/interviews").get_json()["items"]}
    assert items == {kept.uid: "scheduled", dropped.uid: "cancelled"}


def test_my_interviews_include_those_where_i_sit_on_the_panel(
    app, client, auth, session, sandbox, org, recruiter, panel
):
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slot = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[0]
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    member, member_link = panel[0]
    not_on_it = make_user(session, org, Role.RECRUITER, email="priya.shah@northwind.example")
    link_calendar(app, session, sandbox, not_on_it)
    # A second organisation, with a namesake of the member on a panel of its own: neither
    # organisation sees the other's interviews.
    other = make_org(session)
    other.business_connect_enabled = True
    session.commit()
    twin = make_user(
        session, other, Role.RECRUITER, email="morgan.lee@fabrikam.example", name=member.name
    )
    twin_link = link_calendar(app, session, sandbox, twin, "noah.fischer@contoso.example")
    theirs_query = query_for([(twin, twin_link)])
    theirs, _ = schedule(
        app,
        session,
        twin,
        theirs_query,
        free_slots.grid(session, broker, cipher, actor_of(twin), theirs_query).slots[0].start,
    )

    listed = reading.list_interviews(session, broker, cipher, actor_of(member))
    assert [x.interview.uid for x in listed.all] == [interview.uid]
    assert listed.upcoming[0].start == slot.start
    assert reading.list_interviews(session, broker, cipher, actor_of(not_on_it)).all == []
    assert [
        x.interview.uid
        for x in reading.list_interviews(session, broker, cipher, actor_of(twin)).all
    ] == [theirs.uid]
    # The member opens it, read-only: moving and cancelling stay with whoever scheduled it.
    auth.login(member.email)
    assert interview.uid in client.get("/interviews/").get_data(as_text=True)
    shown = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert TITLE in shown and "You are on this interview's panel" in shown
    assert "/reschedule" not in shown and "Cancel interview" not in shown
    assert client.get(f"/interviews/{interview.uid}/reschedule").status_code == 404
    assert client.get(f"/interviews/{interview.uid}/cancel").status_code == 404
    with pytest.raises(NotFound):
        booking.cancel_interview(session, actor_of(member), interview.uid, jobs=HeldJobs())
    assert reading.notices_for(session, actor_of(member)) == 0
    api = ApiClient(client, issue_token(session, member))
    assert [i["uid"] for i in api.get("/interviews").get_json()["items"]] == [interview.uid]
    assert api.get(f"/interviews/{interview.uid}").status_code == 200
    assert api.post(f"/interviews/{interview.uid}/cancel").status_code == 404
    assert api.get(f"/interviews/{theirs.uid}").status_code == 404
    twin_api = ApiClient(client, issue_token(session, twin))
    assert [i["uid"] for i in twin_api.get("/interviews").get_json()["items"]] == [theirs.uid]
    assert twin_api.get(f"/interviews/{interview.uid}").status_code == 404


def test_an_invited_panel_member_is_busy_for_the_next_booking(
    app, session, sandbox, org, recruiter, panel
):
    """The invitation is on the member's own calendar, so another recruiter's grid no longer
    offers that time for them (Section 3: the sandbox delivers invitations as providers do)."""
    member, member_link = panel[0]
    query = query_for([panel[0]])
    broker, cipher = broker_cipher(app)
    slot = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[0]
    schedule(app, session, recruiter, query, slot.start)
    [copy] = invitations(sandbox, member_link.account_email)
    assert copy["participation_status"] == "needs_action"
    other = make_user(session, org, Role.RECRUITER, email="casey.brooks@northwind.example")
    link_calendar(app, session, sandbox, other)
    again = free_slots.grid(session, broker, cipher, actor_of(other), query)
    assert slot.start not in {s.start for s in again.slots}
    blocks = again.busy[member_link.id]
    assert any(b.start == slot.start and b.end == slot.end for b in blocks)
    assert not free_slots.slot_is_free(broker, again.members, query, slot.start)
