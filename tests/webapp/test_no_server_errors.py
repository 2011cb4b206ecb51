"""Inputs that used to end in a 500 get a clear 4xx and change nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Interview, Role
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user
from tests.webapp.scheduling_support import make_panel, next_weekday


@pytest.mark.parametrize(
    "next_value",
    ["/profile/\r\nSet-Cookie: x=1", "/profile/\n", "/\t/evil.example", "/profile/\x00"],
)
def test_a_control_character_in_the_login_next_is_400(client, session, org, next_value):
    user = make_user(session, org, Role.RECRUITER)
    page = client.get("/login", query_string={"next": next_value})
    assert page.status_code == 400
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        data={"csrf_token": token, "email": user.email, "password": PASSWORD, "next": next_value},
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert not session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.action == "auth.login")
    )
    # The same login with an ordinary return address works.
    fine = client.post(
        "/login",
        data={"csrf_token": token, "email": user.email, "password": PASSWORD, "next": "/profile/"},
    )
    assert fine.status_code == 302 and fine.headers["Location"].endswith("/profile/")


@pytest.mark.parametrize("depth", [950, 5000, 100_000])
def test_deeply_nested_json_on_the_api_is_400(client, session, org, depth):
    user = make_user(session, org, Role.RECRUITER)
    api = ApiClient(client, issue_token(session, user))
    body = '{"panel": ' + "[" * depth + "]" * depth + "}"
    error = assert_error(api.post("/interviews", data=body, content_type="application/json"), 400)
    assert "nested" in error["message"]
    body = "[" * depth + "]" * depth
    assert_error(api.post("/scheduling-links", data=body, content_type="application/json"), 400)


@pytest.mark.parametrize(
    "slot", ["9999-12-31T23:30:00+00:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]
)
def test_a_slot_at_the_end_of_time_is_refused_on_the_web_form_and_the_api(
    app, client, auth, session, sandbox, org, recruiter, slot
):
    panel = make_panel(app, session, sandbox, org, 1)
    auth.login(recruiter.email)
    form = {
        "panel": str(panel[0][1].id),
        "duration": "60",
        "days": "5",
        "start_date": next_weekday(1).isoformat(),
        "tzid": "Europe/London",
        "slot": slot,
        "title": "Onsite",
        "candidate_name": "Jamie Candidate",
        "candidate_email": "jamie@gmail.example",
    }
    response = auth.post("/schedule/", form, form_page="/schedule/")
    assert response.status_code == 400, response.status_code
    assert "free slots" in response.get_data(as_text=True)

    api = ApiClient(app.test_client(), issue_token(session, recruiter))
    created = api.post(
        "/interviews",
        json={
            "panel": [panel[0][1].id],
            "start": slot,
            "duration": 60,
            "title": "Onsite",
            "candidate_name": "Jamie Candidate",
            "candidate_email": "jamie@gmail.example",
        },
    )
    assert created.status_code in (400, 409, 422), created.get_json()
    assert session.scalar(select(func.count(Interview.id))) == 0


@pytest.mark.parametrize("links, submits", [(1, 20), (10, 2), (20, 1)])
def test_twenty_racing_candidate_bookings_get_a_clear_answer_each(
    app, session, sandbox, org, recruiter, live_server, links, submits
):
    """Twenty submissions race for one slot over real HTTP (one link submitted twenty times,
    ten links twice, twenty links once): one interview, and every other submission a 409
    (that time was just taken) or its own link's booked page, never a 500."""
    import requests

    from tests.conftest import CSRF_RE
    from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for, sealer_of
    from webapp.services import candidate_links
    from webapp.services.availability import free_slots

    people = [link for _u, link in make_panel(app, session, sandbox, org, 1)]
    query = query_for([(None, people[0])], duration=60, days=2)
    slot = free_slots.grid(session, *broker_cipher(app), actor_of(recruiter), query).slots[0]
    tokens = [
        candidate_links.create_link(
            session,
            sealer_of(app),
            actor_of(recruiter),
            panel_link_ids=[people[0].id],
            duration=60,
            start_date=query.start_date,
            days=2,
            expires_days=3,
            candidate_name=f"Candidate {n}",
            candidate_email=f"c{n}@gmail.example",
            candidate_tzid="Europe/London",
            title="Onsite",
        )[1]
        for n in range(links)
    ]
    # Slow answers, so that every racer's check passes before anyone's booking commits.
    sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)
    forms = {}
    for token in tokens:
        with requests.Session() as browser:
            page = browser.get(f"{live_server.url}/c/{token}", timeout=60)
            assert page.status_code == 200
            forms[token] = (dict(browser.cookies), CSRF_RE.search(page.text).group(1))

    def submit(token):
        def go():
            cookies, csrf = forms[token]
            response = requests.post(
                f"{live_server.url}/c/{token}",
                cookies=cookies,
                timeout=60,
                data={"csrf_token": csrf, "slot": slot.start.isoformat()},
            )
            return response.status_code, "was just taken" in response.text

        return go

    calls = [submit(t) for t in tokens for _ in range(submits)]
    barrier = threading.Barrier(len(calls))

    def together(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        answers = list(pool.map(together, calls))
    assert all(status in (200, 409) for status, _taken in answers), answers
    assert all(taken for status, taken in answers if status == 409), answers
    session.expire_all()
    assert session.scalar(select(func.count(Interview.id))) == 1


@pytest.mark.parametrize(
    "role, path",
    [
        (Role.COMPLIANCE, "/compliance/people?q=a%00b"),
        (Role.COMPLIANCE, "/compliance/audit?actor=a%00b"),
        (Role.COMPLIANCE, "/compliance/audit?target=a%00b&action=x"),
        (Role.RECRUITER, "/schedule/?tzid=Europe/London%00"),
    ],
)
def test_a_nul_in_a_query_value_is_refused(client, auth, session, org, role, path):
    """On PostgreSQL such a search was a 500 (text cannot hold NUL)."""
    user = make_user(session, org, role)
    auth.login(user.email)
    assert client.get(path).status_code == 400
    api = ApiClient(client, issue_token(session, user))
    path, key = (
        ("/compliance/audit", "actor") if role is Role.COMPLIANCE else ("/availability", "tzid")
    )
    error = assert_error(api.get(path, query_string={key: "a\x00b"}), 422)
    assert error["fields"] == {key: ["Must not contain NUL characters."]}
    assert_error(ApiClient(client).get(path, query_string={key: "a\x00b"}), 401)  # no token
