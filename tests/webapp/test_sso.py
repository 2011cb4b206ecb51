"""Single sign-on through OpenID Connect, against a real provider (oidc-provider-mock) on a
loopback port: the whole flow over HTTP, and every refusal with its message and no session."""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from models import AuditEntry, LinkStatus, Role, ServiceAccountLink, SsoConfig, SsoState, User
from tests.conftest import csrf_token
from tests.factories import make_org, make_user
from tests.idp import TENANT, Idp
from tests.tenants import seed_neighbour
from webapp.services import Actor
from webapp.services.sso import settings as sso_settings

DOMAIN = "northwind.example"
SECRET = "idp-client-secret-never-shown-0123456789"


@pytest.fixture
def app_config(app_config):
    # Only these tests may let the app reach a provider on loopback over plain http.
    app_config["SSO_ALLOW_INSECURE_ISSUERS"] = True
    return app_config


@pytest.fixture
def idp():
    provider = Idp()
    yield provider
    provider.stop()


def verify_domain(session, org, domain=DOMAIN):
    session.add(
        ServiceAccountLink(
            organisation_id=org.id,
            provider="google",
            domain=domain,
            sub=f"ser_{org.id}_{domain}",
            status=LinkStatus.ACTIVE,
        )
    )
    session.commit()


def admin_actor(user):
    return Actor(user.id, user.email, user.organisation_id, Role.ADMIN)


def configure(session, cipher, admin, issuer, *, create=False, role="recruiter"):
    return sso_settings.save_provider(
        session,
        cipher,
        admin_actor(admin),
        issuer=issuer,
        client_id="rendezvous-client",
        client_secret=SECRET,
        enabled=True,
        create_accounts=create,
        default_role=role,
        insecure_ok=True,
    )


@pytest.fixture
def admin(session, org):
    return make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}", name="Ida Admin")


@pytest.fixture
def sso_org(session, cipher, org, admin, idp):
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url)
    return org


def start(client, email, **extra):
    token = csrf_token(client, "/login/sso")
    return client.post("/login/sso", data={"csrf_token": token, "email": email, **extra})


CONTINUE = re.compile(r'id="sso-continue" href="([^"]+)"')


def provider_url(started) -> str:
    """Where the app sends the browser on: its page moves on to the provider by itself."""
    assert started.status_code == 200, started.get_data(as_text=True)[:500]
    body = started.get_data(as_text=True)
    url = html.unescape(CONTINUE.search(body).group(1))
    assert f'<meta http-equiv="refresh" content="0;url={html.escape(url)}">' in body
    return url


def sign_in(client, idp, email, *, sub=None):
    """Start at the app, act at the provider, come back: the app's answer to the callback."""
    started = start(client, email)
    back = idp.authorize(provider_url(started), sub or email)
    return client.get(back), back


def signed_in_as(client) -> int | None:
    with client.session_transaction() as s:
        value = s.get("_user_id")
    return int(value.split(":")[0]) if value else None


def refused(response, status, words):
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:500]
    assert words in body
    assert SECRET not in body


def audit(session, action):
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


# --- a successful sign-in ---------------------------------------------------------------------


def test_a_person_of_the_verified_domain_signs_in_to_their_account(
    client, session, sso_org, idp, riley
):
    response, _ = sign_in(client, idp, riley.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_as(client) == riley.id
    assert "Riley Chen" in client.get("/").get_data(as_text=True)
    (entry,) = audit(session, "sso.login")
    assert entry.actor_id == riley.id and entry.organisation_id == sso_org.id


def test_the_request_carries_pkce_s256_state_and_nonce_and_the_code_needs_the_verifier(
    client, sso_org, idp, riley
):
    sign_in(client, idp, riley.email)
    (asked,) = idp.authorization_requests
    assert asked["response_type"] == "code" and asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert asked["login_hint"] == riley.email and "openid" in asked["scope"].split()
    (redeemed,) = idp.token_requests
    assert redeemed["code_verifier"] and "client_secret" not in redeemed  # sent as Basic auth


def test_first_sign_in_creates_the_account_with_the_chosen_role_when_allowed(
    client, session, cipher, org, admin, idp
):
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url, create=True, role="coordinator")
    idp.user(f"new.person@{DOMAIN}", name="New Person")
    response, _ = sign_in(client, idp, f"new.person@{DOMAIN}")
    assert response.status_code == 302
    user = session.scalar(select(User).where(User.email == f"new.person@{DOMAIN}"))
    assert user.organisation_id == org.id and user.role is Role.COORDINATOR
    assert user.name == "New Person" and user.password_hash is None
    assert signed_in_as(client) == user.id
    assert audit(session, "sso.user_created")[0].target_id == str(user.id)


# --- refusals: a clear message, nothing created, no session -----------------------------------


