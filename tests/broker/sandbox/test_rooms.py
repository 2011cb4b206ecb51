"""Rooms answer invitations on their own, as Exchange and Google resource mailboxes do: accepted
(and booked) when free, declined when busy; the booking follows the meeting."""

from __future__ import annotations

import datetime as dt

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox import events
from broker.sandbox.state import World

from .conftest import ALEX, RILEY, api, client_for, today, tokens_for

AURORA = "room.aurora@northwind.example"
BOREALIS = "room.borealis@northwind.example"
UTC = dt.UTC
DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"


def _at(hour: float) -> dt.datetime:
    """Night-time UTC, three days ahead: no seeded meeting (London office hours) is there."""
    day = dt.datetime.combine(today() + dt.timedelta(days=3), dt.time(0), tzinfo=UTC)
    return day + dt.timedelta(hours=hour)


def _z(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def authorize_room(sandbox, receiver, room: str = AURORA, admin: str = ALEX) -> dict:
    """Enterprise Connect for the room's domain, then the room itself (§2.3–2.5): the token set."""
    ser = tokens_for(sandbox, admin, enterprise=True)
    callback = receiver.url + "/room-callback"
    response = api(
        sandbox,
        "POST",
        "/v1/service_account_authorizations",
        ser["access_token"],
        json={"email": room, "scope": DELEGATED, "callback_url": callback},
    )
    assert response.status_code == 202, response.text
    sandbox.deliver()
    [note] = [r for r in receiver.received if r.path == "/room-callback"]
    receiver.clear()
    code = note.json()["authorization"]["code"]
    token = api(
        sandbox,
        "POST",
        "/oauth/token",
        json={
            "client_id": "rendezvous-test",
            "client_secret": "sandbox-test-secret",
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


def _riley(connect):
    riley = connect(RILEY)
    riley.calendar_id = next(
        c["calendar_id"]
        for c in riley.list_calendars()
        if c["profile_name"] == RILEY and not c["calendar_readonly"]
    )
    return riley


def _invite(client, event_id: str, start: dt.datetime, end: dt.datetime, *rooms: str) -> None:
    client.upsert_event(
        client.calendar_id,
        {
            "event_id": event_id,
            "summary": f"Interview {event_id}",
            "start": _z(start),
            "end": _z(end),
            "tzid": "Etc/UTC",
            "attendees": {"invite": [{"email": r} for r in rooms]},
        },
    )


def _room_status(client, event_id: str, room: str = AURORA) -> str:
    [ev] = [
        e
        for e in client.read_events(
            calendar_ids=[client.calendar_id],
            only_managed=True,
            include_managed=True,
            tzid="Etc/UTC",
        ).all()
        if e.get("event_id") == event_id
    ]
    return next(a["status"] for a in ev["attendees"] if a["email"] == room)


def _room_events(sandbox, room: str = AURORA) -> list[dict]:
    response = sandbox.request("GET", f"/events?email={room}")
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["event_uid"].startswith("evt_room_")]


def _free(sandbox, token: str, sub: str) -> list[tuple[str, str]]:
    """The room's free periods between 01:00 and 05:00 (UTC), as availability reports them."""
    response = api(
        sandbox,
        "POST",
        "/v1/availability",
        token,
        json={
            "participants": [{"members": [{"sub": sub}], "required": "all"}],
            "required_duration": {"minutes": 30},
            "query_periods": [{"start": _z(_at(1)), "end": _z(_at(5))}],
        },
    )
    assert response.status_code == 200, response.text
    return [(p["start"], p["end"]) for p in response.json()["available_periods"]]


def test_an_invited_free_room_accepts_and_is_busy(sandbox, connect, receiver):
    room = authorize_room(sandbox, receiver)
    assert room["sub"].startswith("res_")
    riley = _riley(connect)
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == [(_z(_at(1)), _z(_at(5)))]
    _invite(riley, "int-1", _at(2), _at(3), AURORA)
    assert _room_status(riley, "int-1") == "accepted"
    [booking] = _room_events(sandbox)
    assert (booking["start"], booking["end"]) == (_z(_at(2)), _z(_at(3)))
    assert booking["organizer"]["email"] == RILEY and "event_id" not in booking
    assert booking["transparency"] == "opaque"
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == [
        (_z(_at(1)), _z(_at(2))),
        (_z(_at(3)), _z(_at(5))),
    ]
    # The room's own calendar shows it busy as well.
    busy = (
        client_for(sandbox, room["access_token"])
        .read_free_busy(
            from_date=_at(0).date(), to_date=_at(0).date() + dt.timedelta(days=1), tzid="Etc/UTC"
        )
        .all()
    )
    assert {"start": _z(_at(2)), "end": _z(_at(3))}.items() <= next(
        b for b in busy if b["start"] == _z(_at(2))
    ).items()


def test_an_overlapping_invitation_is_declined_and_books_nothing(sandbox, connect, receiver):
    room = authorize_room(sandbox, receiver)
    riley = _riley(connect)
    _invite(riley, "first", _at(2), _at(3), AURORA)
    _invite(riley, "second", _at(2.5), _at(3.5), AURORA)
    assert _room_status(riley, "first") == "accepted"
    assert _room_status(riley, "second") == "declined"
    assert len(_room_events(sandbox)) == 1
    # Only the accepted meeting blocks the room: it is free again from 03:00, not 03:30.
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == [
        (_z(_at(1)), _z(_at(2))),
        (_z(_at(3)), _z(_at(5))),
    ]
    # Rewriting the declined meeting unchanged still finds the room busy.
    _invite(riley, "second", _at(2.5), _at(3.5), AURORA)
    assert _room_status(riley, "second") == "declined"
    assert _room_status(riley, "first") == "accepted"


def test_the_booking_follows_a_move_and_is_rechecked(sandbox, connect, receiver):
    room = authorize_room(sandbox, receiver)
    riley = _riley(connect)
    _invite(riley, "moving", _at(2), _at(3), AURORA)
    _invite(riley, "moving", _at(3.5), _at(4.5), AURORA)
    assert _room_status(riley, "moving") == "accepted"
    [booking] = _room_events(sandbox)
    assert (booking["start"], booking["end"]) == (_z(_at(3.5)), _z(_at(4.5)))
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == [
        (_z(_at(1)), _z(_at(3.5))),
        (_z(_at(4.5)), _z(_at(5))),
    ]
    # Someone else takes the room at 01:00; moving there now makes the room decline and let go.
    _invite(riley, "other", _at(1), _at(2), AURORA)
    _invite(riley, "moving", _at(1.5), _at(2.5), AURORA)
    assert _room_status(riley, "moving") == "declined"
    assert [(b["start"], b["end"]) for b in _room_events(sandbox)] == [(_z(_at(1)), _z(_at(2)))]
    # The owner moving it in their own calendar (as in Outlook) is re-checked the same way.
    sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "move",
            "event_id": "moving",
            "start": _z(_at(3)),
            "end": _z(_at(4)),
            "tzid": "Etc/UTC",
        },
    )
    assert _room_status(riley, "moving") == "accepted"
    assert sorted(b["start"] for b in _room_events(sandbox)) == [_z(_at(1)), _z(_at(3))]


