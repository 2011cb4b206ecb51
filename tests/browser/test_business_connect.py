"""A recruiter connects a calendar through the sandbox's consent page, uses it, and disconnects."""

import re

from playwright.sync_api import expect
from sqlalchemy import select

from models import LinkStatus, ProfileLink, Role
from tests.browser.conftest import log_in
from tests.factories import make_user


def consent(page, provider_label, email, password="sandbox", exchange=False):
    """Go through the sandbox consent page as a person would."""
    page.get_by_label(provider_label).check()
    page.get_by_role("button", name="Connect your calendar").click()
    expect(page.get_by_role("heading", name="Connect your calendar")).to_be_visible()
    if exchange:
        page.get_by_label("Email address").fill(email)
    else:
        page.get_by_role("radio", name=re.compile(re.escape(email))).check()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Approve").click()


def test_google_user_connects_chooses_a_calendar_and_disconnects(app_page, session, org):
    page = app_page
    riley = make_user(
        session, org, Role.RECRUITER, email="riley.chen@northwind.example", name="Riley Chen"
    )
    log_in(page, riley.email)
    page.goto("/profile/calendar/")
    consent(page, "Google", "riley.chen@northwind.example")

    expect(page.get_by_role("status")).to_contain_text("is connected")
    expect(page.get_by_role("heading", name="Connected calendar")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Google")
    expect(facts).to_contain_text("riley.chen@northwind.example")
    expect(facts).to_contain_text("Connected since")
    holidays = page.get_by_role("row", name=re.compile("Holidays in United Kingdom"))
    expect(holidays).to_contain_text("Read-only")

    # A read-only calendar cannot take interviews.
    page.get_by_label("Write interviews to Holidays in United Kingdom").check()
    page.get_by_role("button", name="Save calendar choices").click()
    expect(page.get_by_role("status")).to_contain_text("read-only")

    writable = page.get_by_role("row").filter(has_text="Writable").first
    name = writable.locator("td").first.inner_text().replace("Primary", "").strip()
    writable.get_by_role("radio").check()
    page.get_by_label("Holidays in United Kingdom counts as busy").check()
    page.get_by_role("button", name="Save calendar choices").click()
    expect(page.get_by_role("status")).to_contain_text("Calendar choices saved.")
    expect(page.get_by_label(f"Write interviews to {name}")).to_be_checked()
    expect(page.get_by_label("Holidays in United Kingdom counts as busy")).to_be_checked()

    page.get_by_role("link", name="Disconnect this calendar…").click()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("heading", name="Calendar disconnected")).to_be_visible()
    expect(page.locator("main")).to_contain_text("deleted from Rendezvous")
    session.expire_all()
    link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == riley.id))
    assert link.status is LinkStatus.DISCONNECTED and not link.has_tokens


def test_exchange_user_connects_with_email_and_password(app_page, session, org):
    page = app_page
    user = make_user(session, org, Role.RECRUITER, email="hr@northwind.example")
    log_in(page, user.email)
    page.goto("/profile/calendar/")
    consent(page, "Exchange", "anna.becker@fabrikam.example", exchange=True)
    expect(page.locator("dl.facts")).to_contain_text("anna.becker@fabrikam.example")
    expect(page.locator("dl.facts")).to_contain_text("Exchange")


def test_assistant_sees_the_managers_delegated_calendars(app_page, session, org):
    page = app_page
    user = make_user(session, org, Role.RECRUITER, email="pat@northwind.example")
    log_in(page, user.email)
    page.goto("/profile/calendar/")
    consent(page, "Microsoft 365", "pa.office@contoso.example")
    delegated = page.get_by_role("row").filter(has_text="— Calendar")
    expect(delegated).to_have_count(3)
    expect(delegated.filter(has_text="Read-only")).to_have_count(1)
    expect(delegated.filter(has_text="Writable")).to_have_count(2)


def test_declining_shows_a_friendly_message(app_page, session, org):
    page = app_page
    user = make_user(session, org, Role.RECRUITER)
    log_in(page, user.email)
    page.goto("/profile/calendar/")
    page.get_by_label("Google").check()
    page.get_by_role("button", name="Connect your calendar").click()
    page.get_by_role("button", name="Deny").first.click()
    expect(page.get_by_role("status")).to_contain_text("You declined")


def test_disconnected_profile_shows_a_banner_and_reconnect_works(app_page, sandbox, session, org):
    page = app_page
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    log_in(page, riley.email)
    page.goto("/profile/calendar/")
    consent(page, "Google", "riley.chen@northwind.example")
    expect(page.get_by_role("heading", name="Connected calendar")).to_be_visible()
    sandbox.deliver()
    session.expire_all()
    link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == riley.id))
    sandbox.call("POST", f"/profiles/{link.profile_id}/disconnect")
    sandbox.deliver()

    page.goto("/")
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Your calendar connection needs attention")
    sandbox.call("POST", f"/profiles/{link.profile_id}/reconnect")
    banner.get_by_role("button", name="Reconnect").click()
    page.get_by_role("radio", name=re.compile("riley.chen@northwind.example")).check()
    page.get_by_label("Password").fill("sandbox")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Connected calendar")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("alert")).to_have_count(0)