def test_first_sign_in_is_refused_when_the_admin_does_not_allow_creation(
    client, session, sso_org, idp
):
    response, _ = sign_in(client, idp, f"stranger@{DOMAIN}")
    refused(response, 403, "You have no account in this organisation yet")
    assert session.scalar(select(User).where(User.email == f"stranger@{DOMAIN}")) is None
    assert signed_in_as(client) is None
    assert audit(session, "sso.login_refused")[-1].detail == {"reason": "no account"}


def test_an_id_token_from_another_issuer_is_refused(client, session, cipher, org, admin, idp):
    verify_domain(session, org)
    idp.claim_tenant_issuer = True  # discovery names {url}/tenant, its tokens name {url}
    configure(session, cipher, admin, idp.url + TENANT)
    response, _ = sign_in(client, idp, "riley.chen@northwind.example")
    refused(response, 401, "issued by another identity provider")
    assert signed_in_as(client) is None
    assert "iss" in audit(session, "sso.login_refused")[-1].detail["reason"]


def test_a_provider_naming_another_issuer_is_refused_when_configured(
    app, client, auth, session, org, admin, idp
):
    verify_domain(session, org)
    auth.login(admin.email)
    response = auth.post(
        "/admin/sso",
        {
            "issuer": idp.url + TENANT,  # its discovery document says idp.url
            "client_id": "rendezvous-client",
            "client_secret": SECRET,
            "enabled": "1",
            "default_role": "recruiter",
        },
        form_page="/admin/sso",
    )
    refused(response, 400, "names another issuer than the one configured")
    assert session.scalar(select(SsoConfig)) is None


def test_a_replayed_state_is_refused(client, app, session, sso_org, idp, riley):
    response, back = sign_in(client, idp, riley.email)
    assert signed_in_as(client) == riley.id
    token = csrf_token(client, "/profile/")
    client.post("/logout", data={"csrf_token": token})
    replay = client.get(back)
    refused(replay, 400, "not valid any more")
    assert signed_in_as(client) is None
    assert audit(session, "sso.login_refused")[-1].detail["reason"] == "state replayed"
    assert len(audit(session, "sso.login")) == 1


def test_a_state_started_in_another_browser_is_refused(app, client, session, sso_org, idp, riley):
    started = start(client, riley.email)
    back = idp.authorize(provider_url(started), riley.email)
    other = app.test_client()
    response = other.get(back)
    refused(response, 400, "started in another browser")
    assert signed_in_as(other) is None
    # ...and the state it tried is not used up for the browser that started it.
    assert client.get(back).status_code == 302 and signed_in_as(client) == riley.id


def test_an_expired_state_is_refused(client, session, sso_org, idp, riley):
    started = start(client, riley.email)
    back = idp.authorize(provider_url(started), riley.email)
    state = session.scalar(select(SsoState))
    state.expires_at = state.created_at - timedelta(seconds=1)
    session.commit()
    refused(client.get(back), 400, "not valid any more")
    assert signed_in_as(client) is None
    assert audit(session, "sso.login_refused")[-1].detail["reason"] == "state expired"


def test_an_expired_id_token_is_refused(client, session, cipher, org, admin, riley):
    stale = Idp(token_max_age=timedelta(minutes=-10))  # exp ten minutes before it is issued
    try:
        verify_domain(session, org)
        configure(session, cipher, admin, stale.url)
        response, _ = sign_in(client, stale, riley.email)
    finally:
        stale.stop()
    refused(response, 401, "ID token has expired")
    assert signed_in_as(client) is None
    assert "expired" in audit(session, "sso.login_refused")[-1].detail["reason"]


def test_a_foreign_domain_is_refused(client, session, sso_org, idp, riley):
    idp.user("mallory@elsewhere.example")
    response, _ = sign_in(client, idp, riley.email, sub="mallory@elsewhere.example")
    refused(response, 403, "verified domains, so it cannot sign in here")
    assert signed_in_as(client) is None
    assert session.scalar(select(User).where(User.email == "mallory@elsewhere.example")) is None


def test_an_address_no_organisation_signs_in_with_sso_is_told_so(client, session, sso_org, idp):
    response = start(client, "someone@elsewhere.example")
    refused(response, 404, "No organisation signs in with single sign-on for that address")
    assert not idp.authorization_requests


def test_cancelling_at_the_provider_is_refused(client, session, sso_org, idp, riley):
    started = start(client, riley.email)
    back = idp.authorize(provider_url(started), riley.email, deny=True)
    assert "error=access_denied" in back and "state=" not in back
    # The mock leaves the state out of its error redirect: refused as an unknown sign-in...
    refused(client.get(back), 400, "not valid any more")
    # ...while a provider that returns it (RFC 6749 §4.1.2.1) gets the cancellation message.
    started = start(client, riley.email)
    state = parse_qs(urlsplit(provider_url(started)).query)["state"][0]
    refused(client.get(f"{back}&state={state}"), 403, "cancelled or refused at your identity")
    assert signed_in_as(client) is None
    reasons = [e.detail["reason"] for e in audit(session, "sso.login_refused")]
    assert reasons == ["state missing", "provider error: access_denied"]


