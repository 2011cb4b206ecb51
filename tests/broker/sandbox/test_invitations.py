"""Invitations land on the invited person's own calendar, as Google and Exchange deliver them: an
unanswered or tentative invitation holds the time, a declined one frees it, and the copy follows
the organizer's event (moved, answered again, removed)."""

from __future__ import annotations

import datetime as dt

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox import events

from .conftest import MORGAN, RILEY, SAM, api

UTC = dt.UTC


#: The sandbox's time in these tests: the world is seeded from this day, so the layout (and
#: what is free three nights ahead) is the same on any date and across midnight.
NOW = dt.datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _seeded_on_a_fixed_day(sandbox):
    sandbox.reset(now=NOW)


def _at(hour: float) -> dt.datetime:
    """Night-time UTC three days ahead: outside every seeded working day (London, New York)."""
    day = dt.datetime.combine(NOW.date() + dt.timedelta(days=3), dt.time(0), tzinfo=UTC)
    return day + dt.timedelta(hours=hour)


def _z(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def calendar_user(sandbox, connect):
    """``calendar_user(email)``: a pycronofy client for that person, with their primary calendar."""

    def make(email: str):
        made = connect(email, scope="read_write")
        made.sandbox = sandbox
        made.calendar_id = next(
            c["calendar_id"] for c in made.list_calendars() if c["calendar_primary"]
        )
        return made

    return make


def _write(
    client, event_id: str, start: dt.datetime, end: dt.datetime, *invitees: str, **extra
) -> None:
    body = {
        "event_id": event_id,
        "summary": f"Interview {event_id}",
        "start": _z(start),
        "end": _z(end),
        "tzid": "Etc/UTC",
        **extra,
    }
    if invitees:
        body["attendees"] = {"invite": [{"email": e} for e in invitees]}
    client.upsert_event(client.calendar_id, body)


def _copies(client, *, include_deleted: bool = False) -> list[dict]:
    """The invitee's invitation copies, as the aggregator reports them to their own token."""
    return [
        e
        for e in client.read_events(
            calendar_ids=[client.calendar_id],
            tzid="Etc/UTC",
            from_date=_at(-24).date(),
            to_date=_at(48).date(),
            include_deleted=include_deleted,
            include_moved=True,
        ).all()
        if e["event_uid"].startswith(events.INVITATION_PREFIX)
    ]


def _free(client, sub: str) -> list[tuple[str, str]]:
    """``sub``'s free periods between 01:00 and 05:00 UTC, as availability reports them."""
    response = api(
        client.sandbox,
        "POST",
        "/v1/availability",
        client.auth.access_token,
        json={
            "participants": [{"members": [{"sub": sub}], "required": "all"}],
            "required_duration": {"minutes": 30},
            "query_periods": [{"start": _z(_at(1)), "end": _z(_at(5))}],
        },
    )
    assert response.status_code == 200, response.text
    return [(p["start"], p["end"]) for p in response.json()["available_periods"]]


def _busy(client) -> list[tuple[str, str, str]]:
    return [
        (b["start"], b["end"], b["free_busy_status"])
        for b in client.read_free_busy(
            calendar_ids=[client.calendar_id],
            from_date=_at(0).date(),
            to_date=_at(0).date() + dt.timedelta(days=1),
            tzid="Etc/UTC",
        ).all()
        if b["start"] >= _z(_at(0)) and b["end"] <= _z(_at(6))
    ]


def _status(organizer, event_id: str, email: str) -> str:
    [ev] = [
        e
        for e in organizer.read_events(
            calendar_ids=[organizer.calendar_id],
            tzid="Etc/UTC",
            only_managed=True,
            include_managed=True,
        ).all()
        if e["event_id"] == event_id
    ]
    return next(a["status"] for a in ev["attendees"] if a["email"] == email)


def _answer(sandbox, event_id: str, attendee: str, status: str) -> None:
    response = sandbox.request(
        "POST",
        "/attendee-response",
        {"organizer": RILEY, "event_id": event_id, "attendee": attendee, "status": status},
    )
    assert response.status_code == 200, response.text


EVERYTHING = [(_z(_at(1)), _z(_at(5)))]
AROUND_2_TO_3 = [(_z(_at(1)), _z(_at(2))), (_z(_at(3)), _z(_at(5)))]


def test_an_invitation_is_on_the_invitees_calendar_and_holds_the_time(calendar_user):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    assert _free(riley, sam.sub) == EVERYTHING and _copies(sam) == []
    _write(
        riley,
        "int-1",
        _at(2),
        _at(3),
        SAM,
        description="Bring the portfolio",
        location={"description": "Room 4"},
    )
    [copy] = _copies(sam)
    assert (copy["start"], copy["end"]) == (_z(_at(2)), _z(_at(3)))
    assert copy["participation_status"] == "needs_action"
    assert copy["organizer"]["email"] == RILEY and "event_id" not in copy
    assert copy["summary"] == "Interview int-1" and copy["description"] == "Bring the portfolio"
    assert copy["location"] == {"description": "Room 4"}
    # Unanswered, it holds the time: busy in availability, tentative in free/busy.
    assert _free(riley, sam.sub) == AROUND_2_TO_3
    assert _busy(sam) == [(_z(_at(2)), _z(_at(3)), "tentative")]
    # The organizer's own calendar is not given a second copy, and nobody uninvited gets one.
    assert _copies(riley) == [] and _copies(calendar_user(MORGAN)) == []


@pytest.mark.parametrize(
    "answer,busy",
    [("accepted", True), ("tentative", True), ("declined", False), ("needs_action", True)],
)
def test_the_answer_decides_whether_the_time_is_held(sandbox, calendar_user, answer, busy):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    _write(riley, "int-1", _at(2), _at(3), SAM)
    _answer(sandbox, "int-1", SAM, answer)
    [copy] = _copies(sam)
    assert copy["participation_status"] == answer
    assert _free(riley, sam.sub) == (AROUND_2_TO_3 if busy else EVERYTHING)
    assert bool(_busy(sam)) is busy


def test_answering_on_the_copy_tells_the_organizer(calendar_user):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    _write(riley, "int-1", _at(2), _at(3), SAM)
    [copy] = _copies(sam)
    sam.change_participation_status(sam.calendar_id, copy["event_uid"], "declined")
    assert _status(riley, "int-1", SAM) == "declined"
    assert _copies(sam)[0]["participation_status"] == "declined"
    assert _free(riley, sam.sub) == EVERYTHING
    sam.change_participation_status(sam.calendar_id, copy["event_uid"], "accepted")
    assert _status(riley, "int-1", SAM) == "accepted"
    assert _free(riley, sam.sub) == AROUND_2_TO_3


def test_the_copy_follows_a_move_and_the_invitee_is_asked_again(sandbox, calendar_user):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    _write(riley, "int-1", _at(2), _at(3), SAM)
    _answer(sandbox, "int-1", SAM, "declined")
    assert _free(riley, sam.sub) == EVERYTHING
    # Rewritten unchanged: nothing moves, the answer stands.
    _write(riley, "int-1", _at(2), _at(3), SAM)
    assert _status(riley, "int-1", SAM) == "declined"
    _write(riley, "int-1", _at(3.5), _at(4.5), SAM)
    [copy] = _copies(sam)
    assert (copy["start"], copy["end"]) == (_z(_at(3.5)), _z(_at(4.5)))
    # A new time asks again (as Exchange does): unanswered, so the new time is held.
    assert copy["participation_status"] == "needs_action"
    assert _status(riley, "int-1", SAM) == "needs_action"
    assert _free(riley, sam.sub) == [(_z(_at(1)), _z(_at(3.5))), (_z(_at(4.5)), _z(_at(5)))]
    # The organizer moving it in their own calendar (as in Outlook) moves the copy too.
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "move", "event_id": "int-1", "shift_minutes": -90},
    )
    [copy] = _copies(sam)
    assert (copy["start"], copy["end"]) == (_z(_at(2)), _z(_at(3)))


