"""Account, userinfo, profiles, calendars, events and free/busy through pycronofy (§3, §4,
§14 C)."""

from __future__ import annotations

import datetime as dt

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from .conftest import ASSISTANT, DANA, RILEY, SAM, api, today

CALENDAR_KEYS = {
    "provider_name": str,
    "profile_id": str,
    "profile_name": str,
    "calendar_id": str,
    "calendar_name": str,
    "calendar_readonly": bool,
    "calendar_deleted": bool,
    "calendar_primary": bool,
    "calendar_integrated_conferencing_available": bool,
    "calendar_attachments_available": bool,
    "permission_level": str,
}
EVENT_KEYS = {
    "calendar_id": str,
    "event_uid": str,
    "summary": str,
    "description": str,
    "start": str,
    "end": str,
    "deleted": bool,
    "created": str,
    "updated": str,
    "location": dict,
    "participation_status": str,
    "attendees": list,
    "organizer": dict,
    "transparency": str,
    "status": str,
    "categories": list,
    "recurring": bool,
    "event_private": bool,
    "options": dict,
}


def _check(obj: dict, spec: dict) -> None:
    for key, kind in spec.items():
        assert key in obj, f"missing {key}"
        assert isinstance(obj[key], kind), f"{key} should be {kind.__name__}: {obj[key]!r}"


def _window():
    day = today()
    return day - dt.timedelta(days=1), day + dt.timedelta(days=29)


def test_account_shape(connect):
    account = connect(RILEY).account()
    assert account["account_id"].startswith("acc_")
    assert account["email"] == RILEY and account["name"] == "Riley Chen"
    assert account["default_tzid"] == "Europe/London"
    assert isinstance(account["scope"], str)


def test_userinfo_shape_for_an_account(connect):
    info = connect(SAM).userinfo()
    assert info["sub"].startswith("acc_") and info["email"] == SAM
    assert info["cronofy.type"] == "account"
    data = info["cronofy.data"]
    assert data["authorization"]["status"] == "active"
    profile = data["profiles"][0]
    # Microsoft 365 comes back as exchange + office365 (cronofy-csharp GetProfiles fixture).
    assert profile["provider_name"] == "exchange" and profile["provider_service"] == "office365"
    assert profile["profile_connected"] is True
    assert profile["profile_initial_sync_required"] is False
    cal = profile["profile_calendars"][0]
    assert cal["calendar_id"].startswith("cal_") and cal["calendar_primary"] is True
    assert data["conferencing_profiles"] == []


def test_profiles_and_calendars_shapes(connect):
    client = connect(RILEY)
    profiles = client.list_profiles()
    assert profiles == [
        {
            "provider_name": "google",
            "provider_service": "gsuite",
            "profile_id": profiles[0]["profile_id"],
            "profile_name": RILEY,
            "profile_connected": True,
        }
    ]
    calendars = client.list_calendars()
    for cal in calendars:
        _check(cal, CALENDAR_KEYS)
        assert cal["permission_level"] in {"sandbox", "unrestricted"}
    holiday = next(c for c in calendars if c["calendar_name"] == "Holidays in United Kingdom")
    assert holiday["calendar_readonly"] is True


def test_assistant_sees_three_delegated_calendars(connect):
    calendars = connect(ASSISTANT).list_calendars()
    delegated = [c for c in calendars if "—" in c["calendar_name"]]
    assert len(delegated) == 3
    assert sorted(c["calendar_readonly"] for c in delegated) == [False, False, True]


def test_disconnected_profile_reports_relink_url(sandbox, connect):
    client = connect(RILEY)
    profile_id = client.list_profiles()[0]["profile_id"]
    sandbox.request("POST", f"/profiles/{profile_id}/disconnect")
    profile = client.list_profiles()[0]
    assert profile["profile_connected"] is False
    assert profile["profile_relink_url"].startswith(sandbox.url + "/relink/google?email=")


