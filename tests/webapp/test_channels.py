"""One push channel per linked account: connecting again closes the channels earlier connects
opened, disconnecting closes it, and an account left full by older versions is made room for.
The sandbox holds at most 128 channels per account and delivers each change once per open
channel, as Cronofy documents."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import PendingRevocation
from tests.webapp.test_business_connect import actions, connect_as, creds_for, link_for
from webapp import deps

OTHER = "taylor.nguyen@northwind.example"


@pytest.fixture
def app_config(app_config):
    # 130 connects make ~800 aggregator calls: above the client-side 500 per minute, which
    # would only make the test wait (pacing has tests of its own).
    app_config["CRONOFY_RATE_PER_MINUTE"] = 5000
    return app_config


def _channels(app, session, user):
    return deps.broker.of(app).channels(creds_for(app, session, user))


def _changes_delivered(sandbox, email: str) -> list[dict]:
    """Make a change in ``email``'s calendar as its owner; the change notifications it causes."""
    sandbox.deliver()  # whatever was queued before (verifications)
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": email,
            "action": "create",
            "summary": "Dentist",
            "start": "2031-01-06T10:00:00Z",
            "end": "2031-01-06T11:00:00Z",
        },
    )
    return [d for d in sandbox.deliver() if d["body"]["notification"]["type"] == "change"]


def test_reconnecting_130_times_keeps_exactly_one_channel(
    app, client, auth, session, sandbox, riley
):
    auth.login(riley.email)
    for _ in range(130):
        connect_as(client, auth, sandbox, riley.email)
    link = link_for(session, riley)
    [channel] = _channels(app, session, riley)
    assert "/hooks/cronofy/push/" in channel.callback_url
    assert deps.sealer.of(app).open("push", channel.callback_url.rsplit("/", 1)[1]) == str(link.id)
    assert "calendar.channel_failed" not in actions(session)
    [change] = _changes_delivered(sandbox, riley.email)  # once, not once per connect
    assert change["url"] == channel.callback_url


def test_an_account_left_full_is_made_room_for(app, client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    broker, creds = deps.broker.of(app), creds_for(app, session, riley)
    for n in range(127):  # what 127 more connects of an older version left behind
        broker.create_channel(creds, f"http://localhost/hooks/cronofy/push/old{n}")
    assert len(_channels(app, session, riley)) == 128
    connect_as(client, auth, sandbox, riley.email)
    [channel] = _channels(app, session, riley)
    assert "/old" not in channel.callback_url
    assert len(_changes_delivered(sandbox, riley.email)) == 1


def test_disconnecting_closes_the_channel(app, client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    connect_as(client, auth, sandbox, riley.email)
    assert len(_changes_delivered(sandbox, riley.email)) == 1
    response = auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    assert response.status_code == 200
    assert _changes_delivered(sandbox, riley.email) == []


def test_linking_another_account_lets_go_of_the_first_one(
    app, client, auth, session, sandbox, riley
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    first = link_for(session, riley).sub
    connect_as(client, auth, sandbox, OTHER)
    link = link_for(session, riley)
    assert link.sub != first and link.account_email == OTHER
    # The first account no longer pushes to Rendezvous, and its authorization is let go of.
    assert _changes_delivered(sandbox, riley.email) == []
    assert len(_changes_delivered(sandbox, OTHER)) == 1
    assert session.scalar(select(PendingRevocation.sub)) == first
    # by its refresh token, the documented way (kept encrypted until revoked)
    assert session.scalar(select(PendingRevocation.refresh_token)) is not None
    with app.app_context():
        deps.jobs.of(app).enqueue("revocations.run")
    session.expire_all()
    assert session.scalar(select(PendingRevocation.sub)) is None
