"""Single sign-on in the browser: the login page, the organisation's provider (oidc-provider-mock
on loopback, its own authorization page), back signed in; and a refusal shown on the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from models import Role
from tests.factories import make_user
from tests.idp import Idp
from tests.webapp.test_sso import DOMAIN, configure, verify_domain


@pytest.fixture
def app_config(app_config):
    app_config["SSO_ALLOW_INSECURE_ISSUERS"] = True  # the provider runs on loopback over http
    return app_config


@pytest.fixture
def idp():
    provider = Idp()
    yield provider
    provider.stop()


@pytest.fixture
def sso_org(session, cipher, org, idp):
    admin = make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}", name="Ida Admin")
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url)
    return org


def sign_in_at_provider(page, email, sub=None):
    page.goto("/login")
    page.get_by_role("link", name="Sign in with SSO").click()
    page.get_by_label("Work email").fill(email)
    page.get_by_role("button", name="Continue to your identity provider").click()
    # The provider's own page (oidc-provider-mock's authorization form).
    page.get_by_placeholder("sub").fill(sub or email)
    page.get_by_role("button", name="Authorize").click()


def test_a_person_signs_in_with_sso(page, session, sso_org, idp, tmp_path):
    user = make_user(session, sso_org, Role.RECRUITER, email=f"sam.lee@{DOMAIN}", name="Sam Lee")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in_at_provider(page, user.email)
    expect(page.get_by_role("heading", name="Hello, Sam Lee")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Welcome, Sam Lee.")
    page.screenshot(path=str(tmp_path / "sso-signed-in.png"), full_page=True)


def test_a_refusal_is_shown_and_no_session_is_opened(page, session, sso_org, idp, tmp_path):
    sign_in_at_provider(page, f"nobody@{DOMAIN}")
    expect(page.get_by_role("status")).to_contain_text(
        "You have no account in this organisation yet"
    )
    expect(page.get_by_role("heading", name="Sign in with SSO")).to_be_visible()
    page.screenshot(path=str(tmp_path / "sso-refused.png"), full_page=True)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))  # still signed out


def test_a_foreign_domain_and_a_replayed_sign_in_are_refused(page, session, sso_org, idp):
    idp.user("mallory@elsewhere.example")
    sign_in_at_provider(page, f"sam.lee@{DOMAIN}", sub="mallory@elsewhere.example")
    expect(page.get_by_role("status")).to_contain_text(
        "not at one of your organisation's verified domains"
    )
    user = make_user(session, sso_org, Role.RECRUITER, email=f"sam.lee@{DOMAIN}", name="Sam Lee")
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in_at_provider(page, user.email)
    expect(page.get_by_role("heading", name="Hello, Sam Lee")).to_be_visible()
    callback = next(u for u in requested if "/login/sso/callback" in u)
    page.get_by_role("button", name="Log out").click()
    page.goto(callback)  # the same answer from the provider, again
    expect(page.get_by_role("status")).to_contain_text("not valid any more")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_the_it_admin_sets_up_sso_and_turns_password_login_off(page, session, org, idp, tmp_path):
    from tests.browser.conftest import log_in

    admin = make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}", name="Ida Admin")
    make_user(session, org, Role.RECRUITER, email=f"sam.lee@{DOMAIN}", name="Sam Lee")
    verify_domain(session, org)
    log_in(page, admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Single sign-on").click()
    page.get_by_label("Issuer URL").fill(idp.url)
    page.get_by_label("Client id").fill("rendezvous-client")
    page.get_by_label("Client secret").fill("a-secret-the-page-never-shows")
    page.get_by_label("Let people sign in with SSO").check()
    page.get_by_role("button", name="Save and check the provider").click()
    expect(page.get_by_role("status")).to_contain_text("Single sign-on settings saved.")
    expect(page.get_by_text("A client secret is set")).to_be_visible()
    assert "a-secret-the-page-never-shows" not in page.content()
    page.get_by_label("Off, except for the break-glass IT admin").check()
    page.get_by_label("Break-glass IT admin (keeps password login)").select_option(str(admin.id))
    page.get_by_role("button", name="Save password login").click()
    expect(page.get_by_role("status")).to_contain_text("Password login is off")
    page.screenshot(path=str(tmp_path / "sso-settings.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()

    log_in(page, f"sam.lee@{DOMAIN}")
    expect(page.get_by_role("status")).to_contain_text(
        "Your organisation signs in with single sign-on"
    )
    page.screenshot(path=str(tmp_path / "password-off.png"), full_page=True)
    log_in(page, admin.email)  # the break-glass admin still can
    expect(page.get_by_role("heading", name="Hello, Ida Admin")).to_be_visible()


@pytest.mark.parametrize("case", ["wrong issuer", "expired ID token"])
def test_a_wrong_issuer_and_an_expired_id_token_are_refused(page, session, cipher, org, case):
    from datetime import timedelta

    from tests.idp import TENANT

    provider = Idp(token_max_age=timedelta(minutes=-10 if case == "expired ID token" else 60))
    try:
        admin = make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}")
        user = make_user(session, org, Role.RECRUITER, email=f"sam.lee@{DOMAIN}")
        verify_domain(session, org)
        if case == "wrong issuer":
            provider.claim_tenant_issuer = True  # its tokens name another issuer
            configure(session, cipher, admin, provider.url + TENANT)
        else:
            configure(session, cipher, admin, provider.url)
        sign_in_at_provider(page, user.email)
        expect(page.get_by_role("status")).to_contain_text(
            "issued by another identity provider"
            if case == "wrong issuer"
            else "ID token has expired"
        )
    finally:
        provider.stop()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