def test_create_calendar_and_duplicate_names(connect):
    client = connect(RILEY, scope="read_account list_calendars create_calendar read_events")
    profile_id = client.list_profiles()[0]["profile_id"]
    created = client.create_calendar(profile_id, "Interviews")
    assert created["calendar"]["calendar_name"] == "Interviews"
    assert created["calendar"]["calendar_id"].startswith("cal_")
    with pytest.raises(PyCronofyRequestError) as info:
        client.create_calendar(profile_id, "Interviews")
    assert info.value.response.status_code == 422
    assert (
        info.value.response.json()["errors"]["name"][0]["key"] == "errors.duplicate_calendar_name"
    )
    again = client.create_calendar(profile_id, "Interviews", error_on_duplicate=False)
    assert again["calendar_id"] == created["calendar"]["calendar_id"]


def test_read_events_shape_and_window(connect):
    client = connect(RILEY)
    start, end = _window()
    events = client.read_events(from_date=start, to_date=end, tzid="Europe/London").all()
    assert len(events) > 20
    for ev in events:
        _check(ev, EVENT_KEYS)
        assert "event_id" not in ev  # external events have only a Cronofy uid
        assert ev["event_uid"].startswith("evt_external_")
        assert ev["status"] in {"confirmed", "tentative", "cancelled"}
        assert ev["transparency"] in {"opaque", "transparent"}
    assert any(len(ev["start"]) == 10 for ev in events), "all-day events are dates"
    assert any(ev["transparency"] == "transparent" for ev in events)
    assert any(
        ev["participation_status"] == "tentative" or ev["status"] == "tentative" for ev in events
    )
    starts = [ev["start"] for ev in events if len(ev["start"]) > 10]
    assert all(s.endswith("Z") and len(s) == 20 for s in starts)


def test_from_is_inclusive_and_to_exclusive_in_the_query_zone(sandbox, connect):
    client = connect(RILEY)
    day = today() + dt.timedelta(days=7)
    for hour in (0, 23):
        sandbox.request(
            "POST",
            "/external-change",
            {
                "email": RILEY,
                "action": "create",
                "summary": f"edge {hour}",
                "start": {"time": f"{day}T{hour:02d}:00:00", "tzid": "America/New_York"},
                "end": {"time": f"{day}T{hour:02d}:30:00", "tzid": "America/New_York"},
            },
        )
    ny = client.read_events(
        from_date=day, to_date=day + dt.timedelta(days=1), tzid="America/New_York"
    ).all()
    assert {"edge 0", "edge 23"} <= {e["summary"] for e in ny}
    london = client.read_events(
        from_date=day, to_date=day + dt.timedelta(days=1), tzid="Europe/London"
    ).all()
    assert "edge 23" not in {e["summary"] for e in london}  # 04:00 the next day in London


def test_pagination_uses_absolute_next_page_urls(sandbox, connect):
    sandbox.request("PATCH", "/config", {"page_size": 7})
    client = connect(SAM)
    start, end = _window()
    pages = client.read_events(from_date=start, to_date=end, tzid="America/New_York")
    first = pages.json()["pages"]
    assert first["current"] == 1 and first["total"] > 2
    assert first["next_page"].startswith(sandbox.url + "/v1/events/pages/")
    everything = pages.all()
    assert len(everything) > 14
    assert len({e["event_uid"] for e in everything}) == len(everything)
    free_busy = client.read_free_busy(from_date=start, to_date=end, tzid="America/New_York")
    assert free_busy.json()["pages"]["next_page"].startswith(sandbox.url + "/v1/free_busy/pages/")
    assert len(free_busy.all()) > 7


def test_page_urls_are_bound_to_the_account(sandbox, connect):
    sandbox.request("PATCH", "/config", {"page_size": 3})
    riley, sam = connect(RILEY), connect(SAM)
    url = riley.read_events(tzid="Europe/London").json()["pages"]["next_page"]
    assert (
        api(sandbox, "GET", url.replace(sandbox.url, ""), sam.auth.access_token).status_code == 404
    )


