"""The control API, the seeded world, rate limiting, faults, statistics, state file, CLI, pages."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox.__main__ import options_from, parse_args
from broker.sandbox.server import start_sandbox

from .conftest import (
    ALEX,
    ASSISTANT,
    CLIENT_ID,
    CLIENT_SECRET,
    MORGAN,
    RILEY,
    SAM,
    SVC,
    client_for,
    today,
    tokens_for,
)

JORDAN = "jordan.diaz@northwind.example"


# ---- the seeded world ----------------------------------------------------------------------------


def _identities(sandbox) -> dict[str, dict]:
    rows = sandbox.request("GET", "/identities").json()["identities"]
    return {r["email"]: r for r in rows}


def test_demo_organisation_identities(sandbox):
    ids = _identities(sandbox)
    expected = {
        RILEY: ("google", "gsuite"),
        SAM: ("office365", "office365"),
        MORGAN: ("google", "gsuite"),
        ALEX: ("google", "gsuite"),
        JORDAN: ("google", "gsuite"),
    }
    for email, (provider, service) in expected.items():
        assert (ids[email]["provider_name"], ids[email]["provider_service"]) == (provider, service)
        assert ids[email]["password"] == "sandbox"
    assert ids[ALEX]["admin_of"] == "northwind.example"
    assert ids["it.admin@contoso.example"]["admin_of"] == "contoso.example"
    assert ids[SVC]["admin_of"] == "fabrikam.example" and ids[SVC]["password"] == "svc-sandbox"
    assert ids[ASSISTANT]["kind"] == "assistant"
    fabrikam = [
        r for r in ids.values() if r["domain"] == "fabrikam.example" and r["kind"] == "person"
    ]
    assert len(fabrikam) >= 26
    assert 1 <= sum(r["impersonation_excluded"] for r in fabrikam) <= 5
    assert {r["domain"] for r in ids.values()} >= {
        "gmail.example",
        "outlook.example",
        "icloud.example",
    }
    assert all(r["email"].endswith(".example") for r in ids.values())
    rooms = [r for r in ids.values() if r["kind"] == "room"]
    assert rooms and all(r["sub"].startswith("res_") for r in rooms)
    assert (
        len(
            [
                r
                for r in ids.values()
                if r["kind"] in {"person", "admin", "assistant"}
                and r["domain"] != "fabrikam.example"
            ]
        )
        >= 15
    )


def test_seed_is_reproducible(sandbox):
    first = sandbox.request("GET", "/events", params={"email": RILEY}).json()["events"]
    sandbox.request("POST", "/reset")
    again = sandbox.request("GET", "/events", params={"email": RILEY}).json()["events"]
    key = [(e["event_uid"], e["start"], e["end"], e["summary"]) for e in first]
    assert key == [(e["event_uid"], e["start"], e["end"], e["summary"]) for e in again]
    zones = {_identities(sandbox)[e]["tzid"] for e in (RILEY, SAM, "anna.becker@fabrikam.example")}
    assert zones == {"Europe/London", "America/New_York", "Europe/Berlin"}


def test_reset_clears_tokens_channels_and_faults(sandbox, connect, receiver):
    client = connect(RILEY)
    client.create_notification_channel(receiver.url + "/p")
    sandbox.request("POST", "/faults", {"path": "/v1/nothing", "status": 500})
    sandbox.request("POST", "/reset")
    assert sandbox.request("GET", "/faults").json()["rules"] == []
    assert sandbox.request("GET", "/outbox").json()["queued"] == []
    with pytest.raises(PyCronofyRequestError) as info:
        client.account()
    assert info.value.response.status_code == 401


def test_seed_endpoint_adds_people_and_events(sandbox):
    added = sandbox.request(
        "POST",
        "/seed",
        {
            "domains": [{"name": "bench.example", "provider_name": "google"}],
            "identities": [{"email": "ann@bench.example", "name": "Ann", "tzid": "Europe/Berlin"}],
            "events": [
                {
                    "email": "ann@bench.example",
                    "summary": "Busy",
                    "start": "2031-01-01T09:00:00Z",
                    "end": "2031-01-01T10:00:00Z",
                }
            ],
        },
    ).json()
    assert added["events"] == 1 and added["identities"][0]["sub"].startswith("acc_")
    client = client_for(sandbox, tokens_for(sandbox, "ann@bench.example")["access_token"])
    assert [
        e["summary"]
        for e in client.read_events(
            tzid="Etc/UTC", from_date="2031-01-01", to_date="2031-01-02"
        ).all()
    ] == ["Busy"]


# ---- faults, rate limit, statistics -------------------------------------------------------------


def test_fault_rules_fire_with_status_body_headers_and_count(sandbox, connect):
    client = connect(RILEY)
    added = sandbox.request(
        "POST",
        "/faults",
        {
            "method": "GET",
            "path": "/v1/calendars",
            "status": 503,
            "body": {"error": "maintenance"},
            "headers": {"Retry-After": "1"},
            "count": 2,
        },
    ).json()
    assert added["ids"][0].startswith("flt_")
    for _ in range(2):
        with pytest.raises(PyCronofyRequestError) as info:
            client.list_calendars()
        assert info.value.response.status_code == 503
        assert info.value.response.headers["Retry-After"] == "1"
        assert info.value.response.json() == {"error": "maintenance"}
    assert client.list_calendars()
    assert sandbox.request("GET", "/faults").json()["rules"] == []


def test_fault_rules_by_regex_account_latency_and_probability(sandbox, connect):
    riley, sam = connect(RILEY), connect(SAM)
    sandbox.request(
        "POST",
        "/faults",
        {
            "rules": [
                {"path": "re:^/v1/(account|profiles)$", "status": 401, "account": SAM},
                {"path": "/v1/calendars", "latency_ms": 150},
                {"path": "/v1/userinfo", "status": 500, "probability": 0},
            ]
        },
    )
    assert riley.account()
    with pytest.raises(PyCronofyRequestError) as info:
        sam.account()
    assert info.value.response.status_code == 401
    started = time.monotonic()
    assert riley.list_calendars()
    assert time.monotonic() - started >= 0.15
    assert riley.userinfo()["email"] == RILEY
    assert sandbox.request("DELETE", "/faults").json()["removed"] == 3


def test_bad_fault_rules_are_422(sandbox):
    for rule in (
        {"path": "/x"},
        {"path": "re:([", "status": 500},
        {"status": 99},
        {"path": "/x", "status": 500, "probability": 2},
    ):
        assert sandbox.request("POST", "/faults", rule).status_code == 422


def test_rate_limit_answers_429_with_retry_after(sandbox, connect):
    client = connect(RILEY)
    assert sandbox.request(
        "PUT", "/rate-limit", {"enabled": True, "per_second": 3, "per_minute": 500}
    ).json() == {"enabled": True, "per_second": 3, "per_minute": 500}
    statuses = []
    for _ in range(5):
        try:
            client.account()
            statuses.append(200)
        except PyCronofyRequestError as exc:
            statuses.append(exc.response.status_code)
            assert exc.response.headers["Retry-After"] == "1"
            assert exc.response.json()["error"] == "too_many_requests"
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    assert sandbox.request("GET", "/identities").status_code == 200, "control is exempt"
    sandbox.request("PUT", "/rate-limit", {"per_second": 50, "per_minute": 4})
    results = [
        requests.get(
            sandbox.url + "/v1/account",
            headers={"Authorization": f"Bearer {client.auth.access_token}"},
            timeout=5,
        ).status_code
        for _ in range(6)
    ]
    assert results.count(429) == 2
    sandbox.request("PUT", "/rate-limit", {"enabled": False})
    assert client.account()


def test_default_rate_limit_is_50_per_second():
    handle = start_sandbox(CLIENT_ID, CLIENT_SECRET, auto_deliver=False)
    try:
        assert handle.client.request("GET", "/rate-limit").json() == {
            "enabled": True,
            "per_second": 50,
            "per_minute": 500,
        }
        token = tokens_for(handle.client, RILEY)["access_token"]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            codes = [
                session.get(handle.url + "/v1/account", timeout=5).status_code for _ in range(60)
            ]
        assert codes.count(200) >= 50 and 429 in codes
    finally:
        handle.stop()


def test_stats_count_requests_and_connections(sandbox, connect):
    client = connect(RILEY)
    sandbox.request("DELETE", "/stats")
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {client.auth.access_token}"
        for _ in range(5):
            assert session.get(sandbox.url + "/v1/account", timeout=5).ok
    stats = sandbox.request("GET", "/stats").json()
    assert stats["requests"] == {"GET /v1/account": 5}
    assert stats["connections"] == 1, "a pooled session reuses one connection"
    for _ in range(3):
        requests.get(
            sandbox.url + "/v1/account",
            headers={"Authorization": f"Bearer {client.auth.access_token}"},
            timeout=5,
        )
    assert sandbox.request("GET", "/stats").json()["connections"] == 4


def test_config_patch_rejects_unknown_options(sandbox):
    response = sandbox.request("PATCH", "/config", {"page_sise": 3})
    assert response.status_code == 422
    assert sandbox.request("PATCH", "/config", {"page_size": 3}).json()["page_size"] == 3
    sandbox.request("POST", "/reset")
    assert sandbox.request("GET", "/config").json()["page_size"] == 100
    assert "client_secrets" not in sandbox.request("GET", "/config").json()


def test_unconfirmed_behaviours_are_switches_with_the_stricter_default(sandbox):
    config = sandbox.request("GET", "/config").json()
    assert config["sa_callback_signed"] is False
    assert config["sa_callback_state"] == "authorization"
    assert config["revoke_non_account_subs"] == "refuse"
    for bad in ({"sa_callback_state": "body"}, {"revoke_non_account_subs": "maybe"}):
        assert sandbox.request("PATCH", "/config", bad).status_code == 422
    changed = sandbox.request(
        "PATCH",
        "/config",
        {
            "sa_callback_signed": True,
            "sa_callback_state": "top_level",
            "revoke_non_account_subs": "accept",
        },
    ).json()
    assert (
        changed["sa_callback_signed"],
        changed["sa_callback_state"],
        changed["revoke_non_account_subs"],
    ) == (True, "top_level", "accept")


# ---- state file and CLI --------------------------------------------------------------------------


def test_state_persists_between_restarts(tmp_path):
    path = tmp_path / "sandbox-state.json"
    first = start_sandbox(
        CLIENT_ID, CLIENT_SECRET, state_file=str(path), auto_deliver=False, rate_limit_enabled=False
    )
    try:
        tokens = tokens_for(first.client, RILEY)
        client = client_for(first, tokens["access_token"])
        cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
        client.upsert_event(
            cal,
            {
                "event_id": "kept",
                "summary": "Survives a restart",
                "start": "2031-01-01T09:00:00Z",
                "end": "2031-01-01T10:00:00Z",
            },
        )
    finally:
        first.stop()
    assert json.loads(path.read_text())["version"] == 1
    assert not list(tmp_path.glob(".sandbox-state-*")), "written atomically, no temp files left"
    second = start_sandbox(
        CLIENT_ID, CLIENT_SECRET, state_file=str(path), auto_deliver=False, rate_limit_enabled=False
    )
    try:
        client = client_for(second, tokens["access_token"], tokens["refresh_token"])
        assert [
            e["summary"] for e in client.read_events(tzid="Etc/UTC", only_managed=True).all()
        ] == ["Survives a restart"]
        assert client.refresh_authorization()["refresh_token"] == tokens["refresh_token"]
    finally:
        second.stop()


def test_cli_options():
    args = parse_args(
        [
            "--host",
            "127.0.0.1",
            "--port",
            "9000",
            "--client-id",
            "cid",
            "--client-secret",
            "a",
            "--client-secret",
            "b",
            "--state-file",
            "s.json",
            "--token-ttl",
            "60",
            "--rotate-refresh-tokens",
            "--page-size",
            "5",
            "--no-rate-limit",
            "--seed",
            "7",
            "--no-auto-deliver",
        ]
    )
    options = options_from(args)
    assert options == {
        "client_id": "cid",
        "client_secret": ["a", "b"],
        "state_file": "s.json",
        "seed": 7,
        "token_ttl": 60,
        "page_size": 5,
        "rotate_refresh_tokens": True,
        "rate_limit_enabled": False,
        "auto_deliver": False,
    }
    with pytest.raises(SystemExit):
        parse_args(["--port", "1"])  # client id and secret are required


def test_unknown_options_fail_at_start():
    with pytest.raises(TypeError):
        start_sandbox(CLIENT_ID, CLIENT_SECRET, no_such_option=True)


# ---- pages ---------------------------------------------------------------------------------------


def test_index_and_calendar_pages(sandbox):
    index = requests.get(sandbox.url + "/_sandbox/", timeout=5)
    assert index.status_code == 200 and RILEY in index.text and "svc-sandbox" in index.text
    next_week = (today() + dt.timedelta(days=7)).isoformat()
    page = requests.get(sandbox.url + f"/_sandbox/calendar/{RILEY}?week={next_week}", timeout=5)
    assert page.status_code == 200
    assert "Move +1h" in page.text and "Move to next day" in page.text and "Delete" in page.text
    assert (
        requests.get(sandbox.url + "/_sandbox/calendar/nobody@x.example", timeout=5).status_code
        == 404
    )


def test_calendar_page_buttons_change_events_as_the_owner(sandbox, connect, receiver):
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    client.upsert_event(
        cal,
        {
            "event_id": "interview-7",
            "summary": "Interview: Kim",
            "start": "2031-01-07T10:00:00Z",
            "end": "2031-01-07T11:00:00Z",
        },
    )
    client.create_notification_channel(receiver.url + "/push")
    page = requests.get(sandbox.url + f"/_sandbox/calendar/{RILEY}?week=2031-01-07", timeout=5)
    assert "Interview: Kim" in page.text and "written by the app" in page.text
    uid = client.read_events(tzid="Etc/UTC", only_managed=True).all()[0]["event_uid"]
    moved = requests.post(
        sandbox.url + f"/_sandbox/calendar/{RILEY}/events/{uid}/move-hour",
        data={"week": "2031-01-06"},
        allow_redirects=False,
        timeout=5,
    )
    assert moved.status_code == 303 and "week=2031-01-06" in moved.headers["Location"]
    event = client.read_events(tzid="Etc/UTC", only_managed=True).all()[0]
    assert event["start"] == "2031-01-07T11:00:00Z" and event["event_id"] == "interview-7"
    requests.post(sandbox.url + f"/_sandbox/calendar/{RILEY}/events/{uid}/delete", timeout=5)
    assert client.read_events(tzid="Etc/UTC", only_managed=True).all() == []
    sandbox.request("POST", "/deliver")
    assert len(receiver.of_type("change")) >= 1


def test_relink_page_reconnects_a_profile(sandbox, connect):
    client = connect(RILEY)
    profile_id = client.list_profiles()[0]["profile_id"]
    sandbox.request("POST", f"/profiles/{profile_id}/disconnect")
    url = client.list_profiles()[0]["profile_relink_url"]
    assert requests.post(url, data={"password": "wrong"}, timeout=5).status_code == 400
    assert requests.post(url, data={"password": "sandbox"}, timeout=5).status_code == 200
    assert client.list_profiles()[0]["profile_connected"] is True


def test_a_disconnected_profile_is_silent_until_relinked_then_changes_resume(
    sandbox, connect, receiver
):
    """Docs FAQ profile-reconnection-process: after the person signs in again through the
    aggregator's email or page, syncing resumes and ``change`` notifications come again."""
    client = connect(RILEY)
    client.create_notification_channel(receiver.url + "/push")
    sandbox.request("POST", "/deliver")
    profile_id = client.list_profiles()[0]["profile_id"]
    sandbox.request("POST", f"/profiles/{profile_id}/disconnect")
    sandbox.request("POST", "/deliver")
    receiver.clear()
    made = sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "create",
            "summary": "Dentist",
            "start": "2031-01-07T10:00:00Z",
            "end": "2031-01-07T11:00:00Z",
        },
    ).json()["event"]
    sandbox.request("POST", "/deliver")
    assert receiver.of_type("change") == [], "nothing syncs while the profile is disconnected"
    url = client.list_profiles()[0]["profile_relink_url"]
    assert requests.post(url, data={"password": "sandbox"}, timeout=5).status_code == 200
    sandbox.request("POST", "/deliver")
    [note] = receiver.of_type("change")
    assert note.json()["notification"]["changes_since"] == made["updated"]
    assert client.list_profiles()[0]["profile_connected"] is True
    receiver.clear()
    sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "create",
            "summary": "Gym",
            "start": "2031-01-08T10:00:00Z",
            "end": "2031-01-08T11:00:00Z",
        },
    )
    sandbox.request("POST", "/deliver")
    assert len(receiver.of_type("change")) == 1, "and go on as normal"


