"""Bulk disconnects: tokens are deleted in the admin's request with no aggregator call however
many links there are; the authorizations are revoked afterwards from a durable queue that
survives rate limits, failures and restarts, and never revokes an account authorized again."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from sqlalchemy import func, select

from broker import errors as broker_errors
from broker.types import Credentials
from models import (
    AuditEntry,
    LinkMode,
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
from tests.held_jobs import HeldJobs
from tests.webapp.test_business_connect import connect_as, creds_for, link_for
from webapp import deps
from webapp.services import Actor, credentials, revocations
from webapp.services.enterprise import teardown


def _creds(n: int) -> Credentials:
    return Credentials(
        f"access-{n}",
        f"refresh-{n}",
        utcnow() + dt.timedelta(hours=1),
        "read_events",
        sub=f"acc_{n:06d}",
    )


def big_domain(app, session, org, mailboxes: int) -> ServiceAccountLink:
    """A connected domain with ``mailboxes`` linked mailboxes and two rooms (rows only)."""
    cipher = deps.cipher.of(app)
    sa = ServiceAccountLink(
        organisation_id=org.id,
        provider="exchange",
        domain="big.example",
        sub="ser_big",
        status=LinkStatus.ACTIVE,
    )
    session.add(sa)
    session.flush()
    credentials.store_credentials(sa, _creds(0), cipher)
    for n in range(1, mailboxes + 1):
        user = make_user(session, org, Role.RECRUITER, email=f"person{n}@big.example")
        link = ProfileLink(
            organisation_id=org.id,
            user_id=user.id,
            mode=LinkMode.ENTERPRISE,
            sub=f"acc_{n:06d}",
            status=LinkStatus.ACTIVE,
        )
        session.add(link)
        session.flush()
        credentials.store_credentials(link, _creds(n), cipher)
        session.add(
            MailboxRequest(
                service_account_link_id=sa.id,
                organisation_id=org.id,
                user_id=user.id,
                email=user.email,
                profile_link_id=link.id,
                status=MailboxStatus.LINKED,
            )
        )
    for n in (1, 2):
        session.add(
            MailboxRequest(
                service_account_link_id=sa.id,
                organisation_id=org.id,
                kind=MailboxKind.ROOM,
                email=f"room{n}@big.example",
                resource_sub=f"res_{n:06d}",
                status=MailboxStatus.LINKED,
            )
        )
    session.commit()
    return sa


class RecordingBroker:
    """Records revocations by sub and by token; ``script`` maps a sub or token to the error
    its next revocation raises (``sticky`` ones raise every time)."""

    def __init__(self, script: dict | None = None, sticky: dict | None = None):
        self.revoked: list[str] = []
        self.tokens: list[str] = []
        self.script = dict(script or {})
        self.sticky = dict(sticky or {})
        self.calls = 0

    def _answer(self, key: str) -> None:
        self.calls += 1
        error = self.script.pop(key, None) or self.sticky.get(key)
        if error is not None:
            raise error

    def revoke_sub(self, sub: str) -> None:
        self._answer(sub)
        self.revoked.append(sub)

    def revoke(self, token: str) -> None:
        self._answer(token)
        self.tokens.append(token)


def test_disconnecting_a_large_domain_deletes_every_token_at_once_and_queues_revocations(
    app, session, org
):
    admin = make_user(session, org, Role.ADMIN, email="it@big.example")
    sa = big_domain(app, session, org, 120)
    held = HeldJobs()
    report = teardown.disconnect_domain(  # the service takes no broker: nothing remote here
        session,
        deps.cipher.of(app),
        Actor(admin.id, admin.email, org.id, Role.ADMIN),
        sa.id,
        jobs=held,
    )
    assert held.queued == [("revocations.run", ())]  # revoking them is the job's
    assert (report.mailboxes, report.tokens_deleted, report.revocations) == (122, 121, 123)
    session.expire_all()
    assert not any(p.has_tokens for p in session.scalars(select(ProfileLink)))
    assert {p.status for p in session.scalars(select(ProfileLink))} == {LinkStatus.DISCONNECTED}
    assert not session.get(ServiceAccountLink, sa.id).has_tokens
    assert {r.status for r in session.scalars(select(MailboxRequest))} == {MailboxStatus.UNLINKED}
    queued = set(session.scalars(select(PendingRevocation.sub)))
    assert queued == (
        {f"acc_{n:06d}" for n in range(1, 121)} | {"res_000001", "res_000002", "ser_big"}
    )

    # The service account's refresh token waits in the queue, encrypted and bound to its row.
    held = session.scalar(select(PendingRevocation).where(PendingRevocation.sub == "ser_big"))
    assert held.refresh_token and b"refresh-0" not in held.refresh_token and held.key_id
    assert (
        session.scalar(
            select(func.count(PendingRevocation.id)).where(
                PendingRevocation.refresh_token.is_not(None)
            )
        )
        == 1
    )

    broker = RecordingBroker()
    result = revocations.run(session, broker, cipher=deps.cipher.of(app))
    # Accounts and rooms by sub; the service account by its token (the documented way).
    assert result.revoked == 123 and sorted(broker.revoked) == sorted(queued - {"ser_big"})
    assert broker.tokens == ["refresh-0"]
    assert session.scalar(select(func.count(PendingRevocation.id))) == 0
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "calendar.revoked_in_bulk")
    )
    assert entry.detail == {"revoked": 123, "still_queued": 0}
    assert (
        revocations.run(session, broker, cipher=deps.cipher.of(app)).revoked == 0
    )  # nothing twice


def test_rate_limits_failures_and_gone_authorizations(app, session, org):
    revocations.queue(
        session, ["acc_a", "acc_b", "acc_c", "acc_d"], organisation_id=org.id, reason="test"
    )
    session.commit()
    broker = RecordingBroker(
        {
            "acc_a": broker_errors.NotFound("gone"),
            "acc_b": broker_errors.Unavailable("503"),
            "acc_c": broker_errors.RateLimited("429", retry_after=7),
        }
    )
    first = revocations.run(session, broker)
    # Already gone counts as done; a 503 waits its turn; a 429 stops the run and says when.
    assert first.retry_in == 7 and first.revoked == 1 and first.failed == 1
    left = {r.sub: r for r in session.scalars(select(PendingRevocation))}
    assert set(left) == {"acc_b", "acc_c", "acc_d"}
    assert left["acc_b"].attempts == 1 and left["acc_b"].last_error == "Unavailable"
    assert left["acc_b"].next_attempt_at > utcnow()

    second = revocations.run(session, broker)  # acc_b is not due yet
    assert second.retry_in is None and broker.revoked == ["acc_c", "acc_d"]
    later = revocations.run(session, broker, now=utcnow() + dt.timedelta(minutes=5))
    assert later.revoked == 1 and broker.revoked[-1] == "acc_b"
    assert session.scalar(select(func.count(PendingRevocation.id))) == 0


def test_queueing_twice_keeps_one_entry(session, org):
    assert (
        revocations.queue(
            session, ["acc_x", "acc_x", None, ""], organisation_id=org.id, reason="test"
        )
        == 1
    )
    session.commit()
    assert revocations.queue(session, ["acc_x"], organisation_id=org.id, reason="test") == 0
    session.commit()
    assert session.scalar(select(func.count(PendingRevocation.id))) == 1


def test_an_account_authorized_again_is_not_revoked_by_an_older_request(
    app, client, auth, session, sandbox, org
):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    sub = link_for(session, riley).sub
    # A bulk disconnect queued this account's revocation, and the job has not run yet...
    revocations.queue(session, [sub], organisation_id=org.id, reason="test")
    session.commit()
    # ...when the person links the same account again.
    connect_as(client, auth, sandbox, riley.email)
    assert session.scalar(select(PendingRevocation)) is None
    revocations.run(session, deps.broker.of(app))
    token = creds_for(app, session, riley).access_token
    assert (
        requests.get(
            sandbox.url + "/v1/account", timeout=5, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )


def test_the_job_keeps_what_it_could_not_revoke_for_the_next_run(app, session, org, monkeypatch):
    revocations.queue(session, ["acc_1", "acc_2"], organisation_id=org.id, reason="test")
    session.commit()
    broker = RecordingBroker({"acc_1": broker_errors.Unavailable("down")})
    monkeypatch.setitem(app.extensions, deps.broker.key, broker)
    from webapp.jobs.revocations import run as revoke_queued

    with app.app_context():
        assert revoke_queued() == 1
    assert [r.sub for r in session.scalars(select(PendingRevocation))] == ["acc_1"]


def test_a_refusal_needs_attention_and_is_never_retried_on_its_own(app, session, org):
    """The aggregator refusing a revocation (4xx) is not retried: it is audited and shown to the
    IT admin, who may try again or confirm it was revoked elsewhere."""
    revocations.queue(session, ["ser_x", "res_y", "acc_z"], organisation_id=org.id, reason="test")
    session.commit()
    broker = RecordingBroker(
        sticky={
            "ser_x": broker_errors.Invalid("no", status=400),
            "res_y": broker_errors.Forbidden(status=403),
        }
    )
    report = revocations.run(session, broker)
    assert (report.revoked, report.refused) == (1, 2) and broker.revoked == ["acc_z"]
    stuck = sorted(
        revocations.needing_attention(session, org.id), key=lambda r: r.sub, reverse=True
    )
    assert [(r.sub, r.last_error) for r in stuck] == [("ser_x", "Invalid"), ("res_y", "Forbidden")]
    refused = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "calendar.revoke_refused")
    ).all()
    assert sorted(e.detail["kind"] for e in refused) == ["room", "service account"]
    assert all(e.outcome == "failure" and e.organisation_id == org.id for e in refused)
    calls = broker.calls
    later = utcnow() + dt.timedelta(days=3)
    assert revocations.run(session, broker, now=later).revoked == 0 and broker.calls == calls

    admin = make_user(session, org, Role.ADMIN, email="it@revoke.example")
    actor = Actor(admin.id, admin.email, org.id, Role.ADMIN)
    held = HeldJobs()
    revocations.try_again(
        session, actor, stuck[0].id, jobs=held
    )  # still refused: back to attention
    assert held.queued == [("revocations.run", ())]  # the service queues the run itself
    revocations.run(session, broker)
    assert broker.calls == calls + 1
    assert {r.sub for r in revocations.needing_attention(session, org.id)} == {"ser_x", "res_y"}
    revocations.resolved_elsewhere(session, actor, stuck[1].id)
    assert [r.sub for r in session.scalars(select(PendingRevocation))] == ["ser_x"]
    assert "calendar.revoke_resolved_elsewhere" in {
        e.action for e in session.scalars(select(AuditEntry))
    }


def test_an_outage_is_retried_a_bounded_number_of_times(app, session, org):
    revocations.queue(session, ["acc_down"], organisation_id=org.id, reason="test")
    session.commit()
    broker = RecordingBroker(sticky={"acc_down": broker_errors.Unavailable("503")})
    moment = utcnow()
    for _ in range(revocations.MAX_ATTEMPTS):
        moment += revocations.MAX_BACKOFF + dt.timedelta(minutes=1)
        revocations.run(session, broker, now=moment)
    assert broker.calls == revocations.MAX_ATTEMPTS
    [stuck] = revocations.needing_attention(session, org.id)
    assert stuck.attempts == revocations.MAX_ATTEMPTS and stuck.last_error == "Unavailable"
    assert (
        session.scalar(
            select(AuditEntry).where(AuditEntry.action == "calendar.revoke_gave_up")
        ).detail["kind"]
        == "calendar account"
    )
    revocations.run(session, broker, now=moment + dt.timedelta(days=1))
    assert broker.calls == revocations.MAX_ATTEMPTS  # never an endless retry


def test_only_the_organisations_own_admin_acts_on_its_stuck_revocations(app, session, org):
    from tests.factories import make_org
    from webapp.services.errors import Forbidden, NotFound

    other = make_org(session, name="Other Org")
    revocations.queue(session, ["ser_mine"], organisation_id=org.id, reason="test")
    session.commit()
    revocations.run(session, RecordingBroker(sticky={"ser_mine": broker_errors.Invalid("no")}))
    [stuck] = revocations.needing_attention(session, org.id)
    assert revocations.needing_attention(session, other.id) == []
    outsider = make_user(session, other, Role.ADMIN, email="it@other.example")
    recruiter = make_user(session, org, Role.RECRUITER, email="rec@revoke.example")
    held = HeldJobs()
    with pytest.raises(NotFound):
        revocations.try_again(
            session, Actor(outsider.id, outsider.email, other.id, Role.ADMIN), stuck.id, jobs=held
        )
    assert held.queued == []  # refused: nothing queued
    with pytest.raises(Forbidden):
        revocations.resolved_elsewhere(
            session, Actor(recruiter.id, recruiter.email, org.id, Role.RECRUITER), stuck.id
        )
    assert session.get(PendingRevocation, stuck.id).refused_at is not None


def test_each_revocation_counts_against_its_organisations_background_share(
    app, session, sandbox, org, monkeypatch
):
    """Through the worker's wrapper and the real broker: every revoke call is background work
    of the organisation the authorization belonged to (its fair share of the lane), whoever
    queued the job; a row whose organisation is gone counts against nobody's share."""
    from broker.ratelimit import BACKGROUND
    from tests.factories import make_org

    other = make_org(session, name="Neighbour Revocations Ltd")
    revocations.queue(session, ["acc_org_1", "acc_org_2"], organisation_id=org.id, reason="t")
    revocations.queue(session, ["acc_other_1"], organisation_id=other.id, reason="t")
    revocations.queue(session, ["acc_orphan"], organisation_id=None, reason="t")
    session.commit()
    limiter = deps.broker.of(app).rate_limiter
    calls: list[tuple[str, str | None]] = []
    original = limiter.acquire
    monkeypatch.setattr(
        limiter,
        "acquire",
        lambda lane="interactive", tenant=None: (
            calls.append((lane, tenant)),
            original(lane, tenant),
        )[1],
    )
    deps.jobs.of(app)._tasks["revocations.run"].call_local()
    assert sorted(calls, key=str) == sorted(
        [
            (BACKGROUND, str(org.id)),
            (BACKGROUND, str(org.id)),
            (BACKGROUND, str(other.id)),
            (BACKGROUND, None),
        ],
        key=str,
    )
    assert session.scalar(select(func.count(PendingRevocation.id))) == 0
