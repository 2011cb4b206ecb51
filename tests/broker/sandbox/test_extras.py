"""Conferencing, Smart Invites, Real-Time Scheduling and element tokens (§8, §9, §14 I/K)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox.signing import HEADER

from .conftest import CLIENT_SECRET, RILEY, SAM, api, client_for

#: Computed once (UTC), so every period laid out from it is on the same days.
FUTURE = dt.datetime.combine(
    dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3), dt.time(15), tzinfo=dt.UTC
)


def _upsert_with_conferencing(client, event_id: str, profile_id: str, receiver=None):
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    event = {
        "event_id": event_id,
        "summary": "Interview",
        "start": FUTURE,
        "end": FUTURE + dt.timedelta(hours=1),
        "conferencing": {"profile_id": profile_id},
    }
    if receiver is not None:
        event["subscriptions"] = [
            {
                "type": "webhook",
                "uri": receiver.url + "/conf",
                "interactions": [
                    {"type": "conferencing_assigned"},
                    {"type": "conferencing_failing"},
                ],
            }
        ]
    client.upsert_event(cal, event)
    return cal


def _managed(client, event_id):
    return next(
        e
        for e in client.read_events(tzid="Etc/UTC", only_managed=True).all()
        if e["event_id"] == event_id
    )


@pytest.mark.parametrize(
    "email, provider, host",
    [
        (RILEY, "google_meet", "https://meet.sandbox.example/"),
        (SAM, "ms_teams", "https://teams.sandbox.example/"),
    ],
)
def test_integrated_conferencing_is_assigned_after_the_upsert(
    sandbox, connect, receiver, email, provider, host
):
    client = connect(email)
    _upsert_with_conferencing(client, "conf-1", "default", receiver)
    assert "conferencing" not in _managed(client, "conf-1"), "assigned asynchronously"
    sandbox.deliver()
    event = _managed(client, "conf-1")
    assert event["conferencing"]["provider_name"] == provider
    assert event["conferencing"]["join_url"].startswith(host)
    assert event["meeting_url"] == event["conferencing"]["join_url"]
    [note] = receiver.received
    assert note.json()["notification"]["type"] == "conferencing_assigned"
    assert note.json()["event"]["event_id"] == "conf-1"
    assert client.hmac_valid(note.headers[HEADER], note.text)


def test_zoom_after_linking_a_conferencing_profile(sandbox, connect):
    client = connect(SAM)
    url = client.get_conferencing_services_auth_link(
        "http://127.0.0.1:5000/conf-done", provider_name="zoom"
    )
    assert url.startswith(sandbox.url + "/conferencing_services/")
    assert requests.get(url, timeout=5).status_code == 200
    page = requests.post(url, data={"decision": "approve"}, allow_redirects=False, timeout=5)
    [zoom] = client.userinfo()["cronofy.data"]["conferencing_profiles"]
    # Documented: the redirect carries the profile just linked.
    assert page.headers["Location"] == (
        "http://127.0.0.1:5000/conf-done?last_linked_profile_id=" + zoom["profile_id"]
    )
    assert zoom["provider_name"] == "zoom" and zoom["profile_connected"] is True
    _upsert_with_conferencing(client, "conf-zoom", "default")
    sandbox.deliver()
    assert _managed(client, "conf-zoom")["conferencing"]["join_url"].startswith(
        "https://zoom.sandbox.example/j/"
    )
    _upsert_with_conferencing(client, "conf-explicit", zoom["profile_id"])
    sandbox.deliver()
    assert _managed(client, "conf-explicit")["conferencing"]["provider_name"] == "zoom"


def _link(client, provider: str | None, choose: str | None = None) -> dict:
    url = client.get_conferencing_services_auth_link(
        "http://127.0.0.1:5000/conf-done", provider_name=provider
    )
    form = {"decision": "approve", **({"provider_name": choose} if choose else {})}
    page = requests.post(url, data=form, allow_redirects=False, timeout=5)
    assert page.headers["Location"].startswith("http://127.0.0.1:5000/conf-done?last_linked_")
    profiles = client.userinfo()["cronofy.data"]["conferencing_profiles"]
    return next(p for p in profiles if p["provider_name"] == (provider or choose))


@pytest.mark.parametrize(
    "provider, host",
    [
        ("go_to", "https://goto.sandbox.example/join/"),
        ("ms_teams", "https://teams.sandbox.example/"),
    ],
)
def test_goto_and_teams_are_linked_next_to_zoom(sandbox, connect, provider, host):
    client = connect(RILEY)
    zoom = _link(client, "zoom")
    other = _link(client, None, choose=provider)
    assert other["profile_connected"] is True and other["profile_id"] != zoom["profile_id"]
    _upsert_with_conferencing(client, "conf-other", other["profile_id"])
    _upsert_with_conferencing(client, "conf-zoom", zoom["profile_id"])
    sandbox.deliver()
    assert _managed(client, "conf-other")["conferencing"]["provider_name"] == provider
    assert _managed(client, "conf-other")["conferencing"]["join_url"].startswith(host)
    assert _managed(client, "conf-zoom")["conferencing"]["provider_name"] == "zoom"


def test_only_the_documented_conferencing_providers_exist(sandbox, connect):
    """zoom, go_to and ms_teams (docs, cronofy-csharp ConferencingProviders): Webex is not one."""
    client = connect(SAM)
    refused = api(
        sandbox,
        "POST",
        "/v1/conferencing_service_authorizations",
        client.auth.access_token,
        json={"redirect_uri": "http://127.0.0.1:5000/conf-done", "provider_name": "cisco_webex"},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"]["provider_name"][0]["key"] == "errors.invalid"
    url = client.get_conferencing_services_auth_link("http://127.0.0.1:5000/conf-done")
    page = requests.get(url, timeout=5).text
    assert "Zoom" in page and "GoTo" in page and "Teams" in page and "Webex" not in page
    chosen = requests.post(
        url,
        data={"decision": "approve", "provider_name": "cisco_webex"},
        allow_redirects=False,
        timeout=5,
    )
    assert chosen.headers["Location"].endswith("?error=access_denied")
    assert client.userinfo()["cronofy.data"]["conferencing_profiles"] == []


def test_conferencing_authorization_can_be_refused(sandbox, connect):
    client = connect(SAM)
    url = client.get_conferencing_services_auth_link("http://127.0.0.1:5000/conf-done")
    page = requests.post(url, data={"decision": "deny"}, allow_redirects=False, timeout=5)
    assert page.headers["Location"] == "http://127.0.0.1:5000/conf-done?error=access_denied"


def test_exchange_without_a_provider_fires_conferencing_failing(sandbox, connect, receiver):
    client = connect("anna.becker@fabrikam.example")
    _upsert_with_conferencing(client, "conf-x", "integrated", receiver)
    sandbox.deliver()
    assert "conferencing" not in _managed(client, "conf-x"), "event still holds the time"
    assert receiver.received[0].json()["notification"]["type"] == "conferencing_failing"


def test_explicit_conferencing_is_immediate(connect):
    """The form of cronofy-csharp's CanUpsertExplicitConferencing: a Webex room goes in as is."""
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    client.upsert_event(
        cal,
        {
            "event_id": "own-link",
            "summary": "x",
            "start": FUTURE,
            "end": FUTURE + dt.timedelta(hours=1),
            "conferencing": {
                "profile_id": "explicit",
                "provider_description": "Webex",
                "join_url": "https://acme.webex.com/meet/riley",
            },
        },
    )
    assert _managed(client, "own-link")["conferencing"] == {
        "provider_name": "Webex",
        "join_url": "https://acme.webex.com/meet/riley",
    }


