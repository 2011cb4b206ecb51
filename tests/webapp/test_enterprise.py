"""Enterprise Connect end to end against the sandbox aggregator, over real HTTP: connecting each
provider's domain, linking mailboxes in bulk, signed callbacks (forged, replayed), retry, 429s,
a crash between and inside batches, unlink, disconnect and reset."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from broker.sandbox.seed import fabrikam_people
from models import (
    AuditEntry,
    LinkMode,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    ServiceAccountLink,
    utcnow,
)
from tests.conftest import SANDBOX_CLIENT_SECRET, AuthActions
from tests.factories import make_org, make_user
from webapp import deps
from webapp.jobs import enterprise as enterprise_jobs
from webapp.services import Actor, credentials
from webapp.services.enterprise import domains, mailboxes, sending
from webapp.services.errors import Forbidden

PAGE = "/admin/calendar/enterprise/"
ADMINS = {
    "exchange": ("svc-calendar@fabrikam.example", "fabrikam.example"),
    "office365": ("it.admin@contoso.example", "contoso.example"),
    "google": ("alex.kim@northwind.example", "northwind.example"),
}
#: The 30 ordinary Fabrikam mailboxes of the sandbox (inside the impersonation scope).
FABRIKAM = [
    p[0]
    for p in fabrikam_people()
    if p[2] == "person"
    and "." in p[0].split("@")[0]
    and p[0]
    not in {
        "ceo.office@fabrikam.example",
        "legal.hold@fabrikam.example",
        "board.secretary@fabrikam.example",
    }
]


def follow(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def connect_domain(client, auth, session, sandbox, provider="exchange") -> ServiceAccountLink:
    response = auth.post(PAGE + "connect", {"provider": provider}, form_page=PAGE)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "/enterprise_connect/oauth/authorize?" in response.headers["Location"]
    back = follow(
        client, sandbox.consent(response.headers["Location"], ADMINS[provider][0]).redirect_url
    )
    assert back.status_code == 302, back.get_data(as_text=True)
    session.expire_all()
    return session.scalar(
        select(ServiceAccountLink).where(ServiceAccountLink.domain == ADMINS[provider][1])
    )


def users_on(session, org, emails):
    return [make_user(session, org, Role.RECRUITER, email=e) for e in emails]


def request_list(auth, link, emails):
    return auth.post(
        f"{PAGE}{link.id}/link",
        {"mode": "list", "pasted": "\n".join(emails)},
        form_page=f"{PAGE}{link.id}/link",
        follow_redirects=True,
    )


def rows(session, link=None):
    session.expire_all()
    stmt = select(MailboxRequest).order_by(MailboxRequest.email)
    if link is not None:
        stmt = stmt.where(MailboxRequest.service_account_link_id == link.id)
    return {r.email: r for r in session.scalars(stmt)}


def batch_posts(sandbox) -> int:
    return sandbox.stats()["requests"].get("POST /v1/service_account_authorizations", 0)


def token_calls(sandbox) -> int:
    return sandbox.stats()["requests"].get("POST /oauth/token", 0)


def queued_callbacks(sandbox) -> Counter:
    """Callbacks the aggregator has queued, per callback URL (one URL per mailbox request)."""
    return Counter(
        i["url"] for i in sandbox.call("GET", "/outbox")["queued"] if i["kind"] == "callback"
    )


def actions(session):
    session.expire_all()
    return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


# --- connecting a domain -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["exchange", "office365", "google"])
def test_admin_connects_the_domain_of_each_provider(app, admin_client, session, sandbox, provider):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox, provider)
    email, domain = ADMINS[provider]
    assert link.status is LinkStatus.ACTIVE and link.provider == provider
    assert link.domain == domain and link.account_email == email and link.sub.startswith("ser_")
    assert "service_account/accounts/manage" in link.scope
    assert "read_free_busy" in link.delegated_scope
    assert link.key_id == "k1" and link.has_tokens
    creds = credentials.load_credentials(link, deps.cipher.of(app))
    assert creds.access_token.encode() not in link.access_token  # encrypted, bound to its row

    page = client.get(PAGE).get_data(as_text=True)
    label = domains.PROVIDERS[provider]
    assert f"{label}: {domain}" in page and email in page and "Connected since" in page
    assert "Disconnect domain" in page and "service_account/accounts/manage" in page
    rooms = {
        "exchange": "Spree (8 seats)",
        "office365": "Contoso Boardroom",
        "google": "Aurora (6 seats)",
    }[provider]
    assert rooms in page  # rooms the service account sees, read on demand
    assert "ec.connected" in actions(session)


def test_the_connect_redirect_asks_for_service_account_scopes_and_a_delegated_scope(
    admin_client, sandbox
):
    client, auth = admin_client
    response = auth.post(PAGE + "connect", {"provider": "google"}, form_page=PAGE)
    from urllib.parse import parse_qs

    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert "service_account/accounts/manage" in query["scope"][0].split()
    assert set(query["delegated_scope"][0].split()) >= {"read_free_busy", "create_event"}
    assert len(query["state"][0]) >= 43


def test_a_replayed_connect_redirect_is_refused(admin_client, session, sandbox):
    client, auth = admin_client
    response = auth.post(PAGE + "connect", {"provider": "exchange"}, form_page=PAGE)
    redirect = sandbox.consent(response.headers["Location"], ADMINS["exchange"][0]).redirect_url
    assert follow(client, redirect).status_code == 302
    calls = token_calls(sandbox)
    assert follow(client, redirect).status_code == 400
    assert token_calls(sandbox) == calls
    assert session.scalar(select(func.count(ServiceAccountLink.id))) == 1


def test_declined_admin_consent_stores_nothing(admin_client, session, sandbox):
    client, auth = admin_client
    response = auth.post(PAGE + "connect", {"provider": "office365"}, form_page=PAGE)
    follow(
        client,
        sandbox.consent(
            response.headers["Location"], ADMINS["office365"][0], decision="deny"
        ).redirect_url,
    )
    assert "consent was declined" in client.get(PAGE).get_data(as_text=True)
    assert session.scalar(select(ServiceAccountLink)) is None


def test_only_it_admins_may_start(app, session, org, sandbox):
    recruiter = make_user(session, org, Role.RECRUITER)
    actor = Actor(recruiter.id, recruiter.email, org.id, Role.RECRUITER)
    with pytest.raises(Forbidden):
        domains.begin(
            session,
            deps.broker.of(app),
            actor,
            provider="google",
            session_nonce="n",
            redirect_uri="http://x/cb",
        )
    client = app.test_client()
    AuthActions(client).login(recruiter.email)
    assert client.get(PAGE).status_code == 403


def test_office365_admin_consent_link_is_built_from_tenant_and_app_id(admin_client):
    client, _ = admin_client
    app_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    page = client.get(PAGE + f"?tenant=contoso.onmicrosoft.com&app_id={app_id}").get_data(
        as_text=True
    )
    assert (
        f"https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id={app_id}"
    ) in page
    bad = client.get(PAGE + "?tenant=not a tenant&app_id=x").get_data(as_text=True)
    assert "Enter a tenant id" in bad and "adminconsent" not in bad


# --- linking mailboxes -------------------------------------------------------------------------


def test_chosen_mailboxes_are_requested_and_linked_and_bad_addresses_rejected(
    app, admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    people = users_on(session, org, FABRIKAM[:4] + ["ceo.office@fabrikam.example"])
    make_user(session, org, Role.RECRUITER, email="sam.patel@contoso.example")
    pasted = [
        *FABRIKAM[:4],
        "ceo.office@fabrikam.example",
        FABRIKAM[0].upper(),
        "not-an-email",
        "sam.patel@contoso.example",
        "nobody.here@fabrikam.example",
    ]
    page = request_list(auth, link, pasted).get_data(as_text=True)
    # An address without an account gets a directory person (no login) and is requested too.
    assert "6 mailboxes requested" in page
    for reason in (
        "listed more than once",
        "not a valid email address",
        "not on fabrikam.example",
    ):
        assert reason in page.lower()
    assert batch_posts(sandbox) == 1
    callbacks = queued_callbacks(sandbox)
    assert len(callbacks) == 6 and set(callbacks.values()) == {1}  # nothing sent for rejects
    assert all(len(urlsplit(u).path) < 100 and "/hooks/cronofy/sa/" in u for u in callbacks)
    assert {r.status for r in rows(session).values()} == {MailboxStatus.PENDING}

    delivered = sandbox.deliver()
    assert all(d["ok"] for d in delivered)
    result = rows(session)
    assert {e for e, r in result.items() if r.status is MailboxStatus.LINKED} == set(FABRIKAM[:4])
    failed = result["ceo.office@fabrikam.example"]
    assert failed.status is MailboxStatus.FAILED
    assert failed.error_key == "outside_impersonation_scope" and failed.error_text
    assert result["nobody.here@fabrikam.example"].status is MailboxStatus.FAILED

    profile = session.scalar(select(ProfileLink).where(ProfileLink.user_id == people[0].id))
    assert profile.mode is LinkMode.ENTERPRISE and profile.status is LinkStatus.ACTIVE
    assert profile.account_email == FABRIKAM[0] and profile.provider == "exchange"
    assert profile.target_calendar_id  # the mailbox's primary calendar, chosen by the job
    assert profile.has_tokens and profile.key_id == "k1"
    page = client.get(PAGE).get_data(as_text=True)
    assert 'Linked: <span data-count="linked">4</span>' in page
    assert "outside_impersonation_scope" in page
    assert actions(session).count("ec.mailbox_linked") == 4
    assert "ec.mailbox_failed" in actions(session) and "ec.mailboxes_requested" in actions(session)

    # The person sees the organisation's link, with no consent step and no disconnect.
    user_client = app.test_client()
    AuthActions(user_client).login(people[0].email)
    mine = user_client.get("/profile/calendar/").get_data(as_text=True)
    assert "Linked by your organisation (Exchange)" in mine and "Interviews go here" in mine
    assert "Disconnect this calendar" not in mine


def test_all_users_on_the_domain_go_out_in_batches_of_at_most_fifty(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    emails = FABRIKAM + [f"extra{n}@fabrikam.example" for n in range(31)]
    users_on(session, org, emails)
    make_user(session, org, Role.RECRUITER, email="outsider@northwind.example")
    page = auth.post(
        f"{PAGE}{link.id}/link",
        {"mode": "all"},
        form_page=f"{PAGE}{link.id}/link",
        follow_redirects=True,
    )
    assert "61 mailboxes requested" in page.get_data(as_text=True)
    assert batch_posts(sandbox) == 2  # 50 + 11
    assert len(queued_callbacks(sandbox)) == 61
    sandbox.deliver()
    counts = mailboxes.counts(session, link.id)
    assert counts["linked"] == 30 and counts["failed"] == 31 and counts["waiting"] == 0
    assert {r.error_key for r in rows(session).values() if r.status is MailboxStatus.FAILED} == {
        "unknown_mailbox"
    }


def test_progress_endpoint_reports_counts(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    before = client.get(f"{PAGE}{link.id}/progress").get_json()
    assert before["waiting"] == 3 and before["linked"] == 0 and before["total"] == 3
    sandbox.deliver()
    after = client.get(f"{PAGE}{link.id}/progress").get_json()
    assert after["waiting"] == 0 and after["linked"] == 3
    assert client.get(f"{PAGE}999999/progress").status_code == 404


def test_a_subset_chosen_from_the_list(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:6])
    page = client.get(f"{PAGE}{link.id}/link?q={FABRIKAM[1][:6]}").get_data(as_text=True)
    assert FABRIKAM[1] in page and FABRIKAM[2] not in page
    auth.post(
        f"{PAGE}{link.id}/link",
        {"mode": "selected", "emails": FABRIKAM[1:3]},
        form_page=f"{PAGE}{link.id}/link",
    )
    assert set(rows(session)) == set(FABRIKAM[1:3])


def test_retry_failed_after_an_injected_failure(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    sandbox.call("PUT", "/mailbox-failures", json={"mailboxes": {FABRIKAM[2]: "mailbox_locked"}})
    request_list(auth, link, FABRIKAM[:3])
    sandbox.deliver()
    assert rows(session)[FABRIKAM[2]].error_key == "mailbox_locked"
    sandbox.call("PUT", "/mailbox-failures", json={"mailboxes": {}})
    auth.post(f"{PAGE}{link.id}/retry", form_page=PAGE)
    assert batch_posts(sandbox) == 2
    assert len(queued_callbacks(sandbox)) == 1  # only the failed one went out again
    sandbox.deliver()
    assert {r.status for r in rows(session).values()} == {MailboxStatus.LINKED}
    assert "ec.retry" in actions(session)


def test_a_rate_limited_batch_is_sent_again_once(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:4])
    sandbox.add_fault(
        method="POST",
        path="/v1/service_account_authorizations",
        status=429,
        count=1,
        headers={"Retry-After": "1"},
    )
    request_list(auth, link, FABRIKAM[:4])
    assert batch_posts(sandbox) == 2  # refused once, accepted once
    callbacks = queued_callbacks(sandbox)
    assert len(callbacks) == 4 and set(callbacks.values()) == {1}
    sandbox.deliver()
    assert mailboxes.counts(session, link.id)["linked"] == 4


def test_code_exchange_trouble_is_tried_again_by_the_redemption_job(
    app, admin_client, session, sandbox, org
):
    """The callback is answered at once (the code is queued for its job); the aggregator's 503
    on the code's exchange defers the job, which links the mailbox when it runs again. The
    queued job carries the code sealed, never readable."""
    import pickle

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    sandbox.add_fault(method="POST", path="/oauth/token", status=503, count=1)
    first = sandbox.deliver()
    assert [d["status"] for d in first] == ["200"]
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.PENDING
    assert not queued_callbacks(sandbox)  # nothing for the aggregator to resend
    jobs = deps.jobs.of(app)
    waiting = [t for t in jobs.huey.scheduled() if t.name.endswith("redeem_code")]
    assert len(waiting) == 1
    code = first[0]["body"]["authorization"]["code"]
    assert code.encode() not in pickle.dumps((waiting[0].args, waiting[0].kwargs))
    jobs.huey.execute(waiting[0], timestamp=waiting[0].eta)  # when its time comes
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.LINKED
    assert token_calls(sandbox) == 3  # the admin's consent, the refused one, the redeemed one
    assert actions(session).count("ec.mailbox_linked") == 1


# --- the callback: signature, state, replay ------------------------------------------------------


def _sign(body: bytes, secret: str = SANDBOX_CLIENT_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_forged_and_replayed_callbacks(app, admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    item = next(i for i in sandbox.call("GET", "/outbox")["queued"] if i["kind"] == "callback")
    # The genuine body as the aggregator will send it (read from its delivery once delivered):
    delivered = sandbox.deliver()
    body = json.dumps(delivered[0]["body"]).encode()
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.LINKED
    path = urlsplit(item["url"]).path
    headers = {"Content-Type": "application/json"}
    anon = app.test_client()
    calls = token_calls(sandbox)

    for signature in ("forged", _sign(body, "another-secret"), _sign(body + b" ")):
        assert (
            anon.post(
                path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": signature}
            ).status_code
            == 401
        )
    # A correctly signed body with a state that is not the request's: refused, audited.
    wrong = json.dumps({"authorization": {"code": "x" * 32, "state": "guessed"}}).encode()
    assert (
        anon.post(
            path, data=wrong, headers={**headers, "Cronofy-HMAC-SHA256": _sign(wrong)}
        ).status_code
        == 401
    )
    # The same, unsigned: the state check still refuses it.
    assert anon.post(path, data=wrong, headers=headers).status_code == 401
    # The genuine callback again, signed or not: a replay, a no-op.
    assert (
        anon.post(
            path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": _sign(body)}
        ).status_code
        == 409
    )
    assert anon.post(path, data=body, headers=headers).status_code == 409
    # A reference sealed for something else, or made up, names no request.
    other = "/hooks/cronofy/sa/" + deps.sealer.of(app).seal("push", "1")
    assert (
        anon.post(
            other, data=body, headers={**headers, "Cronofy-HMAC-SHA256": _sign(body)}
        ).status_code
        == 404
    )
    assert token_calls(sandbox) == calls  # no second exchange, ever
    assert session.scalar(select(func.count(ProfileLink.id))) == 1
    log = actions(session)
    # The bad signatures and the unsigned forgery: one entry a minute stands for them all.
    assert log.count("webhook.bad_signature") == 1
    assert log.count("callback.forged") == 1 and log.count("callback.replayed") == 2


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("where", ["authorization", "top_level"])
def test_mailboxes_link_whether_callbacks_are_signed_and_wherever_state_comes(
    app, admin_client, session, sandbox, org, signed, where
):
    """No source confirms that the delegated-access callback is signed, nor where ``state``
    comes back: every variant the sandbox can be switched to links the mailboxes. Unsigned
    answers are accepted on the sealed reference and one-time state, audited and counted."""
    sandbox.call(
        "PATCH", "/config", json={"sa_callback_signed": signed, "sa_callback_state": where}
    )
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    delivered = sandbox.deliver()
    assert [d["status"] for d in delivered] == ["200"] * 3
    assert all(d["signed"] is signed for d in delivered)
    assert all(
        ("state" in d["body"]["authorization"]) == (where == "authorization")
        and ("state" in d["body"]) == (where == "top_level")
        for d in delivered
    )
    assert {r.status for r in rows(session, link).values()} == {MailboxStatus.LINKED}
    session.expire_all()
    assert session.get(ServiceAccountLink, link.id).unsigned_callbacks == (0 if signed else 3)
    assert actions(session).count("callback.unsigned") == (0 if signed else 3)
    page = client.get(PAGE).get_data(as_text=True)
    assert ('data-count="unsigned">3<' in page) is not signed


def test_a_wrong_signature_is_refused_even_with_the_right_state(
    app, admin_client, session, sandbox, org
):
    """A signature, when present, must be right: the genuine body and state with a bad
    signature change nothing; the same body unsigned is then accepted and counted."""
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    item = next(i for i in sandbox.call("GET", "/outbox")["queued"] if i["kind"] == "callback")
    assert item["signed"] is False  # the sandbox's default: the stricter reading
    body = json.dumps(item["body"]).encode()
    path = urlsplit(item["url"]).path
    anon = app.test_client()
    headers = {"Content-Type": "application/json"}
    for signature in ("", "forged", _sign(body, "another-secret")):
        assert (
            anon.post(
                path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": signature}
            ).status_code
            == 401
        )
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.PENDING
    assert actions(session).count("webhook.bad_signature") == 1  # once a minute per address
    assert anon.post(path, data=body, headers=headers).status_code == 200
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.LINKED
    session.expire_all()
    assert session.get(ServiceAccountLink, link.id).unsigned_callbacks == 1


def test_a_late_callback_for_a_cancelled_request_links_nothing(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    row = rows(session)[FABRIKAM[0]]
    auth.post(
        f"{PAGE}mailboxes/{row.id}/unlink",
        {"confirm": "yes"},
        form_page=f"{PAGE}mailboxes/{row.id}/unlink",
    )
    calls = token_calls(sandbox)
    assert [d["status"] for d in sandbox.deliver()] == ["200"]
    assert token_calls(sandbox) == calls
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.UNLINKED
    assert session.scalar(select(ProfileLink)) is None


# --- crash and resume ----------------------------------------------------------------------------


class Crash(BaseException):
    """A worker dying: not an Exception, so nothing on the way catches it."""


def test_a_crash_between_and_inside_batches_resumes_without_duplicate_requests(
    app, admin_client, session, sandbox, org, monkeypatch
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:25])
    monkeypatch.setattr(sending, "BATCH_SIZE", 10)
    jobs = deps.jobs.of(app)
    # Queue without sending (as if the worker had not picked the job up yet).
    monkeypatch.setattr(jobs, "enqueue", lambda *a, **k: None)
    request_list(auth, link, FABRIKAM[:25])
    assert batch_posts(sandbox) == 0

    def die_at_third_batch(n):
        if n == 2:
            raise Crash()

    with app.app_context(), pytest.raises(Crash):
        broker, cipher = deps.broker.of(app), deps.cipher.of(app)
        with deps.database.of(app).sessions() as db:
            sending.send_batches(db, broker, cipher, link.id, before_send=die_at_third_batch)
    # Two batches went out; the third was claimed (states committed) but never sent.
    assert batch_posts(sandbox) == 2
    state = rows(session)
    assert sum(1 for r in state.values() if r.sent_at) == 20
    claimed = [r for r in state.values() if r.claim and not r.sent_at]
    assert len(claimed) == 5 and all(r.status is MailboxStatus.PENDING for r in claimed)

    # Within the lease the domain does not count as stalled (its rows moved just now): the
    # periodic job leaves it alone, nothing is sent twice.
    with app.app_context():
        assert enterprise_jobs.resume_stalled() == 0
    assert batch_posts(sandbox) == 2
    # Nor does another worker sending meanwhile touch the claimed rows.
    with app.app_context():
        assert enterprise_jobs.send_batches(link.id) == 0
    assert batch_posts(sandbox) == 2
    # After the lease, the periodic job puts them back in line and sends them once.
    monkeypatch.setitem(app.config, "EC_CLAIM_LEASE_SECONDS", 0)
    with app.app_context():
        assert enterprise_jobs.resume_stalled() == 1
        assert enterprise_jobs.resume_stalled() == 0  # nothing left to resume
    assert batch_posts(sandbox) == 3
    callbacks = queued_callbacks(sandbox)
    assert len(callbacks) == 25 and set(callbacks.values()) == {1}  # one request per mailbox
    monkeypatch.undo()  # the queue runs jobs again: each callback's code redemption
    sandbox.deliver()
    assert {r.status for r in rows(session).values()} == {MailboxStatus.LINKED}
    assert session.scalar(select(func.count(ProfileLink.id))) == 25


def test_the_sender_waits_while_too_many_callbacks_are_awaited(
    app, admin_client, session, sandbox, org, monkeypatch
):
    """Each callback's code is redeemed in the organisation's share of the background lane: a
    sender that ran ahead of them would leave a big domain's callbacks (and codes) queued in
    front of every other organisation's. It sends no further batch while ``max_awaited``
    requests await their callback or their code's redemption, and goes on as they are done."""
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:25])
    monkeypatch.setattr(sending, "BATCH_SIZE", 10)
    jobs = deps.jobs.of(app)
    real, redemptions = jobs.enqueue, []

    def enqueue(name, *args):  # the sender is run by hand; redemptions wait until released
        if name == "enterprise.redeem_code":
            redemptions.append(args)
        elif name != "enterprise.send_batches":
            real(name, *args)

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    request_list(auth, link, FABRIKAM[:25])

    def send():
        with app.app_context(), deps.database.of(app).sessions() as db:
            broker, cipher = deps.broker.of(app), deps.cipher.of(app)
            return sending.send_batches(db, broker, cipher, link.id, max_awaited=10)

    report = send()
    assert (report.batches, report.retry_in) == (1, sending.AWAIT_PAUSE)  # 10 awaited: wait
    assert batch_posts(sandbox) == 1
    assert send().batches == 0  # still no answer
    sandbox.deliver()  # the ten callbacks come: their codes wait for their redemption jobs
    assert len(redemptions) == 10 and mailboxes.counts(session, link.id)["linked"] == 0
    assert send().batches == 0  # ten code exchanges still to come in the organisation's share
    for args in redemptions:
        real("enterprise.redeem_code", *args)
    redemptions.clear()
    assert mailboxes.counts(session, link.id)["linked"] == 10
    assert send().batches == 1
    # An answer that never comes holds the sender back only for AWAITED_FOR.
    monkeypatch.setattr(sending, "AWAITED_FOR", timedelta(0))
    report = send()
    assert report.batches == 1 and report.retry_in is None  # the last five, and done
    assert batch_posts(sandbox) == 3
    monkeypatch.setattr(jobs, "enqueue", real)
    sandbox.deliver()
    for args in redemptions:
        real("enterprise.redeem_code", *args)
    assert mailboxes.counts(session, link.id)["linked"] == 25


