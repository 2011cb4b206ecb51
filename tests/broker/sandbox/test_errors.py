"""Bad input gets a documented 4xx shape, never a 500 (§11, issue "Tests")."""

from __future__ import annotations

import pytest

from .conftest import RILEY, api

JSON_ENDPOINTS = [
    ("POST", "/v1/calendars/{cal}/events"),
    ("DELETE", "/v1/calendars/{cal}/events"),
    ("DELETE", "/v1/events"),
    ("POST", "/v1/availability"),
    ("POST", "/v1/sequenced_availability"),
    ("POST", "/v1/channels"),
    ("POST", "/v1/batch"),
    ("POST", "/v1/calendars"),
    ("POST", "/v1/permissions"),
    ("POST", "/v1/conferencing_service_authorizations"),
]


@pytest.fixture
def riley_client(connect):
    client = connect(RILEY, scope="read_write")
    client.primary = next(
        c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"]
    )
    return client


@pytest.mark.parametrize("method, path", JSON_ENDPOINTS)
def test_malformed_json_is_422(sandbox, riley_client, method, path):
    response = api(
        sandbox,
        method,
        path.format(cal=riley_client.primary),
        riley_client.auth.access_token,
        data="{broken",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]["request"][0]["key"] == "errors.invalid_json"


@pytest.mark.parametrize("method, path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        42,
        {"junk": {"deep": [1, None]}},
        {"batch": [1, "x"]},
        {"participants": "x", "required_duration": "x", "query_periods": "x", "sequence": [None]},
        {
            "event_id": {},
            "summary": [],
            "start": {"time": 5},
            "end": None,
            "attendees": "x",
            "reminders": "x",
        },
    ],
)
def test_junk_bodies_never_cause_a_500(sandbox, riley_client, method, path, payload):
    response = api(
        sandbox,
        method,
        path.format(cal=riley_client.primary),
        riley_client.auth.access_token,
        json=payload,
    )
    assert 400 <= response.status_code < 500 or (
        path == "/v1/batch" and response.status_code == 207
    ), response.text
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("token", [None, "unknown-token", "Bearer-less"])
def test_missing_or_unknown_tokens_are_401(sandbox, token):
    headers = {"Authorization": token} if token == "Bearer-less" else {}
    response = api(
        sandbox, "GET", "/v1/calendars", token if token != "Bearer-less" else None, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_unknown_routes_and_methods_are_json(sandbox):
    missing = api(sandbox, "GET", "/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = api(sandbox, "PUT", "/v1/calendars")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_sequenced_availability_junk_is_422(sandbox, riley_client):
    response = api(
        sandbox,
        "POST",
        "/v1/sequenced_availability",
        riley_client.auth.access_token,
        json={
            "sequence": [{"sequence_id": "a", "participants": [{"members": [riley_client.sub]}]}]
        },
    )
    assert response.status_code == 422