@pytest.mark.parametrize(
    "conferencing",
    [
        {"profile_id": "explicit", "join_url": "https://acme.webex.com/meet/riley"},
        {"profile_id": "explicit", "provider_description": "Webex"},
        {
            "profile_id": "explicit",
            "provider_description": "Webex",
            "join_url": "http://acme.webex.com/meet/riley",
        },
        {"profile_id": "explicit", "provider_description": "Webex", "join_url": "webex:riley"},
        {"profile_id": "explicit", "provider_description": " ", "join_url": "https://x.example/"},
    ],
)
def test_incomplete_explicit_conferencing_is_422(sandbox, connect, conferencing):
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    response = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events",
        client.auth.access_token,
        json={
            "event_id": "bad-link",
            "summary": "x",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
            "conferencing": conferencing,
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"]["conferencing"][0]["key"] == "errors.invalid"


def test_unknown_conferencing_profile_is_422(sandbox, connect):
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    response = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events",
        client.auth.access_token,
        json={
            "event_id": "e",
            "summary": "x",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
            "conferencing": {"profile_id": "pro_zzz"},
        },
    )
    assert response.status_code == 422


# ---- Smart Invites -------------------------------------------------------------------------------


def _api_key_client(sandbox):
    return client_for(sandbox)


def test_smart_invite_create_get_and_cancel(sandbox, receiver):
    client = _api_key_client(sandbox)
    start = FUTURE.strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (FUTURE + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The documented request: method, organizer name and email, callback_url.
    created = client.request_handler.post(
        "smart_invites",
        use_api_key=True,
        data={
            "method": "request",
            "smart_invite_id": "inv-8812",
            "recipient": {"email": "a.candidate@example.net"},
            "callback_url": receiver.url + "/smart",
            "event": {
                "summary": "Interview; round 2",
                "description": "Panel, then Q&A",
                "start": start,
                "end": end,
                "tzid": "Europe/London",
                "location": {"description": "Room 4"},
            },
            "organizer": {"name": "Northwind Talent", "email": "invites@northwind.example"},
        },
    ).json()
    assert created["smart_invite_id"] == "inv-8812"
    assert created["recipient"] == {"email": "a.candidate@example.net", "status": "pending"}
    # Times come back as {time, tzid} objects, as in the documented response.
    assert created["event"]["start"] == {"time": start, "tzid": "Europe/London"}
    assert created["event"]["end"] == {"time": end, "tzid": "Europe/London"}
    ics = created["attachments"]["icalendar"]
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n")), "folded (RFC 5545)"
    ics = ics.replace("\r\n ", "")
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and "METHOD:REQUEST" in ics
    assert "SUMMARY:Interview\\; round 2" in ics
    assert "DTSTART:" + FUTURE.strftime("%Y%m%dT%H%M%SZ") in ics
    assert (
        "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:a.candidate@example.net"
        in ics
    )
    assert "ORGANIZER;CN=Northwind Talent:mailto:invites@northwind.example" in ics
    status = client.get_smart_invite("inv-8812", "a.candidate@example.net")
    assert status["replies"] == []
    sandbox.request(
        "POST",
        "/smart_invites/inv-8812/reply",
        {"email": "a.candidate@example.net", "status": "accepted"},
    )
    sandbox.deliver()
    [note] = receiver.received
    assert note.json()["notification"] == {"type": "smart_invite"}
    assert note.json()["smart_invite"]["reply"]["status"] == "accepted"
    assert client.hmac_valid(note.headers[HEADER], note.text)
    assert (
        client.get_smart_invite("inv-8812", "a.candidate@example.net")["recipient"]["status"]
        == "accepted"
    )
    cancelled = client.cancel_smart_invite("inv-8812", {"email": "a.candidate@example.net"})
    assert "METHOD:CANCEL" in cancelled["attachments"]["icalendar"]
    assert "STATUS:CANCELLED" in cancelled["attachments"]["icalendar"]


def test_smart_invites_need_the_api_key(sandbox, connect):
    user = connect(RILEY)
    response = api(
        sandbox,
        "GET",
        "/v1/smart_invites",
        user.auth.access_token,
        params={"smart_invite_id": "x", "recipient_email": "y@example.net"},
    )
    assert response.status_code == 401
    missing = api(
        sandbox,
        "GET",
        "/v1/smart_invites",
        CLIENT_SECRET,
        params={"smart_invite_id": "x", "recipient_email": "y@example.net"},
    )
    assert missing.status_code == 404
    bad = api(sandbox, "POST", "/v1/smart_invites", CLIENT_SECRET, json={"smart_invite_id": "x"})
    assert bad.status_code == 422


def test_a_smart_invite_without_method_is_refused(sandbox):
    """The documentation sends ``method`` ("request"); pycronofy's upsert_smart_invite leaves
    it out. Where the sources are silent the sandbox takes the stricter reading: 422."""
    client = _api_key_client(sandbox)
    with pytest.raises(PyCronofyRequestError) as info:
        client.upsert_smart_invite(
            "inv-1",
            {"email": "a.candidate@example.net"},
            {"summary": "Interview", "start": FUTURE, "end": FUTURE + dt.timedelta(hours=1)},
        )
    assert info.value.response.status_code == 422
    assert info.value.response.json()["errors"]["method"][0]["key"] == "errors.required"


# ---- Real-Time Scheduling and element tokens -----------------------------------------------------


def test_real_time_scheduling_lifecycle(sandbox, connect):
    riley = connect(RILEY)
    client = _api_key_client(sandbox)
    created = client.real_time_scheduling(
        availability={
            "participants": {"members": [riley.sub]},
            "required_duration": 60,
            "available_periods": [{"start": FUTURE, "end": FUTURE + dt.timedelta(hours=4)}],
        },
        oauth={"redirect_uri": "http://127.0.0.1:5000/rts", "scope": "read_events"},
        event={"event_id": "rts-1", "summary": "Chat", "tzid": "Etc/UTC"},
    )["real_time_scheduling"]
    assert created["real_time_scheduling_id"].startswith("sch_")
    assert created["url"].startswith(sandbox.url + "/rts/")
    by_id = client.get_real_time_scheduling_status(
        real_time_scheduling_id=created["real_time_scheduling_id"]
    )
    token = created["url"].rsplit("/", 1)[1]
    assert client.get_real_time_scheduling_status(token=token) == by_id
    disabled = client.disable_real_time_scheduling_link(
        created["real_time_scheduling_id"], "Closed"
    )
    assert disabled["real_time_scheduling"]["status"] == "disabled"
    assert "Closed" in requests.get(created["url"], timeout=5).text


def test_element_token_has_the_wrapped_shape(sandbox, connect):
    riley = connect(RILEY)
    token = _api_key_client(sandbox).get_ui_element_token(
        ["agenda"], [riley.sub], "http://127.0.0.1:5000"
    )
    assert set(token) == {"element_token"}
    assert token["element_token"]["expires_in"] == 64800
    assert token["element_token"]["permissions"] == ["agenda"]
    with pytest.raises(PyCronofyRequestError):
        _api_key_client(sandbox).get_ui_element_token(
            ["everything"], [riley.sub], "http://127.0.0.1:5000"
        )