# ---- attendee replies ----------------------------------------------------------------------------


def _invited(client) -> tuple[str, dict]:
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    client.upsert_event(
        cal,
        {
            "event_id": "panel-1",
            "summary": "Interview: Kim",
            "start": "2031-01-07T10:00:00Z",
            "end": "2031-01-07T11:00:00Z",
            "attendees": {"invite": [{"email": MORGAN}, {"email": JORDAN}]},
        },
    )
    [event] = client.read_events(tzid="Etc/UTC", only_managed=True).all()
    return cal, event


def _statuses(client) -> dict[str, str]:
    [event] = client.read_events(tzid="Etc/UTC", only_managed=True).all()
    return {a["email"]: a["status"] for a in event["attendees"]}


def test_attendee_response_sets_the_status_and_notifies(sandbox, connect, receiver):
    client = connect(RILEY)
    cal, event = _invited(client)
    assert _statuses(client) == {MORGAN: "needs_action", JORDAN: "needs_action"}
    client.create_notification_channel(receiver.url + "/push")
    sandbox.advance(seconds=1)  # ``updated`` has whole-second resolution
    declined = sandbox.request(
        "POST",
        "/attendee-response",
        {
            "organizer": RILEY,
            "event_id": "panel-1",
            "attendee": MORGAN.upper(),
            "status": "declined",
        },
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["event"]["event_id"] == "panel-1"
    sandbox.request("POST", "/deliver")
    assert len(receiver.of_type("change")) == 1  # a reply is not the app's own write
    by_uid = sandbox.request(
        "POST",
        "/attendee-response",
        {
            "organizer": RILEY,
            "event_uid": event["event_uid"],
            "calendar_id": cal,
            "attendee": JORDAN,
            "status": "tentative",
        },
    )
    assert by_uid.status_code == 200, by_uid.text
    assert _statuses(client) == {MORGAN: "declined", JORDAN: "tentative"}
    [after] = client.read_events(tzid="Etc/UTC", only_managed=True).all()
    assert after["updated"] > event["updated"]
    sandbox.request("POST", "/deliver")
    assert len(receiver.of_type("change")) == 2


@pytest.mark.parametrize(
    "change, field",
    [
        ({"organizer": "nobody@northwind.example"}, "organizer"),
        ({"organizer": None}, "organizer"),
        ({"event_id": "no-such-event"}, "event_id"),
        ({"event_id": None}, "event_id"),
        ({"event_id": None, "event_uid": "evt_nope"}, "event_uid"),
        ({"calendar_id": "cal_nope"}, "calendar_id"),
        ({"attendee": "stranger@northwind.example"}, "attendee"),
        ({"attendee": ""}, "attendee"),
        ({"attendee": "room.aurora@northwind.example"}, "attendee"),
        ({"status": "maybe"}, "status"),
        ({"status": None}, "status"),
    ],
)
def test_attendee_response_rejects_bad_input_and_changes_nothing(sandbox, connect, change, field):
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    client.upsert_event(
        cal,
        {
            "event_id": "panel-1",
            "summary": "Interview: Kim",
            "start": "2031-01-07T10:00:00Z",
            "end": "2031-01-07T11:00:00Z",
            "attendees": {
                "invite": [{"email": MORGAN}, {"email": "room.aurora@northwind.example"}]
            },
        },
    )
    [before] = client.read_events(tzid="Etc/UTC", only_managed=True).all()
    body = {
        "organizer": RILEY,
        "event_id": "panel-1",
        "attendee": MORGAN,
        "status": "declined",
        **change,
    }
    response = sandbox.request("POST", "/attendee-response", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]
    assert client.read_events(tzid="Etc/UTC", only_managed=True).all() == [before]


def test_attendee_response_to_a_deleted_event_is_refused(sandbox, connect):
    client = connect(RILEY)
    cal, _event = _invited(client)
    client.delete_event(cal, "panel-1")
    response = sandbox.request(
        "POST",
        "/attendee-response",
        {"organizer": RILEY, "event_id": "panel-1", "attendee": MORGAN, "status": "accepted"},
    )
    assert response.status_code == 422 and "event_id" in response.json()["errors"]
