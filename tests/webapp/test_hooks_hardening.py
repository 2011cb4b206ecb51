"""The aggregator's callback endpoints under abuse: unsigned floods, replayed notifications."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry
from webapp import create_app
from webapp.views.hooks import UnsignedCallbacks

FORGED = {"Content-Type": "application/json", "Cronofy-HMAC-SHA256": "forged"}


def _bad_signature_entries(session) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(select(AuditEntry).where(
        AuditEntry.action == "webhook.bad_signature").order_by(AuditEntry.id)))


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_unsigned_callbacks_are_rate_limited_and_audited_once_a_minute(
        request, app_config, store):
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

    statuses = [clients[n % len(clients)].post(paths[n % 2], data=b"{}", headers=FORGED)
                for n in range(50)]
    assert [r.status_code for r in statuses] == [401] * 10 + [429] * 40
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
    entries = _bad_signature_entries(session)
    assert len(entries) == 1  # was one row per request
    assert entries[0].detail == {"kind": "push", "signed": True, "requests": 1}
    assert entries[0].outcome == "denied" and entries[0].ip_address == "127.0.0.1"

    # A minute later (the windows end): the next entry stands for everything since the first.
    unsigned: UnsignedCallbacks = app.extensions["rendezvous.unsigned_callbacks"]
    for limit, name in ((UnsignedCallbacks.AUDITED, "rendezvous-hooks-unsigned-audit"),
                        (UnsignedCallbacks.LIMIT, "rendezvous-hooks-unsigned")):
        unsigned.windows.clear(limit, name, "127.0.0.1")
    assert clients[0].post(paths[1], data=b"{}",
                           headers={"Content-Type": "application/json"}).status_code == 401
    entries = _bad_signature_entries(session)
    assert len(entries) == 2
    assert entries[1].detail == {"kind": "service_account", "signed": False, "requests": 50}
    for other in workers[1:]:
        other.extensions["rendezvous.db"].engine.dispose()