def test_a_sender_awaiting_callbacks_gives_its_worker_back(app, sandbox, monkeypatch):
    """While callbacks are awaited the sending job queues itself again for a second later
    instead of sleeping in its worker (other jobs, such as a booking's calendar write, need
    the workers), and takes up the rows where it left off."""
    jobs = deps.jobs.of(app)
    again: list[tuple] = []
    monkeypatch.setattr(jobs.huey, "immediate", False)  # as in production: a worker runs it
    monkeypatch.setattr(jobs, "enqueue_in", lambda delay, name, *a: again.append((delay, name, a)))
    seen = {}

    def awaiting(session, broker, cipher, link_id, **kwargs):
        seen.update(kwargs)
        return sending.SendReport(
            batches=1, sent=50, retry_in=sending.AWAIT_PAUSE, stopped=sending.AWAITING
        )

    monkeypatch.setattr(sending, "send_batches", awaiting)
    with app.app_context():
        assert enterprise_jobs.send_batches(7) == 50
    assert seen["max_awaited"] == app.config["EC_MAX_AWAITED"] == 100
    assert again == [(sending.AWAIT_PAUSE, "enterprise.send_batches", (7,))]


def test_two_workers_never_claim_the_same_rows(
    app, admin_client, session, sandbox, org, monkeypatch
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:6])
    monkeypatch.setattr(sending, "BATCH_SIZE", 2)
    monkeypatch.setattr(deps.jobs.of(app), "enqueue", lambda *a, **k: None)
    request_list(auth, link, FABRIKAM[:6])
    sessions = deps.database.of(app).sessions
    with sessions() as a, sessions() as b:
        first = sending.claim_batch(a, link.id, 4)
        second = sending.claim_batch(b, link.id, 4)
    assert len(first) == 4 and len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}


