"""The IT admin connects the sandbox's Exchange domain, links 25 mailboxes (one unknown fails with
its reason), watches the counts move, retries, unlinks one and disconnects the domain."""

import re

from playwright.sync_api import expect
from sqlalchemy import select

from broker.sandbox.seed import fabrikam_people
from models import LinkStatus, MailboxRequest, MailboxStatus, ProfileLink, Role
from tests.browser.conftest import log_in
from tests.factories import make_user

GHOST = "ghost.writer@fabrikam.example"  # a Rendezvous user without a mailbox at the provider
FABRIKAM = [
    p[0]
    for p in fabrikam_people()
    if p[2] == "person"
    and p[0]
    not in {
        "ceo.office@fabrikam.example",
        "legal.hold@fabrikam.example",
        "board.secretary@fabrikam.example",
    }
][:24]


def counts(page):
    return {
        key: page.locator(f'[data-count="{key}"]').first for key in ("waiting", "linked", "failed")
    }


def test_admin_links_a_domain_in_bulk_retries_unlinks_and_disconnects(
    app_page, sandbox, session, org
):
    page = app_page
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    for email in [*FABRIKAM, GHOST]:
        make_user(session, org, Role.RECRUITER, email=email)
    log_in(page, admin.email)

    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Calendar integration"
    ).click()
    page.get_by_role("link", name="Enterprise Connect").click()
    expect(page.get_by_role("heading", name="Exchange (on-premises)")).to_be_visible()
    expect(page.locator("pre").first).to_contain_text("ApplicationImpersonation")
    page.get_by_role("button", name="Connect Exchange (on-premises)").click()

    # The aggregator's Enterprise Connect page: the service account signs in.
    expect(
        page.get_by_role("heading", name="Enterprise Connect: link a whole domain")
    ).to_be_visible()
    page.get_by_role("button", name="Exchange (on-premises)").click()
    page.get_by_label("Email address").fill("svc-calendar@fabrikam.example")
    page.get_by_label("Password").fill("svc-sandbox")
    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status")).to_contain_text("fabrikam.example is connected")
    domain = page.get_by_role("region", name="Exchange: fabrikam.example")
    facts = domain.locator("dl.facts")
    expect(facts).to_contain_text("svc-calendar@fabrikam.example")
    expect(facts).to_contain_text("service_account/accounts/manage")
    expect(domain).to_contain_text("Spree (8 seats)")

    domain.get_by_role("link", name="Link mailboxes…").click()
    page.get_by_role("button", name="Link all users").click()
    expect(page.get_by_role("heading", name="25 mailboxes requested")).to_be_visible()
    page.get_by_role("link", name="Back to Enterprise Connect").click()

    domain = page.get_by_role("region", name="Exchange: fabrikam.example")
    c = counts(page)
    expect(c["waiting"]).to_have_text("25")
    expect(c["linked"]).to_have_text("0")
    sandbox.deliver()  # the aggregator answers; the page picks the counts up by itself
    expect(c["linked"]).to_have_text("24")
    expect(c["failed"]).to_have_text("1")
    expect(c["waiting"]).to_have_text("0")
    expect(page.locator("progress")).to_have_attribute("value", "25")

    page.reload()
    ghost_row = page.get_by_role("row", name=re.compile(re.escape(GHOST)))
    expect(ghost_row).to_contain_text("Failed")
    expect(ghost_row).to_contain_text("unknown_mailbox")

    # The mailbox now exists at the provider; retry it.
    sandbox.call("POST", "/seed", json={"identities": [{"email": GHOST, "name": "Ghost Writer"}]})
    page.get_by_role("button", name="Retry failed").click()
    expect(page.get_by_role("status")).to_contain_text("Retrying 1 failed mailbox")
    c = counts(page)
    expect(c["waiting"]).to_have_text("1")
    sandbox.deliver()
    expect(c["linked"]).to_have_text("25")
    expect(c["failed"]).to_have_text("0")

    page.get_by_role("link", name=f"Unlink {FABRIKAM[0]}…").click()
    expect(page.locator("main")).to_contain_text("1 mailbox and nothing else")
    page.get_by_role("button", name=f"Unlink {FABRIKAM[0]}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{FABRIKAM[0]} is unlinked")
    expect(counts(page)["linked"]).to_have_text("24")

    page.get_by_role("link", name="Disconnect domain…").click()
    expect(page.locator("main")).to_contain_text("24 linked mailboxes are unlinked")
    page.get_by_role("button", name="Disconnect fabrikam.example (24 mailboxes, 0 rooms)").click()
    expect(page.get_by_role("status")).to_contain_text("fabrikam.example is disconnected")
    expect(page.get_by_role("region", name="Exchange: fabrikam.example")).to_have_count(0)

    session.expire_all()
    assert all(r.status is MailboxStatus.UNLINKED for r in session.scalars(select(MailboxRequest)))
    links = session.scalars(select(ProfileLink)).all()
    assert len(links) == 25 and all(
        lk.status is LinkStatus.DISCONNECTED and not lk.has_tokens for lk in links
    )