# --- two organisations sharing an address -----------------------------------------------------


def test_sign_in_stays_inside_the_organisation_that_verified_the_domain(
    client, session, cipher, sso_org, idp, riley
):
    neighbour = seed_neighbour(session, cipher, [riley])
    twin = neighbour.twins[riley.email]
    response, _ = sign_in(client, idp, riley.email)
    assert response.status_code == 302
    assert signed_in_as(client) == riley.id != twin.id
    session.refresh(twin)
    assert twin.last_login_at is None


def test_two_organisations_verifying_one_domain_each_sign_in_their_own_account(
    app, client, session, cipher, sso_org, idp, riley
):
    neighbour = seed_neighbour(session, cipher, [riley])
    twin = neighbour.twins[riley.email]
    their_admin = make_user(session, neighbour.org, Role.ADMIN, email="admin@neighbour.example")
    theirs = Idp()
    try:
        # The neighbour connected the same domain too, with Google Workspace this time.
        link = session.scalar(
            select(ServiceAccountLink).where(
                ServiceAccountLink.organisation_id == neighbour.org.id,
                ServiceAccountLink.domain == DOMAIN,
            )
        )
        link.provider = "google"
        session.commit()
        configure(session, cipher, their_admin, theirs.url)
        choice = start(client, riley.email)
        body = choice.get_data(as_text=True)
        assert choice.status_code == 200 and neighbour.org.name in body and sso_org.name in body
        token = csrf_token(client, "/login/sso")
        started = client.post(
            "/login/sso",
            data={"csrf_token": token, "email": riley.email, "organisation_id": neighbour.org.id},
        )
        assert provider_url(started).startswith(theirs.url)
        response = client.get(theirs.authorize(provider_url(started), riley.email))
    finally:
        theirs.stop()
    assert response.status_code == 302
    assert signed_in_as(client) == twin.id
    assert not idp.authorization_requests  # the first organisation's provider was never asked


# --- password login off, break-glass ----------------------------------------------------------


def test_password_login_off_keeps_only_the_break_glass_admin(
    client, auth, session, sso_org, admin, riley
):
    auth.login(admin.email)
    page = client.get("/admin/sso").get_data(as_text=True)
    assert "A client secret is set" in page and SECRET not in page
    no_keeper = auth.post(
        "/admin/sso/password-login", {"password_login": "0"}, form_page="/admin/sso"
    )
    assert "cannot be left without one" in client.get(no_keeper.headers["Location"]).get_data(
        as_text=True
    )
    assert session.scalar(select(SsoConfig)).password_login is True
    auth.post(
        "/admin/sso/password-login",
        {"password_login": "0", "break_glass_user_id": admin.id},
        form_page="/admin/sso",
    )
    session.expire_all()
    config = session.scalar(select(SsoConfig))
    assert config.password_login is False and config.break_glass_user_id == admin.id
    auth.logout()

    refused(auth.login(riley.email), 403, "Your organisation signs in with single sign-on")
    assert signed_in_as(client) is None
    assert auth.login(riley.email, "wrong password").status_code == 401  # says nothing more
    assert auth.login(admin.email).status_code == 302 and signed_in_as(client) == admin.id
    assert audit(session, "sso.password_login")[-1].target_id == str(admin.id)


def test_the_break_glass_admin_cannot_be_deactivated_or_demoted(
    client, auth, session, sso_org, admin
):
    other = make_user(session, sso_org, Role.ADMIN, email=f"second.admin@{DOMAIN}")
    sso_settings.set_password_login(
        session, admin_actor(admin), allowed=False, break_glass_user_id=admin.id
    )
    refused(auth.login(other.email), 403, "signs in with single sign-on")  # only the keeper
    from webapp.services import accounts
    from webapp.services.errors import Invalid

    with pytest.raises(Invalid, match="break-glass"):
        accounts.set_active(session, admin_actor(other), admin.id, False)
    with pytest.raises(Invalid, match="break-glass"):
        accounts.change_role(session, admin_actor(other), admin.id, "recruiter")


# --- the settings page, secrets and the network guard ------------------------------------------


def test_the_admin_configures_sso_and_the_secret_is_kept_encrypted_and_never_shown(
    client, auth, session, cipher, org, admin, idp, caplog
):
    caplog.set_level(logging.DEBUG)
    verify_domain(session, org)
    auth.login(admin.email)
    form = {
        "issuer": idp.url + "/",
        "client_id": "rendezvous-client",
        "client_secret": SECRET,
        "enabled": "1",
        "create_accounts": "1",
        "default_role": "coordinator",
    }
    saved = auth.post("/admin/sso", form, form_page="/admin/sso")
    assert saved.status_code == 303
    page = client.get("/admin/sso").get_data(as_text=True)
    assert "A client secret is set" in page and SECRET not in page and idp.url in page
    config = session.scalar(select(SsoConfig))
    assert config.issuer == idp.url and SECRET.encode() not in config.client_secret
    assert sso_settings.client_secret(cipher, config) == SECRET
    # Saving again with the secret left empty keeps it.
    auth.post("/admin/sso", {**form, "client_secret": ""}, form_page="/admin/sso")
    session.expire_all()
    assert sso_settings.client_secret(cipher, session.scalar(select(SsoConfig))) == SECRET
    entries = audit(session, "sso.configured")
    assert entries[0].detail["created"] and "client_secret" in entries[0].detail["changed"]
    assert "client_secret" not in entries[1].detail["changed"]
    assert all(SECRET not in str(e.detail) for e in entries)
    # A whole sign-in later, the secret appears in no log line either.
    make_user(session, org, Role.RECRUITER, email=f"pat@{DOMAIN}")
    auth.logout()
    sign_in(client, idp, f"pat@{DOMAIN}")
    assert SECRET not in caplog.text