def test_deleting_cancelling_or_uninviting_frees_the_room(sandbox, connect, receiver):
    room = authorize_room(sandbox, receiver)
    riley = _riley(connect)
    everything = [(_z(_at(1)), _z(_at(5)))]
    _invite(riley, "gone", _at(2), _at(3), AURORA)
    riley.delete_event(riley.calendar_id, "gone")
    assert _room_events(sandbox) == []
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == everything
    # Deleted by the owner (external change).
    _invite(riley, "gone", _at(2), _at(3), AURORA)
    assert len(_room_events(sandbox)) == 1
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "delete", "event_id": "gone"},
    )
    assert _room_events(sandbox) == []
    # Cancelled by the owner.
    _invite(riley, "cancelled", _at(2), _at(3), AURORA)
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "update", "event_id": "cancelled", "status": "cancelled"},
    )
    assert _room_events(sandbox) == []
    # The room removed from the attendees.
    _invite(riley, "uninvite", _at(2), _at(3), AURORA)
    riley.upsert_event(
        riley.calendar_id,
        {
            "event_id": "uninvite",
            "summary": "Interview",
            "start": _z(_at(2)),
            "end": _z(_at(3)),
            "tzid": "Etc/UTC",
            "attendees": {"remove": [{"email": AURORA}]},
        },
    )
    assert _room_events(sandbox) == []
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == everything


def test_external_events_book_rooms_and_bookings_survive_a_state_file(
    sandbox, sandbox_server, tmp_path
):
    """An event created by the owner in their own calendar books the room too; bookings are plain
    events, so they are saved and loaded with the rest of the world."""
    sandbox.request(
        "POST",
        "/external-change",
        {
            "email": RILEY,
            "action": "create",
            "summary": "Walk-in",
            "start": _z(_at(2)),
            "end": _z(_at(3)),
            "tzid": "Etc/UTC",
        },
    )
    state = sandbox_server.state
    with state.lock:
        ev = next(
            e
            for store in state.world.events.values()
            for e in store.values()
            if e.summary == "Walk-in"
        )
        ev.attendees = [{"email": AURORA, "display_name": "Aurora", "status": "needs_action"}]
        events.record_change(state, ev, own=False)
        assert ev.attendees[0]["status"] == "accepted"
        loaded = World.from_json(state.world.to_json())
    bookings = [
        e
        for store in loaded.events.values()
        for e in store.values()
        if e.event_uid.startswith("evt_room_")
    ]
    assert [(b.start, b.end, b.organizer["email"]) for b in bookings] == [
        (_z(_at(2)), _z(_at(3)), RILEY)
    ]


