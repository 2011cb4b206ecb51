"""Inputs that used to end in a 500 get a clear 4xx and change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Interview, Role
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user
from tests.webapp.scheduling_support import make_panel, next_weekday


@pytest.mark.parametrize("next_value", ["/profile/\r\nSet-Cookie: x=1", "/profile/\n",
                                        "/\t/evil.example", "/profile/\x00"])
def test_a_control_character_in_the_login_next_is_400(client, session, org, next_value):
    user = make_user(session, org, Role.RECRUITER)
    page = client.get("/login", query_string={"next": next_value})
    assert page.status_code == 400
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"csrf_token": token, "email": user.email,
                                           "password": PASSWORD, "next": next_value})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert not session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "auth.login"))
    # The same login with an ordinary return address works.
    fine = client.post("/login", data={"csrf_token": token, "email": user.email,
                                       "password": PASSWORD, "next": "/profile/"})
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


@pytest.mark.parametrize("slot", ["9999-12-31T23:30:00+00:00", "9999-12-31T23:59:59-12:00",
                                  "0001-01-01T00:00:00+14:00"])
def test_a_slot_at_the_end_of_time_is_refused_on_the_web_form_and_the_api(
        app, client, auth, session, sandbox, org, recruiter, slot):
    panel = make_panel(app, session, sandbox, org, 1)
    auth.login(recruiter.email)
    form = {"panel": str(panel[0][1].id), "duration": "60", "days": "5",
            "start_date": next_weekday(1).isoformat(), "tzid": "Europe/London", "slot": slot,
            "title": "Onsite", "candidate_name": "Jamie Candidate",
            "candidate_email": "jamie@gmail.example"}
    response = auth.post("/schedule/", form, form_page="/schedule/")
    assert response.status_code == 400, response.status_code
    assert "free slots" in response.get_data(as_text=True)

    api = ApiClient(app.test_client(), issue_token(session, recruiter))
    created = api.post("/interviews", json={
        "panel": [panel[0][1].id], "start": slot, "duration": 60, "title": "Onsite",
        "candidate_name": "Jamie Candidate", "candidate_email": "jamie@gmail.example"})
    assert created.status_code in (400, 409, 422), created.get_json()
    assert session.scalar(select(func.count(Interview.id))) == 0