def test_an_admin_of_another_role_cannot_open_the_settings(client, auth, session, org):
    recruiter = make_user(session, org, Role.RECRUITER)
    auth.login(recruiter.email)
    assert client.get("/admin/sso").status_code == 403


def test_the_settings_refuse_bad_input_and_change_nothing(client, auth, session, org, admin, idp):
    verify_domain(session, org)
    auth.login(admin.email)
    base = {"issuer": idp.url, "client_id": "c", "client_secret": "s", "default_role": "recruiter"}
    for change, words in (
        ({"issuer": ""}, "Enter the identity provider"),
        ({"issuer": "ftp://example"}, "full https:// address"),
        ({"client_id": ""}, "Enter the client id"),
        ({"client_secret": ""}, "Enter the client secret"),
        ({"default_role": "admin"}, "Choose the role"),
        ({"issuer": "http://127.0.0.1:9/nothing"}, "could not be reached"),
    ):
        response = auth.post("/admin/sso", {**base, **change}, form_page="/admin/sso")
        assert response.status_code in (400, 503), change
        assert words in response.get_data(as_text=True), change
    assert session.scalar(select(SsoConfig)) is None


@pytest.mark.parametrize(
    "issuer, words",
    [
        ("http://127.0.0.1:{port}", "must use https"),
        ("https://127.0.0.1:{port}", "must be a public address"),
        ("https://localhost:{port}", "must be a public address"),
    ],
)
def test_without_the_test_setting_loopback_and_plain_http_issuers_are_refused(
    app, client, auth, session, org, admin, idp, issuer, words
):
    app.config["SSO_ALLOW_INSECURE_ISSUERS"] = False
    verify_domain(session, org)
    auth.login(admin.email)
    port = urlsplit(idp.url).port
    response = auth.post(
        "/admin/sso",
        {
            "issuer": issuer.format(port=port),
            "client_id": "c",
            "client_secret": "s",
            "default_role": "recruiter",
        },
        form_page="/admin/sso",
    )
    refused(response, 400, words)
    assert session.scalar(select(SsoConfig)) is None


def test_sso_needs_a_verified_domain(client, auth, session, org, admin, idp):
    auth.login(admin.email)
    response = auth.post(
        "/admin/sso",
        {
            "issuer": idp.url,
            "client_id": "c",
            "client_secret": "s",
            "enabled": "1",
            "default_role": "recruiter",
        },
        form_page="/admin/sso",
    )
    refused(response, 400, "needs a verified domain")


def test_the_login_page_offers_sso(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/login/sso' in page and "Sign in with SSO" in page


def test_used_and_expired_sign_in_states_are_purged(app, session, org):
    from models import utcnow
    from webapp import deps

    now = utcnow()
    for n, (expires, used) in enumerate(
        [
            (now - timedelta(minutes=1), None),  # expired
            (now + timedelta(minutes=5), now - timedelta(days=2)),  # used long ago
            (now + timedelta(minutes=5), None),  # still usable
        ]
    ):
        session.add(
            SsoState(
                organisation_id=org.id,
                state_hash=f"{n:064d}",
                nonce_hash="n" * 64,
                session_binding="b" * 64,
                expires_at=expires,
                used_at=used,
            )
        )
    session.commit()
    deps.jobs.of(app).enqueue("maintenance.purge_oauth_states")
    session.expire_all()
    assert [s.state_hash for s in session.scalars(select(SsoState))] == [f"{2:064d}"]


def test_one_state_presented_by_many_requests_at_once_signs_in_once(
    app, session, sso_org, idp, riley
):
    """Each request on its own database connection, as gunicorn's workers would: the state is
    claimed by one conditional UPDATE, so exactly one redeems the code."""
    from concurrent.futures import ThreadPoolExecutor

    from webapp import deps
    from webapp.services.errors import StateRejected
    from webapp.services.sso import login

    nonce = "browser-session-nonce"
    started = login.start(
        session,
        Actor(None, None, None, None),
        email=riley.email,
        organisation_id=None,
        session_nonce=nonce,
        redirect_uri="http://localhost/login/sso/callback",
        insecure_ok=True,
    )
    back = parse_qs(urlsplit(idp.authorize(started.url, riley.email)).query)

    def finish(_):
        with deps.database.of(app).sessions() as db:
            try:
                return login.finish(
                    db,
                    deps.cipher.of(app),
                    Actor(None, None, None, None),
                    state=back["state"][0],
                    code=back["code"][0],
                    error=None,
                    pending=started.pending,
                    session_nonce=nonce,
                    redirect_uri="http://localhost/login/sso/callback",
                    insecure_ok=True,
                ).id
            except StateRejected:
                return "replayed"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(finish, range(8)))
    assert sorted(outcomes, key=str) == [riley.id] + ["replayed"] * 7
    assert len(idp.token_requests) == 1
    assert len(audit(session, "sso.login")) == 1


