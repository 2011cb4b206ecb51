"""A compliance reviewer answers 'what do we store about this person, and who touched it' from
the UI alone, and an erasure goes from proposal to receipt."""

import os
import re
import shutil

from playwright.sync_api import expect

from models import Role
from tests.browser.conftest import log_in
from tests.factories import assign, make_org, make_user

#: Where to copy the screenshots for a person to look at (unset: they stay in tmp_path).
SCREENSHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")


def test_reviewer_finds_what_is_stored_and_who_touched_it(
    page, session, browser, live_server, tmp_path
):
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
    # Read by purpose first; the tables and columns are folded below until opened.
    expect(page.get_by_role("heading", name="Calendar connections")).to_be_visible()
    expect(page.get_by_role("cell", name="Calendar links: whose calendar account")).to_be_visible()
    column = page.locator("details", has=page.locator("summary", has_text="profile_link"))
    expect(column.get_by_role("cell", name="access_token", exact=True)).to_be_hidden()
    page.screenshot(path=str(tmp_path / "inventory.png"), full_page=True)
    for name in ("Accounts and roles", "Calendar connections"):
        page.locator("section", has=page.get_by_role("heading", name=name)).screenshot(
            path=str(tmp_path / f"inventory-{name.split()[0].lower()}.png")
        )
    column.locator("summary").click()
    expect(column.get_by_role("cell", name="access_token", exact=True)).to_be_visible()
    page.locator("section", has=page.get_by_role("heading", name="Tables and columns")).screenshot(
        path=str(tmp_path / "inventory-detail.png")
    )

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
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("alex@northwind.example")
    expect(rows).to_contain_text("An IT admin changed someone's role.")
    # The legend says what every code means, by kind; opening one shows its codes.
    legend = page.locator(
        "section", has=page.get_by_role("heading", name="What the action codes mean")
    )
    legend.locator("summary").filter(has_text=re.compile(r"^Erasure")).click()
    expect(legend.get_by_text("A person was erased; only the receipt remains.")).to_be_visible()
    # Filtering by the kind "Erasure" is offered from the same table.
    page.get_by_label("Kind of action").select_option(label="Erasure")
    page.get_by_label("Action starts with").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main")).to_contain_text("0 entries")
    page.screenshot(path=str(tmp_path / "audit.png"), full_page=True)
    legend.screenshot(path=str(tmp_path / "audit-legend.png"))
    if SCREENSHOTS:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, SCREENSHOTS)


def test_erasure_from_proposal_to_confirmation_and_receipt(
    page, session, browser, live_server, tmp_path
):
    """The reviewer proposes; the IT admin reads who and what will happen, types the address
    (a wrong one is refused, nothing erased), confirms and lands on the receipt's own page,
    which survives a reload and which the reviewer reopens from the list."""
    org = make_org(session)
    admin = make_user(session, org, Role.ADMIN, name="Alex Kim")
    reviewer = make_user(session, org, Role.COMPLIANCE, name="Jordan Diaz")
    leaver = make_user(
        session, org, Role.RECRUITER, name="Lee Leaver", email="lee.leaver@northwind.example"
    )
    leaver_id = leaver.id
    log_in(page, reviewer.email)
    page.goto(f"/compliance/people/{leaver_id}")
    page.get_by_label("Keep them in the calendars").check()
    page.get_by_role("button", name="Propose erasure").click()
    expect(page.get_by_role("status")).to_contain_text("An IT admin must confirm it")

    admin_page = browser.new_context(base_url=live_server.url).new_page()
    log_in(admin_page, admin.email)
    admin_page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Erasure requests"
    ).click()
    expect(admin_page.locator("main")).to_contain_text("Lee Leaver (lee.leaver@northwind.example)")
    admin_page.screenshot(path=str(tmp_path / "erasure-list.png"), full_page=True)
    admin_page.get_by_role("link", name="Review and confirm").click()
    main = admin_page.locator("main")
    expect(main.get_by_role("heading", name="Who")).to_be_visible()
    expect(main).to_contain_text("Recruiter / hiring manager")
    expect(main).to_contain_text(f"by Jordan Diaz ({reviewer.email})")
    expect(main.get_by_role("heading", name="What confirming will do")).to_be_visible()
    expect(main.locator("tr", has_text="accounts deleted")).to_contain_text("1")
    admin_page.screenshot(path=str(tmp_path / "erasure-confirm.png"), full_page=True)

    # A wrong address is refused and nothing is erased.
    admin_page.get_by_label("To confirm, type their email address").fill("lee@northwind.example")
    admin_page.get_by_role("button", name="Erase Lee Leaver").click()
    expect(admin_page.get_by_role("status")).to_contain_text(
        "type the person's email address exactly"
    )
    admin_page.screenshot(path=str(tmp_path / "erasure-refused.png"), full_page=True)

    admin_page.get_by_label("To confirm, type their email address").fill(leaver.email)
    admin_page.get_by_role("button", name="Erase Lee Leaver").click()
    expect(admin_page.get_by_role("heading", name="Erasure receipt")).to_be_visible()
    receipt_url = admin_page.url
    assert "/compliance/erasures/receipts/" in receipt_url
    expect(admin_page.locator("tr", has_text="accounts deleted")).to_contain_text("1")
    expect(admin_page.locator("main")).not_to_contain_text("Lee Leaver")
    admin_page.screenshot(path=str(tmp_path / "erasure-receipt.png"), full_page=True)
    admin_page.reload()  # a GET: reloading shows the receipt again, erasing nothing twice
    expect(admin_page.get_by_role("heading", name="Erasure receipt")).to_be_visible()
    admin_page.context.close()

    # The reviewer reopens the receipt from the list of decided requests.
    page.get_by_role("navigation", name="Compliance").get_by_role(
        "link", name="Erasure requests"
    ).click()
    page.screenshot(path=str(tmp_path / "erasure-decided.png"), full_page=True)
    page.get_by_role("link", name="Receipt #").click()
    expect(page.get_by_role("heading", name="Erasure receipt")).to_be_visible()
    assert page.url == receipt_url
    expect(page.locator("main")).to_contain_text(f"User #{leaver_id} was erased")
    page.goto(f"/compliance/people/{leaver_id}")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    if SCREENSHOTS:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, SCREENSHOTS)