# --- service-account token -----------------------------------------------------------------------


def test_an_expired_service_account_token_is_refreshed_and_stored(
    app, admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    old = credentials.load_credentials(link, deps.cipher.of(app))
    link.token_expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    users_on(session, org, FABRIKAM[:1])
    before = token_calls(sandbox)
    request_list(auth, link, FABRIKAM[:1])
    assert token_calls(sandbox) - before == 1
    session.expire_all()
    new = credentials.load_credentials(
        session.get(ServiceAccountLink, link.id), deps.cipher.of(app)
    )
    assert new.access_token != old.access_token and batch_posts(sandbox) == 1


# --- unlink, disconnect, reset -------------------------------------------------------------------


def _account_ok(sandbox, token) -> bool:
    return (
        requests.get(
            sandbox.url + "/v1/account", timeout=5, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )


def test_unlink_disconnect_and_reset(app, admin_client, session, sandbox, org):
    client, auth = admin_client
    cipher = deps.cipher.of(app)
    link = connect_domain(client, auth, session, sandbox)
    users = users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    sandbox.deliver()
    tokens = {
        u.email: credentials.load_credentials(
            session.scalar(select(ProfileLink).where(ProfileLink.user_id == u.id)), cipher
        ).access_token
        for u in users
    }
    sa_token = credentials.load_credentials(
        session.get(ServiceAccountLink, link.id), cipher
    ).access_token

    row = rows(session)[FABRIKAM[0]]
    auth.post(
        f"{PAGE}mailboxes/{row.id}/unlink",
        {"confirm": "yes"},
        form_page=f"{PAGE}mailboxes/{row.id}/unlink",
    )
    profile = session.get(ProfileLink, row.profile_link_id)
    assert profile.status is LinkStatus.DISCONNECTED and not profile.has_tokens
    assert not _account_ok(sandbox, tokens[FABRIKAM[0]]) and _account_ok(
        sandbox, tokens[FABRIKAM[1]]
    )
    assert rows(session)[FABRIKAM[0]].status is MailboxStatus.UNLINKED

    confirm = client.get(f"{PAGE}{link.id}/disconnect").get_data(as_text=True)
    assert (
        "2 linked mailboxes are</strong>" in confirm or "2 linked mailboxes are unlinked" in confirm
    )
    auth.post(
        f"{PAGE}{link.id}/disconnect",
        {"confirm": "yes"},
        form_page=f"{PAGE}{link.id}/disconnect",
    )
    session.expire_all()
    sa = session.get(ServiceAccountLink, link.id)
    assert sa.status is LinkStatus.DISCONNECTED and not sa.has_tokens
    assert not any(_account_ok(sandbox, t) for t in tokens.values())
    assert (
        requests.get(
            sandbox.url + "/v1/resources",
            timeout=5,
            headers={"Authorization": f"Bearer {sa_token}"},
        ).status_code
        == 401
    )
    assert all(not p.has_tokens for p in session.scalars(select(ProfileLink)))
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "ec.disconnected"))
    assert entry.detail == {"mailboxes": 2, "tokens_deleted": 3, "revocations_queued": 3}
    revoked = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "calendar.revoked_in_bulk")
    )
    assert revoked.detail == {"revoked": 3, "still_queued": 0}  # the job ran after the request
    client.get(PAGE)  # the flash message
    assert "Exchange: fabrikam.example" not in client.get(PAGE).get_data(as_text=True)

    # Connect again, then reset the whole configuration.
    link = connect_domain(client, auth, session, sandbox)
    assert link.status is LinkStatus.ACTIVE
    request_list(auth, link, FABRIKAM[1:2])
    sandbox.deliver()
    refused = auth.post(PAGE + "reset", {"confirm": "no"}, form_page=PAGE + "reset")
    assert refused.status_code == 303 and session.scalar(select(ServiceAccountLink)) is not None
    auth.post(PAGE + "reset", {"confirm": "reset"}, form_page=PAGE + "reset")
    session.expire_all()
    assert session.scalar(select(ServiceAccountLink)) is None
    assert session.scalar(select(MailboxRequest)) is None
    assert all(
        p.status is LinkStatus.DISCONNECTED and not p.has_tokens
        for p in session.scalars(select(ProfileLink))
    )
    assert "ec.reset" in actions(session) and "ec.unlinked" in actions(session)


