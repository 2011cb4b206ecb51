"""The scheduling benchmarks' own calendars: a future week, whatever today is, whose common free
time the sandbox aggregator really reports (so `make bench` finds slots on any date)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import requests

from tests.conftest import SANDBOX_CLIENT_SECRET
from tests.perf import _free_time as ft

ZONE = ZoneInfo(ft.TZID)


def test_the_week_is_always_a_future_monday():
    start = dt.date(2026, 1, 1)
    for offset in range(800):  # every weekday, month end, leap day and DST switch of two years
        today = start + dt.timedelta(days=offset)
        week = ft.bench_week(today)
        assert week.weekday() == 0 and 8 <= (week - today).days <= 14, today
    assert ft.bench_week(dt.date(2026, 11, 30)) == dt.date(2026, 12, 14)  # the day it crashed


def test_every_meeting_leaves_the_free_windows_free():
    week = ft.bench_week(dt.date(2026, 11, 30))
    payload = ft.seed_payload(week)
    assert {i["email"] for i in payload["identities"]} == {e for e, _n in ft.PEOPLE}
    opaque = [e for e in payload["events"] if e.get("transparency") != "transparent"]
    assert len(opaque) == len(ft.PEOPLE) * 5 * 2
    for event in opaque:
        start, end = (dt.datetime.fromisoformat(event[k]) for k in ("start", "end"))
        assert start.date() == end.date() and start.weekday() < 5
        assert dt.time(14) <= start.time() and end.time() <= dt.time(16), event


def test_the_sandbox_reports_exactly_the_laid_out_free_time(sandbox):
    week = ft.bench_week()
    sandbox.call("POST", "/seed", json=ft.seed_payload(week))
    subs = [
        sandbox.call("POST", "/tokens", json={"email": email})["sub"] for email, _name in ft.PEOPLE
    ]
    periods = []
    for n in range(5):
        day = week + dt.timedelta(days=n)
        periods.append(
            {
                "start": dt.datetime.combine(day, dt.time(9), ZONE).isoformat(),
                "end": dt.datetime.combine(day, dt.time(17, 30), ZONE).isoformat(),
            }
        )
    answer = requests.post(
        sandbox.url + "/v1/availability",
        timeout=10,
        headers={"Authorization": f"Bearer {SANDBOX_CLIENT_SECRET}"},
        json={
            "participants": [{"members": [{"sub": s} for s in subs], "required": "all"}],
            "required_duration": {"minutes": 30},
            "query_periods": periods,
            "response_format": "periods",
        },
    )
    assert answer.status_code == 200, answer.text
    free = sorted(
        (
            dt.datetime.fromisoformat(p["start"].replace("Z", "+00:00")).astimezone(ZONE),
            dt.datetime.fromisoformat(p["end"].replace("Z", "+00:00")).astimezone(ZONE),
        )
        for p in answer.json()["available_periods"]
    )
    expected = [
        (
            dt.datetime.combine(week + dt.timedelta(days=n), a, ZONE),
            dt.datetime.combine(week + dt.timedelta(days=n), b, ZONE),
        )
        for n in range(5)
        for a, b in ft.FREE
    ]
    assert free == expected
