"""Availability over real HTTP: pycronofy with an access token, requests with the API key (§6, §14
E)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from .conftest import CLIENT_SECRET, MORGAN, RILEY, SAM, api, today

UTC = dt.UTC


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _week():
    start = dt.datetime.combine(today() + dt.timedelta(days=1), dt.time(0), tzinfo=UTC)
    return [
        {
            "start": start + dt.timedelta(days=d, hours=8),
            "end": start + dt.timedelta(days=d, hours=18),
        }
        for d in range(5)
    ]


def _busy(client, tzid="Etc/UTC"):
    day = today()
    blocks = client.read_free_busy(
        from_date=day, to_date=day + dt.timedelta(days=10), tzid=tzid
    ).all()
    out = []
    for b in blocks:
        if len(b["start"]) == 10:
            continue  # all-day blocks: checked by the property tests
        out.append((_parse(b["start"]), _parse(b["end"])))
    return out


def test_slots_for_a_panel_avoid_everyones_busy_time(connect):
    riley, sam, morgan = connect(RILEY), connect(SAM), connect(MORGAN)
    slots = riley.availability(
        participants=[{"members": [riley.sub, sam.sub, morgan.sub], "required": "all"}],
        required_duration=60,
        available_periods=_week(),
        start_interval=30,
        buffer={"before": {"minutes": 15}, "after": {"minutes": 15}},
        response_format="slots",
    )
    assert slots, "a week of office hours has room for one hour"
    busy = _busy(riley) + _busy(sam) + _busy(morgan)
    for slot in slots:
        start, end = _parse(slot["start"]), _parse(slot["end"])
        assert end - start == dt.timedelta(hours=1)
        assert start.minute in (0, 30) and start.second == 0
        assert {p["sub"] for p in slot["participants"]} == {riley.sub, sam.sub, morgan.sub}
        for b0, b1 in busy:
            assert not (
                start - dt.timedelta(minutes=15) < b1 and end + dt.timedelta(minutes=15) > b0
            )
    starts = [s["start"] for s in slots]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_periods_are_the_default_and_api_key_works(sandbox, connect):
    riley, sam = connect(RILEY), connect(SAM)
    body = {
        "participants": [{"members": [{"sub": riley.sub}, {"sub": sam.sub}], "required": "all"}],
        "required_duration": {"minutes": 30},
        "query_periods": [
            {
                "start": p["start"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": p["end"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for p in _week()
        ],
    }
    by_key = api(sandbox, "POST", "/v1/availability", CLIENT_SECRET, json=body)
    assert by_key.status_code == 200
    periods = by_key.json()["available_periods"]
    assert periods and set(periods[0]) == {"start", "end", "participants"}
    via_pycronofy = riley.availability(
        participants=[{"members": [riley.sub, sam.sub]}],
        required_duration=30,
        available_periods=_week(),
    )
    assert via_pycronofy == periods
    for period in periods:
        assert _parse(period["end"]) - _parse(period["start"]) >= dt.timedelta(minutes=30)


def test_overlapping_slots_max_results_and_member_calendar_ids(connect):
    riley = connect(RILEY)
    primary = next(c["calendar_id"] for c in riley.list_calendars() if c["calendar_primary"])
    slots = riley.availability(
        participants={"members": [{"sub": riley.sub, "calendar_ids": [primary]}]},
        required_duration=30,
        available_periods=_week(),
        start_interval=15,
        response_format="overlapping_slots",
        max_results=7,
    )
    assert len(slots) == 7
    gaps = {(_parse(b["start"]) - _parse(a["start"])) for a, b in itertools.pairwise(slots)}
    assert dt.timedelta(minutes=15) in gaps


def test_member_available_periods_restrict_the_member(connect):
    riley = connect(RILEY)
    day = _week()[0]
    window = {
        "start": day["start"] + dt.timedelta(hours=1),
        "end": day["start"] + dt.timedelta(hours=3),
    }
    slots = riley.availability(
        participants={"members": [{"sub": riley.sub, "available_periods": [dict(window)]}]},
        required_duration=30,
        available_periods=[day],
        response_format="slots",
    )
    for slot in slots:
        assert window["start"] <= _parse(slot["start"]) and _parse(slot["end"]) <= window["end"]


def test_rooms_with_required_one(sandbox, connect, receiver):
    from .test_rooms import authorize_room

    riley = connect(RILEY)
    # Each room is authorized through the service account (§2.3–2.5) before its sub is usable.
    rooms = [
        authorize_room(sandbox, receiver, i["email"])["sub"]
        for i in sandbox.request("GET", "/identities").json()["identities"]
        if i["kind"] == "room" and i["domain"] == "northwind.example"
    ]
    assert len(rooms) == 2
    slots = riley.availability(
        participants=[{"members": [riley.sub]}, {"members": rooms, "required": 1}],
        required_duration=60,
        available_periods=_week(),
        response_format="slots",
    )
    assert slots
    for slot in slots:
        subs = {p["sub"] for p in slot["participants"]}
        assert riley.sub in subs and subs & set(rooms)


def test_query_slots(connect):
    riley = connect(RILEY)
    free = riley.availability(
        participants={"members": [riley.sub]},
        required_duration=30,
        available_periods=_week(),
        response_format="slots",
        max_results=3,
    )
    starts = [{"start": s["start"]} for s in free]
    checked = riley.availability(
        participants={"members": [riley.sub]},
        required_duration=30,
        query_slots=starts,
        response_format="slots",
    )
    assert [s["start"] for s in checked] == [s["start"] for s in free]


def test_sequenced_availability(connect):
    riley, sam = connect(RILEY), connect(SAM)
    sequences = riley.sequenced_availability(
        sequence=[
            {
                "sequence_id": "screen",
                "ordinal": 1,
                "participants": [{"members": [riley.sub], "required": "all"}],
                "required_duration": {"minutes": 30},
            },
            {
                "sequence_id": "panel",
                "ordinal": 2,
                "participants": [{"members": [sam.sub], "required": "all"}],
                "required_duration": {"minutes": 60},
                "buffer": {"before": {"minimum": {"minutes": 15}, "maximum": {"minutes": 240}}},
            },
        ],
        available_periods=_week(),
    )
    assert sequences
    for seq in sequences:
        first, second = seq["sequence"]
        assert first["sequence_id"] == "screen" and second["sequence_id"] == "panel"
        gap = _parse(second["start"]) - _parse(first["end"])
        assert dt.timedelta(minutes=15) <= gap <= dt.timedelta(minutes=240)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"required_duration": {"minutes": 30}}, "participants"),
        ({"participants": [{"members": [{"sub": "SUB"}]}]}, "required_duration"),
        (
            {"participants": [{"members": [{"sub": "SUB"}]}], "required_duration": {"minutes": 30}},
            "query_periods",
        ),
        (
            {
                "participants": [{"members": [{"sub": "acc_nobody"}]}],
                "required_duration": {"minutes": 30},
                "query_periods": [{"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"}],
            },
            "participants",
        ),
        (
            {
                "participants": [{"members": [{"sub": "SUB"}], "required": 3}],
                "required_duration": {"minutes": 30},
                "query_periods": [{"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"}],
            },
            "participants",
        ),
        (
            {
                "participants": [{"members": [{"sub": "SUB"}]}],
                "required_duration": {"minutes": 30},
                "query_periods": [{"start": "2030-01-01T09:00:00Z", "end": "2030-03-01T10:00:00Z"}],
            },
            "query_periods",
        ),
        (
            {
                "participants": [{"members": [{"sub": "SUB"}]}],
                "required_duration": {"minutes": 30},
                "query_periods": [{"start": "tomorrow", "end": "2030-01-01T10:00:00Z"}],
            },
            "query_periods",
        ),
        (
            {
                "participants": [{"members": [{"sub": "SUB"}]}],
                "required_duration": {"minutes": 30},
                "response_format": "blocks",
                "query_periods": [{"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"}],
            },
            "response_format",
        ),
    ],
)
def test_bad_availability_requests_are_422(sandbox, connect, body, field):
    riley = connect(RILEY)
    body = {k: v for k, v in body.items()}
    if "participants" in body:
        for group in body["participants"]:
            group["members"] = [
                {"sub": riley.sub if m["sub"] == "SUB" else m["sub"]} for m in group["members"]
            ]
    response = api(sandbox, "POST", "/v1/availability", riley.auth.access_token, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


def test_member_calendar_ids_must_be_the_members_calendar_ids(sandbox, connect):
    riley = connect(RILEY)
    base = {
        "required_duration": {"minutes": 30},
        "query_periods": [{k: v.isoformat() for k, v in _week()[0].items()}],
    }
    for calendar_ids in ("cal_x", [["cal_x"]], [None], [""], ["cal_not_riley_s"]):
        member = {"sub": riley.sub, "calendar_ids": calendar_ids}
        body = {**base, "participants": [{"members": [member], "required": "all"}]}
        response = api(sandbox, "POST", "/v1/availability", riley.auth.access_token, json=body)
        assert response.status_code == 422, (calendar_ids, response.text)
        assert "participants" in response.json()["errors"]
    primary = next(c["calendar_id"] for c in riley.list_calendars() if c["calendar_primary"])
    member = {"sub": riley.sub, "calendar_ids": [primary]}
    body = {**base, "participants": [{"members": [member], "required": "all"}]}
    response = api(sandbox, "POST", "/v1/availability", riley.auth.access_token, json=body)
    assert response.status_code == 200, response.text


def test_availability_needs_credentials(sandbox):
    assert api(sandbox, "POST", "/v1/availability", "wrong", json={}).status_code == 401


def test_pycronofy_default_empty_duration_is_a_clear_422(connect):
    riley = connect(RILEY)
    with pytest.raises(PyCronofyRequestError) as info:
        riley.availability(participants={"members": [riley.sub]}, available_periods=_week())
    assert info.value.response.status_code == 422
    assert "required_duration" in info.value.response.json()["errors"]


def _iso(periods):
    return [
        {
            "start": p["start"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": p["end"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for p in periods
    ]


def _step(sid, ordinal, sub, minutes=60, **extra):
    step = {
        "sequence_id": sid,
        "participants": [{"members": [{"sub": sub}], "required": "all"}],
        "required_duration": {"minutes": minutes},
        **extra,
    }
    if ordinal is not None:
        step["ordinal"] = ordinal
    return step


def test_sequenced_steps_follow_ordinal_not_array_order(sandbox, connect):
    riley, sam = connect(RILEY), connect(SAM)
    response = api(
        sandbox,
        "POST",
        "/v1/sequenced_availability",
        riley.auth.access_token,
        json={
            "query_periods": _iso(_week()),
            "sequence": [
                _step(
                    4567,
                    2,
                    sam.sub,
                    buffer={"before": {"minimum": {"minutes": 30}, "maximum": {"minutes": 45}}},
                ),
                _step(1234, 1, riley.sub, start_interval={"minutes": 60}),
            ],
        },
    )
    assert response.status_code == 200, response.text
    sequences = response.json()["sequences"]
    assert sequences
    for item in sequences:
        assert set(item) == {"sequence"}
        first, second = item["sequence"]
        assert set(first) == {"sequence_id", "start", "end", "participants"}
        assert (first["sequence_id"], second["sequence_id"]) == (1234, 4567), "echoed as sent"
        assert first["participants"] == [{"sub": riley.sub}]
        assert second["participants"] == [{"sub": sam.sub}]
        assert _parse(first["start"]).minute == 0, "the first step's own start_interval"
        gap = _parse(second["start"]) - _parse(first["end"])
        assert dt.timedelta(minutes=30) <= gap <= dt.timedelta(minutes=45)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda b: b.pop("query_periods"), "query_periods"),
        (lambda b: b["sequence"][0].pop("sequence_id"), "sequence"),
        (lambda b: b["sequence"][1].update(sequence_id="a"), "sequence"),
        (lambda b: b["sequence"][1].update(ordinal=1), "sequence"),
        (lambda b: b["sequence"][1].pop("ordinal"), "sequence"),
        (lambda b: b["sequence"][0].update(ordinal="1"), "sequence"),
        (lambda b: b["sequence"][0].update(junk=1), "sequence"),
        (lambda b: b["sequence"][0].pop("required_duration"), "required_duration"),
        (lambda b: b["sequence"][0].pop("participants"), "participants"),
        (
            lambda b: b["sequence"][1].update(
                buffer={"before": {"minimum": {"minutes": 60}, "maximum": {"minutes": 30}}}
            ),
            "buffer",
        ),
        (
            lambda b: b["sequence"][1].update(
                buffer={"before": {"minutes": 10, "maximum": {"minutes": 30}}}
            ),
            "buffer",
        ),
        (lambda b: b["sequence"][1].update(buffer={"before": {"minimum": 30}}), "buffer"),
        (lambda b: b["sequence"][1].update(buffer={"around": {"minutes": 5}}), "buffer"),
        (
            lambda b: (
                b["sequence"][0].update(buffer={"after": {"maximum": {"minutes": 10}}}),
                b["sequence"][1].update(buffer={"before": {"minimum": {"minutes": 20}}}),
            ),
            "buffer",
        ),
        (lambda b: b.update(sequence=[b["sequence"][0]] * 11), "sequence"),
    ],
)
def test_sequenced_availability_rejects_what_it_cannot_honour(sandbox, connect, change, field):
    riley = connect(RILEY)
    body = {
        "query_periods": _iso(_week()),
        "sequence": [_step("a", 1, riley.sub), _step("b", 2, riley.sub)],
    }
    change(body)
    response = api(
        sandbox, "POST", "/v1/sequenced_availability", riley.auth.access_token, json=body
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert field in errors and errors[field][0]["key"].startswith("errors.")