def test_enterprise_link_supersedes_a_personal_link(app, admin_client, session, sandbox, org):
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

    link = connect_domain(client, auth, session, sandbox)
    request_list(auth, link, FABRIKAM[:1])
    sandbox.deliver()
    session.expire_all()
    links = session.scalars(
        select(ProfileLink).where(ProfileLink.user_id == user.id).order_by(ProfileLink.id)
    ).all()
    assert [(lk.mode, lk.status) for lk in links] == [
        (LinkMode.BUSINESS, LinkStatus.DISCONNECTED),
        (LinkMode.ENTERPRISE, LinkStatus.ACTIVE),
    ]
    assert not links[0].has_tokens
    assert "Linked by your organisation" in user_client.get("/profile/calendar/").get_data(
        as_text=True
    )


# --- service-account tokens at rest --------------------------------------------------------------


def test_service_account_tokens_rotate_and_are_bound_to_their_table_and_row(app_config, session):
    from broker.types import Credentials
    from webapp import create_app
    from webapp.config import new_token_key
    from webapp.security import DecryptionFailed

    app = create_app(app_config)
    org = make_org(session)
    cipher = deps.cipher.of(app)
    sa = ServiceAccountLink(
        organisation_id=org.id, provider="exchange", domain="fabrikam.example", sub="ser_1"
    )
    session.add(sa)
    session.flush()
    credentials.store_credentials(sa, Credentials("sa-access", "sa-refresh", utcnow(), ""), cipher)
    # The same ciphertext in a ProfileLink row does not decrypt: the table is bound in.
    user = make_user(session, org)
    twin = ProfileLink(
        id=sa.id, organisation_id=org.id, user_id=user.id, mode=LinkMode.ENTERPRISE, sub="acc_twin"
    )  # same row id, other table
    session.add(twin)
    session.flush()
    twin.access_token, twin.refresh_token, twin.key_id = (
        sa.access_token,
        sa.refresh_token,
        sa.key_id,
    )
    twin.token_expires_at = sa.token_expires_at
    session.commit()
    with pytest.raises(DecryptionFailed):
        credentials.load_credentials(twin, cipher)
    credentials.forget_tokens(twin)
    session.commit()

    new_ring = f"{new_token_key('k2')},{app_config['TOKEN_KEYS']}"
    rotated = create_app(dict(app_config, TOKEN_KEYS=new_ring))
    result = rotated.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert result.exit_code == 0, result.output
    only_new = create_app(dict(app_config, TOKEN_KEYS=new_ring.split(",")[0]))
    session.expire_all()
    sa = session.get(ServiceAccountLink, sa.id)
    assert sa.key_id == "k2"
    creds = credentials.load_credentials(sa, deps.cipher.of(only_new))
    assert (creds.access_token, creds.refresh_token) == ("sa-access", "sa-refresh")


