"""A compliance reviewer answers 'what do we store about this person, and who touched it' from
the UI alone, and an erasure goes from proposal to receipt."""

from playwright.sync_api import expect

from models import Role
from tests.browser.conftest import log_in
from tests.factories import assign, make_org, make_user


def test_reviewer_finds_what_is_stored_and_who_touched_it(page, session, browser, live_server):
    org = make_org(session, "Northwind Talent")
    admin = make_user(session, org, Role.ADMIN, email="alex@northwind.example", name="Alex Kim")
    reviewer = make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")
    sam = make_user(session, org, Role.RECRUITER, email="sam@northwind.example", name="Sam Patel")
    morgan = make_user(session, org, Role.COORDINATOR, email="morgan@northwind.example")
    assign(session, morgan, sam)

    # The admin changes Sam's role: an action the reviewer must be able to find.
    admin_page = browser.new_context(base_url=live_server.url).new_page()
    log_in(admin_page, admin.email)
    admin_page.goto(f"/admin/users/{sam.id}")
    admin_page.get_by_label("Role").select_option("coordinator")
    admin_page.get_by_role("button", name="Change role").click()
    expect(admin_page.get_by_role("status")).to_contain_text("Role changed")
    admin_page.context.close()

    log_in(page, reviewer.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance").click()
    expect(page.get_by_role("heading", name="What Rendezvous stores")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Calendar content")

    page.get_by_role("navigation", name="Compliance").get_by_role("link", name="People").click()
    page.get_by_label("Name or email").fill("Sam")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Sam Patel").click()
    expect(page.get_by_role("heading", name="user_account")).to_be_visible()
    expect(page.locator("main")).to_contain_text("hashed (not reversible)")
    audit = page.locator("section", has=page.get_by_role("heading", name="audit_entry"))
    expect(audit).to_contain_text("user.role_changed")
    expect(audit).to_contain_text("alex@northwind.example")

    page.get_by_role("navigation", name="Compliance").get_by_role(
        "link", name="Audit trail"
    ).click()
    page.get_by_label("Action starts with").fill("user.role")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("alex@northwind.example")


def test_erasure_from_proposal_to_receipt(page, session, browser, live_server):
    org = make_org(session)
    admin = make_user(session, org, Role.ADMIN)
    reviewer = make_user(session, org, Role.COMPLIANCE)
    leaver = make_user(session, org, Role.RECRUITER, name="Lee Leaver")
    log_in(page, reviewer.email)
    page.goto(f"/compliance/people/{leaver.id}")
    page.get_by_label("Keep them in the calendars").check()
    page.get_by_role("button", name="Propose erasure").click()
    expect(page.get_by_role("status")).to_contain_text("An IT admin must confirm it")

    admin_page = browser.new_context(base_url=live_server.url).new_page()
    log_in(admin_page, admin.email)
    admin_page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Erasure requests"
    ).click()
    admin_page.get_by_role("button", name="Confirm erasure").click()
    expect(admin_page.get_by_role("heading", name="Erasure receipt")).to_be_visible()
    expect(admin_page.locator("main")).to_contain_text("accounts deleted: 1")
    admin_page.context.close()

    page.goto(f"/compliance/people/{leaver.id}")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
