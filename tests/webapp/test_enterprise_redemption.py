"""An Enterprise Connect callback is answered without calling the aggregator: its state is
checked and used once, its code queued, sealed, for the ``enterprise.redeem_code`` job, which
waits for the organisation's background budget in a job worker (never in a web thread) and
links the mailbox. Codes sealed for an earlier attempt, too old, or whose job was lost never
link anything; each failure is recorded on the mailbox with its reason."""

from __future__ import annotations

import pickle
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from broker.ratelimit import BACKGROUND
from models import (
    AuditEntry,
    LinkMode,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    PendingRevocation,
    ProfileLink,
    Role,
    utcnow,
)
from tests.conftest import AuthActions, refresh_status
from tests.factories import make_user
from tests.webapp.test_enterprise import (
    FABRIKAM,
    PAGE,
    actions,
    connect_domain,
    follow,
    request_list,
    rows,
    token_calls,
    users_on,
)
from webapp import deps
from webapp.jobs import enterprise as enterprise_jobs
from webapp.services import credentials, revocations
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


# --- revocations after the code is spent ------------------------------------------------------


def _lane_spent_after_exchange(app, monkeypatch) -> list:
    """The job runs as in production (a worker, a moment's patience) and the background lane
    fills up just after the code exchange: every call after it finds no budget (NotSent).
    Returns the credentials each exchange gave."""
    jobs = deps.jobs.of(app)
    monkeypatch.setattr(jobs.huey, "immediate", False)
    monkeypatch.setattr(jobs, "enqueue_in", lambda *a: None)
    monkeypatch.setattr(enterprise_jobs, "REDEEM_PATIENCE", 0.01)
    with app.app_context():
        broker = deps.broker()
    real, given = broker.exchange_code, []

    def exchange(*args, **kwargs):
        creds = real(*args, **kwargs)
        given.append(creds)
        while broker.rate_limiter.try_acquire(BACKGROUND) == 0:
            pass
        return creds

    monkeypatch.setattr(broker, "exchange_code", exchange)
    return given


def _redeem_when_sent(app, args) -> str:
    """Run the job again while it defers (the exchange itself found no budget yet)."""
    for _ in range(100):
        outcome = _redeem(app, args)
        if outcome != "deferred":
            return outcome
        time.sleep(0.1)
    raise AssertionError("the code was never exchanged")


def _queued(app, session, sub: str) -> str | None:
    """The refresh token the revocation queue holds for ``sub`` (None: queued by sub);
    AssertionError if nothing is queued."""
    session.expire_all()
    row = session.scalar(select(PendingRevocation).where(PendingRevocation.sub == sub))
    assert row is not None, "the authorization is neither revoked nor queued for revocation"
    assert row.refused_at is None
    return revocations._token(row, deps.cipher.of(app))


def _work_off_queue(app, session):
    with app.app_context():
        broker, cipher = deps.broker(), deps.cipher()
    time.sleep(1.1)  # the spent second of the background lane is over
    return revocations.run(session, broker, cipher=cipher)


def test_a_personal_link_superseded_without_budget_is_queued_for_revocation(
    app, admin_client, session, sandbox, org, held, monkeypatch
):
    """The person's own Business Connect link, replaced by the organisation's link, is revoked
    at the aggregator even when the lane is full after the code exchange: queued (with its
    token) for the revocations job, which revokes it."""
    client, auth = admin_client
    org.business_connect_enabled = True
    session.commit()
    user = make_user(session, org, Role.RECRUITER, email=FABRIKAM[0])
    user_client = app.test_client()
    user_auth = AuthActions(user_client)
    user_auth.login(user.email)
    start = user_auth.post(
        "/profile/calendar/connect", {"provider": "google"}, form_page="/profile/calendar/"
    )
    follow(
        user_client,
        sandbox.consent(start.headers["Location"], "jamie.rivera@gmail.example").redirect_url,
    )
    personal = session.scalar(select(ProfileLink).where(ProfileLink.user_id == user.id))
    assert personal.mode is LinkMode.BUSINESS
    old = credentials.load_credentials(personal, deps.cipher.of(app))
    assert refresh_status(sandbox, old.refresh_token) == 200  # live at the aggregator

    link = connect_domain(client, auth, session, sandbox)
    request_list(auth, link, FABRIKAM[:1])
    sandbox.deliver()
    enqueued: list[str] = []
    jobs = deps.jobs.of(app)
    keep = jobs.enqueue
    monkeypatch.setattr(jobs, "enqueue", lambda name, *a: (enqueued.append(name), keep(name, *a)))
    _lane_spent_after_exchange(app, monkeypatch)
    assert _redeem_when_sent(app, held[0]) == "linked"

    session.expire_all()
    personal = session.get(ProfileLink, personal.id)
    assert personal.status is LinkStatus.DISCONNECTED and not personal.has_tokens
    # Not revoked now (no budget): queued with its refresh token, and the job asked for.
    assert _queued(app, session, personal.sub) == old.refresh_token
    assert "revocations.run" in enqueued
    superseded = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "calendar.superseded")
    )
    assert superseded.detail["revoked_at_aggregator"] is False
    assert _work_off_queue(app, session).revoked == 1
    assert refresh_status(sandbox, old.refresh_token) == 400  # gone at the aggregator
    assert session.scalar(select(func.count(PendingRevocation.id))) == 0


def test_an_account_of_another_person_is_let_go_of_even_without_budget(
    app, admin_client, session, sandbox, org, held, monkeypatch
):
    """The mailbox's account is already another person's link: the authorization the exchange
    just gave is revoked by its token (never by sub: the other person's link stays), queued
    when the lane is full after the exchange."""
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    holder = make_user(session, org, Role.RECRUITER, email="holder@fabrikam.example")
    request_list(auth, link, FABRIKAM[:1])
    sandbox.deliver()
    given = _lane_spent_after_exchange(app, monkeypatch)
    with app.app_context():
        broker = deps.broker()
    exchange = broker.exchange_code

    def taken_meanwhile(*args, **kwargs):
        creds = exchange(*args, **kwargs)
        # Another person of the organisation holds this account's link.
        session.add(
            ProfileLink(
                organisation_id=org.id,
                user_id=holder.id,
                mode=LinkMode.BUSINESS,
                sub=creds.sub,
                status=LinkStatus.ACTIVE,
            )
        )
        session.commit()
        return creds

    monkeypatch.setattr(broker, "exchange_code", taken_meanwhile)
    assert _redeem_when_sent(app, held[0]) == "failed"
    (fresh,) = given
    row = rows(session, link)[FABRIKAM[0]]
    assert row.error_key == "linked_to_another_user"
    assert refresh_status(sandbox, fresh.refresh_token) == 200  # not revoked yet: no budget
    assert _queued(app, session, fresh.sub) == fresh.refresh_token  # by token, not by sub
    assert _work_off_queue(app, session).revoked == 1
    assert refresh_status(sandbox, fresh.refresh_token) == 400
    holder_link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == holder.id))
    assert holder_link.status is LinkStatus.ACTIVE
