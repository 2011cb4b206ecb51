"""The scheduling API against the sandbox: panel, availability (free/busy only), interviews."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from models import Interview, InterviewStatus, Role
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.factories import assign, make_user
from tests.webapp.scheduling_support import link_calendar, managed, next_weekday

TITLE = "Onsite: Staff Engineer (api-secret-title-4417)"


def _panel_params(panel, **extra):
    params = [("panel", str(link.id)) for _u, link in panel]
    options = {"start_date": next_weekday(1).isoformat(), "days": 5, **extra}
    return params + [(k, str(v)) for k, v in options.items()]


def test_panel_members_and_availability(client, session, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    members = api.get("/panel-members").get_json()["items"]
    assert {m["link_id"] for m in members} >= {link.id for _u, link in panel}
    response = api.get("/availability", query_string=_panel_params(panel))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [m["link_id"] for m in body["members"]] == [link.id for _u, link in panel]
    assert body["slots"], "the seeded panel should have a common free slot"
    ids = {link.id for _u, link in panel}
    assert all(set(s["free_link_ids"]) == ids for s in body["slots"])
    assert all(set(b) == {"start", "end", "status"} for m in body["members"] for b in m["busy"])


def test_bad_availability_questions_are_422_with_the_field(client, session, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    for extra, field in [
        ({"duration": 7}, "duration"),
        ({"days": 40}, "days"),
        ({"tzid": "Mars/Base"}, "tzid"),
        ({"required": 9}, "required"),
    ]:
        error = assert_error(
            api.get("/availability", query_string=_panel_params(panel, **extra)), 422, "invalid"
        )
        assert field in error["fields"], error
    error = assert_error(api.get("/availability"), 422)
    assert "panel" in error["fields"]
    error = assert_error(api.get("/availability", query_string=[("panel", "999999")]), 422)
    assert "panel" in error["fields"]


def _schedule(api, panel, start, **extra):
    return api.post(
        "/interviews",
        json={
            "panel": [link.id for _u, link in panel],
            "start": start,
            "duration": 60,
            "title": TITLE,
            "candidate_name": "Casey Candidate",
            "candidate_email": "casey.candidate@gmail.example",
            **extra,
        },
    )


def test_interview_lifecycle(app, client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    slots = api.get("/availability", query_string=_panel_params(panel)).get_json()["slots"]
    created = _schedule(api, panel, slots[0]["start"])
    assert created.status_code == 201, created.get_json()
    uid = created.get_json()["uid"]
    interview = session.scalar(select(Interview).where(Interview.uid == uid))
    assert interview.status is InterviewStatus.SCHEDULED  # the write job ran (immediate in tests)

    shown = api.get(f"/interviews/{uid}").get_json()
    assert shown["title"] == TITLE and shown["status"] == "scheduled"
    assert dt.datetime.fromisoformat(shown["start"]) == dt.datetime.fromisoformat(slots[0]["start"])
    assert "casey.candidate@gmail.example" in {a["email"] for a in shown["attendees"]}

    listed = api.get("/interviews").get_json()
    assert [i["uid"] for i in listed["items"]] == [uid] and listed["next_cursor"] is None

    later = next(s["start"] for s in slots[1:] if s["start"] >= slots[0]["end"])
    moved = api.post(f"/interviews/{uid}/reschedule", json={"start": later})
    assert moved.status_code == 200, moved.get_json()
    [event] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert event.start == dt.datetime.fromisoformat(later)

    cancelled = api.post(f"/interviews/{uid}/cancel")
    assert cancelled.status_code == 200
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.CANCELLED
    assert_error(api.post(f"/interviews/{uid}/cancel"), 422)
    assert_error(api.get("/interviews/" + "f" * 32), 404, "not_found")


def test_taken_slot_is_409_and_nothing_is_stored(client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    slot = api.get("/availability", query_string=_panel_params(panel)).get_json()["slots"][0]
    host_email = panel[0][1].account_email
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": host_email,
            "action": "create",
            "summary": "Dentist",
            "start": slot["start"].replace("+00:00", "Z"),
            "end": slot["end"].replace("+00:00", "Z"),
        },
    )
    error = assert_error(_schedule(api, panel, slot["start"]), 409, "slot_taken")
    assert session.scalar(select(Interview)) is None
    # Fresh slots come with the refusal, without the one just taken.
    fresh = {s["start"] for s in error["slots"]}
    assert fresh and slot["start"] not in fresh


def test_interviews_page_with_a_sealed_cursor(client, session, sandbox, recruiter, panel):
    api = ApiClient(client, issue_token(session, recruiter))
    slots = api.get("/availability", query_string=_panel_params(panel, duration=30)).get_json()[
        "slots"
    ]
    starts = []
    for slot in slots:
        if all(
            abs(dt.datetime.fromisoformat(slot["start"]) - dt.datetime.fromisoformat(s))
            >= dt.timedelta(minutes=30)
            for s in starts
        ):
            starts.append(slot["start"])
        if len(starts) == 3:
            break
    for start in starts:
        assert _schedule(api, panel, start, duration=30).status_code == 201
    first = api.get("/interviews", query_string={"limit": 2}).get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = api.get(
        "/interviews", query_string={"limit": 2, "cursor": first["next_cursor"]}
    ).get_json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    uids = [i["uid"] for i in first["items"] + second["items"]]
    assert len(set(uids)) == 3
    # A cursor is bound to its list and its holder: forged or foreign cursors are refused.
    other = make_user(
        session, session.get(type(recruiter), recruiter.id).organisation, Role.RECRUITER
    )
    foreign = ApiClient(client, issue_token(session, other))
    for api_, cursor in [
        (foreign, first["next_cursor"]),
        (api, first["next_cursor"][:-2] + "AA"),
        (api, "bm90LWEtY3Vyc29y"),
    ]:
        error = assert_error(api_.get("/interviews", query_string={"cursor": cursor}), 422)
        assert "cursor" in error["fields"]
    assert (
        "cursor"
        in assert_error(
            api.get("/calendar-links", query_string={"cursor": first["next_cursor"]}), 422
        )["fields"]
    )


@pytest.fixture
def coordinator_and_links(app, session, sandbox, org):
    manager = make_user(
        session, org, Role.RECRUITER, email="dana.wright@contoso.example", name="Dana Wright"
    )
    link = link_calendar(app, session, sandbox, manager)
    other = make_user(
        session, org, Role.RECRUITER, email="lee.okafor@contoso.example", name="Lee Okafor"
    )
    other_link = link_calendar(app, session, sandbox, other)
    coordinator = make_user(
        session, org, Role.COORDINATOR, email="msp@northwind.example", name="Morgan MSP"
    )
    assign(session, coordinator, manager)
    return coordinator, manager, link, other_link


def test_coordinator_responses_carry_free_busy_only(
    client, session, sandbox, coordinator_and_links
):
    coordinator, manager, link, other_link = coordinator_and_links
    api = ApiClient(client, issue_token(session, coordinator))
    # Any interviewer of the organisation may join a panel for the assigned manager.
    members = [m["link_id"] for m in api.get("/panel-members").get_json()["items"]]
    assert sorted(members) == sorted([link.id, other_link.id])
    response = api.get(
        "/availability",
        query_string=[
            ("panel", link.id),
            ("on_behalf_of", manager.id),
            ("days", 10),
            ("start_date", next_weekday(1).isoformat()),
        ],
    )
    assert response.status_code == 200, response.get_json()
    text = response.get_data(as_text=True)
    body = response.get_json()
    assert body["members"][0]["busy"], "the sandbox seeds busy time for the manager"
    seeded = sandbox.call("GET", "/events", params={"email": manager.email})["events"]
    assert seeded
    for ev in seeded:
        for detail in [
            ev.get("summary"),
            ev.get("description"),
            (ev.get("location") or {}).get("description"),
            *[a.get("email") for a in ev.get("attendees") or []],
        ]:
            if detail and len(detail) >= 5 and detail not in ("Busy",):
                assert detail not in text, detail
    # For a manager not assigned to the coordinator: refused.
    assert_error(
        api.get(
            "/availability",
            query_string=[("panel", other_link.id), ("on_behalf_of", other_link.user_id)],
        ),
        403,
    )
    # Without a manager: refused, with the field named.
    error = assert_error(api.get("/availability", query_string=[("panel", link.id)]), 422)
    assert "on_behalf_of" in error["fields"]
    # Another interviewer of the organisation on the manager's panel: free/busy only too.
    both = api.get(
        "/availability",
        query_string=[
            ("panel", link.id),
            ("panel", other_link.id),
            ("on_behalf_of", manager.id),
            ("days", 10),
            ("start_date", next_weekday(1).isoformat()),
        ],
    )
    assert both.status_code == 200, both.get_json()
    other_events = sandbox.call("GET", "/events", params={"email": "lee.okafor@contoso.example"})
    for ev in other_events["events"]:
        if ev.get("summary") and len(ev["summary"]) >= 5:
            assert ev["summary"] not in both.get_data(as_text=True)
    # Schedules for the manager, on the manager's calendar.
    slot = body["slots"][0]
    created = api.post(
        "/interviews",
        json={
            "panel": [link.id],
            "start": slot["start"],
            "title": TITLE,
            "on_behalf_of": manager.id,
            "candidate_name": "Casey Candidate",
            "candidate_email": "casey.candidate@gmail.example",
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["on_behalf_of_id"] == manager.id
    detail = api.get(f"/interviews/{created.get_json()['uid']}").get_data(as_text=True)
    for ev in seeded:
        if ev.get("summary") and len(ev["summary"]) >= 5:
            assert ev["summary"] not in detail


def test_other_roles_cannot_schedule(client, session, sandbox, org, panel):
    for role in (Role.ADMIN, Role.COMPLIANCE):
        api = ApiClient(client, issue_token(session, make_user(session, org, role)))
        assert_error(api.get("/availability", query_string=_panel_params(panel)), 403)
        assert_error(_schedule(api, panel, "2030-01-07T10:00:00+00:00"), 403)
        assert_error(api.get("/interviews"), 403)


def test_self_scheduling_links_create_list_revoke(client, session, sandbox, recruiter, panel):
    from models import SchedulingLink
    from webapp import security

    api = ApiClient(client, issue_token(session, recruiter))
    created = api.post(
        "/scheduling-links",
        json={
            "panel": [link.id for _u, link in panel],
            "start_date": next_weekday(1).isoformat(),
            "days": 3,
            "expires_days": 7,
            "candidate_name": "Casey Candidate",
            "candidate_email": "casey.candidate@gmail.example",
            "candidate_tzid": "America/New_York",
            "title": TITLE,
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["state"] == "open"
    path = urlsplit(body["url"]).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    row = session.get(SchedulingLink, body["id"])
    assert row.token_hash == security.token_hash(token)
    # The candidate's page opens without an account.
    assert client.get(path).status_code == 200

    # The list tells links apart (the candidate and title, decrypted) and gives the open link.
    listed = api.get("/scheduling-links").get_json()
    [item] = listed["items"]
    assert item["id"] == body["id"] and item["url"] == body["url"]
    assert (item["candidate_name"], item["title"]) == ("Casey Candidate", TITLE)
    assert body["candidate_name"] == "Casey Candidate" and body["title"] == TITLE

    revoked = api.post(f"/scheduling-links/{body['id']}/revoke")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert revoked.get_json()["url"] is None
    assert api.get("/scheduling-links").get_json()["items"][0]["url"] is None
    assert_error(api.post("/scheduling-links/999999/revoke"), 404)
    error = assert_error(
        api.post(
            "/scheduling-links",
            json={
                "panel": [link.id for _u, link in panel],
                "candidate_name": "C",
                "title": TITLE,
                "candidate_email": "not-an-email",
            },
        ),
        422,
    )
    assert "candidate_email" in error["fields"]
    # A link that would expire before its window opens is refused, saying so.
    late = assert_error(
        api.post(
            "/scheduling-links",
            json={
                "panel": [link.id for _u, link in panel],
                "start_date": next_weekday(10).isoformat(),
                "days": 3,
                "expires_days": 2,
                "candidate_name": "Casey Candidate",
                "candidate_email": "casey.candidate@gmail.example",
                "candidate_tzid": "America/New_York",
                "title": TITLE,
            },
        ),
        422,
    )
    assert "expire" in str(late["fields"]["expires_days"])


def test_coordinators_have_no_self_scheduling_links(
    client, session, sandbox, coordinator_and_links
):
    coordinator = coordinator_and_links[0]
    api = ApiClient(client, issue_token(session, coordinator))
    assert_error(api.get("/scheduling-links"), 403)
    assert_error(api.post("/scheduling-links", json={}), 403)
