"""An Enterprise Connect callback is answered without calling the aggregator: its state is
checked and used once, its code queued, sealed, for the ``enterprise.redeem_code`` job, which
waits for the organisation's background budget in a job worker (never in a web thread) and
links the mailbox. Codes sealed for an earlier attempt, too old, or whose job was lost never
link anything; each failure is recorded on the mailbox with its reason."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from broker.ratelimit import BACKGROUND
from models import MailboxRequest, MailboxStatus, ProfileLink, utcnow
from tests.webapp.test_enterprise import (
    FABRIKAM,
    PAGE,
    actions,
    connect_domain,
    request_list,
    rows,
    token_calls,
    users_on,
)
from webapp import deps
from webapp.jobs import enterprise as enterprise_jobs
from webapp.services.enterprise import mailboxes, redemption, sending


@pytest.fixture
def held(app, monkeypatch):
    """The queue runs every job at once except the code redemptions, which are kept here (as
    if the job worker had not picked them up yet)."""
    jobs = deps.jobs.of(app)
    real, kept = jobs.enqueue, []

    def enqueue(name, *args):
        if name == "enterprise.redeem_code":
            kept.append(args)
            return None
        return real(name, *args)

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    return kept


def _redeem(app, args) -> str:
    with app.app_context():
        return enterprise_jobs.redeem_code(*args)


def test_a_callback_is_answered_without_calling_the_aggregator_and_its_job_links(
    app, admin_client, session, sandbox, org, held
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    calls = token_calls(sandbox)
    delivered = sandbox.deliver()
    assert [d["status"] for d in delivered] == ["200"] * 3
    assert token_calls(sandbox) == calls  # nothing redeemed inside the web request
    state = rows(session, link)
    assert all(r.status is MailboxStatus.PENDING and r.state_used_at for r in state.values())
    # The pending codes count on the mailbox page as in progress, not linked.
    assert mailboxes.counts(session, link.id)["pending"] == 3
    # The queued job carries the code sealed: not readable in the queue's store.
    assert len(held) == 3
    for d in delivered:
        assert d["body"]["authorization"]["code"].encode() not in pickle.dumps(held)
    assert [_redeem(app, args) for args in held] == ["linked"] * 3
    assert token_calls(sandbox) == calls + 3
    assert {r.status for r in rows(session, link).values()} == {MailboxStatus.LINKED}
    assert actions(session).count("ec.mailbox_linked") == 3
    # A job run twice (a worker restart) redeems nothing twice.
    assert _redeem(app, held[0]) == "ignored"
    assert token_calls(sandbox) == calls + 3
    assert session.scalar(select(func.count(ProfileLink.id))) == 3


def test_a_code_sealed_for_another_request_or_attempt_is_never_redeemed(
    app, admin_client, session, sandbox, org, held
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    request_list(auth, link, FABRIKAM[:2])
    sandbox.deliver()
    calls = token_calls(sandbox)
    (first_id, key_id, blob), (second_id, _k, other_blob) = held
    # Another request's sealed code, presented for this one, does not open.
    assert _redeem(app, (first_id, key_id, other_blob)) == "ignored"
    # The request was sent again meanwhile (a new attempt, a new state): the old code is void.
    row = session.get(MailboxRequest, first_id)
    row.state_hash = "0" * 64
    session.commit()
    assert _redeem(app, (first_id, key_id, blob)) == "ignored"
    assert token_calls(sandbox) == calls
    # Unlinked before its job ran: nothing is redeemed, the request stays unlinked.
    row = session.get(MailboxRequest, second_id)
    auth.post(
        f"{PAGE}mailboxes/{row.id}/unlink",
        {"confirm": "yes"},
        form_page=f"{PAGE}mailboxes/{row.id}/unlink",
    )
    assert _redeem(app, held[1]) == "ignored"
    assert token_calls(sandbox) == calls
    session.expire_all()
    assert session.get(MailboxRequest, second_id).status is MailboxStatus.UNLINKED
    assert session.scalar(select(ProfileLink)) is None


def test_a_code_not_redeemed_in_time_fails_its_mailbox_with_a_reason(
    app, admin_client, session, sandbox, org, held
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    sandbox.deliver()
    calls = token_calls(sandbox)
    late, lost, fresh = (session.get(MailboxRequest, args[0]) for args in held)
    # One job ran too late; another was lost with its worker; the third is still to run.
    late.state_used_at = utcnow() - redemption.CODE_PATIENCE - timedelta(seconds=1)
    lost.state_used_at = utcnow() - 2 * redemption.CODE_PATIENCE - timedelta(seconds=1)
    session.commit()
    assert _redeem(app, held[0]) == "failed"
    assert token_calls(sandbox) == calls  # a code that old is not tried
    with app.app_context(), deps.database.of(app).sessions() as db:
        # the lost one no longer holds the domain's sender back, the fresh one still does
        assert sending.awaited(db, link.id) == 1
        enterprise_jobs.resume_stalled()  # the every-minute job notices the lost one
    session.expire_all()
    for row in (late, lost):
        row = session.get(MailboxRequest, row.id)
        assert row.status is MailboxStatus.FAILED and row.error_key == "code_not_redeemed"
    assert session.get(MailboxRequest, fresh.id).status is MailboxStatus.PENDING
    assert actions(session).count("ec.mailbox_failed") == 2
    page = client.get(f"{PAGE}?status=failed").get_data(as_text=True)
    assert "lapsed before it could be redeemed" in page
    assert _redeem(app, held[2]) == "linked"


def test_a_redemption_without_budget_gives_its_worker_back(
    app, admin_client, session, sandbox, org, held, monkeypatch
):
    """With no budget in the organisation's share within a moment, the job queues itself again
    for when there is (other jobs need the worker) instead of waiting in it."""
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    sandbox.deliver()
    jobs = deps.jobs.of(app)
    again: list[tuple] = []
    monkeypatch.setattr(jobs.huey, "immediate", False)  # as in production: a worker runs it
    monkeypatch.setattr(jobs, "enqueue_in", lambda delay, name, *a: again.append((delay, name, a)))
    monkeypatch.setattr(enterprise_jobs, "REDEEM_PATIENCE", 0.01)
    with app.app_context():
        limiter = deps.broker().rate_limiter
    while limiter.try_acquire(BACKGROUND) == 0:  # the background lane's second is spent
        pass
    calls = token_calls(sandbox)
    assert _redeem(app, held[0]) == "deferred"
    assert token_calls(sandbox) == calls
    assert len(again) == 1 and again[0][1:] == ("enterprise.redeem_code", held[0])
    assert 0 < again[0][0] <= 1.1  # when the lane has room again
    assert rows(session, link)[FABRIKAM[0]].status is MailboxStatus.PENDING
