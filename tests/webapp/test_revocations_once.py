"""Disconnecting a domain revokes each authorization at the aggregator exactly once and audits
each revocation once, however many revocation jobs run at the same time (the job queued by the
admin's request and the every-minute resume job meet on a consumer with several workers).

Counted on both sides of the wire: the sandbox's request counter (calls the aggregator saw) and
the subs the app sent, against the authorizations the domain really had."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from models import (
    AuditEntry,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    PendingRevocation,
    ProfileLink,
    Role,
    ServiceAccountLink,
    utcnow,
)
from tests.factories import make_user
from tests.webapp.test_enterprise import (
    PAGE,
    connect_domain,
)
from webapp import deps
from webapp.services import credentials, revocations

#: The seeded Google Workspace people and rooms of northwind.example.
PEOPLE = [
    "riley.chen@northwind.example",
    "morgan.lee@northwind.example",
    "taylor.nguyen@northwind.example",
    "drew.martin@northwind.example",
    "jordan.diaz@northwind.example",
    "casey.brooks@northwind.example",
    "priya.shah@northwind.example",
]
ROOMS = ["room.aurora@northwind.example", "room.borealis@northwind.example"]
REVOKE = "POST /oauth/token/revoke"


class CountingBroker:
    """The app's real broker, noting which sub (or token) each revocation was for."""

    def __init__(self, broker):
        self._broker = broker
        self.revoked: Counter[str] = Counter()
        self.by_token: Counter[str] = Counter()
        self._lock = threading.Lock()

    def revoke_sub(self, sub: str) -> None:
        with self._lock:
            self.revoked[sub] += 1
        self._broker.revoke_sub(sub)

    def revoke(self, token: str) -> None:
        with self._lock:
            self.by_token[token] += 1
        self._broker.revoke(token)

    def __getattr__(self, name):
        return getattr(self._broker, name)


@pytest.fixture
def linked_domain(app, admin_client, session, sandbox, org):
    """northwind.example connected, its seven people's mailboxes and two rooms linked: ten
    authorizations at the aggregator (the service account, seven mailboxes, two rooms)."""
    client, auth = admin_client
    # Rooms go by sub, which the strict sandbox refuses (tested in test_rooms): here the
    # aggregator takes it, so every authorization can be counted as revoked.
    sandbox.call("PATCH", "/config", json={"revoke_non_account_subs": "accept"})
    for email in PEOPLE:
        make_user(session, org, Role.RECRUITER, email=email)
    domain = connect_domain(client, auth, session, sandbox, "google")
    sent = auth.post(
        f"{PAGE}{domain.id}/link",
        {"mode": "list", "pasted": "\n".join(PEOPLE)},
        form_page=f"{PAGE}{domain.id}/link",
    )
    assert sent.status_code == 303  # to the list's summary
    rooms = auth.post(f"{PAGE}{domain.id}/rooms", {"rooms": ROOMS}, form_page=PAGE)
    assert rooms.status_code == 303
    sandbox.deliver()
    session.expire_all()
    rows = session.scalars(select(MailboxRequest)).all()
    assert len(rows) == 9 and {r.status for r in rows} == {MailboxStatus.LINKED}
    cipher = deps.cipher.of(app)
    tokens = [
        credentials.load_credentials(link, cipher).access_token
        for link in session.scalars(select(ProfileLink))
    ]
    sa_creds = credentials.load_credentials(session.get(ServiceAccountLink, domain.id), cipher)
    tokens.append(sa_creds.access_token)
    subs = {
        *(lk.sub for lk in session.scalars(select(ProfileLink))),
        domain.sub,
        *(r.resource_sub for r in rows if r.kind is MailboxKind.ROOM),
    }
    assert len(subs) == 10 and len(tokens) == 8
    sandbox.call("DELETE", "/stats")
    domain.sa_refresh_token = sa_creds.refresh_token  # revoked by token, not by its ser_ sub
    return domain, subs, tokens


def revoked_in_bulk(session) -> list[dict]:
    session.expire_all()
    return [
        e.detail
        for e in session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "calendar.revoked_in_bulk")
            .order_by(AuditEntry.id)
        )
    ]