def test_first_sign_ins_of_one_identity_at_once_open_one_account(
    app, session, cipher, org, admin, idp
):
    """Each on its own database connection (the gunicorn version, across workers on
    PostgreSQL, is in test_sso_multiworker.py): every one signs in, to one new account."""
    from concurrent.futures import ThreadPoolExecutor

    from webapp import deps
    from webapp.services.sso import login

    verify_domain(session, org)
    configure(session, cipher, admin, idp.url, create=True)
    address = f"casey.ng@{DOMAIN}"
    idp.user("idp-sub-casey", email=address)
    callback = "http://localhost/login/sso/callback"
    tabs = []
    for n in range(4):
        started = login.start(
            session,
            Actor(None, None, None, None),
            email=address,
            organisation_id=None,
            session_nonce=f"tab-{n}",
            redirect_uri=callback,
            insecure_ok=True,
        )
        back = parse_qs(urlsplit(idp.authorize(started.url, "idp-sub-casey")).query)
        tabs.append((f"tab-{n}", started.pending, back))

    def finish(tab):
        nonce, pending, back = tab
        with deps.database.of(app).sessions() as db:
            return login.finish(
                db,
                deps.cipher.of(app),
                Actor(None, None, None, None),
                state=back["state"][0],
                code=back["code"][0],
                error=None,
                pending=pending,
                session_nonce=nonce,
                redirect_uri=callback,
                insecure_ok=True,
            ).id

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(finish, tabs))
    session.expire_all()
    [account] = session.scalars(select(User).where(User.email == address)).all()
    assert ids == {account.id}
    assert (account.sso_issuer, account.sso_sub) == (idp.url, "idp-sub-casey")
    assert len(audit(session, "sso.user_created")) == 1
    assert len(audit(session, "sso.login")) == 4
    assert not audit(session, "sso.login_refused")


def test_an_invitation_in_an_organisation_without_password_login_leads_to_sso(
    client, session, sso_org, admin, idp
):
    from webapp.services import accounts

    sso_settings.set_password_login(
        session, admin_actor(admin), allowed=False, break_glass_user_id=admin.id
    )
    invited, token = accounts.invite_user(
        session,
        admin_actor(admin),
        email=f"new.hire@{DOMAIN}",
        name="New Hire",
        role="recruiter",
        invite_days=7,
    )
    page = client.get(f"/invite/{token}", follow_redirects=True).get_data(as_text=True)
    assert "signs in with single sign-on" in page and "Sign in with SSO" in page
    set_password = client.post(
        f"/invite/{token}",
        data={
            "csrf_token": csrf_token(client, "/login/sso"),
            "password": "a fine long passphrase",
        },
    )
    assert set_password.status_code == 302 and signed_in_as(client) is None
    session.refresh(invited)
    assert invited.password_hash is None
    # Signing in through the provider completes the invitation.
    response, _ = sign_in(client, idp, invited.email)
    assert response.status_code == 302 and signed_in_as(client) == invited.id
    session.refresh(invited)
    assert invited.invite_token_hash is None


def test_an_unverified_address_and_a_deactivated_account_are_refused(
    client, session, sso_org, idp, riley
):
    idp.user(riley.email, email_verified=False)
    response, _ = sign_in(client, idp, riley.email)
    refused(response, 403, "says your email address is not verified")
    idp.user(riley.email)
    riley.active = False
    session.commit()
    response, _ = sign_in(client, idp, riley.email)
    refused(response, 403, "Your account is deactivated")
    assert signed_in_as(client) is None
    reasons = [e.detail["reason"] for e in audit(session, "sso.login_refused")]
    assert reasons == ["email not verified", "inactive"]


def test_a_public_issuer_is_never_reached_from_the_tests(app, client, auth, session, org, admin):
    """With the default settings the app would resolve a public issuer's name before fetching
    it: the suite's network guard stops that, and the admin gets a clear answer, not a crash."""
    app.config["SSO_ALLOW_INSECURE_ISSUERS"] = False
    verify_domain(session, org)
    auth.login(admin.email)
    response = auth.post(
        "/admin/sso",
        {
            "issuer": "https://login.example-idp.com/tenant",
            "client_id": "c",
            "client_secret": "s",
            "default_role": "recruiter",
        },
        form_page="/admin/sso",
    )
    refused(response, 503, "names a host that cannot be found")
    assert session.scalar(select(SsoConfig)) is None


