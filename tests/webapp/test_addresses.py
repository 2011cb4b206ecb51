"""Addresses belong to organisations, not to the whole installation (issue 16).

One address may have an account in several organisations; an organisation's admin never learns
whether it has one elsewhere (not from an invitation, not from a login, not from its timing);
and an organisation that verified a domain (Enterprise Connect with Google Workspace or
Office 365) is the only one that can invite people at it.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from models import AuditEntry, Role, User
from tests.conftest import AuthActions, csrf_token
from tests.factories import PASSWORD, make_org, make_user
from tests.tenants import seed_neighbour
from tests.webapp.test_enterprise import connect_domain
from webapp import deps, security

SHARED = "sam.shared@gmail.example"
WRONG = "Wrong email or password."


def _admin(app, session, org, email):
    admin = make_user(session, org, Role.ADMIN, email=email)
    client = app.test_client()
    AuthActions(client).login(admin.email)
    return client, AuthActions(client)


def _invite(auth, email, name="Sam Shared"):
    return auth.post(
        "/admin/users",
        {"name": name, "email": email, "role": "recruiter"},
        form_page="/admin/users",
    )


def _accept(app, response, password):
    link = re.search(r'value="https?://[^/"]+(/invite/[^"]+)"', response.get_data(as_text=True))
    browser = app.test_client()
    return browser.post(
        link.group(1), data={"csrf_token": csrf_token(browser, link.group(1)), "password": password}
    )


def _page(response, *secrets_):
    """The page with what differs between two invitations (address, link) taken out."""
    text = re.sub(r"/invite/[\w-]+", "/invite/…", response.get_data(as_text=True))
    text = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "csrf", text)
    text = re.sub(r"/admin/users/\d+", "/admin/users/…", text)
    for secret in secrets_:
        text = text.replace(secret, "…")
    return text


def test_an_address_has_an_account_in_each_organisation_that_invites_it(app, session):
    alpha, beta = make_org(session, "Alpha"), make_org(session, "Beta")
    make_user(session, alpha, Role.RECRUITER, email=SHARED)
    _, beta_admin = _admin(app, session, beta, "admin@beta.example")

    # Beta's admin gets the same answer for an address Alpha holds as for one nobody holds.
    held = _invite(beta_admin, SHARED)
    fresh = _invite(beta_admin, "nobody.yet@gmail.example")
    assert held.status_code == fresh.status_code == 201
    rows = session.scalars(select(User).where(User.email == SHARED).order_by(User.id)).all()
    assert [u.organisation_id for u in rows] == [alpha.id, beta.id]
    # Only Beta's own accounts make an address taken, for Beta.
    again = _invite(beta_admin, SHARED)
    assert again.status_code == 400 and "already exists" in again.get_data(as_text=True)


def test_invitation_pages_do_not_depend_on_other_organisations(app, session):
    alpha = make_org(session, "Alpha")
    make_user(session, alpha, Role.RECRUITER, email="held@gmail.example")
    pages = []
    for org_name, email in (("beta", "held@gmail.example"), ("gamma", "fresh@gmail.example")):
        org = make_org(session, "Same name")
        admin = make_user(
            session, org, Role.ADMIN, email=f"admin@{org_name}.example", name="The Admin"
        )
        client = app.test_client()
        AuthActions(client).login(admin.email)
        response = _invite(AuthActions(client), email, name="Person")
        assert response.status_code == 201
        pages.append(_page(response, email, admin.email))
    assert pages[0] == pages[1]


def test_one_address_logs_in_to_the_account_its_password_opens(app, session):
    alpha, beta = make_org(session, "Alpha Recruiting"), make_org(session, "Beta Staffing")
    _, alpha_admin = _admin(app, session, alpha, "admin@alpha.example")
    _, beta_admin = _admin(app, session, beta, "admin@beta.example")
    assert _accept(app, _invite(alpha_admin, SHARED), "alpha's long password").status_code == 302
    assert _accept(app, _invite(beta_admin, SHARED), "beta's long password!").status_code == 302
    alpha_user, beta_user = session.scalars(
        select(User).where(User.email == SHARED).order_by(User.id)
    ).all()
    # The second account took the first one's salt: one argon2 computation checks both.
    assert alpha_user.password_hash.split("$")[-2] == beta_user.password_hash.split("$")[-2]

    for password, expected in (
        ("alpha's long password", alpha_user),
        ("beta's long password!", beta_user),
    ):
        client = app.test_client()
        response = AuthActions(client).login(SHARED, password)
        assert response.status_code == 302 and response.headers["Location"] == "/"
        profile = client.get("/profile/").get_data(as_text=True)
        assert expected.organisation.name in profile
    wrong = AuthActions(app.test_client()).login(SHARED, "neither of the two passwords")
    assert wrong.status_code == 401 and WRONG in wrong.get_data(as_text=True)
    failed = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.login_failed")
    ).all()
    assert {(e.organisation_id, e.detail["reason"]) for e in failed} == {
        (alpha.id, "wrong password"),
        (beta.id, "wrong password"),
    }


def test_the_same_password_in_two_organisations_asks_which_one(app, session):
    alpha, beta = make_org(session, "Alpha Recruiting"), make_org(session, "Beta Staffing")
    make_user(session, alpha, Role.RECRUITER, email=SHARED, name="Sam at Alpha")
    beta_user = make_user(session, beta, Role.COORDINATOR, email=SHARED, name="Sam at Beta")
    make_org(session, "Gamma Unrelated")
    client = app.test_client()
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": SHARED,
            "password": PASSWORD,
            "next": "/profile/",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login/organisation"
    page = client.get("/login/organisation").get_data(as_text=True)
    assert "Alpha Recruiting (Recruiter / hiring manager)" in page
    assert "Beta Staffing (Coordinator)" in page and "Gamma" not in page
    assert client.get("/").status_code == 302  # not logged in yet
    # Only the accounts the password opened can be chosen.
    other = make_user(session, make_org(session), Role.ADMIN)
    token = csrf_token(client, "/login/organisation")
    refused = client.post("/login/organisation", data={"csrf_token": token, "user_id": other.id})
    assert refused.status_code == 400 and client.get("/").status_code == 302
    chosen = client.post("/login/organisation", data={"csrf_token": token, "user_id": beta_user.id})
    assert chosen.status_code == 302 and chosen.headers["Location"] == "/profile/"
    assert "Sam at Beta" in client.get("/").get_data(as_text=True)
    logins = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login")).all()
    assert [(e.organisation_id, e.actor_id) for e in logins] == [(beta.id, beta_user.id)]
    # The choice is used up with the login.
    assert client.get("/login/organisation").status_code == 302


def test_a_login_checks_every_account_at_an_address_with_one_computation(app, session, monkeypatch):
    """How long a login takes does not tell how many organisations know the address."""
    import argon2._password_hasher as hasher_module

    calls = []
    real_raw, real_verify = security.hash_secret_raw, hasher_module.verify_secret
    monkeypatch.setattr(
        security, "hash_secret_raw", lambda *a, **k: calls.append("raw") or real_raw(*a, **k)
    )
    monkeypatch.setattr(
        hasher_module,
        "verify_secret",
        lambda *a, **k: calls.append("verify") or real_verify(*a, **k),
    )
    alpha = make_org(session)
    one = make_user(session, alpha, Role.RECRUITER, email="one@gmail.example")
    three = make_user(session, alpha, Role.RECRUITER, email="three@gmail.example")
    seed_neighbour(session, deps.cipher.of(app), [three])
    seed_neighbour(session, deps.cipher.of(app), [three])
    make_user(session, alpha, Role.RECRUITER, email="invited@gmail.example", password=False)
    for email in ("nobody@gmail.example", one.email, three.email, "invited@gmail.example"):
        for password in (PASSWORD, "a wrong password"):
            calls.clear()
            AuthActions(app.test_client()).login(email, password)
            assert len(calls) == 1, (email, password, calls)


def _domain_org(app, session, sandbox, provider):
    from tests.webapp.test_enterprise import ADMINS

    org = make_org(session, f"Owner of {ADMINS[provider][1]}")
    client, auth = _admin(app, session, org, f"it.{provider}@owner.example")
    connect_domain(client, auth, session, sandbox, provider)
    return org, auth, ADMINS[provider][1]


def test_a_verified_domain_belongs_to_its_organisation(app, session, sandbox, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    owner, owner_admin, domain = _domain_org(app, session, sandbox, "google")
    make_user(session, owner, Role.RECRUITER, email=f"known@{domain}")
    beta = make_org(session, "Beta")
    beta_client, beta_admin = _admin(app, session, beta, "admin@beta.example")

    known = _invite(beta_admin, f"known@{domain}")
    unknown = _invite(beta_admin, f"unknown@{domain}")
    assert known.status_code == unknown.status_code == 400
    assert "belong to another organisation" in known.get_data(as_text=True)
    assert _page(known, "known") == _page(unknown, "unknown")  # nothing about the address
    assert (
        session.scalar(
            select(User.id).where(User.organisation_id == beta.id, User.email.endswith(domain))
        )
        is None
    )
    # The owner invites there as before; the Enterprise Connect page says so.
    assert _invite(owner_admin, f"new.hire@{domain}").status_code == 201
    page = owner_admin._client.get("/admin/calendar/enterprise/").get_data(as_text=True)
    assert f"no other organisation can invite people at {domain}" in page


def test_an_invitation_made_before_the_domain_was_verified_cannot_be_completed(
    app, session, sandbox, live_server
):
    from tests.webapp.test_enterprise import ADMINS

    app.config["PUBLIC_BASE_URL"] = live_server.url
    domain = ADMINS["google"][1]
    beta = make_org(session, "Beta")
    _, beta_admin = _admin(app, session, beta, "admin@beta.example")
    early = _invite(beta_admin, f"squatted@{domain}")
    assert early.status_code == 201
    squatted = session.scalar(select(User).where(User.email == f"squatted@{domain}"))

    _domain_org(app, session, sandbox, "google")
    accepted = _accept(app, early, "a long enough password")
    assert accepted.status_code == 400
    assert "belong to another organisation" in accepted.get_data(as_text=True)
    reissued = beta_admin.post(
        f"/admin/users/{squatted.id}/invite", form_page=f"/admin/users/{squatted.id}"
    )
    assert "belong to another organisation" in beta_admin._client.get(
        reissued.headers.get("Location", f"/admin/users/{squatted.id}")
    ).get_data(as_text=True)
    session.expire_all()
    assert session.get(User, squatted.id).password_hash is None


def test_an_exchange_connection_verifies_nothing(app, session, sandbox, live_server):
    """An Exchange admin names the server, which need not be the domain's: no ownership."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    _owner, owner_admin, domain = _domain_org(app, session, sandbox, "exchange")
    _, beta_admin = _admin(app, session, make_org(session, "Beta"), "admin@beta.example")
    assert _invite(beta_admin, f"anyone@{domain}").status_code == 201
    page = owner_admin._client.get("/admin/calendar/enterprise/").get_data(as_text=True)
    assert "Not verified" in page