@pytest.mark.parametrize("how", ["delete", "cancel", "remove", "omit", "bulk"])
def test_deleting_cancelling_or_uninviting_removes_the_copy(sandbox, calendar_user, how):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    _write(riley, "int-1", _at(2), _at(3), SAM, MORGAN)
    assert len(_copies(sam)) == 1
    if how == "delete":
        riley.delete_event(riley.calendar_id, "int-1")
    elif how == "cancel":
        sandbox.request(
            "POST",
            "/external-change",
            {"email": RILEY, "action": "update", "event_id": "int-1", "status": "cancelled"},
        )
    elif how == "remove":
        _write(
            riley,
            "int-1",
            _at(2),
            _at(3),
            attendees={"invite": [{"email": MORGAN}], "remove": [{"email": SAM}]},
        )
    elif how == "omit":  # an update replaces the event: no attendees now means nobody invited
        _write(riley, "int-1", _at(2), _at(3))
    else:
        riley.delete_all_events(calendar_ids=[riley.calendar_id])
    assert _copies(sam) == []
    assert [c["deleted"] for c in _copies(sam, include_deleted=True)] == [True]
    assert _free(riley, sam.sub) == EVERYTHING
    morgan = calendar_user(MORGAN)
    assert len(_copies(morgan)) == (1 if how == "remove" else 0)
    # Inviting again (or the organizer restoring the meeting) brings the copy back, unanswered.
    if how == "cancel":
        sandbox.request(
            "POST",
            "/external-change",
            {"email": RILEY, "action": "update", "event_id": "int-1", "status": "confirmed"},
        )
    _write(riley, "int-1", _at(2), _at(3), SAM)
    assert [c["participation_status"] for c in _copies(sam)] == ["needs_action"]