def test_the_client_secret_rotates_with_the_token_keys(app_config, session):
    from webapp import create_app, deps
    from webapp.config import new_token_key

    old_ring = app_config["TOKEN_KEYS"]
    app = create_app(app_config)
    org = make_user(session, make_org(session), Role.ADMIN).organisation
    config = SsoConfig(organisation_id=org.id, issuer="https://idp.example", client_id="c")
    sso_settings._seal_secret(deps.cipher.of(app), config, SECRET)
    session.add(config)
    session.commit()
    new_ring = f"{new_token_key('k2')},{old_ring}"
    rotated = create_app(dict(app_config, TOKEN_KEYS=new_ring))
    result = rotated.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert "re-encrypted: 1" in result.output and "failed: 0" in result.output
    only_new = create_app(dict(app_config, TOKEN_KEYS=new_ring.split(",")[0]))
    session.expire_all()
    config = session.scalar(select(SsoConfig))
    assert config.key_id == "k2"
    assert sso_settings.client_secret(deps.cipher.of(only_new), config) == SECRET


def test_a_code_redeemed_without_its_pkce_verifier_is_refused(app, session, sso_org, idp, riley):
    from webapp import deps
    from webapp.services.sso import login, oidc

    nobody = Actor(None, None, None, None)
    started = login.start(
        session,
        nobody,
        email=riley.email,
        organisation_id=None,
        session_nonce="n",
        redirect_uri="http://localhost/login/sso/callback",
        insecure_ok=True,
    )
    back = parse_qs(urlsplit(idp.authorize(started.url, riley.email)).query)
    with pytest.raises(oidc.IdTokenRejected, match="refused to complete the sign-in"):
        login.finish(
            session,
            deps.cipher.of(app),
            nobody,
            state=back["state"][0],
            code=back["code"][0],
            error=None,
            pending={**started.pending, "verifier": "x" * 64},  # an intercepted code alone
            session_nonce="n",
            redirect_uri="http://localhost/login/sso/callback",
            insecure_ok=True,
        )
    assert audit(session, "sso.login_refused")[-1].detail == {"reason": "code refused"}
    assert not audit(session, "sso.login")


def _directory_person(session, org, email):
    person = User(
        organisation_id=org.id,
        email=email,
        name="Directory Person",
        role=Role.INTERVIEWER,
        active=True,
        session_version=1,
    )
    session.add(person)
    session.commit()
    return person


def test_a_directory_person_signs_in_only_when_first_sign_ins_are_allowed(
    client, app, session, cipher, org, admin, idp
):
    """A directory person (a mailbox linked for them, no login) is refused unless the admin
    lets first sign-ins in; then the same row gets the default role, nothing relinked."""
    email = f"panel.member@{DOMAIN}"
    person = _directory_person(session, org, email)
    neighbour = make_org(session)
    twin = make_user(session, neighbour, Role.RECRUITER, email=email, name="Neighbour's Twin")
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url)
    idp.user(email, name="Panel Member")
    response, _ = sign_in(client, idp, email)
    refused(response, 403, "You have no login in this organisation yet")
    assert signed_in_as(client) is None
    session.expire_all()
    assert session.get(User, person.id).role is Role.INTERVIEWER
    assert audit(session, "sso.login_refused")[-1].detail == {"reason": "no login"}

    configure(session, cipher, admin, idp.url, create=True, role="recruiter")
    other = app.test_client()
    response, _ = sign_in(other, idp, email)
    assert response.status_code == 302 and signed_in_as(other) == person.id
    session.expire_all()
    assert session.get(User, person.id).role is Role.RECRUITER
    assert audit(session, "sso.user_created")[-1].detail == {
        "role": "recruiter",
        "from": "directory",
    }
    assert session.get(User, twin.id).role is Role.RECRUITER  # the neighbour's row untouched
    assert session.get(User, twin.id).name == "Neighbour's Twin"


# --- the identity (issuer, sub) decides the account after the first sign-in ---------------------


def test_the_first_sign_in_binds_the_account_to_the_identity_inside_its_organisation(
    client, session, cipher, sso_org, idp, riley
):
    neighbour = seed_neighbour(session, cipher, [riley])
    twin = neighbour.twins[riley.email]
    idp.user("idp-sub-riley", email=riley.email)
    response, _ = sign_in(client, idp, riley.email, sub="idp-sub-riley")
    assert response.status_code == 302 and signed_in_as(client) == riley.id
    session.refresh(riley)
    session.refresh(twin)
    assert (riley.sso_issuer, riley.sso_sub) == (idp.url, "idp-sub-riley")
    assert (twin.sso_issuer, twin.sso_sub) == (None, None)  # same address, other organisation


