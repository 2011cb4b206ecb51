"""The aggregator's callback endpoints under abuse: unsigned floods, replayed notifications."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry
from webapp import create_app, deps
from webapp.callbacks import CallbackGuard

FORGED = {"Content-Type": "application/json", "Cronofy-HMAC-SHA256": "forged"}


def _bad_signature_entries(session) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "webhook.bad_signature")
            .order_by(AuditEntry.id)
        )
    )


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_unsigned_callbacks_are_rate_limited_and_audited_once_a_minute(request, app_config, store):
    if store == "redis":
        import redis

        app_config["REDIS_URL"] = request.getfixturevalue("redis_url")
        redis.Redis.from_url(app_config["REDIS_URL"]).flushdb()
    app = request.getfixturevalue("app")
    session = request.getfixturevalue("session")
    # With Redis, as in production, a second worker shares the count; in memory (development),
    # one process is the whole server.
    workers = [app, create_app(app_config)] if store == "redis" else [app]
    clients = [w.test_client() for w in workers]
    paths = ["/hooks/cronofy/push/" + "A" * 43, "/hooks/cronofy/sa/" + "B" * 43]

    statuses = [
        clients[n % len(clients)].post(paths[n % 2], data=b"{}", headers=FORGED) for n in range(50)
    ]
    assert [r.status_code for r in statuses] == [401] * 10 + [429] * 40
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
    entries = _bad_signature_entries(session)
    assert len(entries) == 1  # was one row per request
    assert entries[0].detail == {"kind": "push", "signed": True, "requests": 1}
    assert entries[0].outcome == "denied" and entries[0].ip_address == "127.0.0.1"

    # A minute later (the windows end): the next entry stands for everything since the first.
    unsigned: CallbackGuard = deps.callback_guard.of(app)
    for limit, name in (
        (CallbackGuard.AUDITED, "rendezvous-hooks-unsigned-audit"),
        (CallbackGuard.LIMIT, "rendezvous-hooks-unsigned"),
    ):
        unsigned.windows.clear(limit, name, "127.0.0.1")
    assert (
        clients[0]
        .post(paths[1], data=b"{}", headers={"Content-Type": "application/json"})
        .status_code
        == 401
    )
    entries = _bad_signature_entries(session)
    assert len(entries) == 2
    assert entries[1].detail == {"kind": "service_account", "signed": False, "requests": 50}
    for other in workers[1:]:
        deps.database.of(other).engine.dispose()


# --- a signed notification is for the link whose channel sent it ----------------------------


@pytest.fixture
def two_links(app, session, sandbox):
    """Riley's calendar linked in organisation A, Sam's in organisation B (each their own
    channel), as their owners connected them."""
    from models import Role
    from tests.conftest import AuthActions
    from tests.factories import make_org, make_user
    from tests.webapp.test_business_connect import connect_as, link_for

    links = []
    for email, provider in (
        ("riley.chen@northwind.example", "google"),
        ("sam.patel@contoso.example", "office365"),
    ):
        org = make_org(session)
        org.business_connect_enabled = True
        session.commit()
        user = make_user(session, org, Role.RECRUITER, email=email)
        client = app.test_client()
        auth = AuthActions(client)
        auth.login(email)
        connect_as(client, auth, sandbox, email, provider=provider)
        links.append(link_for(session, user))
    riley, sam = links
    assert riley.channel_id and sam.channel_id and riley.channel_id != sam.channel_id
    assert riley.organisation_id != sam.organisation_id
    return riley, sam


def _signed(notification: dict, channel_id: str | None) -> tuple[bytes, dict]:
    """A body as the aggregator signs it (the signature covers the body only: anyone holding
    one from their own channel can send it anywhere)."""
    import json

    from tests.webapp.test_business_connect import _sign

    payload = {"notification": notification}
    if channel_id is not None:
        payload["channel"] = {"channel_id": channel_id, "callback_url": "x", "filters": {}}
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "Cronofy-HMAC-SHA256": _sign(body)}


def _foreign_entries(session) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "webhook.foreign_notification")
            .order_by(AuditEntry.id)
        )
    )


def test_a_notification_replayed_to_another_organisations_link_is_ignored(
    app, client, session, sandbox, two_links
):
    from models import LinkStatus
    from tests.webapp.test_business_connect import _push_path, link_for

    riley, sam = two_links
    # Sam's own channel says his profile disconnected; the body is replayed to Riley's URL.
    body, headers = _signed({"type": "profile_disconnected"}, sam.channel_id)
    for _ in range(5):
        assert client.post(_push_path(app, riley.id), data=body, headers=headers).status_code == 202
    assert link_for(session, riley.user).status is LinkStatus.ACTIVE
    entries = _foreign_entries(session)
    assert len(entries) == 1  # audited once, however often it is replayed
    assert entries[0].organisation_id == riley.organisation_id
    assert entries[0].target_id == str(riley.id) and entries[0].outcome == "denied"
    assert entries[0].detail == {
        "type": "profile_disconnected",
        "reason": "another channel",
        "channel_id": sam.channel_id,
    }

    # A change from Sam's channel does not make Riley's link read its calendar either.
    reads = sandbox.stats()["requests"].get("GET /v1/events", 0)
    change, headers = _signed(
        {"type": "change", "changes_since": "2026-11-21T09:00:00Z"}, sam.channel_id
    )
    for _ in range(3):
        response = client.post(_push_path(app, riley.id), data=change, headers=headers)
        assert response.status_code == 202
    assert sandbox.stats()["requests"].get("GET /v1/events", 0) == reads
    assert [e.detail["type"] for e in _foreign_entries(session)] == [
        "profile_disconnected",
        "change",
    ]
    # With no channel at all, or naming Riley's channel but someone else's profile: ignored.
    for notification, channel in (
        ({"type": "profile_disconnected"}, None),
        ({"type": "profile_disconnected", "profile_id": sam.profile_id}, riley.channel_id),
    ):
        body, headers = _signed(notification, channel)
        assert client.post(_push_path(app, riley.id), data=body, headers=headers).status_code == 202
    assert link_for(session, riley.user).status is LinkStatus.ACTIVE
    assert [e.detail["reason"] for e in _foreign_entries(session)][2:] == [
        "no channel",
        "another profile",
    ]

    # Riley's own channel is heard, at her URL only.
    body, headers = _signed(
        {"type": "profile_disconnected", "profile_id": riley.profile_id}, riley.channel_id
    )
    assert client.post(_push_path(app, sam.id), data=body, headers=headers).status_code == 202
    assert link_for(session, sam.user).status is LinkStatus.ACTIVE
    assert client.post(_push_path(app, riley.id), data=body, headers=headers).status_code == 202
    assert link_for(session, riley.user).status is LinkStatus.NEEDS_ATTENTION
    assert link_for(session, sam.user).status is LinkStatus.ACTIVE


def test_a_link_from_before_channel_ids_has_its_channel_confirmed_at_the_aggregator(
    app, client, session, sandbox, two_links
):
    from models import LinkStatus
    from tests.webapp.test_business_connect import _push_path, link_for

    riley, sam = two_links
    own = riley.channel_id
    riley.channel_id = None  # linked by an older version
    session.commit()
    body, headers = _signed({"type": "profile_disconnected"}, sam.channel_id)
    assert client.post(_push_path(app, riley.id), data=body, headers=headers).status_code == 202
    assert link_for(session, riley.user).status is LinkStatus.ACTIVE  # not in Riley's account
    assert link_for(session, riley.user).channel_id is None
    # The notice is true (the app asks the aggregator which profile it concerns).
    sandbox.call("POST", f"/profiles/{riley.profile_id}/disconnect")
    body, headers = _signed({"type": "profile_disconnected"}, own)
    assert client.post(_push_path(app, riley.id), data=body, headers=headers).status_code == 202
    link = link_for(session, riley.user)
    assert link.status is LinkStatus.NEEDS_ATTENTION and link.channel_id == own