def test_removing_the_invitation_declines_it_and_only_the_organizer_moves_it(
    sandbox, calendar_user
):
    riley, sam = calendar_user(RILEY), calendar_user(SAM)
    _write(riley, "int-1", _at(2), _at(3), SAM)
    [copy] = _copies(sam)
    moved = sandbox.request(
        "POST",
        "/external-change",
        {"email": SAM, "action": "move", "event_uid": copy["event_uid"], "shift_minutes": 60},
    )
    assert moved.status_code == 422
    assert moved.json()["errors"]["event_uid"][0]["key"] == "errors.not_organizer"
    removed = sandbox.request(
        "POST",
        "/external-change",
        {"email": SAM, "action": "delete", "event_uid": copy["event_uid"]},
    )
    assert removed.status_code == 200, removed.text
    assert _status(riley, "int-1", SAM) == "declined"
    assert _free(riley, sam.sub) == EVERYTHING


def test_an_update_replaces_the_event_except_conferencing_and_create_only_reminders(
    sandbox, calendar_user
):
    riley = calendar_user(RILEY)
    full = {
        "description": "Notes for the panel",
        "location": {"description": "Room 4"},
        "reminders": [{"minutes": 10}],
        "transparency": "transparent",
        "event_private": True,
        "conferencing": {
            "profile_id": "explicit",
            "provider_description": "Webex",
            "join_url": "https://sandbox.webex.example/meet/m1",
        },
    }
    _write(riley, "int-1", _at(2), _at(3), SAM, **full)

    def held() -> dict:
        response = sandbox.request("GET", f"/events?email={RILEY}")
        return next(e for e in response.json()["events"] if e.get("event_id") == "int-1")

    before = held()
    assert before["reminders"] == [{"minutes": 10}] and before["event_private"] is True
    # Everything sent again, only the time changes: everything is kept.
    _write(riley, "int-1", _at(3), _at(4), SAM, **full)
    again = held()
    for name in (
        "summary",
        "description",
        "location",
        "reminders",
        "transparency",
        "event_private",
        "conferencing",
        "organizer",
    ):
        assert again[name] == before[name], name
    assert [a["email"] for a in again["attendees"]] == [SAM]
    # Reminders sent with reminders_create_only are not applied to an existing event.
    _write(
        riley,
        "int-1",
        _at(3),
        _at(4),
        SAM,
        **{**full, "reminders": [{"minutes": 30}], "reminders_create_only": True},
    )
    assert held()["reminders"] == [{"minutes": 10}]
    # Left out, they are gone — except conferencing, which an update without it leaves alone.
    _write(riley, "int-1", _at(3), _at(4))
    bare = held()
    assert bare["description"] == "" and bare["location"] == {} and bare["reminders"] == []
    assert bare["transparency"] == "opaque" and bare["event_private"] is False
    assert bare["attendees"] == []
    assert bare["conferencing"] == before["conferencing"]


def test_an_unknown_invitee_or_a_room_gets_no_person_copy(calendar_user, sandbox):
    riley = calendar_user(RILEY)
    _write(riley, "int-1", _at(2), _at(3), "someone@example.net", "room.aurora@northwind.example")
    held = sandbox.request("GET", "/events?email=room.aurora@northwind.example").json()
    assert not [e for e in held["events"] if e["event_uid"].startswith(events.INVITATION_PREFIX)]


def test_participation_on_an_unknown_copy_is_404(calendar_user):
    sam = calendar_user(SAM)
    with pytest.raises(PyCronofyRequestError) as info:
        sam.change_participation_status(
            sam.calendar_id, events.invitation_uid("evt_x", "acc_y"), "accepted"
        )
    assert info.value.response.status_code == 404
