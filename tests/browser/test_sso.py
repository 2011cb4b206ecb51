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