def test_managed_filters(connect):
    client = connect(RILEY)
    cal = client.list_calendars()[0]["calendar_id"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    client.upsert_event(
        cal,
        {
            "event_id": "interview-1",
            "summary": "Interview",
            "start": start,
            "end": start + dt.timedelta(hours=1),
        },
    )
    default = client.request_handler.get(endpoint="events", params={"tzid": "Etc/UTC"}).json()
    assert all("event_id" not in e for e in default["events"]), "excluded unless include_managed"
    managed = client.read_events(tzid="Etc/UTC", only_managed=True).all()
    assert [e["event_id"] for e in managed] == ["interview-1"]
    assert managed[0]["options"] == {
        "delete": True,
        "update": True,
        "change_participation_status": True,
    }
    with_managed = client.read_events(tzid="Etc/UTC").all()  # pycronofy sends include_managed=True
    assert "interview-1" in {e.get("event_id") for e in with_managed}


def test_last_modified_include_deleted_and_localized_times(sandbox, connect):
    client = connect(RILEY)
    created = sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "create",
            "summary": "Dentist",
            "start": f"{today() + dt.timedelta(days=3)}T10:00:00Z",
            "end": f"{today() + dt.timedelta(days=3)}T11:00:00Z",
        },
    ).json()["event"]
    since = created["updated"]
    changed = client.read_events(tzid="Etc/UTC", last_modified=since).all()
    assert [e["summary"] for e in changed] == ["Dentist"]
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "delete", "event_uid": created["event_uid"]},
    )
    assert client.read_events(tzid="Etc/UTC", last_modified=since).all() == []
    deleted = client.read_events(tzid="Etc/UTC", last_modified=since, include_deleted=True).all()
    assert deleted[0]["deleted"] is True
    local = client.read_events(tzid="Europe/London", localized_times=True).all()
    assert isinstance(local[0]["start"], dict) and "tzid" in local[0]["start"]


def test_free_busy_is_computed_from_events(sandbox, connect):
    client = connect(RILEY)
    start, end = _window()
    events = [
        e for e in client.read_events(from_date=start, to_date=end, tzid="Europe/London").all()
    ]
    blocks = client.read_free_busy(from_date=start, to_date=end, tzid="Europe/London").all()
    expected = [e for e in events if e["transparency"] == "opaque" and e["status"] != "cancelled"]
    assert len(blocks) == len(expected)
    for block in blocks:
        assert set(block) == {"calendar_id", "start", "end", "free_busy_status"}
        assert block["free_busy_status"] in {"busy", "tentative"}
    assert any(b["free_busy_status"] == "tentative" for b in blocks)
    by_start = {(e["start"], e["end"]): e for e in expected}
    for block in blocks:
        ev = by_start[(block["start"], block["end"])]
        tentative = ev["status"] == "tentative" or ev["participation_status"] == "tentative"
        assert block["free_busy_status"] == ("tentative" if tentative else "busy")


def test_assistant_reads_a_managers_calendar(connect):
    assistant, dana = connect(ASSISTANT), connect(DANA)
    delegated = next(c for c in assistant.list_calendars() if c["calendar_name"].startswith("Dana"))
    start, end = _window()
    seen = assistant.read_events(
        calendar_ids=[delegated["calendar_id"]],
        from_date=start,
        to_date=end,
        tzid="America/New_York",
    ).all()
    own = dana.read_events(from_date=start, to_date=end, tzid="America/New_York").all()
    assert {e["event_uid"] for e in seen} == {e["event_uid"] for e in own}
    assert all(e["calendar_id"] == delegated["calendar_id"] for e in seen)