def test_an_address_changed_at_the_provider_keeps_opening_the_same_account(
    app, session, sso_org, idp, riley
):
    sam = make_user(session, sso_org, Role.RECRUITER, email=f"sam@{DOMAIN}", name="Sam")
    idp.user("idp-sub-riley", email=riley.email)
    first = app.test_client()
    sign_in(first, idp, riley.email, sub="idp-sub-riley")
    assert signed_in_as(first) == riley.id
    # The provider now says this identity's address is Sam's: it still opens Riley's account.
    idp.user("idp-sub-riley", email=sam.email)
    later = app.test_client()
    response, _ = sign_in(later, idp, sam.email, sub="idp-sub-riley")
    assert response.status_code == 302 and signed_in_as(later) == riley.id != sam.id
    session.refresh(sam)
    assert sam.last_login_at is None and sam.sso_sub is None
    assert audit(session, "sso.login")[-1].detail == {"address_changed_at_provider": True}


def test_an_address_reused_by_another_identity_is_refused(client, session, sso_org, idp, riley):
    idp.user("idp-sub-riley", email=riley.email)
    sign_in(client, idp, riley.email, sub="idp-sub-riley")
    client.get("/logout")
    # Riley left; the provider gave the address to a new person (another sub).
    idp.user("idp-sub-newcomer", email=riley.email)
    fresh = client.application.test_client()
    response, _ = sign_in(fresh, idp, riley.email, sub="idp-sub-newcomer")
    refused(response, 403, "signs in with another identity at your identity provider")
    assert signed_in_as(fresh) is None
    session.refresh(riley)
    assert riley.sso_sub == "idp-sub-riley"
    assert audit(session, "sso.login_refused")[-1].detail == {
        "reason": "address bound to another identity"
    }


def test_a_new_issuer_binds_again_by_verified_address(
    client, session, cipher, sso_org, admin, idp, riley
):
    idp.user("idp-sub-riley", email=riley.email)
    sign_in(client, idp, riley.email, sub="idp-sub-riley")
    other = Idp()
    try:
        configure(session, cipher, admin, other.url)  # the organisation moved providers
        other.user("other-sub", email=riley.email)
        fresh = client.application.test_client()
        response, _ = sign_in(fresh, other, riley.email, sub="other-sub")
    finally:
        other.stop()
    assert response.status_code == 302 and signed_in_as(fresh) == riley.id
    session.refresh(riley)
    assert (riley.sso_issuer, riley.sso_sub) == (other.url, "other-sub")


# --- discovery and signing keys are kept per issuer ----------------------------------------------

DISCOVERY = "/.well-known/openid-configuration"


def test_discovery_and_keys_are_fetched_once_per_issuer_until_they_expire(
    app, monkeypatch, session, sso_org, idp, riley
):
    from webapp.services.sso import oidc

    assert idp.fetches(DISCOVERY) == 1  # saving the configuration checked the provider
    for _ in range(3):
        browser = app.test_client()
        response, _ = sign_in(browser, idp, riley.email)
        assert response.status_code == 302 and signed_in_as(browser) == riley.id
    assert (idp.fetches(DISCOVERY), idp.fetches("/jwks")) == (1, 1)
    later = oidc._clock() + oidc.METADATA_TTL + 1
    monkeypatch.setattr(oidc, "_clock", lambda: later)
    browser = app.test_client()
    response, _ = sign_in(browser, idp, riley.email)
    assert response.status_code == 302
    assert (idp.fetches(DISCOVERY), idp.fetches("/jwks")) == (2, 2)


def test_saving_the_configuration_reads_the_provider_afresh(session, cipher, sso_org, admin, idp):
    configure(session, cipher, admin, idp.url)
    assert idp.fetches(DISCOVERY) == 2


def test_a_rotated_signing_key_is_fetched_once(app, session, sso_org, idp, riley):
    sign_in(app.test_client(), idp, riley.email)
    assert idp.fetches("/jwks") == 1
    idp.rotate_key()
    for expected in (2, 2):
        browser = app.test_client()
        response, _ = sign_in(browser, idp, riley.email)
        assert response.status_code == 302 and signed_in_as(browser) == riley.id
        assert idp.fetches("/jwks") == expected


def test_a_token_signed_with_an_unpublished_key_is_refused_after_one_refresh(
    app, session, sso_org, idp, riley
):
    sign_in(app.test_client(), idp, riley.email)
    idp.published_jwks = idp.jwks()  # the provider keeps publishing only the old key
    idp.rotate_key()
    browser = app.test_client()
    response, _ = sign_in(browser, idp, riley.email)
    refused(response, 401, "not validly signed")
    assert signed_in_as(browser) is None
    assert idp.fetches("/jwks") == 3  # the first sign-in, ours above, one refresh: no more
    assert audit(session, "sso.login_refused")[-1].detail == {"reason": "bad signature"}