def _availability(sandbox, token: str, *subs: str):
    return api(
        sandbox,
        "POST",
        "/v1/availability",
        token,
        json={
            "participants": [{"members": [{"sub": s} for s in subs], "required": "all"}],
            "required_duration": {"minutes": 30},
            "query_periods": [{"start": _z(_at(1)), "end": _z(_at(5))}],
        },
    )


def test_a_room_sub_needs_its_own_authorization_and_revoking_it_takes_it_away(
    sandbox, connect, receiver
):
    riley = _riley(connect)
    token = riley.auth.access_token
    identities = sandbox.request("GET", "/identities").json()["identities"]
    aurora_sub = next(i["sub"] for i in identities if i["email"] == AURORA)
    borealis_sub = next(i["sub"] for i in identities if i["email"] == BOREALIS)

    def unknown(response) -> bool:
        return (
            response.status_code == 422
            and response.json()["errors"]["participants"][0]["key"] == "errors.unknown_sub"
        )

    assert unknown(_availability(sandbox, token, aurora_sub))
    # Linking the domain (Enterprise Connect) alone does not make its rooms usable.
    tokens_for(sandbox, ALEX, enterprise=True)
    assert unknown(_availability(sandbox, token, aurora_sub))
    room = authorize_room(sandbox, receiver, AURORA)
    # The code exchange yields the room's sub, in the token response and in userinfo.
    assert room["sub"] == room["account_id"] == aurora_sub
    assert room["linking_profile"]["profile_name"] == AURORA
    info = client_for(sandbox, room["access_token"]).userinfo()
    assert info["sub"] == aurora_sub and info["email"] == AURORA
    assert _availability(sandbox, token, aurora_sub).status_code == 200
    assert unknown(_availability(sandbox, token, borealis_sub))  # only the room asked for
    creds = {"client_id": "rendezvous-test", "client_secret": "sandbox-test-secret"}
    # Revoking a room by its sub is unconfirmed: the strict sandbox refuses it...
    by_sub = api(sandbox, "POST", "/oauth/token/revoke", json={**creds, "sub": aurora_sub})
    assert by_sub.status_code == 400 and by_sub.json()["error"] == "invalid_request"
    assert _availability(sandbox, token, aurora_sub).status_code == 200
    # ...while its refresh token is the documented way.
    revoked = api(
        sandbox, "POST", "/oauth/token/revoke", json={**creds, "token": room["refresh_token"]}
    )
    assert revoked.status_code == 200, revoked.text
    assert unknown(_availability(sandbox, token, aurora_sub))
    assert _availability(sandbox, token, riley.sub).status_code == 200
    # Switched to accept, the sub works too.
    sandbox.request("PATCH", "/config", {"revoke_non_account_subs": "accept"})
    authorize_room(sandbox, receiver, BOREALIS)
    assert _availability(sandbox, token, borealis_sub).status_code == 200
    assert (
        api(sandbox, "POST", "/oauth/token/revoke", json={**creds, "sub": borealis_sub}).status_code
        == 200
    )
    assert unknown(_availability(sandbox, token, borealis_sub))


def test_a_disconnected_organizer_cannot_delete_but_the_owner_can_and_the_room_frees(
    sandbox, connect, receiver
):
    room = authorize_room(sandbox, receiver)
    riley = _riley(connect)
    _invite(riley, "stuck", _at(2), _at(3), AURORA)
    profile_id = riley.list_profiles()[0]["profile_id"]
    sandbox.request("POST", f"/profiles/{profile_id}/disconnect")
    with pytest.raises(PyCronofyRequestError) as refused:
        riley.delete_event(riley.calendar_id, "stuck")
    assert refused.value.response.status_code == 423
    assert len(_room_events(sandbox)) == 1  # nothing was deleted, so the room stays booked
    # The owner deletes it in their own mail client; the room lets go.
    sandbox.request(
        "POST",
        "/external-change",
        {"email": RILEY, "action": "delete", "event_id": "stuck"},
    )
    assert _room_events(sandbox) == []
    assert _free(sandbox, riley.auth.access_token, room["sub"]) == [(_z(_at(1)), _z(_at(5)))]
