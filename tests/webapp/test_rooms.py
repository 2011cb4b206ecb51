"""Rooms: the IT admin links a domain's rooms through Enterprise Connect (free/busy only, only
the room's sub is kept), and scheduling then offers a slot only when the chosen room is free too.
Against the sandbox aggregator over real HTTP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditEntry, Interview, MailboxKind, MailboxRequest, MailboxStatus, ProfileLink
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import make_panel, managed, next_weekday
from tests.webapp.test_enterprise import (
    PAGE,
    connect_domain,
)
from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for, schedule
from webapp import deps
from webapp.services import revocations
from webapp.services.availability import free_slots, roster
from webapp.services.enterprise import mailboxes
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.scheduling import booking, rescheduling

AURORA = "room.aurora@northwind.example"
BOREALIS = "room.borealis@northwind.example"


@pytest.fixture
def domain(admin_client, session, sandbox):
    client, auth = admin_client
    return connect_domain(client, auth, session, sandbox, "google")


def room_rows(session):
    session.expire_all()
    return {
        r.email: r
        for r in session.scalars(
            select(MailboxRequest).where(MailboxRequest.kind == MailboxKind.ROOM)
        )
    }


def link_rooms(admin_client, domain, sandbox, *emails):
    _client, auth = admin_client
    response = auth.post(f"{PAGE}{domain.id}/rooms", {"rooms": list(emails)}, form_page=PAGE)
    assert response.status_code == 303, response.get_data(as_text=True)
    sandbox.deliver()
    return response


def as_utc(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- linking ------------------------------------------------------------------------------------


def test_admin_links_rooms_and_only_their_sub_is_kept(app, admin_client, domain, session, sandbox):
    client, auth = admin_client
    page = client.get(PAGE).get_data(as_text=True)
    assert "Aurora (6 seats)" in page and "Not linked" in page

    before = session.scalar(select(MailboxRequest.id).limit(1))
    bad = auth.post(f"{PAGE}{domain.id}/rooms", {"rooms": []}, form_page=PAGE)
    assert bad.status_code == 303 and session.scalar(select(MailboxRequest.id).limit(1)) == before
    assert "Choose at least one room" in client.get(PAGE).get_data(as_text=True)

    link_rooms(
        admin_client,
        domain,
        sandbox,
        AURORA,
        AURORA.upper(),
        "ceo@elsewhere.example",
        "riley.chen@northwind.example",
    )
    page = client.get(PAGE).get_data(as_text=True)
    assert "listed more than once" in page and "not a room northwind.example lists" in page

    rows = room_rows(session)
    assert set(rows) == {AURORA}  # nothing queued for the rejected addresses
    room = rows[AURORA]
    assert room.status is MailboxStatus.LINKED and room.resource_sub.startswith("res_")
    assert room.display_name == "Aurora (6 seats)" and room.user_id is None
    assert session.scalar(select(ProfileLink)) is None  # a room is not anybody's calendar link
    # Rooms are not mailboxes in the admin's counts.
    assert mailboxes.counts(session, domain.id)["total"] == 0
    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert "ec.rooms_requested" in actions and "ec.room_linked" in actions

    # What the sandbox was asked: free/busy of the room only.
    stats = sandbox.stats()
    assert stats["requests"].get("POST /v1/service_account_authorizations") == 1

    # Linked again: refused, nothing changes.
    auth.post(f"{PAGE}{domain.id}/rooms", {"rooms": [AURORA]}, form_page=PAGE)
    assert "already linked" in client.get(PAGE).get_data(as_text=True)
    assert room_rows(session)[AURORA].resource_sub == room.resource_sub


@pytest.mark.parametrize("by_sub", ["accept", "refuse"])
def test_unlinking_a_room_revokes_it_and_removes_it_from_scheduling(
    app, admin_client, domain, session, sandbox, recruiter, by_sub
):
    """No room token is kept, so a room is revoked by its sub, which is unconfirmed: where the
    aggregator accepts that, the room is gone there; where it refuses (the strict sandbox's
    default), the refusal is audited and shown to the IT admin, never retried for ever. Either
    way the room leaves scheduling at once."""
    sandbox.call("PATCH", "/config", json={"revoke_non_account_subs": by_sub})
    link_rooms(admin_client, domain, sandbox, AURORA, BOREALIS)
    rows = room_rows(session)
    sub = rows[AURORA].resource_sub
    assert [r.email for r in roster.room_choices(session, recruiter.organisation_id)] == [
        AURORA,
        BOREALIS,
    ]
    client, auth = admin_client
    auth.post(
        f"{PAGE}mailboxes/{rows[AURORA].id}/unlink",
        {"confirm": "yes"},
        form_page=f"{PAGE}mailboxes/{rows[AURORA].id}/unlink",
    )
    rows = room_rows(session)
    assert rows[AURORA].status is MailboxStatus.UNLINKED and rows[AURORA].resource_sub is None
    assert [r.email for r in roster.room_choices(session, recruiter.organisation_id)] == [BOREALIS]
    response = sandbox_availability(sandbox, sub)
    if by_sub == "accept":  # the aggregator no longer accepts the room's sub
        assert response.status_code == 422 and "unknown_sub" in response.text
        assert revocations.needing_attention(session, recruiter.organisation_id) == []
    else:  # still authorized there: the admin is told, with a way to act
        assert response.status_code == 200
        [stuck] = revocations.needing_attention(session, recruiter.organisation_id)
        assert stuck.sub == sub and stuck.last_error == "Invalid" and stuck.refresh_token is None
        page = client.get(PAGE).get_data(as_text=True)
        assert "Revocations needing attention" in page and sub in page
        calls = sandbox.stats()["requests"].get("POST /oauth/token/revoke", 0)
        deps.jobs.of(app).enqueue("revocations.run")
        assert sandbox.stats()["requests"].get("POST /oauth/token/revoke", 0) == calls
        session.expire_all()
        assert [
            e.detail["kind"]
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action == "calendar.revoke_refused")
            )
        ] == ["room"]
    with pytest.raises(Invalid, match="listed rooms"):
        roster.resolve_room(session, actor_of(recruiter), AURORA)

    # Disconnecting the domain takes its rooms out of scheduling too.
    auth.post(
        f"{PAGE}{domain.id}/disconnect",
        {"confirm": "yes"},
        form_page=f"{PAGE}{domain.id}/disconnect",
    )
    assert roster.room_choices(session, recruiter.organisation_id) == []
    assert room_rows(session)[BOREALIS].resource_sub is None


def sandbox_availability(sandbox, sub):
    import datetime as dt

    import requests

    from tests.conftest import SANDBOX_CLIENT_SECRET

    start = dt.datetime.combine(next_weekday(1), dt.time(9), dt.UTC)
    return requests.post(
        sandbox.url + "/v1/availability",
        timeout=5,
        headers={"Authorization": f"Bearer {SANDBOX_CLIENT_SECRET}"},
        json={
            "participants": [{"members": [{"sub": sub}], "required": "all"}],
            "required_duration": {"minutes": 30},
            "query_periods": [
                {"start": as_utc(start), "end": as_utc(start + dt.timedelta(hours=2))}
            ],
        },
    )


# --- scheduling with a room ---------------------------------------------------------------------


def test_slots_need_the_room_free_and_the_room_is_invited(
    app, client, auth, admin_client, domain, session, sandbox, org, recruiter
):
    link_rooms(admin_client, domain, sandbox, AURORA)
    panel = make_panel(app, session, sandbox, org, 2)
    broker, cipher = broker_cipher(app)
    plain = query_for(panel, days=2)
    free = free_slots.grid(session, broker, cipher, actor_of(recruiter), plain).slots
    assert free
    # The room is booked at the panel's first common slot (by someone else, in its calendar).
    taken = free[0]
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": AURORA,
            "action": "create",
            "summary": "Board meeting",
            "start": as_utc(taken.start),
            "end": as_utc(taken.end),
        },
    )
    sandbox.call("DELETE", "/stats")
    with_room = free_slots.grid(
        session, broker, cipher, actor_of(recruiter), query_for(panel, days=2, room=AURORA)
    )
    assert sandbox.stats()["requests"].get("POST /v1/availability") == 1  # still one call
    assert with_room.slots
    assert not [s for s in with_room.slots if s.start < taken.end and taken.start < s.end]
    assert with_room.room.email == AURORA
    room_sub = room_rows(session)[AURORA].resource_sub
    assert all(room_sub in s.participants for s in with_room.slots)

    # Through the page: the room picker lists the linked room; the booked slot is not offered.
    auth.login(recruiter.email)
    day = next_weekday(1).isoformat()
    ids = "&".join(f"panel={link.id}" for _u, link in panel)
    url = f"/schedule/?{ids}&start_date={day}&days=2&room={AURORA}"
    page = client.get(url).get_data(as_text=True)
    assert "Aurora (6 seats)" in page and "every slot shown has it free" in page
    assert f'value="{taken.start.isoformat()}"' not in page
    slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', page).group(1)
    data = {
        "panel": [str(link.id) for _u, link in panel],
        "duration": "60",
        "days": "2",
        "start_date": day,
        "required": "all",
        "tzid": "Europe/London",
        "room": AURORA,
        "candidate_name": "C",
        "candidate_email": "c@gmail.example",
        "title": "With a room",
    }
    # A time the room is booked is refused even when posted directly; nothing is stored.
    refused = auth.post("/schedule/", dict(data, slot=taken.start.isoformat()), form_page=url)
    assert refused.status_code == 409 and "room" in refused.get_data(as_text=True)
    assert session.scalar(select(Interview)) is None
    unknown = auth.post(
        "/schedule/", dict(data, slot=slot, room="ceo@elsewhere.example"), form_page=url
    )
    assert unknown.status_code == 400 and "listed rooms" in unknown.get_data(as_text=True)
    assert session.scalar(select(Interview)) is None

    done = auth.post("/schedule/", dict(data, slot=slot), form_page=url)
    assert done.status_code == 303, done.get_data(as_text=True)
    interview = session.scalar(select(Interview))
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert AURORA in {a.email for a in ev.attendees}


def test_a_room_is_never_double_booked(app, admin_client, domain, session, sandbox, org, recruiter):
    """The first interview's invitation books the room; the same slot is then refused for a
    second panel, and offered again once the first interview is cancelled."""
    link_rooms(admin_client, domain, sandbox, AURORA)
    first_panel = make_panel(app, session, sandbox, org, 1, start=1)
    second_panel = make_panel(app, session, sandbox, org, 1, start=2)
    broker, cipher = broker_cipher(app)
    q1 = query_for(first_panel, days=2, room=AURORA)
    q2 = query_for(second_panel, days=2, room=AURORA)
    common = {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q1).slots
    } & {s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q2).slots}
    start = min(common)
    interview, _ = schedule(app, session, recruiter, q1, start)
    assert interview.status.value == "scheduled"
    second = {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q2).slots
    }
    assert start not in second
    with pytest.raises(SlotTaken):
        schedule(app, session, recruiter, q2, start)
    assert session.scalar(select(Interview).where(Interview.id != interview.id)) is None

    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=deps.jobs.of(app))
    assert start in {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q2).slots
    }


def test_a_room_held_by_a_pending_booking_is_not_booked_twice(
    app, admin_client, domain, session, sandbox, org, recruiter
):
    """Before the first interview's invitation reaches the room (its write still queued), the
    room is held by the booking's claim: not offered, and refused, to a panel sharing no one."""
    link_rooms(admin_client, domain, sandbox, AURORA)
    first_panel = make_panel(app, session, sandbox, org, 1, start=1)
    second_panel = make_panel(app, session, sandbox, org, 1, start=2)
    broker, cipher = broker_cipher(app)
    q1 = query_for(first_panel, days=2, room=AURORA)
    q2 = query_for(second_panel, days=2, room=AURORA)
    common = {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q1).slots
    } & {s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q2).slots}
    start = min(common)
    pending, _ = schedule(app, session, recruiter, q1, start, run=False)
    assert pending.status.value == "pending"
    assert start not in {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q2).slots
    }
    with pytest.raises(SlotTaken, match="room"):
        schedule(app, session, recruiter, q2, start, run=False)
    # The same panel without the room is free to book that time.
    schedule(app, session, recruiter, query_for(second_panel, days=2), start, run=False)