def test_unknown_key_ids_fetch_the_keys_again_at_most_once_per_interval(
    app, monkeypatch, session, sso_org, idp, riley
):
    from webapp.services.sso import oidc

    sign_in(app.test_client(), idp, riley.email)
    idp.published_jwks = idp.jwks()  # the provider keeps publishing only the old key
    idp.rotate_key()
    assert idp.fetches("/jwks") == 2  # the first sign-in's, and ours just above
    for _ in range(4):
        browser = app.test_client()
        response, _ = sign_in(browser, idp, riley.email)
        refused(response, 401, "not validly signed")
        assert signed_in_as(browser) is None
    assert idp.fetches("/jwks") == 3  # one refetch for the four tokens naming an unknown key
    reasons = [e.detail["reason"] for e in audit(session, "sso.login_refused")]
    assert (
        reasons == ["bad signature"] + ["unknown signing key (keys fetched again moments ago)"] * 3
    )
    # The provider publishes the key now: still inside the interval, nothing is fetched.
    idp.published_jwks = None
    response, _ = sign_in(app.test_client(), idp, riley.email)
    refused(response, 401, "not validly signed")
    assert idp.fetches("/jwks") == 3
    # Once the interval has passed, the next such token fetches the keys again, and passes.
    later = oidc._clock() + oidc.KEY_REFETCH_INTERVAL + 1
    monkeypatch.setattr(oidc, "_clock", lambda: later)
    browser = app.test_client()
    response, _ = sign_in(browser, idp, riley.email)
    assert response.status_code == 302 and signed_in_as(browser) == riley.id
    assert idp.fetches("/jwks") == 4


def test_sign_ins_with_a_rotated_key_at_once_fetch_the_keys_once_and_all_pass(
    app, session, sso_org, idp, riley
):
    """Each on its own database connection and thread: the one refetch is shared."""
    from concurrent.futures import ThreadPoolExecutor

    from webapp import deps
    from webapp.services.sso import login

    sign_in(app.test_client(), idp, riley.email)
    idp.rotate_key()
    callback = "http://localhost/login/sso/callback"
    tabs = []
    for n in range(6):
        started = login.start(
            session,
            Actor(None, None, None, None),
            email=riley.email,
            organisation_id=None,
            session_nonce=f"tab-{n}",
            redirect_uri=callback,
            insecure_ok=True,
        )
        back = parse_qs(urlsplit(idp.authorize(started.url, riley.email)).query)
        tabs.append((f"tab-{n}", started.pending, back))

    def finish(tab):
        nonce, pending, back = tab
        with deps.database.of(app).sessions() as db:
            return login.finish(
                db,
                deps.cipher.of(app),
                Actor(None, None, None, None),
                state=back["state"][0],
                code=back["code"][0],
                error=None,
                pending=pending,
                session_nonce=nonce,
                redirect_uri=callback,
                insecure_ok=True,
            ).id

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(finish, tabs)) == {riley.id}
    assert idp.fetches("/jwks") == 2  # the first sign-in's, and one refetch for all six


def test_the_admin_unbinds_an_identity_so_a_reused_address_binds_again(
    app, client, auth, session, sso_org, admin, idp, riley
):
    idp.user("idp-sub-riley", email=riley.email)
    first = app.test_client()
    sign_in(first, idp, riley.email, sub="idp-sub-riley")
    assert signed_in_as(first) == riley.id
    idp.user("idp-sub-newcomer", email=riley.email)
    refused_browser = app.test_client()
    response, _ = sign_in(refused_browser, idp, riley.email, sub="idp-sub-newcomer")
    assert response.status_code == 403
    # The IT admin sees the binding and unbinds it; Riley's sessions end.
    auth.login(admin.email)
    page = client.get(f"/admin/users/{riley.id}").get_data(as_text=True)
    assert f"Bound to one identity at {idp.url}" in page
    path = f"/admin/users/{riley.id}/sso-identity/forget"
    response = auth.post(path, form_page=f"/admin/users/{riley.id}")
    assert response.status_code == 302
    session.refresh(riley)
    assert riley.sso_sub is None and riley.sso_issuer is None
    assert first.get("/").status_code == 302  # logged out
    assert audit(session, "sso.identity_forgotten")[-1].target_id == str(riley.id)
    # The next sign-in with the address binds the identity that uses it now.
    newcomer = app.test_client()
    response, _ = sign_in(newcomer, idp, riley.email, sub="idp-sub-newcomer")
    assert response.status_code == 302 and signed_in_as(newcomer) == riley.id
    session.refresh(riley)
    assert riley.sso_sub == "idp-sub-newcomer"
    # An account bound to nothing has nothing to unbind; another organisation's is not found.
    auth.post(path, form_page=f"/admin/users/{riley.id}")
    again = auth.post(path, form_page=f"/admin/users/{riley.id}", follow_redirects=True)
    assert "not bound to an identity" in again.get_data(as_text=True)
    assert len(audit(session, "sso.identity_forgotten")) == 2
    other = make_user(session, make_org(session, name="Other Org"), Role.RECRUITER)
    forget_other = f"/admin/users/{other.id}/sso-identity/forget"
    assert auth.post(forget_other, form_page=f"/admin/users/{riley.id}").status_code == 404
