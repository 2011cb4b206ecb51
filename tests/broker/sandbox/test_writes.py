"""Upsert, delete, bulk delete, participation status and batch through pycronofy (§5, §10, §14
D/H)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from pycronofy.batch import BatchBuilder
from pycronofy.exceptions import PyCronofyPartialSuccessError, PyCronofyRequestError

from .conftest import ASSISTANT, DANA, RILEY, SAM, api, today

UTC = dt.UTC


def _slot(days: int = 2, hour: int = 10, minutes: int = 60):
    start = dt.datetime.combine(today() + dt.timedelta(days=days), dt.time(hour), tzinfo=UTC)
    return start, start + dt.timedelta(minutes=minutes)


def _primary(client) -> str:
    return next(c["calendar_id"] for c in client.list_calendars() if c["calendar_primary"])


def _managed(client) -> list[dict]:
    return client.read_events(tzid="Etc/UTC", only_managed=True, include_deleted=True).all()


def test_upsert_creates_then_updates_the_same_event(connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    event = {
        "event_id": "interview-42",
        "summary": "Interview: A. Candidate",
        "description": "Panel",
        "start": start,
        "end": end,
        "tzid": "Europe/London",
        "location": {"description": "Room 4"},
        "attendees": {"invite": [{"email": "a.candidate@example.net", "display_name": "A. C"}]},
        "reminders": [{"minutes": 10}],
        "transparency": "opaque",
    }
    assert client.upsert_event(cal, dict(event)) is None
    first = _managed(client)
    assert len(first) == 1
    ev = first[0]
    assert ev["event_id"] == "interview-42" and ev["event_uid"].startswith("evt_")
    assert ev["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ev["attendees"] == [
        {"email": "a.candidate@example.net", "display_name": "A. C", "status": "needs_action"}
    ]
    assert ev["location"] == {"description": "Room 4"}
    later_start, later_end = _slot(days=3)
    client.upsert_event(
        cal, dict(event, summary="Interview (moved)", start=later_start, end=later_end)
    )
    second = _managed(client)
    assert len(second) == 1 and second[0]["event_uid"] == ev["event_uid"]
    assert second[0]["summary"] == "Interview (moved)"


def test_upsert_accepts_dates_and_zoned_times(connect):
    client = connect(SAM)
    cal = _primary(client)
    day = today() + dt.timedelta(days=5)
    client.upsert_event(
        cal,
        {
            "event_id": "allday",
            "summary": "Offsite",
            "start": day,
            "end": day + dt.timedelta(days=1),
        },
    )
    client.upsert_event(
        cal,
        {
            "event_id": "zoned",
            "summary": "Zoned",
            "start": {"time": f"{day}T09:00:00", "tzid": "America/New_York"},
            "end": {"time": f"{day}T10:00:00", "tzid": "America/New_York"},
        },
    )
    by_id = {e["event_id"]: e for e in _managed(client)}
    assert by_id["allday"]["start"] == day.isoformat()
    assert (
        by_id["zoned"]["start"] == f"{day}T14:00:00Z"
        or by_id["zoned"]["start"] == f"{day}T13:00:00Z"
    )


def test_upsert_validation_errors_have_the_documented_shape(sandbox, connect):
    client = connect(RILEY)
    cal = _primary(client)
    response = api(
        sandbox, "POST", f"/v1/calendars/{cal}/events", client.auth.access_token, json={}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"event_id", "summary", "start", "end"}
    assert errors["summary"] == [
        {"key": "errors.required", "description": "summary must be specified"}
    ]
    start, end = _slot()
    backwards = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events",
        client.auth.access_token,
        json={"event_id": "x", "summary": "x", "start": end.isoformat(), "end": start.isoformat()},
    )
    assert backwards.status_code == 422 and "end" in backwards.json()["errors"]
    bad_tz = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events",
        client.auth.access_token,
        json={
            "event_id": "x",
            "summary": "x",
            "start": "2030-01-01T09:00:00Z",
            "end": "2030-01-01T10:00:00Z",
            "tzid": "Nowhere/Atlantis",
        },
    )
    assert bad_tz.json()["errors"]["tzid"][0]["key"] == "errors.invalid_tzid"
    long = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events",
        client.auth.access_token,
        json={
            "event_id": "x",
            "summary": "s" * 1025,
            "start": "2030-01-01T09:00:00Z",
            "end": "2030-01-01T10:00:00Z",
        },
    )
    assert long.json()["errors"]["summary"][0]["key"] == "errors.too_long"
    assert _managed(client) == []


def test_unknown_and_foreign_calendars_are_404(sandbox, connect):
    riley, sam = connect(RILEY), connect(SAM)
    start, end = _slot()
    for cal in ("cal_does_not_exist", _primary(sam)):
        with pytest.raises(PyCronofyRequestError) as info:
            riley.upsert_event(cal, {"event_id": "x", "summary": "x", "start": start, "end": end})
        assert info.value.response.status_code == 404


def test_read_only_calendar_is_rejected_with_422_by_default(sandbox, connect):
    client = connect(RILEY)
    holiday = next(c["calendar_id"] for c in client.list_calendars() if c["calendar_readonly"])
    start, end = _slot()
    with pytest.raises(PyCronofyRequestError) as info:
        client.upsert_event(holiday, {"event_id": "x", "summary": "x", "start": start, "end": end})
    assert info.value.response.status_code == 422
    assert (
        info.value.response.json()["errors"]["calendar_id"][0]["key"] == "errors.calendar_readonly"
    )
    sandbox.request("PATCH", "/config", {"readonly_calendar_status": 403})
    with pytest.raises(PyCronofyRequestError) as info:
        client.upsert_event(holiday, {"event_id": "x", "summary": "x", "start": start, "end": end})
    assert info.value.response.status_code == 403


def test_disconnected_profile_is_423_on_writes(sandbox, connect):
    client = connect(RILEY)
    profile_id = client.list_profiles()[0]["profile_id"]
    cal = _primary(client)
    sandbox.request("POST", f"/profiles/{profile_id}/disconnect")
    start, end = _slot()
    with pytest.raises(PyCronofyRequestError) as info:
        client.upsert_event(cal, {"event_id": "x", "summary": "x", "start": start, "end": end})
    assert info.value.response.status_code == 423


def test_delete_by_event_id_and_unknown_ids(connect, sandbox):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    client.upsert_event(cal, {"event_id": "gone", "summary": "x", "start": start, "end": end})
    client.delete_event(cal, "gone")
    assert [e["deleted"] for e in _managed(client)] == [True]
    client.delete_event(cal, "never-existed")  # 202, as documented as likely (§16.4)
    sandbox.request("PATCH", "/config", {"unknown_event_delete_status": 404})
    with pytest.raises(PyCronofyRequestError) as info:
        client.delete_event(cal, "never-existed")
    assert info.value.response.status_code == 404


def test_upsert_after_delete_revives_the_event(connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    body = {"event_id": "again", "summary": "x", "start": start, "end": end}
    client.upsert_event(cal, dict(body))
    client.delete_event(cal, "again")
    client.upsert_event(cal, dict(body))
    managed = _managed(client)
    assert len(managed) == 1 and managed[0]["deleted"] is False


def test_external_events_need_unrestricted_permission(sandbox, connect):
    client = connect(RILEY)
    cal = _primary(client)
    external = next(
        e
        for e in client.read_events(calendar_ids=[cal], tzid="Etc/UTC").all()
        if "event_id" not in e
    )
    with pytest.raises(PyCronofyRequestError) as info:
        client.delete_external_event(cal, external["event_uid"])
    assert info.value.response.status_code == 403
    request = client.elevated_permissions(
        [{"calendar_id": cal, "permission_level": "unrestricted"}],
        redirect_uri="http://127.0.0.1:5000/perm-done",
    )
    assert request["url"].startswith(sandbox.url + "/permissions/")
    page = requests.post(
        request["url"], data={"decision": "approve"}, allow_redirects=False, timeout=5
    )
    assert page.status_code == 302 and page.headers["Location"] == "http://127.0.0.1:5000/perm-done"
    assert (
        next(c for c in client.list_calendars() if c["calendar_id"] == cal)["permission_level"]
        == "unrestricted"
    )
    client.delete_external_event(cal, external["event_uid"])
    remaining = {
        e["event_uid"] for e in client.read_events(calendar_ids=[cal], tzid="Etc/UTC").all()
    }
    assert external["event_uid"] not in remaining


def test_managed_uid_on_the_external_path_is_422(connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    client.upsert_event(cal, {"event_id": "mine", "summary": "x", "start": start, "end": end})
    uid = _managed(client)[0]["event_uid"]
    with pytest.raises(PyCronofyRequestError) as info:
        client.delete_external_event(cal, uid)
    assert info.value.response.status_code == 422
    assert (
        info.value.response.json()["errors"]["event_uid"][0]["key"]
        == "errors.must_be_external_event_uid"
    )


def test_bulk_delete_by_query_string_and_by_body(sandbox, connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    for i in range(3):
        client.upsert_event(cal, {"event_id": f"b{i}", "summary": "x", "start": start, "end": end})
    client.delete_all_events(calendar_ids=[cal])  # pycronofy: query parameters
    assert all(e["deleted"] for e in _managed(client))
    client.upsert_event(cal, {"event_id": "b9", "summary": "x", "start": start, "end": end})
    response = api(
        sandbox, "DELETE", "/v1/events", client.auth.access_token, json={"delete_all": True}
    )
    assert response.status_code == 202
    assert all(e["deleted"] for e in _managed(client))
    bad = api(
        sandbox,
        "DELETE",
        "/v1/events",
        client.auth.access_token,
        json={"calendar_ids": ["cal_nope"]},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"]["calendar_ids"][0]["key"] == "errors.invalid_calendar_ids"
    external = client.read_events(tzid="Etc/UTC").all()
    assert external, "bulk delete only touches managed events"


def test_participation_status(sandbox, connect):
    client = connect(SAM, scope="read_write")
    cal = _primary(client)
    event = client.read_events(calendar_ids=[cal], tzid="Etc/UTC").all()[0]
    narrow = connect(SAM)
    with pytest.raises(PyCronofyRequestError) as info:
        narrow.change_participation_status(cal, event["event_uid"], "declined")
    assert info.value.response.status_code == 403
    client.change_participation_status(cal, event["event_uid"], "declined")
    again = next(
        e
        for e in client.read_events(calendar_ids=[cal], tzid="Etc/UTC").all()
        if e["event_uid"] == event["event_uid"]
    )
    assert again["participation_status"] == "declined"
    with pytest.raises(PyCronofyRequestError) as info:
        client.change_participation_status(cal, "evt_unknown", "accepted")
    assert info.value.response.status_code == 404
    bad = api(
        sandbox,
        "POST",
        f"/v1/calendars/{cal}/events/{event['event_uid']}/participation_status",
        client.auth.access_token,
        json={"status": "maybe"},
    )
    assert bad.status_code == 422


def test_assistant_writes_into_a_writable_delegated_calendar(connect):
    assistant, dana = connect(ASSISTANT), connect(DANA)
    calendars = assistant.list_calendars()
    dana_view = next(c for c in calendars if c["calendar_name"].startswith("Dana"))
    readonly_view = next(c for c in calendars if c["calendar_name"].startswith("Maria"))
    start, end = _slot()
    assistant.upsert_event(
        dana_view["calendar_id"],
        {"event_id": "pa-1", "summary": "Booked by PA", "start": start, "end": end},
    )
    seen_by_dana = dana.read_events(tzid="Etc/UTC", only_managed=True).all()
    assert [e["summary"] for e in seen_by_dana] == ["Booked by PA"]
    with pytest.raises(PyCronofyRequestError) as info:
        assistant.upsert_event(
            readonly_view["calendar_id"],
            {"event_id": "pa-2", "summary": "x", "start": start, "end": end},
        )
    assert info.value.response.status_code == 422


def test_batch_runs_entries_in_order_and_reports_207(sandbox, connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    builder = BatchBuilder()
    builder.upsert_event(cal, {"event_id": "batch-1", "summary": "One", "start": start, "end": end})
    builder.upsert_event(cal, {"event_id": "batch-2", "summary": "Two", "start": start, "end": end})
    builder.delete_event(cal, "batch-1")
    result = client.batch(builder)
    assert [e.status() for e in result.entries] == [202, 202, 202]
    by_id = {e["event_id"]: e["deleted"] for e in _managed(client)}
    assert by_id == {"batch-1": True, "batch-2": False}
    raw = api(
        sandbox, "POST", "/v1/batch", client.auth.access_token, json={"batch": builder.build()}
    )
    assert raw.status_code == 207


def test_batch_partial_failure(connect):
    client = connect(RILEY)
    cal = _primary(client)
    start, end = _slot()
    builder = BatchBuilder()
    builder.upsert_event(cal, {"event_id": "ok", "summary": "Fine", "start": start, "end": end})
    builder.add_entry(
        "POST",
        f"/v1/calendars/{cal}/events",
        {"event_id": "bad", "start": start.isoformat(), "end": end.isoformat()},
    )
    builder.upsert_event(
        "cal_unknown", {"event_id": "x", "summary": "x", "start": start, "end": end}
    )
    with pytest.raises(PyCronofyPartialSuccessError) as info:
        client.batch(builder)
    entries = info.value.batch_response.entries
    assert [e.status() for e in entries] == [202, 422, 404]
    assert entries[1].response["data"]["errors"]["summary"][0]["key"] == "errors.required"
    assert [e["event_id"] for e in _managed(client)] == ["ok"]


def test_batch_limits(sandbox, connect):
    client = connect(RILEY)
    cal = _primary(client)
    entry = {
        "method": "DELETE",
        "relative_url": f"/v1/calendars/{cal}/events",
        "data": {"event_id": "x"},
    }
    too_many = api(
        sandbox, "POST", "/v1/batch", client.auth.access_token, json={"batch": [entry] * 51}
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"]["batch"][0]["key"] == "errors.too_many_entries"
    empty = api(sandbox, "POST", "/v1/batch", client.auth.access_token, json={})
    assert empty.status_code == 422