def assert_all_revoked_once(sandbox, session, broker: CountingBroker, subs, tokens, domain):
    assert sandbox.stats()["requests"].get(REVOKE, 0) == len(subs)
    # The accounts and rooms by sub; the service account by its refresh token.
    assert broker.revoked == Counter({sub: 1 for sub in subs - {domain.sub}})
    assert broker.by_token == Counter({domain.sa_refresh_token: 1})
    # Each revocation audited once: the bulk entries add up to the authorizations, no more.
    entries = revoked_in_bulk(session)
    assert sum(e["revoked"] for e in entries) == len(subs), entries
    assert any(e["still_queued"] == 0 for e in entries)
    assert session.scalar(select(PendingRevocation)) is None
    for token in tokens:  # and the aggregator really forgot them
        assert (
            requests.get(
                sandbox.url + "/v1/account", timeout=5, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )


def test_disconnecting_a_domain_revokes_each_authorization_once(
    app, admin_client, session, sandbox, linked_domain, monkeypatch
):
    domain, subs, tokens = linked_domain
    broker = CountingBroker(deps.broker.of(app))
    monkeypatch.setitem(app.extensions, deps.broker.key, broker)
    _client, auth = admin_client
    done = auth.post(
        f"{PAGE}{domain.id}/disconnect",
        {"confirm": "yes"},
        form_page=f"{PAGE}{domain.id}/disconnect",
    )
    assert done.status_code in (302, 303)
    assert_all_revoked_once(sandbox, session, broker, subs, tokens, domain)
    assert len(revoked_in_bulk(session)) == 1  # one job ran: one entry
    disconnected = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "ec.disconnected")
    ).all()
    assert [e.detail["revocations_queued"] for e in disconnected] == [10]


def test_revocation_jobs_running_at_once_revoke_each_authorization_once(
    app, admin_client, session, sandbox, linked_domain, monkeypatch
):
    domain, subs, tokens = linked_domain
    broker = CountingBroker(deps.broker.of(app))
    monkeypatch.setitem(app.extensions, deps.broker.key, broker)
    jobs = deps.jobs.of(app)
    queued_jobs = []
    real_enqueue = jobs.enqueue

    def hold_revocations(name, *args, **kwargs):  # the consumer picks them up below
        if name == "revocations.run":
            queued_jobs.append(name)
            return None
        return real_enqueue(name, *args, **kwargs)

    monkeypatch.setattr(jobs, "enqueue", hold_revocations)
    _client, auth = admin_client
    auth.post(
        f"{PAGE}{domain.id}/disconnect",
        {"confirm": "yes"},
        form_page=f"{PAGE}{domain.id}/disconnect",
    )
    assert queued_jobs == ["revocations.run"] and sandbox.stats()["requests"].get(REVOKE, 0) == 0
    session.expire_all()
    assert session.get(ServiceAccountLink, domain.id).status is LinkStatus.DISCONNECTED

    # A slow aggregator keeps the runs overlapping: the admin's job and the minute's resume
    # job, plus a third worker for good measure, all start on the same queue at once.
    sandbox.add_fault(method="POST", path="/oauth/token/revoke", latency_ms=150)
    from webapp.jobs.revocations import resume, run

    start = threading.Barrier(3)
    results, errors = [], []

    def worker(task):
        try:
            with app.app_context():
                start.wait(timeout=10)
                results.append(task())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(task,)) for task in (run, resume, run)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(results) == len(subs)
    assert_all_revoked_once(sandbox, session, broker, subs, tokens, domain)


class Recording:
    def __init__(self):
        self.revoked: list[str] = []

    def revoke_sub(self, sub: str) -> None:
        self.revoked.append(sub)


def test_rows_of_a_run_that_died_are_taken_up_after_its_lease(session, org):
    revocations.queue(session, ["acc_1", "acc_2"], organisation_id=org.id, reason="test")
    session.commit()
    assert len(revocations._claim(session, utcnow(), 10)) == 2  # a run took them, then died
    broker = Recording()
    assert revocations.run(session, broker).revoked == 0 and broker.revoked == []
    later = utcnow() + revocations.LEASE + timedelta(seconds=1)
    assert revocations.run(session, broker, now=later).revoked == 2
    assert sorted(broker.revoked) == ["acc_1", "acc_2"]
    assert session.scalar(select(PendingRevocation)) is None
