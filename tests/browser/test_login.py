"""A person logs in as each role and sees the navigation that role may use."""

import pytest
from playwright.sync_api import expect

from models import LOGIN_ROLES, Role
from tests.browser.conftest import log_in
from tests.factories import make_org, make_user

NAVIGATION = {
    Role.RECRUITER: ["Home", "Schedule", "Loops", "Interviews", "Pools", "My profile"],
    Role.COORDINATOR: [
        "Home",
        "My hiring managers",
        "Schedule",
        "Loops",
        "Interviews",
        "My profile",
    ],
    Role.ADMIN: [
        "Home",
        "Pools",
        "Users",
        "Calendar integration",
        "Single sign-on",
        "Erasure requests",
        "My profile",
    ],
    Role.COMPLIANCE: ["Home", "Compliance", "Erasure requests", "My profile"],
}


@pytest.mark.parametrize("role", LOGIN_ROLES)
def test_each_role_sees_its_navigation(page, session, role):
    user = make_user(session, make_org(session), role)
    log_in(page, user.email)
    expect(page.get_by_role("heading", name=f"Hello, {user.name}")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(NAVIGATION[role])
    for endpoint_label in {
        "Users",
        "Compliance",
        "My hiring managers",
        "Calendar integration",
        "Erasure requests",
        "Loops",
        "Pools",
    } - set(NAVIGATION[role]):
        expect(nav.get_by_role("link", name=endpoint_label)).to_have_count(0)


def test_wrong_password_shows_a_message(page, session):
    user = make_user(session, make_org(session), Role.RECRUITER)
    log_in(page, user.email, "definitely the wrong password")
    expect(page.get_by_role("status")).to_contain_text("Wrong email or password.")
    assert page.url.endswith("/login")


def test_admin_invites_a_user_who_sets_a_password_and_logs_in(page, session, browser, live_server):
    admin = make_user(session, make_org(session), Role.ADMIN)
    log_in(page, admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.get_by_label("Name").fill("Dana Fox")
    page.get_by_label("Email").fill("dana.fox@northwind.example")
    page.get_by_label("Role").select_option("coordinator")
    page.get_by_role("button", name="Create account").click()
    link = page.get_by_label("Invitation link", exact=True).input_value()
    assert "/invite/" in link

    invited = browser.new_context().new_page()
    invited.goto(link)
    invited.get_by_label("New password").fill("a fine long passphrase")
    invited.get_by_role("button", name="Set password and log in").click()
    expect(invited.get_by_role("heading", name="Hello, Dana Fox")).to_be_visible()
    expect(invited.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
        NAVIGATION[Role.COORDINATOR]
    )
    invited.context.close()


def test_logout_and_keyboard_use(page, session):
    user = make_user(session, make_org(session), Role.RECRUITER)
    page.goto("/login")
    page.keyboard.press("Tab")  # skip link first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Email").focus()
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Hello, {user.name}")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You have been logged out.")
    page.goto("/")
    assert "/login" in page.url
