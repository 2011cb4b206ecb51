"""Business Connect end to end against the sandbox aggregator, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from models import AuditEntry, LinkMode, LinkStatus, OAuthState, ProfileLink, Role, utcnow
from tests.conftest import SANDBOX_CLIENT_SECRET, AuthActions, refresh_status
from tests.factories import make_user
from webapp import deps
from webapp.services import calendars, credentials
from webapp.services.errors import ReconnectNeeded


def start(auth, provider="google"):
    response = auth.post(
        "/profile/calendar/connect", {"provider": provider}, form_page="/profile/calendar/"
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def follow(client, redirect_url: str):
    parts = urlsplit(redirect_url)
    return client.get(f"{parts.path}?{parts.query}")


def connect_as(client, auth, sandbox, email, provider="google", **consent):
    authorize_url = start(auth, provider)
    response = follow(client, sandbox.consent(authorize_url, email, **consent).redirect_url)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def token_calls(sandbox) -> int:
    return sandbox.stats()["requests"].get("POST /oauth/token", 0)


def link_for(session, user) -> ProfileLink:
    session.expire_all()
    return session.scalar(select(ProfileLink).where(ProfileLink.user_id == user.id))


def creds_for(app, session, user):
    return credentials.load_credentials(link_for(session, user), deps.cipher.of(app))


def actions(session):
    session.expire_all()
    return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


# --- the happy paths -------------------------------------------------------------------------


def test_authorization_url_carries_state_and_avoids_linking(client, auth, sandbox, riley):
    auth.login(riley.email)
    url = start(auth, "google")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(sandbox.url + "/oauth/authorize?")
    assert query["avoid_linking"] == ["true"] and query["provider_name"] == ["google"]
    assert query["redirect_uri"] == ["http://localhost/profile/calendar/callback"]
    assert len(query["state"][0]) >= 43  # ≥ 256 bits from secrets


def test_google_user_connects_and_sees_their_calendars(app, client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, "riley.chen@northwind.example")
    link = link_for(session, riley)
    assert link.status is LinkStatus.ACTIVE and link.mode is LinkMode.BUSINESS
    assert link.provider == "google" and link.account_email == "riley.chen@northwind.example"
    assert link.sub.startswith("acc_") and link.profile_id.startswith("pro_")
    assert link.target_calendar_id and link.conflict_calendar_ids == [link.target_calendar_id]
    assert link.key_id == "k1" and link.access_token and link.refresh_token

    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "Connected calendar" in page and "riley.chen@northwind.example" in page
    assert "Google" in page and "Writable" in page and "Disconnect this calendar" in page
    # A push channel was opened for the link with an opaque callback URL.
    channels = requests.get(
        sandbox.url + "/v1/channels",
        timeout=5,
        headers={"Authorization": f"Bearer {creds_for(app, session, riley).access_token}"},
    ).json()["channels"]
    assert len(channels) == 1
    assert "/hooks/cronofy/push/" in channels[0]["callback_url"]
    assert f"/{link.id}" not in channels[0]["callback_url"].rsplit("/push/", 1)[1]
    assert "calendar.connected" in actions(session)


def test_exchange_user_connects_with_email_and_password(client, auth, session, sandbox, org):
    user = make_user(session, org, Role.RECRUITER, email="hr.lead@northwind.example")
    auth.login(user.email)
    connect_as(client, auth, sandbox, "anna.becker@fabrikam.example", provider="exchange")
    link = link_for(session, user)
    assert link.provider == "exchange" and link.account_email == "anna.becker@fabrikam.example"
    assert "Exchange" in client.get("/profile/calendar/").get_data(as_text=True)


def test_exchange_consent_rejects_a_wrong_password(auth, session, sandbox, org):
    user = make_user(session, org, Role.RECRUITER)
    auth.login(user.email)
    url = start(auth, "exchange")
    response = sandbox.request(
        "POST",
        "/consent",
        {"authorize_url": url, "email": "anna.becker@fabrikam.example", "password": "wrong"},
    )
    assert response.status_code == 422
    assert link_for(session, user) is None


def test_a_microsoft_365_profile_is_labelled_microsoft_365(client, auth, session, sandbox, org):
    """Cronofy reports Microsoft 365 as provider_name "exchange" with provider_service
    "office365" (cronofy-csharp GetProfiles fixture): the link says Microsoft 365, not
    Exchange (and a reconnect would pre-select Microsoft 365 at the aggregator)."""
    user = make_user(session, org, Role.RECRUITER, email="sam@northwind.example")
    auth.login(user.email)
    connect_as(client, auth, sandbox, "sam.patel@contoso.example", provider="office365")
    assert link_for(session, user).provider == "office365"
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "<dd>Microsoft 365</dd>" in page and "<dd>Exchange</dd>" not in page


def test_assistant_sees_delegated_calendars_and_cannot_write_to_read_only_ones(
    client, auth, session, sandbox, org
):
    user = make_user(session, org, Role.RECRUITER, email="pat@northwind.example")
    auth.login(user.email)
    connect_as(client, auth, sandbox, "pa.office@contoso.example", provider="office365")
    page = client.get("/profile/calendar/").get_data(as_text=True)
    import re

    assert len(re.findall(r"<td>[^<]+ — Calendar", page)) == 3  # the managers' delegated calendars
    assert "Read-only" in page and "Writable" in page

    link = link_for(session, user)
    listed = calendars.calendars_of(
        session,
        deps.broker.of(client.application),
        deps.cipher.of(client.application),
        link,
    )
    read_only = next(c for c in listed if c.readonly)
    writable_delegated = next(c for c in listed if not c.readonly and not c.primary)
    refused = auth.post(
        "/profile/calendar/settings",
        {"target_calendar_id": read_only.calendar_id},
        form_page="/profile/calendar/",
    )
    assert refused.status_code == 302
    assert "read-only" in client.get("/profile/calendar/").get_data(as_text=True)
    assert link_for(session, user).target_calendar_id != read_only.calendar_id

    ok = auth.post(
        "/profile/calendar/settings",
        {
            "target_calendar_id": writable_delegated.calendar_id,
            "conflict_calendar_ids": [read_only.calendar_id],
        },
        form_page="/profile/calendar/",
    )
    assert ok.status_code == 302
    link = link_for(session, user)
    assert link.target_calendar_id == writable_delegated.calendar_id
    assert set(link.conflict_calendar_ids) == {
        writable_delegated.calendar_id,
        read_only.calendar_id,
    }


def test_unknown_calendar_choice_is_refused(client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    before = link_for(session, riley).target_calendar_id
    auth.post(
        "/profile/calendar/settings",
        {"target_calendar_id": "cal_not_mine"},
        form_page="/profile/calendar/",
    )
    assert link_for(session, riley).target_calendar_id == before


# --- who may connect -------------------------------------------------------------------------


def test_no_connect_option_while_business_connect_is_off(
    client, auth, session, sandbox, riley, org
):
    org.business_connect_enabled = False
    session.commit()
    auth.login(riley.email)
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "Connect your calendar" not in page and "not activated" in page
    response = auth.post(
        "/profile/calendar/connect", {"provider": "google"}, form_page="/profile/calendar/"
    )
    assert response.status_code == 403
    assert session.scalar(select(OAuthState)) is None


def test_admin_activates_and_deactivates_business_connect(app, session, sandbox, org):
    org.business_connect_enabled = False
    session.commit()
    admin = make_user(session, org, Role.ADMIN)
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(admin.email)
    auth.post("/admin/calendar/business", {"enabled": "1"}, form_page="/admin/calendar/")
    session.refresh(org)
    assert org.business_connect_enabled
    auth.post("/admin/calendar/business", {"enabled": "0"}, form_page="/admin/calendar/")
    session.refresh(org)
    assert not org.business_connect_enabled
    assert actions(session)[-2:] == ["business_connect.activated", "business_connect.deactivated"]


def test_unknown_provider_is_refused(auth, session, sandbox, riley):
    auth.login(riley.email)
    response = auth.post(
        "/profile/calendar/connect", {"provider": "myspace"}, form_page="/profile/calendar/"
    )
    assert response.status_code == 400
    assert session.scalar(select(OAuthState)) is None


# --- OAuth state attacks: 400, a clear page, and no call to the token endpoint ------------------


def _callback(client, state, code="x" * 32):
    query = "&".join(f"{k}={v}" for k, v in (("code", code), ("state", state)) if v is not None)
    return client.get(f"/profile/calendar/callback?{query}")


def test_missing_and_unknown_state_are_refused_without_a_token_call(client, auth, sandbox, riley):
    auth.login(riley.email)
    for state in (None, "made-up-state"):
        response = _callback(client, state)
        assert response.status_code == 400
        assert "not valid any more" in response.get_data(as_text=True)
    assert token_calls(sandbox) == 0


def test_replayed_state_is_refused(client, auth, session, sandbox, riley):
    auth.login(riley.email)
    redirect = sandbox.consent(start(auth), riley.email).redirect_url
    assert follow(client, redirect).status_code == 302
    calls = token_calls(sandbox)
    assert follow(client, redirect).status_code == 400
    assert token_calls(sandbox) == calls


def test_expired_state_is_refused(client, auth, session, sandbox, riley):
    auth.login(riley.email)
    redirect = sandbox.consent(start(auth), riley.email).redirect_url
    state = session.scalar(select(OAuthState))
    state.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert follow(client, redirect).status_code == 400
    assert token_calls(sandbox) == 0 and link_for(session, riley) is None


def test_state_from_another_user_or_browser_is_refused(
    app, client, auth, session, sandbox, org, riley
):
    mallory = make_user(session, org, Role.RECRUITER)
    auth.login(mallory.email)
    redirect = sandbox.consent(start(auth), "jamie.rivera@gmail.example").redirect_url
    # Riley is lured into completing Mallory's authorization: foreign state.
    victim = app.test_client()
    AuthActions(victim).login(riley.email)
    assert follow(victim, redirect).status_code == 400
    # Mallory's own account, but in another browser session: not bound to it.
    other_browser = app.test_client()
    AuthActions(other_browser).login(mallory.email)
    assert follow(other_browser, redirect).status_code == 400
    assert token_calls(sandbox) == 0
    assert session.scalar(select(ProfileLink)) is None
    denied = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "oauth.state_rejected")
        .order_by(AuditEntry.id)
    ).all()
    assert [d.detail["reason"] for d in denied] == ["foreign", "other session"]


def test_declining_consent_is_a_friendly_message(client, auth, session, sandbox, riley):
    auth.login(riley.email)
    response = follow(
        client, sandbox.consent(start(auth), riley.email, decision="deny").redirect_url
    )
    assert response.status_code == 302
    assert "You declined" in client.get("/profile/calendar/").get_data(as_text=True)
    assert link_for(session, riley) is None and token_calls(sandbox) == 0


def test_an_account_linked_to_another_user_is_rejected(
    app, client, auth, session, sandbox, org, riley
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, "jamie.rivera@gmail.example")
    other = make_user(session, org, Role.RECRUITER)
    other_client = app.test_client()
    other_auth = AuthActions(other_client)
    other_auth.login(other.email)
    connect_as(other_client, other_auth, sandbox, "jamie.rivera@gmail.example")
    assert "already linked to another" in other_client.get("/profile/calendar/").get_data(
        as_text=True
    )
    assert link_for(session, other) is None
    assert link_for(session, riley).account_email == "jamie.rivera@gmail.example"


@pytest.mark.parametrize("status", [503, 429])
def test_aggregator_trouble_during_connect_stores_nothing_and_can_be_retried(
    client, auth, session, sandbox, riley, status
):
    auth.login(riley.email)
    sandbox.add_fault(
        method="POST", path="/oauth/token", status=status, count=10, headers={"Retry-After": "0"}
    )
    connect_as(client, auth, sandbox, riley.email)
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "nothing was changed" in page or "nothing was stored" in page
    assert link_for(session, riley) is None
    sandbox.call("DELETE", "/faults")
    connect_as(client, auth, sandbox, riley.email)
    assert link_for(session, riley).status is LinkStatus.ACTIVE


# --- disconnect, reset, relink ---------------------------------------------------------------


def test_disconnect_revokes_deletes_tokens_and_says_what_was_removed(
    app, client, auth, session, sandbox, riley
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    assert "Disconnect" in client.get("/profile/calendar/disconnect").get_data(as_text=True)
    page = auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "deleted from Rendezvous" in text and "revoked" in text
    link = link_for(session, riley)
    assert link.status is LinkStatus.DISCONNECTED and not link.has_tokens and link.key_id is None
    assert link.sub and link.profile_id  # kept so created events stay manageable
    gone = requests.get(
        sandbox.url + "/v1/account",
        timeout=5,
        headers={"Authorization": f"Bearer {creds.access_token}"},
    )
    assert gone.status_code == 401
    assert refresh_status(sandbox, creds.refresh_token) == 400
    assert "calendar.disconnected" in actions(session)

    # Reconnecting the same account reuses the link (and so its created events).
    connect_as(client, auth, sandbox, riley.email)
    relinked = link_for(session, riley)
    assert relinked.id == link.id and relinked.status is LinkStatus.ACTIVE
    assert "calendar.relinked" in actions(session)


def test_disconnect_while_the_service_is_down_queues_the_revocation_until_it_is_done(
    app, client, auth, session, sandbox, riley
):
    """The tokens go at once; the authorization the service did not revoke is never dropped:
    it waits, with its token, in the revocation queue until the service takes it."""
    from models import PendingRevocation
    from webapp.services import revocations

    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    sub = link_for(session, riley).sub
    sandbox.add_fault(method="POST", path="/oauth/token/revoke", status=503, count=50)
    page = auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "keeps asking it in the background" in text
    link = link_for(session, riley)
    assert link.status is LinkStatus.DISCONNECTED and not link.has_tokens
    queued = session.scalars(select(PendingRevocation).where(PendingRevocation.sub == sub)).all()
    assert [(q.reason, q.refresh_token is not None) for q in queued] == [
        ("calendar.disconnected", True)
    ]
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "calendar.disconnected")
    ).one()
    assert entry.outcome == "success" and entry.detail["revocation_queued"] is True

    sandbox.call("DELETE", "/faults")
    revocations.run(session, deps.broker.of(app), cipher=deps.cipher.of(app))
    session.expire_all()
    assert session.scalar(select(PendingRevocation).where(PendingRevocation.sub == sub)) is None
    assert refresh_status(sandbox, creds.refresh_token) == 400


def test_reset_revokes_every_business_link(app, session, sandbox, org, riley):
    users = [riley, make_user(session, org, Role.RECRUITER)]
    accounts = [riley.email, "jamie.rivera@gmail.example"]
    tokens = []
    for user, account in zip(users, accounts, strict=True):
        client = app.test_client()
        auth = AuthActions(client)
        auth.login(user.email)
        connect_as(client, auth, sandbox, account)
        tokens.append(creds_for(app, session, user).access_token)
    admin = make_user(session, org, Role.ADMIN)
    admin_client = app.test_client()
    admin_auth = AuthActions(admin_client)
    admin_auth.login(admin.email)
    unconfirmed = admin_auth.post(
        "/admin/calendar/business/reset",
        {"confirm": "no"},
        form_page="/admin/calendar/business/reset",
    )
    assert unconfirmed.status_code == 303
    assert all(link_for(session, u).has_tokens for u in users)
    admin_auth.post(
        "/admin/calendar/business/reset",
        {"confirm": "reset"},
        form_page="/admin/calendar/business/reset",
    )
    for user, token in zip(users, tokens, strict=True):
        assert link_for(session, user).status is LinkStatus.DISCONNECTED
        assert not link_for(session, user).has_tokens
        assert (
            requests.get(
                sandbox.url + "/v1/account", timeout=5, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "business_connect.reset"))
    assert entry.detail == {"links": 2, "tokens_deleted": 2, "revocations_queued": 2}


# --- tokens: refresh, relink banner -----------------------------------------------------------


def test_expired_token_is_refreshed_and_the_new_tokens_stored(
    app, client, auth, session, sandbox, riley
):
    sandbox.call("PATCH", "/config", json={"rotate_refresh_tokens": True})
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    old = creds_for(app, session, riley)
    sandbox.call("POST", "/tokens/expire", json={"access_token": old.access_token})
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "Writable" in page
    new = creds_for(app, session, riley)
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token  # rotated, and the new one was stored


def test_ten_concurrent_requests_on_an_expired_token_cause_one_refresh(
    app, client, auth, session, sandbox, riley
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    link = link_for(session, riley)
    link.token_expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    before = token_calls(sandbox)
    sessions = deps.database.of(app).sessions
    results, errors = [], []

    def use():
        try:
            with sessions() as db:
                creds, _ = credentials.usable_credentials(
                    db,
                    deps.broker.of(app),
                    deps.cipher.of(app),
                    db.get(ProfileLink, link.id),
                )
                results.append(creds.access_token)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert token_calls(sandbox) - before == 1
    assert len(set(results)) == 1


def test_profile_disconnected_push_shows_a_banner_and_reconnect_works(
    app, session, sandbox, live_server, riley
):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    verification = sandbox.deliver()
    assert [(d["body"]["notification"]["type"], d["ok"]) for d in verification] == [
        ("verification", True)
    ]
    link = link_for(session, riley)
    sandbox.call("POST", f"/profiles/{link.profile_id}/disconnect")
    delivered = sandbox.deliver()
    assert [(d["body"]["notification"]["type"], d["ok"]) for d in delivered] == [
        ("profile_disconnected", True)
    ]
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION
    home = client.get("/").get_data(as_text=True)
    assert "Your calendar connection needs attention" in home and "Reconnect" in home
    with pytest.raises(ReconnectNeeded):
        credentials.usable_credentials(
            session,
            deps.broker.of(app),
            deps.cipher.of(app),
            link_for(session, riley),
        )
    # Delivering the same notification again changes nothing (idempotent).
    sandbox.call("POST", f"/profiles/{link.profile_id}/reconnect")
    connect_as(client, auth, sandbox, riley.email)
    assert link_for(session, riley).status is LinkStatus.ACTIVE
    assert "needs attention" not in client.get("/").get_data(as_text=True)


def test_refresh_refused_marks_the_link_for_attention(app, client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    requests.post(
        sandbox.url + "/oauth/token/revoke",
        timeout=5,
        json={
            "client_id": "rendezvous-test-client",
            "client_secret": SANDBOX_CLIENT_SECRET,
            "token": creds.refresh_token,
        },
    )
    link = link_for(session, riley)
    link.token_expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "needs to be reconnected" in page
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION


# --- the webhook ----------------------------------------------------------------------------


def _sign(body: bytes, secret: str = SANDBOX_CLIENT_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _push_path(app, link_id: int) -> str:
    return "/hooks/cronofy/push/" + deps.sealer.of(app).seal("push", str(link_id))


def test_forged_webhooks_are_refused_and_audited(app, client, auth, session, sandbox, riley):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    link = link_for(session, riley)
    path = _push_path(app, link.id)
    # The notice is true (the app asks the aggregator which profile it concerns).
    sandbox.call("POST", f"/profiles/{link.profile_id}/disconnect")
    body = json.dumps(
        {
            "notification": {"type": "profile_disconnected"},
            "channel": {"channel_id": link.channel_id},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    assert client.post(path, data=body, headers=headers).status_code == 401
    for signature in (
        "forged",
        _sign(body, "another-secret"),
        _sign(body)[:20],
        _sign(body + b" "),
    ):
        response = client.post(
            path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": signature}
        )
        assert response.status_code == 401
    assert link_for(session, riley).status is LinkStatus.ACTIVE
    # One entry a minute stands for them all (see test_hooks_hardening).
    assert actions(session).count("webhook.bad_signature") == 1

    big = b"{" + b" " * (70 * 1024) + b"}"
    assert (
        client.post(
            path, data=big, headers={**headers, "Cronofy-HMAC-SHA256": _sign(big)}
        ).status_code
        == 413
    )
    # A valid signature on a guessed or altered reference finds nothing.
    assert (
        client.post(
            "/hooks/cronofy/push/" + "A" * 43,
            data=body,
            headers={**headers, "Cronofy-HMAC-SHA256": _sign(body)},
        ).status_code
        == 404
    )
    ok = client.post(
        path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": f"x, {_sign(body)}"}
    )
    assert ok.status_code == 202
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION
    again = client.post(path, data=body, headers={**headers, "Cronofy-HMAC-SHA256": _sign(body)})
    assert again.status_code == 202
    assert actions(session).count("calendar.needs_attention") == 1


# --- secrets at rest -------------------------------------------------------------------------


def test_no_token_or_client_secret_in_the_database_file(
    app, client, auth, session, sandbox, riley, database_url
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    secrets = [creds.access_token, creds.refresh_token, SANDBOX_CLIENT_SECRET]
    if database_url.startswith("sqlite"):
        raw = Path(database_url.removeprefix("sqlite:///")).read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw
    else:
        import subprocess

        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        dump = subprocess.run(
            ["pg_dump", "-h", url.host, "-p", str(url.port), "-U", url.username, url.database],
            capture_output=True,
            check=True,
        ).stdout
        assert b"profile_link" in dump
        for secret in secrets:
            assert secret.encode() not in dump


def test_a_signed_change_push_takes_the_fast_path_and_anything_else_the_full_one(
    app, client, auth, session, sandbox, riley, monkeypatch
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    link = link_for(session, riley)
    path = _push_path(app, link.id)
    fast = app.wsgi_app.other  # the PathDispatcher's callback side: FastPush before the lean app
    full_calls = []
    original = fast.fallback

    def counted(environ, start_response):
        full_calls.append(environ["PATH_INFO"])
        return original(environ, start_response)

    monkeypatch.setattr(fast, "fallback", counted)
    queued = []
    jobs = deps.jobs.of(app)
    monkeypatch.setattr(
        jobs, "enqueue_once", lambda key, name, *args: queued.append((key, name, args)) or "queued"
    )
    change = json.dumps(
        {
            "notification": {"type": "change", "changes_since": "2026-11-21T09:00:00Z"},
            "channel": {"channel_id": link.channel_id},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    response = client.post(
        path, data=change, headers={**headers, "Cronofy-HMAC-SHA256": _sign(change)}
    )
    assert response.status_code == 202 and full_calls == []
    assert queued == [
        (
            f"changes:{link.id}:{link.channel_id}",
            "scheduling.apply_changes",
            (link.id, "2026-11-21T09:00:00+00:00", link.channel_id),
        )
    ]
    # Everything else goes through the callback app, which answers and audits as before.
    assert (
        client.post(
            path, data=change, headers={**headers, "Cronofy-HMAC-SHA256": "forged"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/hooks/cronofy/push/" + "A" * 43,
            data=change,
            headers={**headers, "Cronofy-HMAC-SHA256": _sign(change)},
        ).status_code
        == 404
    )
    bad = b"{not json"
    assert (
        client.post(
            path, data=bad, headers={**headers, "Cronofy-HMAC-SHA256": _sign(bad)}
        ).status_code
        == 400
    )
    sandbox.call("POST", f"/profiles/{link.profile_id}/disconnect")  # the notice is true
    other = json.dumps(
        {
            "notification": {"type": "profile_disconnected"},
            "channel": {"channel_id": link.channel_id},
        }
    ).encode()
    assert (
        client.post(
            path, data=other, headers={**headers, "Cronofy-HMAC-SHA256": _sign(other)}
        ).status_code
        == 202
    )
    assert len(full_calls) == 4 and len(queued) == 1
    assert actions(session).count("webhook.bad_signature") == 1
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION
