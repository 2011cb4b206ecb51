"""Time zones through the JSON API: my own zone (GET/PATCH /me), each member's working hours in
their own zone in /availability, bookings refused outside anyone's hours, and candidate hours
on self-scheduling links."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Interview, Role, SchedulingLink
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.factories import make_user
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.timezone_support import (
    BERLIN,
    LONDON,
    NEW_YORK,
    dst_week,
    expected_starts,
    inside_own_hours,
)
from webapp.services.availability import free_slots, model, windows


def patch(api: ApiClient, path: str, **kwargs):
    return api.request("PATCH", path, **kwargs)


def zone_audits(session) -> int:
    return session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.action == "user.timezone_changed")
    )


def test_me_shows_and_sets_my_time_zone(client, session, org):
    user = make_user(session, org, Role.COORDINATOR)
    api = ApiClient(client, issue_token(session, user))
    me = api.get("/me").get_json()
    assert me["timezone"] is None and me["effective_timezone"] == "Europe/London"

    changed = patch(api, "/me", json={"timezone": NEW_YORK})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["timezone"] == NEW_YORK
    assert changed.get_json()["effective_timezone"] == NEW_YORK
    assert api.get("/me").get_json()["timezone"] == NEW_YORK
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "user.timezone_changed"))
    assert entry.actor_id == user.id and entry.detail == {
        "from": None,
        "to": NEW_YORK,
        "source": "chosen",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": ""},
        {"timezone": "America/new_york"},
        {"timezone": "x" * 65},
        {"timezone": None},
        {},
        {"timezone": NEW_YORK, "role": "admin"},
    ],
)
def test_a_bad_zone_is_422_and_changes_nothing(client, session, org, body):
    user = make_user(session, org, Role.RECRUITER)
    api = ApiClient(client, issue_token(session, user))
    assert patch(api, "/me", json={"timezone": BERLIN}).status_code == 200
    error = assert_error(patch(api, "/me", json=body), 422)
    assert error["fields"], error
    session.expire_all()
    assert api.get("/me").get_json()["timezone"] == BERLIN
    assert api.get("/me").get_json()["role"] == "recruiter"
    assert zone_audits(session) == 1


def test_setting_a_zone_needs_a_token(client, session, org):
    assert_error(ApiClient(client).request("PATCH", "/me", json={"timezone": BERLIN}), 401)


def test_availability_gives_each_members_own_hours_and_only_slots_inside_them(
    client, session, sandbox, zone_panel
):
    api = ApiClient(client, issue_token(session, zone_panel.riley.user))
    members = {m["user_id"]: m for m in api.get("/panel-members").get_json()["items"]}
    assert [members[p.user.id]["timezone"] for p in zone_panel.people] == [LONDON, NEW_YORK, BERLIN]
    sandbox.call("DELETE", "/stats")
    params = [("panel", str(i)) for i in zone_panel.link_ids] + [
        ("start_date", next_weekday(1).isoformat()),
        ("days", "10"),
        ("tzid", LONDON),
    ]
    body = api.get("/availability", query_string=params).get_json()
    assert sandbox.stats()["requests"].get("POST /v1/availability", 0) == 1
    assert [m["working_hours"] for m in body["members"]] == [
        {"start": "09:00", "end": "17:30", "weekdays": "12345", "tzid": z, "tzid_set": True}
        for z in (LONDON, NEW_YORK, BERLIN)
    ]
    assert body["slots"], "the three-zone panel has common time on most weekdays"
    for slot in body["slots"]:
        start, end = (dt.datetime.fromisoformat(slot[k]) for k in ("start", "end"))
        for person in zone_panel.people:
            assert inside_own_hours(start, end, person.tzid)


def test_the_api_grid_over_a_dst_week(client, session, sandbox, zone_panel, monkeypatch):
    week = dst_week(dt.date.today())
    for module in (free_slots, windows):
        monkeypatch.setattr(module, "utcnow", lambda: week.clock)
    api = ApiClient(client, issue_token(session, zone_panel.sam.user))
    params = [("panel", str(i)) for i in zone_panel.link_ids] + [
        ("start_date", week.first.isoformat()),
        ("days", str(week.days)),
    ]
    body = api.get("/availability", query_string=params).get_json()
    assert body["tzid"] == NEW_YORK  # Sam's own zone is his default view
    starts = [dt.datetime.fromisoformat(s["start"]) for s in body["slots"]]
    possible = set(expected_starts([LONDON, NEW_YORK, BERLIN], week.first, week.days))
    assert starts and set(starts) <= possible
    # Every weekday has time, starting where everyone's day overlaps on that day.
    firsts = {}
    for start in starts:
        firsts.setdefault(start.date(), start)
    assert {d: t.time() for d, t in firsts.items()} == {
        d: (dt.time(14) if week.us_change < d else dt.time(13))
        for d in {p.date() for p in possible}
    }


def test_booking_outside_a_members_hours_is_refused(client, session, sandbox, zone_panel):
    """09:15 London is 04:15 for Sam in New York: the API does not book it."""
    api = ApiClient(client, issue_token(session, zone_panel.riley.user))
    day = next_weekday(1)
    early = dt.datetime.combine(day, dt.time(9, 15), model.zone(LONDON)).astimezone(dt.UTC)
    body = {
        "panel": list(zone_panel.link_ids),
        "start": early.isoformat(),
        "duration": 60,
        "title": "Panel",
        "candidate_name": "Casey",
        "candidate_email": "casey@gmail.example",
    }
    assert_error(api.post("/interviews", json=body), 409, "slot_taken")
    assert session.scalar(select(Interview.id)) is None


def test_a_link_with_candidate_hours_over_the_api(client, session, sandbox, org, recruiter):
    api = ApiClient(client, issue_token(session, recruiter))
    link_id = api.get("/panel-members").get_json()["items"][0]["link_id"]
    base = {
        "panel": [link_id],
        "candidate_name": "Jamie Rivera",
        "candidate_email": "jamie.rivera@gmail.example",
        "candidate_tzid": NEW_YORK,
        "title": "Screen",
        "start_date": next_weekday(1).isoformat(),
        "days": 5,
    }
    for hours, field in [
        ({"start": "17:30", "end": "09:00"}, "candidate_hours"),
        ({"start": "9am", "end": "17:30"}, "candidate_hours.start"),
        ({"start": "09:00", "end": "09:30"}, "candidate_hours"),
        ({"start": "09:00"}, "candidate_hours.end"),
    ]:
        error = assert_error(
            api.post("/scheduling-links", json={**base, "candidate_hours": hours}), 422
        )
        assert field in error["fields"], error
    assert session.scalar(select(SchedulingLink.id)) is None
    made = api.post(
        "/scheduling-links", json={**base, "candidate_hours": {"start": "09:00", "end": "17:30"}}
    )
    assert made.status_code == 201, made.get_json()
    token = made.get_json()["url"].split("/c/", 1)[1]
    html = client.get(f"/c/{token}").get_data(as_text=True)
    slots = [
        dt.datetime.fromisoformat(v)
        for v in re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', html)
    ]
    assert slots
    for start in slots:
        assert inside_own_hours(start, start + dt.timedelta(hours=1), NEW_YORK)
        assert inside_own_hours(start, start + dt.timedelta(hours=1), LONDON)