def test_a_killed_worker_loses_its_job_and_a_restarted_one_finishes_without_duplicates(
    app, app_config, admin_client, session, sandbox, org, tmp_path
):
    """A real huey worker process is killed (SIGKILL) while its batch request is in flight and
    is refused; its queue message is gone, the claimed rows are not. A new worker's periodic
    resume sends them once the lease is over: one request per mailbox reaches the aggregator."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from webapp import create_app

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:5])
    queue = str(tmp_path / "jobs.sqlite3")
    config = dict(app_config, JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=queue)
    queued_app = create_app(config)
    queued_app.config["PUBLIC_BASE_URL"] = app.config["PUBLIC_BASE_URL"]
    jobs = deps.jobs.of(queued_app)
    with queued_app.test_request_context():
        from webapp.callbacks import service_account_callback_url

        with deps.database.of(queued_app).sessions() as db:
            admin = db.scalar(select(ServiceAccountLink)).connected_by_id
            actor = Actor(admin, "it@northwind.example", org.id, Role.ADMIN)
            mailboxes.request_mailboxes(
                db,
                actor,
                link.id,
                emails=FABRIKAM[:5],
                callback_url=service_account_callback_url,
                jobs=jobs,
            )
    assert jobs.pending() == 1  # the service queued the sending job itself
    # The aggregator will take 8 s to refuse the batch: the worker is killed meanwhile.
    sandbox.add_fault(
        method="POST",
        path="/v1/service_account_authorizations",
        status=503,
        latency_ms=8000,
        count=1,
    )
    env = {
        "RENDEZVOUS_ENV": "development",
        "DATABASE_URL": config["DATABASE_URL"],
        "SECRET_KEY": config["SECRET_KEY"],
        "RENDEZVOUS_TOKEN_KEYS": config["TOKEN_KEYS"],
        "RENDEZVOUS_JOBS_SQLITE_PATH": queue,
        "PATH": "/usr/bin:/bin",
        "CRONOFY_CLIENT_ID": config["CRONOFY_CLIENT_ID"],
        "CRONOFY_CLIENT_SECRET": config["CRONOFY_CLIENT_SECRET"],
        "CRONOFY_API_BASE_URL": config["CRONOFY_API_BASE_URL"],
        "CRONOFY_APP_BASE_URL": config["CRONOFY_APP_BASE_URL"],
        "RENDEZVOUS_EC_CLAIM_LEASE_SECONDS": "1",
    }
    root = Path(__file__).resolve().parents[2]

    logs = []

    def worker():
        log = open(tmp_path / f"worker{len(logs)}.log", "wb")
        logs.append(log.name)
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--workers", "1"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def diagnostics():
        state = [
            (r.email, r.status.value, bool(r.claim), bool(r.sent_at))
            for r in rows(session).values()
        ]
        return f"{state}\n" + "\n".join(Path(n).read_text(errors="replace")[-2000:] for n in logs)

    def wait_for(condition, seconds=90):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return False

    first = worker()
    try:
        # The fault fired: the batch is in flight (its rows claimed, their states committed).
        assert wait_for(lambda: not sandbox.call("GET", "/faults")["rules"]), diagnostics()
        claimed = rows(session)
        assert all(
            r.claim and r.status is MailboxStatus.PENDING and not r.sent_at
            for r in claimed.values()
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # The dead worker took its message with it (the schedule may have queued a resume already).
    assert "enterprise.send_batches" not in [m.name for m in jobs.huey.pending()]
    assert batch_posts(sandbox) == 1 and not queued_callbacks(sandbox)

    second = worker()
    ticks = [0.0]

    def resumed():
        if time.monotonic() >= ticks[0]:  # what the every-minute schedule does, faster
            jobs.enqueue("enterprise.resume_stalled")
            ticks[0] = time.monotonic() + 2
        return all(r.sent_at for r in rows(session).values())

    try:
        assert wait_for(resumed), diagnostics()
    finally:
        second.terminate()
        second.wait(15)
    assert batch_posts(sandbox) == 2  # the refused one and the one sent after the restart
    callbacks = queued_callbacks(sandbox)
    assert len(callbacks) == 5 and set(callbacks.values()) == {1}
    sandbox.deliver()
    assert {r.status for r in rows(session).values()} == {MailboxStatus.LINKED}


def test_bulk_linking_calls_count_against_the_organisations_background_share(
    app, admin_client, session, sandbox, org
):
    """The send and calendar-choice jobs name their organisation to the limiter, so one
    organisation's bulk link is held to its fair share while another's work is queued."""
    from broker.ratelimit import BACKGROUND

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    with app.app_context():
        limiter = deps.broker().rate_limiter
    calls: list[tuple[str, str | None]] = []
    original = limiter.acquire

    def recording(lane="interactive", tenant=None):
        calls.append((lane, tenant))
        return original(lane, tenant)

    limiter.acquire = recording  # the transport asks this object
    try:
        request_list(auth, link, FABRIKAM[:3])
        sent = list(calls)
        sandbox.deliver()  # callbacks link the mailboxes and queue enterprise.choose_calendar
    finally:
        del limiter.acquire
    assert mailboxes.counts(session, link.id)["linked"] == 3
    background_calls = [tenant for lane, tenant in calls if lane == BACKGROUND]
    assert (BACKGROUND, str(org.id)) in sent  # the batch went out for this organisation
    assert len(background_calls) > len([c for c in sent if c[0] == BACKGROUND])  # choices too
    assert set(background_calls) == {str(org.id)}


def test_the_callbacks_code_redemption_is_bulk_work_of_the_organisation(
    app, admin_client, session, sandbox, org
):
    """The aggregator answers each mailbox request with a code the callback redeems: ten
    thousand of them for a big domain. They are the bulk link's calls, so they go in the
    background lane for the organisation (never in the interactive reserve, where they would
    crowd out people's pages), like the batches that set them off."""
    from broker.ratelimit import BACKGROUND

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    with app.app_context():
        limiter = deps.broker().rate_limiter
    calls: list[tuple[str, str | None]] = []
    original = limiter.acquire

    def recording(lane="interactive", tenant=None):
        calls.append((lane, tenant))
        return original(lane, tenant)

    limiter.acquire = recording
    try:
        delivered = sandbox.deliver()  # the callbacks only: each redeems its code
    finally:
        del limiter.acquire
    assert mailboxes.counts(session, link.id)["linked"] == 3
    assert len([d for d in delivered if "/hooks/cronofy/sa/" in (d.get("url") or "")]) == 3
    assert len(calls) >= 3  # one code exchange per mailbox (then the calendar choices)
    assert set(calls) == {(BACKGROUND, str(org.id))}


def test_a_domains_calendar_choices_are_one_queued_job_a_few_at_a_time(
    app, admin_client, session, sandbox, org, monkeypatch
):
    """Every linked mailbox needs its primary calendar chosen (one calendar read). A bulk
    link's callbacks queue one job for the domain, not one per mailbox (ten thousand jobs in
    front of everything else); each run chooses a few and queues the next behind what came
    meanwhile."""
    from webapp.services.enterprise import callbacks

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:5])
    jobs = deps.jobs.of(app)
    asked: list[tuple[str, str, tuple]] = []
    monkeypatch.setattr(
        jobs, "enqueue_once", lambda key, name, *a, **k: asked.append((key, name, a))
    )
    request_list(auth, link, FABRIKAM[:5])
    sandbox.deliver()
    assert mailboxes.counts(session, link.id)["linked"] == 5
    assert len(asked) == 5  # one ask per callback, all under the domain's one key
    assert {(key, name) for key, name, _a in asked} == {
        (callbacks.choice_key(link.id), "enterprise.choose_calendars")
    }
    assert (
        session.scalar(
            select(func.count(ProfileLink.id)).where(ProfileLink.target_calendar_id.is_(None))
        )
        == 5
    )

    # A run chooses CHOICES_PER_RUN and asks for the next run, after the last it looked at.
    monkeypatch.setattr(callbacks, "CHOICES_PER_RUN", 2)
    asked.clear()
    with app.app_context():
        assert enterprise_jobs.choose_calendars(link.id) == 2
    [(_key, _name, (domain, after))] = asked
    assert domain == link.id
    with app.app_context():
        assert enterprise_jobs.choose_calendars(link.id, after) == 2
        assert enterprise_jobs.choose_calendars(link.id, asked[-1][2][1]) == 1
    assert len(asked) == 2  # the last run found nothing more to do
    session.expire_all()
    targets = session.scalars(select(ProfileLink.target_calendar_id)).all()
    assert len(targets) == 5 and all(targets)


def test_the_periodic_resume_sends_each_domain_for_its_own_organisation(
    app, admin_client, session, sandbox, org, monkeypatch
):
    from broker.ratelimit import BACKGROUND

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    monkeypatch.setattr(deps.jobs.of(app), "enqueue", lambda *a, **k: None)  # left queued
    request_list(auth, link, FABRIKAM[:2])
    assert batch_posts(sandbox) == 0
    with app.app_context():
        limiter = deps.broker().rate_limiter
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
    monkeypatch.setitem(app.config, "EC_CLAIM_LEASE_SECONDS", 0)  # the job was lost
    # as the worker runs it: through the job wrapper (background lane)
    assert deps.jobs.of(app)._tasks["enterprise.resume_stalled"].call_local() == 1
    assert batch_posts(sandbox) == 1
    assert calls and set(calls) == {(BACKGROUND, str(org.id))}
