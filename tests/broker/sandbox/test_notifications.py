"""Channels and signed push notifications: verification, change, profile_disconnected, retries (§7,
§14 F)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox.server import start_sandbox
from broker.sandbox.signing import HEADER, sign, verify

from .conftest import (
    ASSISTANT,
    CLIENT_ID,
    CLIENT_SECRET,
    DANA,
    RILEY,
    api,
    client_for,
    tokens_for,
)

VECTORS = [
    ("opposable thumbs", "38ArsN7+J/O8joGsgirVEdV16a/+eb+5QgHGIiuv4hk="),
    ("pDY0Oi7TJSP2hfNmZNkm5", "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="),
    ("CRN_NggYusqPGLxwjw5FHOJYOqSrTPNXy8WQf14OID", "5DxentQi5YSXODEzTVv06sRwJ3pULIz1KrYv20qxEK0="),
    ("CRN_nGlYDFXwfSXgB9rvGNBJyfE454GGPtWIbNuPwr", "BmQmWVuZ70ILWjr1CAt5oC7YOolgnku4WZtlrKfx/6k="),
]


@pytest.mark.parametrize("secret, expected", VECTORS)
def test_reference_hmac_vectors_verify_against_the_signing_code(secret, expected):
    body = b'{"example":"well-known"}'
    assert sign(body, [secret]) == expected
    assert verify(expected, body, secret)


def test_several_secrets_give_comma_joined_values():
    body = b'{"example":"well-known"}'
    header = sign(body, [VECTORS[0][0], VECTORS[1][0]])
    assert header == f"{VECTORS[0][1]},{VECTORS[1][1]}"
    assert verify(header, body, VECTORS[1][0]) and not verify(header, body, "other")


def _channel(client, receiver, **filters):
    return client.create_notification_channel(receiver.url + "/push/42", **filters)


def test_create_channel_sends_a_signed_verification(sandbox, connect, receiver):
    client = connect(RILEY)
    channel = _channel(client, receiver)
    assert channel["channel_id"].startswith("chn_")
    assert channel["callback_url"] == receiver.url + "/push/42"
    assert receiver.received == [], "queued until delivered"
    results = sandbox.deliver()
    assert [r["ok"] for r in results] == [True]
    [note] = receiver.received
    assert note.path == "/push/42"
    assert note.headers["Content-Type"] == "application/json; charset=utf-8"
    assert note.json() == {
        "notification": {"type": "verification"},
        "channel": {
            "channel_id": channel["channel_id"],
            "callback_url": channel["callback_url"],
            "filters": {},
        },
    }
    assert client.hmac_valid(note.headers[HEADER], note.text)
    assert not client_for(sandbox, secret="other").hmac_valid(note.headers[HEADER], note.text)


def test_external_change_pushes_change_and_read_back_finds_it(sandbox, connect, receiver):
    client = connect(RILEY)
    _channel(client, receiver)
    sandbox.deliver()
    receiver.clear()
    event = client.read_events(tzid="Etc/UTC").all()[0]
    moved = sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "move", "event_uid": event["event_uid"], "shift_minutes": 60},
    ).json()["event"]
    sandbox.deliver()
    [note] = receiver.of_type("change")
    since = note.json()["notification"]["changes_since"]
    assert since == moved["updated"]
    changed = client.read_events(tzid="Etc/UTC", last_modified=since, include_moved=True).all()
    assert [e["event_uid"] for e in changed] == [event["event_uid"]]
    start = dt.datetime.fromisoformat(changed[0]["start"].replace("Z", "+00:00"))
    old = (
        dt.datetime.fromisoformat(event["start"].replace("Z", "+00:00"))
        if len(event["start"]) > 10
        else None
    )
    if old:
        assert start - old == dt.timedelta(hours=1)


def test_queued_changes_are_coalesced(sandbox, connect, receiver):
    client = connect(RILEY)
    _channel(client, receiver)
    sandbox.deliver()
    receiver.clear()
    for summary in ("one", "two", "three"):
        sandbox.request(
            "POST",
            "/external-change",
            {
                "email": RILEY,
                "action": "create",
                "summary": summary,
                "start": "2031-01-01T10:00:00Z",
                "end": "2031-01-01T11:00:00Z",
            },
        )
    sandbox.deliver()
    assert len(receiver.of_type("change")) == 1


def test_the_apps_own_writes_are_not_echoed_by_default(sandbox, connect, receiver):
    client = connect(RILEY)
    cal = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])
    _channel(client, receiver)
    sandbox.deliver()
    receiver.clear()
    client.upsert_event(
        cal,
        {
            "event_id": "own",
            "summary": "x",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
        },
    )
    sandbox.deliver()
    assert receiver.of_type("change") == []
    sandbox.request("PATCH", "/config", {"notify_own_changes": True})
    client.upsert_event(
        cal,
        {
            "event_id": "own2",
            "summary": "x",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
        },
    )
    sandbox.deliver()
    assert len(receiver.of_type("change")) == 1


def test_filters_only_managed_and_calendar_ids(sandbox, connect, receiver):
    client = connect(RILEY)
    cals = client.list_calendars()
    primary = next(c["calendar_id"] for c in cals if c["calendar_primary"])
    holidays = next(c["calendar_id"] for c in cals if c["calendar_readonly"])
    managed_channel = _channel(client, receiver, only_managed=True)
    holiday_channel = _channel(client, receiver, calendar_ids=[holidays])
    assert managed_channel["filters"] == {"only_managed": True}
    assert holiday_channel["filters"] == {"calendar_ids": [holidays]}
    sandbox.deliver()
    receiver.clear()
    external = client.read_events(calendar_ids=[primary], tzid="Etc/UTC").all()[0]
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "delete", "event_uid": external["event_uid"]},
    )
    sandbox.deliver()
    assert receiver.of_type("change") == [], "external change on another calendar"
    client.upsert_event(
        primary,
        {
            "event_id": "m1",
            "summary": "x",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
        },
    )
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "move", "event_id": "m1", "shift_minutes": 30},
    )
    sandbox.deliver()
    [note] = receiver.of_type("change")
    assert note.json()["channel"]["channel_id"] == managed_channel["channel_id"]


def test_delegated_calendar_changes_reach_the_assistant(sandbox, connect, receiver):
    assistant = connect(ASSISTANT)
    _channel(assistant, receiver)
    sandbox.deliver()
    receiver.clear()
    sandbox.request(
        "POST",
        "/external-change",
        {
            "email": DANA,
            "action": "create",
            "summary": "Board dinner",
            "start": "2031-01-01T18:00:00Z",
            "end": "2031-01-01T20:00:00Z",
        },
    )
    sandbox.deliver()
    assert len(receiver.of_type("change")) == 1


def test_profile_disconnected_and_typed_notifications(sandbox, connect, receiver):
    client = connect(RILEY)
    _channel(client, receiver)
    sandbox.deliver()
    receiver.clear()
    profile_id = client.list_profiles()[0]["profile_id"]
    answer = sandbox.request("POST", f"/profiles/{profile_id}/disconnect").json()
    assert answer["notified_channels"] == 1
    sandbox.request("POST", "/notify", {"email": RILEY, "type": "gdpr_requested"})
    sandbox.deliver()
    assert [n.json()["notification"]["type"] for n in receiver.received] == [
        "profile_disconnected",
        "gdpr_requested",
    ]
    assert all(client.hmac_valid(n.headers[HEADER], n.text) for n in receiver.received)


def test_list_and_close_channels(sandbox, connect, receiver):
    client = connect(RILEY)
    first = _channel(client, receiver)
    client.create_notification_channel(receiver.url + "/push/43")
    assert len(client.list_notification_channels()) == 2
    client.close_notification_channel(first["channel_id"])
    assert [c["channel_id"] for c in client.list_notification_channels()] != [first["channel_id"]]
    assert len(client.list_notification_channels()) == 1
    with pytest.raises(PyCronofyRequestError) as info:
        client.close_notification_channel(first["channel_id"])
    assert info.value.response.status_code == 404


def test_an_account_holds_at_most_128_channels(sandbox, connect, receiver):
    """Docs create-channel: "Each account has a limit of 128 channels"."""
    client = connect(RILEY)
    token = client.auth.access_token
    ids = [_channel_at(sandbox, token, receiver.url + f"/push/{n}") for n in range(128)]
    assert len(set(ids)) == 128 and len(client.list_notification_channels()) == 128
    refused = api(
        sandbox, "POST", "/v1/channels", token, json={"callback_url": receiver.url + "/push/128"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"]["base"][0]["key"] == "errors.too_many_channels"
    client.close_notification_channel(ids[0])
    assert _channel_at(sandbox, token, receiver.url + "/push/128") not in ids


def _channel_at(sandbox, token: str, url: str) -> str:
    response = api(sandbox, "POST", "/v1/channels", token, json={"callback_url": url})
    assert response.status_code == 200, response.text
    return response.json()["channel"]["channel_id"]


def test_an_identical_request_returns_the_open_channel(sandbox, connect, receiver):
    client = connect(RILEY)
    first = _channel(client, receiver)
    sandbox.deliver()
    again = _channel(client, receiver)
    assert again["channel_id"] == first["channel_id"]
    assert len(client.list_notification_channels()) == 1
    assert sandbox.deliver() == [], "no second verification"
    other = _channel(client, receiver, only_managed=True)
    assert other["channel_id"] != first["channel_id"]


def test_every_open_channel_gets_its_own_copy_of_a_change(sandbox, connect, receiver):
    client = connect(RILEY)
    for n in range(3):
        client.create_notification_channel(receiver.url + f"/push/{n}")
    sandbox.deliver()
    receiver.clear()
    sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "create",
            "summary": "one",
            "start": "2031-01-01T10:00:00Z",
            "end": "2031-01-01T11:00:00Z",
        },
    )
    sandbox.deliver()
    assert sorted(n.path for n in receiver.of_type("change")) == ["/push/0", "/push/1", "/push/2"]


def test_channel_validation(sandbox, connect):
    client = connect(RILEY)
    token = client.auth.access_token
    missing = api(sandbox, "POST", "/v1/channels", token, json={})
    assert missing.status_code == 422 and "callback_url" in missing.json()["errors"]
    long = api(
        sandbox,
        "POST",
        "/v1/channels",
        token,
        json={"callback_url": "https://app.example/" + "x" * 200},
    )
    assert long.json()["errors"]["callback_url"][0]["key"] == "errors.too_long"
    foreign = api(
        sandbox,
        "POST",
        "/v1/channels",
        token,
        json={"callback_url": "https://app.example/p", "filters": {"calendar_ids": ["cal_x"]}},
    )
    assert foreign.json()["errors"]["filters"][0]["key"] == "errors.invalid_calendar_ids"


def test_failed_deliveries_are_retried_then_the_channel_closes(sandbox, connect, receiver):
    client = connect(RILEY)
    _channel(client, receiver)
    receiver.status = 500
    first = sandbox.deliver()
    assert [r["ok"] for r in first] == [False] and first[0]["status"] == "500"
    queued = sandbox.request("GET", "/outbox").json()["queued"]
    assert len(queued) == 1 and queued[0]["attempts"] == 1
    receiver.status = 200
    second = sandbox.deliver()
    assert [r["ok"] for r in second] == [True] and second[0]["attempt"] == 2
    sandbox.request("PATCH", "/config", {"retry_window_seconds": 0})
    receiver.status = 503
    sandbox.request("POST", "/notify", {"email": RILEY, "type": "change"})
    sandbox.deliver()
    assert client.list_notification_channels() == [], "closed after the retry window"


def test_unreachable_callback_is_a_failed_attempt_not_a_crash(sandbox, connect):
    client = connect(RILEY)
    client.create_notification_channel("http://127.0.0.1:9/nothing-listens")
    [result] = sandbox.deliver()
    assert result["ok"] is False and result["status"] == "ConnectionError"


def test_rotated_secrets_sign_with_each(sandbox, connect, receiver):
    sandbox.request("POST", "/client-secrets", {"secret": "next-secret"})
    client = connect(RILEY)
    _channel(client, receiver)
    sandbox.deliver()
    [note] = receiver.received
    assert len(note.headers[HEADER].split(",")) == 2
    assert client.hmac_valid(note.headers[HEADER], note.text)
    assert client_for(sandbox, secret="next-secret").hmac_valid(note.headers[HEADER], note.text)
    # both secrets are also accepted as API keys and client credentials
    tokens = tokens_for(sandbox, RILEY)
    refreshed = client_for(sandbox, refresh_token=tokens["refresh_token"], secret="next-secret")
    assert refreshed.refresh_authorization()["access_token"]


def test_background_delivery_without_the_control_api(receiver):
    handle = start_sandbox(CLIENT_ID, CLIENT_SECRET, rate_limit_enabled=False, auto_deliver=True)
    try:
        tokens = tokens_for(handle.client, RILEY)
        client = client_for(handle, tokens["access_token"])
        client.create_notification_channel(receiver.url + "/auto")
        deadline = time.monotonic() + 5
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.path for r in receiver.received] == ["/auto"]
    finally:
        handle.stop()