def test_the_api_lists_rooms_and_books_them(
    app, client, admin_client, domain, session, sandbox, org, recruiter
):
    from tests.api.conftest import ApiClient, assert_error, issue_token

    link_rooms(admin_client, domain, sandbox, AURORA)
    panel = make_panel(app, session, sandbox, org, 1)
    api = ApiClient(client, issue_token(session, recruiter))
    assert api.get("/rooms").get_json() == {
        "items": [{"email": AURORA, "name": "Aurora (6 seats)"}]
    }
    day = next_weekday(1).isoformat()
    params = {"panel": panel[0][1].id, "start_date": day, "days": 2}
    found = api.get("/availability", query_string={**params, "room": AURORA}).get_json()
    assert found["room"] == {"email": AURORA, "name": "Aurora (6 seats)"} and found["slots"]
    assert_error(
        api.get("/availability", query_string={**params, "room": "x@elsewhere.example"}),
        422,
        "invalid",
    )
    slot = found["slots"][0]
    created = api.post(
        "/interviews",
        json={
            "panel": [panel[0][1].id],
            "start": slot["start"],
            "title": "API with a room",
            "candidate_name": "C",
            "candidate_email": "c@gmail.example",
            "room": AURORA,
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    interview = session.scalar(select(Interview))
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert AURORA in {a.email for a in ev.attendees}
    # The room is taken now: the same slot is no longer offered with it.
    again = api.get("/availability", query_string={**params, "room": AURORA}).get_json()
    assert slot["start"] not in {s["start"] for s in again["slots"]}


def test_moving_an_interview_needs_its_room_free_at_the_new_time(
    app, client, auth, admin_client, domain, session, sandbox, org, recruiter
):
    from tests.webapp.test_scheduling import sealer_of

    link_rooms(admin_client, domain, sandbox, AURORA)
    panel = make_panel(app, session, sandbox, org, 1)
    broker, cipher = broker_cipher(app)
    query = query_for(panel, days=3, room=AURORA)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    interview, _ = schedule(app, session, recruiter, query, slots[0].start)
    later = [s for s in slots if s.start >= slots[0].end]
    busy, free = later[0], later[-1]
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": AURORA,
            "action": "create",
            "summary": "Board meeting",
            "start": as_utc(busy.start),
            "end": as_utc(busy.end),
        },
    )

    auth.login(recruiter.email)
    page = client.get(
        f"/interviews/{interview.uid}/reschedule?start_date={query.start_date}"
    ).get_data(as_text=True)
    assert f'value="{free.start.isoformat()}"' in page
    assert f'value="{busy.start.isoformat()}"' not in page  # the grid asks with the room
    held = HeldJobs()  # the move's write is not run: it stays pending
    with pytest.raises(SlotTaken, match="room"):
        rescheduling.reschedule_interview(
            session,
            broker,
            cipher,
            sealer_of(app),
            actor_of(recruiter),
            interview.uid,
            busy.start,
            jobs=held,
        )
    assert held.queued == []
    moved, _payload = rescheduling.reschedule_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(recruiter),
        interview.uid,
        free.start,
        jobs=held,
    )
    assert held.names() == ["scheduling.write_interview"]
    assert moved.status.value == "pending"
