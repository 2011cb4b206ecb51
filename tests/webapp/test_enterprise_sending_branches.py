"""Every branch of Enterprise Connect's batch sending (mailbox requests go out in batches of at
most 50; the aggregator may refuse, throttle or fail), one test each, against the in-memory
FakeBroker (tests/fakes.py). The end-to-end runs against the sandbox are in test_enterprise.py."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import select, update

from broker import errors as broker_errors
from models import (
    AuditEntry,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ServiceAccountLink,
    utcnow,
)
from tests.fakes import credentials
from webapp import security
from webapp.services.credentials import load_credentials, store_credentials
from webapp.services.enterprise import sending

DOMAIN = "fabrikam.example"


@pytest.fixture
def fabrikam(session, org, cipher):
    """``org``'s Fabrikam domain, linked through a service account with tokens for an hour."""
    return _domain(session, org, cipher)


def _domain(session, org, cipher, *, hours: float = 1) -> ServiceAccountLink:
    sub = "ser_" + secrets.token_hex(6)
    link = ServiceAccountLink(
        organisation_id=org.id,
        provider="exchange",
        domain=DOMAIN,
        sub=sub,
        account_email=f"svc-calendar@{DOMAIN}",
        status=LinkStatus.ACTIVE,
    )
    session.add(link)
    session.flush()
    store_credentials(link, credentials(sub, hours=hours), cipher)
    session.commit()
    return link


def _queue(session, link, count: int, *, kind=MailboxKind.MAILBOX) -> list[int]:
    rows = [
        MailboxRequest(
            service_account_link_id=link.id,
            organisation_id=link.organisation_id,
            email=f"person{n:03d}@{DOMAIN}",
            kind=kind,
            status=MailboxStatus.QUEUED,
        )
        for n in range(count)
    ]
    session.add_all(rows)
    session.flush()
    for row in rows:
        row.callback_url = f"https://rendezvous.example/hooks/ec/{row.id}"
    session.commit()
    return [r.id for r in rows]


def _rows(session, link) -> list[MailboxRequest]:
    session.expire_all()
    return list(
        session.scalars(
            select(MailboxRequest)
            .where(MailboxRequest.service_account_link_id == link.id)
            .order_by(MailboxRequest.id)
        )
    )


def _statuses(session, link) -> dict[MailboxStatus, int]:
    found: dict[MailboxStatus, int] = {}
    for row in _rows(session, link):
        found[row.status] = found.get(row.status, 0) + 1
    return found


def _send(session, fake, cipher, link, **kw) -> sending.SendReport:
    return sending.send_batches(session, fake, cipher, link.id, **kw)


def test_requests_go_out_in_batches_of_at_most_fifty(session, fabrikam, fake_broker, cipher):
    _queue(session, fabrikam, 120)
    report = _send(session, fake_broker, cipher, fabrikam)
    assert (report.batches, report.sent, report.failed, report.stopped) == (3, 120, 0, None)
    assert [len(b) for b in fake_broker.batches] == [50, 50, 20]
    rows = _rows(session, fabrikam)
    sent = [r for b in fake_broker.batches for r in b]
    assert [r.email for r in sent] == [r.email for r in rows]  # in queue order, each once
    for request, row in zip(sent, rows, strict=True):
        # Each request carries its own state; only its hash is stored, to check the callback.
        assert row.state_hash == security.token_hash(request.state)
        assert request.callback_url == row.callback_url
        assert request.scope == sending.MAILBOX_SCOPE
        assert (row.status, row.claim, row.attempts) == (MailboxStatus.PENDING, None, 1)
        assert row.sent_at is not None
    assert _send(session, fake_broker, cipher, fabrikam).batches == 0, "nothing is sent twice"


def test_a_room_asks_only_for_free_busy(session, fabrikam, fake_broker, cipher):
    _queue(session, fabrikam, 1, kind=MailboxKind.ROOM)
    _send(session, fake_broker, cipher, fabrikam)
    [[request]] = fake_broker.batches
    assert request.scope == sending.ROOM_SCOPE == "read_free_busy"


def test_max_batches_leaves_the_rest_queued(session, fabrikam, fake_broker, cipher):
    _queue(session, fabrikam, 120)
    report = _send(session, fake_broker, cipher, fabrikam, max_batches=1)
    assert (report.batches, report.sent) == (1, 50)
    assert _statuses(session, fabrikam) == {MailboxStatus.PENDING: 50, MailboxStatus.QUEUED: 70}


def test_an_inactive_domain_sends_nothing(session, fabrikam, fake_broker, cipher):
    _queue(session, fabrikam, 3)
    fabrikam.status = LinkStatus.DISCONNECTED
    session.commit()
    report = _send(session, fake_broker, cipher, fabrikam)
    assert report.stopped == "service account not active" and fake_broker.calls == []
    assert _statuses(session, fabrikam) == {MailboxStatus.QUEUED: 3}


