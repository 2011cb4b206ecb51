"""Control characters and lone surrogates are refused where people type names, titles and
addresses: they used to pass through to the calendar event (and on PostgreSQL a NUL in a name
cannot even be stored)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from models import ApiToken, Interview, Role, SchedulingLink, User
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.factories import make_user
from tests.webapp.scheduling_support import make_panel
from webapp.services.accounts import valid_email

BAD = [
    "Jamie\x00Candidate",
    "Jamie\ud800",
    "Jamie\x1b[31m",
    "Jamie\r\nBcc: x@evil.example",
    "Jamie\x7f",
    "Jamie\x85",
]


@pytest.mark.parametrize(
    "email",
    [
        "dana\x00@northwind.example",
        "dana\x01@northwind.example",
        "da\x7fna@northwind.example",
        "dana\x9b@northwind.example",
        "dana\ud800@northwind.example",
    ],
)
def test_valid_email_refuses_control_characters_and_surrogates(email):
    assert not valid_email(email)
    assert valid_email("dana.o'neil+jobs@northwind.example")
    assert valid_email("zoë@northwind.example")


def _raw_json(api: ApiClient, path: str, body: dict):
    """POST ``body`` as JSON text with \\u escapes, exactly as a client could send it."""
    return api.post(path, data=json.dumps(body, ensure_ascii=True), content_type="application/json")


@pytest.mark.parametrize("bad", BAD)
def test_interview_titles_and_names_with_unprintable_characters_are_422(
    app, client, session, sandbox, org, recruiter, bad
):
    panel = make_panel(app, session, sandbox, org, 1)
    api = ApiClient(client, issue_token(session, recruiter))
    slot = api.get(
        "/availability", query_string=[("panel", str(panel[0][1].id)), ("days", "5")]
    ).get_json()["slots"][0]
    before = sandbox.stats()["requests"]
    for field, body in (
        ("title", {"title": f"Onsite {bad}"}),
        ("candidate_name", {"candidate_name": bad}),
    ):
        payload = {
            "panel": [panel[0][1].id],
            "start": slot["start"],
            "duration": 60,
            "title": "Onsite",
            "candidate_name": "Jamie Candidate",
            "candidate_email": "jamie@gmail.example",
            **body,
        }
        error = assert_error(_raw_json(api, "/interviews", payload), 422)
        assert field in error["fields"], error
    notes = {
        "panel": [panel[0][1].id],
        "start": slot["start"],
        "duration": 60,
        "title": "Onsite",
        "candidate_name": "Jamie Candidate",
        "candidate_email": "jamie@gmail.example",
        "notes": f"Bring {bad}",
    }
    if "\r\n" not in bad:  # line breaks are fine in notes
        assert "notes" in assert_error(_raw_json(api, "/interviews", notes), 422)["fields"]
    link = {
        "panel": [panel[0][1].id],
        "duration": 60,
        "days": 3,
        "expires_days": 7,
        "candidate_name": bad,
        "candidate_email": "jamie@gmail.example",
        "candidate_tzid": "Europe/London",
        "title": "Onsite",
    }
    assert (
        "candidate_name" in assert_error(_raw_json(api, "/scheduling-links", link), 422)["fields"]
    )
    assert session.scalar(select(func.count(Interview.id))) == 0
    assert session.scalar(select(func.count(SchedulingLink.id))) == 0
    after = sandbox.stats()["requests"]
    assert not [k for k in after if "/events" in k and after[k] != before.get(k)]


def test_people_and_token_names_with_unprintable_characters_are_refused(
    app, client, auth, session, org
):
    admin = make_user(session, org, Role.ADMIN, email="alex.kim@northwind.example")
    auth.login(admin.email)
    users = session.scalar(select(func.count(User.id)))
    for name, email in (
        ("Dana\x00Fox", "dana@northwind.example"),
        ("Dana Fox", "dana\x01@northwind.example"),
    ):
        response = auth.post(
            "/admin/users",
            {"name": name, "email": email, "role": "recruiter"},
            form_page="/admin/users",
        )
        assert response.status_code == 400
    assert session.scalar(select(func.count(User.id))) == users

    response = auth.post(
        "/profile/api-tokens/",
        {"name": "Phone\x00", "days": "30"},
        form_page="/profile/api-tokens/",
    )
    assert response.status_code == 400
    assert session.scalar(select(func.count(ApiToken.id))) == 0