@pytest.mark.parametrize(
    "params, field, key",
    [
        ({}, "tzid", "errors.required"),
        ({"tzid": "Mars/Olympus"}, "tzid", "errors.invalid_tzid"),
        ({"tzid": "Etc/UTC", "from": "yesterday"}, "from", "errors.invalid"),
        (
            {"tzid": "Etc/UTC", "calendar_ids[]": "cal_unknown"},
            "calendar_ids",
            "errors.invalid_calendar_ids",
        ),
        (
            {"tzid": "Etc/UTC", "include_managed": "perhaps"},
            "include_managed",
            "errors.must_be_boolean",
        ),
        # Python's spelling (what pycronofy sends), and other "truthy" strings, are not booleans.
        (
            {"tzid": "Etc/UTC", "include_managed": "True"},
            "include_managed",
            "errors.must_be_boolean",
        ),
        ({"tzid": "Etc/UTC", "only_managed": "False"}, "only_managed", "errors.must_be_boolean"),
        ({"tzid": "Etc/UTC", "include_deleted": "1"}, "include_deleted", "errors.must_be_boolean"),
        (
            {"tzid": "Etc/UTC", "localized_times": "TRUE"},
            "localized_times",
            "errors.must_be_boolean",
        ),
        (
            {"tzid": "Etc/UTC", "from": "2025-02-01", "to": "2025-01-01"},
            "to",
            "errors.must_be_after_from",
        ),
    ],
)
def test_bad_read_parameters_are_422(sandbox, connect, params, field, key):
    client = connect(RILEY)
    response = api(sandbox, "GET", "/v1/events", client.auth.access_token, params=params, json={})
    assert response.status_code == 422
    assert response.json()["errors"][field][0]["key"] == key


@pytest.mark.parametrize("path", ["/v1/events", "/v1/free_busy"])
def test_query_booleans_are_lowercase_only(sandbox, connect, path):
    """Every official SDK but pycronofy writes ``true``/``false``; Cronofy checks booleans
    strictly (``errors.must_be_boolean``), so the sandbox refuses anything else."""
    client = connect(RILEY)
    ok = api(
        sandbox,
        "GET",
        path,
        client.auth.access_token,
        params={"tzid": "Etc/UTC", "include_managed": "true", "localized_times": "false"},
    )
    assert ok.status_code == 200
    bad = api(
        sandbox,
        "GET",
        path,
        client.auth.access_token,
        params={"tzid": "Etc/UTC", "include_managed": "True"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"]["include_managed"][0]["key"] == "errors.must_be_boolean"


def test_pycronofy_as_shipped_is_refused(sandbox):
    """pycronofy puts Python booleans in the query string: the strict sandbox answers 422."""
    from .conftest import client_for, tokens_for

    tokens = tokens_for(sandbox, RILEY)
    shipped = client_for(sandbox, tokens["access_token"], python_booleans=True)
    with pytest.raises(PyCronofyRequestError) as info:
        shipped.read_events(tzid="Etc/UTC")
    assert info.value.response.status_code == 422
    assert "must_be_boolean" in info.value.response.text
    fixed = client_for(sandbox, tokens["access_token"])
    assert isinstance(fixed.read_events(tzid="Etc/UTC").all(), list)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/free_busy"])
@pytest.mark.parametrize(
    "field, value",
    [
        ("from", "2031-01-20T00:00:00Z"),
        ("to", "2031-01-27T08:00:00Z"),
        ("to", "2031-01-27T08:00:00-08:00"),
    ],
)
def test_from_and_to_are_dates_not_instants(sandbox, connect, path, field, value):
    """Cronofy documents ``from``/``to`` as dates read in ``tzid``; an instant would be cut to
    a day somewhere, so the strict sandbox refuses it instead of guessing (422)."""
    client = connect(RILEY)
    params = {"tzid": "America/Los_Angeles", "from": "2031-01-20", "to": "2031-01-27", field: value}
    response = api(sandbox, "GET", path, client.auth.access_token, params=params)
    assert response.status_code == 422
    assert response.json()["errors"][field][0]["key"] == "errors.invalid"
    params[field] = value[:10]
    assert api(sandbox, "GET", path, client.auth.access_token, params=params).status_code == 200