def test_a_throttled_batch_goes_back_to_the_queue_with_the_aggregators_wait(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 60)
    fake_broker.fail(
        "authorize_service_account_users",
        broker_errors.RateLimited("slow down", retry_after=7, status=429),
    )
    report = _send(session, fake_broker, cipher, fabrikam)
    assert (report.batches, report.sent, report.failed, report.retry_in) == (0, 0, 0, 7.0)
    rows = _rows(session, fabrikam)
    assert {(r.status, r.claim, r.sent_at) for r in rows} == {(MailboxStatus.QUEUED, None, None)}
    assert [r.attempts for r in rows] == [1] * 50 + [0] * 10
    again = _send(session, fake_broker, cipher, fabrikam)
    assert (again.batches, again.sent, again.retry_in) == (2, 60, None)


def test_without_a_wait_the_back_off_grows_with_the_batches_sent(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 120)
    # The first two batches go out; the third finds the aggregator unavailable.
    fake_broker.fail(
        "authorize_service_account_users", None, None, broker_errors.Unavailable(status=503)
    )
    report = _send(session, fake_broker, cipher, fabrikam)
    assert (report.batches, report.sent, report.retry_in) == (2, 100, 2.0**3)
    assert _statuses(session, fabrikam) == {MailboxStatus.PENDING: 100, MailboxStatus.QUEUED: 20}


def test_a_mailbox_the_aggregator_never_takes_fails_after_the_last_attempt(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 2)
    for attempt in range(1, sending.MAX_ATTEMPTS + 1):
        fake_broker.fail("authorize_service_account_users", broker_errors.Unavailable(status=503))
        report = _send(session, fake_broker, cipher, fabrikam)
        assert report.retry_in == 2.0, attempt
        failed = attempt == sending.MAX_ATTEMPTS
        assert report.failed == (2 if failed else 0)
    rows = _rows(session, fabrikam)
    assert {(r.status, r.error_key, r.attempts) for r in rows} == {
        (MailboxStatus.FAILED, "aggregator_unavailable", sending.MAX_ATTEMPTS)
    }
    assert all(r.error_text and r.completed_at for r in rows)


def test_a_refused_authorization_stops_and_flags_the_domain(session, fabrikam, fake_broker, cipher):
    _queue(session, fabrikam, 3)
    fake_broker.fail("authorize_service_account_users", broker_errors.NeedsReauth(status=401))
    report = _send(session, fake_broker, cipher, fabrikam)
    assert report.stopped == "service account needs attention"
    session.refresh(fabrikam)
    assert fabrikam.status is LinkStatus.NEEDS_ATTENTION
    assert _statuses(session, fabrikam) == {MailboxStatus.QUEUED: 3}  # sent once it is fixed
    assert _send(session, fake_broker, cipher, fabrikam).stopped == "service account not active"


def test_a_domain_without_usable_tokens_stops_without_a_request(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 3)
    fabrikam.access_token = fabrikam.refresh_token = None
    session.commit()
    report = _send(session, fake_broker, cipher, fabrikam)
    assert report.stopped == "service account needs attention"
    assert fake_broker.calls == []
    assert _statuses(session, fabrikam) == {MailboxStatus.QUEUED: 3}


def test_a_refused_batch_fails_its_mailboxes_and_the_next_batch_still_goes(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 70)
    fake_broker.fail(
        "authorize_service_account_users", broker_errors.Invalid("bad request", status=422)
    )
    report = _send(session, fake_broker, cipher, fabrikam)
    assert (report.batches, report.sent, report.failed, report.stopped) == (1, 20, 50, None)
    rows = _rows(session, fabrikam)
    assert {(r.status, r.error_key) for r in rows[:50]} == {
        (MailboxStatus.FAILED, "request_refused")
    }
    assert {r.status for r in rows[50:]} == {MailboxStatus.PENDING}
    [audit] = session.scalars(select(AuditEntry).where(AuditEntry.action == "ec.batch_refused"))
    assert audit.detail["mailboxes"] == 50 and audit.outcome == "failure"


def test_claims_of_a_worker_that_died_before_sending_are_taken_over(
    session, fabrikam, fake_broker, cipher
):
    _queue(session, fabrikam, 5)

    def crash(batch_number):
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        _send(session, fake_broker, cipher, fabrikam, before_send=crash)
    assert fake_broker.batches == [] and _statuses(session, fabrikam) == {MailboxStatus.PENDING: 5}
    # Within the lease another worker leaves them alone; after it, they are sent once.
    assert _send(session, fake_broker, cipher, fabrikam).sent == 0
    session.execute(update(MailboxRequest).values(updated_at=utcnow() - dt.timedelta(minutes=10)))
    session.commit()
    report = _send(session, fake_broker, cipher, fabrikam, lease=dt.timedelta(minutes=2))
    assert (report.batches, report.sent) == (1, 5)
    assert [len(b) for b in fake_broker.batches] == [5]
    assert {r.attempts for r in _rows(session, fabrikam)} == {2}


def test_expiring_service_account_tokens_are_refreshed_once_and_stored(
    session, org, fake_broker, cipher
):
    link = _domain(session, org, cipher, hours=0)
    before = load_credentials(link, cipher)
    _queue(session, link, 60)
    report = _send(session, fake_broker, cipher, link)
    assert report.sent == 60 and fake_broker.called("refresh") == 1
    session.refresh(link)
    stored = load_credentials(link, cipher)
    assert stored.access_token != before.access_token
    assert stored.expires_at > utcnow() + dt.timedelta(minutes=30)
