"""The IT admin pastes a list of mailboxes and watches the table's rows (not just the bar) turn
Linked or Failed while the link job runs; a 5,000-line directory export answers with a summary
and a download of its unused lines."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from models import Role
from tests.browser.conftest import log_in
from tests.browser.test_enterprise import FABRIKAM
from tests.factories import make_user

SHOTS: list[str] = []


def shot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.append(str(path))


def connect_fabrikam(page) -> None:
    page.goto("/admin/calendar/enterprise/")
    page.get_by_role("button", name="Connect Exchange (on-premises)").click()
    page.get_by_role("button", name="Exchange (on-premises)").click()
    page.get_by_label("Email address").fill("svc-calendar@fabrikam.example")
    page.get_by_label("Password").fill("svc-sandbox")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("fabrikam.example is connected")


def test_rows_turn_linked_and_failed_while_the_link_job_runs(
    app_page, sandbox, session, org, tmp_path
):
    page = app_page
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    for email in FABRIKAM[:4]:
        make_user(session, org, Role.RECRUITER, email=email)
    sandbox.call("PUT", "/mailbox-failures", json={"mailboxes": {FABRIKAM[3]: "mailbox_locked"}})
    log_in(page, admin.email)
    connect_fabrikam(page)
    shot(page, tmp_path, "1-guides")
    # The Microsoft 365 / Office 365 consent helper: the link appears inside its own form.
    guide = page.get_by_role("article", name="Microsoft 365 / Office 365")
    guide.get_by_label("Tenant id or verified domain").fill("contoso.onmicrosoft.com")
    guide.get_by_label("Application (client) id of the calendar service").fill(
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    )
    guide.get_by_role("button", name="Make the admin-consent link").click()
    guide = page.get_by_role("article", name="Microsoft 365 / Office 365")
    expect(guide.locator("form.ec-consent a#consent-link")).to_have_attribute(
        "href",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent"
        "?client_id=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    )
    guide.screenshot(path=str(tmp_path / "1b-consent.png"))

    domain = page.get_by_role("region", name="Exchange: fabrikam.example")
    domain.get_by_role("link", name="Link mailboxes…").click()
    page.get_by_label("Email addresses").fill(
        "email,name,timezone\n"
        + "\n".join(f"{e},Person {i},Europe/London" for i, e in enumerate(FABRIKAM[:4]))
        + "\nbroken line,Nobody,\n"
    )
    page.get_by_role("button", name="Link these mailboxes").click()
    expect(page.get_by_role("heading", name="4 mailboxes requested, 1 not used")).to_be_visible()
    page.get_by_role("link", name="Back to Enterprise Connect").click()

    table = page.get_by_role("table", name="Mailboxes of fabrikam.example")
    retry = page.get_by_role("button", name=re.compile("^Retry failed"))
    expect(table.get_by_text("Pending", exact=True)).to_have_count(4)
    expect(retry).to_be_disabled()
    # Nothing answered yet: the expected time comes from the background budget, and says so.
    eta = page.locator('section[data-progress-url] [data-role="eta"]')
    expect(eta).to_contain_text("At best under a minute to go")
    expect(eta).to_contain_text("budget for background work")
    shot(page, tmp_path, "2-pending")

    sandbox.deliver()  # the aggregator answers: the rows follow without a reload
    expect(eta).to_be_hidden()  # nothing waits: the estimate goes, live with the counts
    expect(table.get_by_text("Linked", exact=True)).to_have_count(3)
    locked = table.get_by_role("row", name=re.compile(re.escape(FABRIKAM[3])))
    expect(locked).to_contain_text("Failed")
    expect(locked).to_contain_text("mailbox_locked")
    expect(table.get_by_text("Pending", exact=True)).to_have_count(0)
    expect(retry).to_be_enabled()
    expect(retry).to_have_text("Retry failed (1)")
    shot(page, tmp_path, "3-answered")

    # Retry: the row goes back to Pending, then Linked, still without a reload.
    sandbox.call("PUT", "/mailbox-failures", json={"mailboxes": {}})
    retry.click()
    expect(page.get_by_role("status")).to_contain_text("Retrying 1 failed mailbox")
    locked = page.get_by_role("table", name="Mailboxes of fabrikam.example").get_by_role(
        "row", name=re.compile(re.escape(FABRIKAM[3]))
    )
    expect(locked).to_contain_text("Pending")
    # Four answered a moment ago: now the estimate is the observed pace.
    expect(eta).to_contain_text("to go at the current pace")
    sandbox.deliver()
    expect(locked).to_contain_text("Linked")
    expect(eta).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile("^Retry failed"))).to_be_disabled()

    # Unlinking asks first and names what happens.
    locked.get_by_role("link", name=f"Unlink {FABRIKAM[3]}…").click()
    expect(page.get_by_role("heading", name=f"Unlink {FABRIKAM[3]}?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("This affects 1 mailbox and nothing else")
    shot(page, tmp_path, "4-confirm-unlink")
    page.get_by_role("link", name="Keep it").click()
    page.get_by_role("link", name="Disconnect domain…").click()
    expect(page.locator("main")).to_contain_text("4 linked mailboxes are unlinked")
    shot(page, tmp_path, "5-confirm-disconnect")


def test_a_five_thousand_line_paste_answers_with_a_summary_and_a_download(
    app_page, sandbox, session, org, tmp_path
):
    page = app_page
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    for email in FABRIKAM[:2]:
        make_user(session, org, Role.RECRUITER, email=email)
    log_in(page, admin.email)
    connect_fabrikam(page)
    lines = ["email,name,timezone", *(f"{e},Known,Europe/Berlin" for e in FABRIKAM[:2])]
    lines += [
        f"{FABRIKAM[i % 2]},Again {i}," if i % 2 else f"zone.{i}@fabrikam.example,Z,Mars"
        for i in range(4998)
    ]
    page.goto("/admin/calendar/enterprise/")
    page.get_by_role("link", name="Link mailboxes…").click()
    # A paste puts the whole text in at once (fill would type it in, far too slowly here).
    page.get_by_label("Email addresses").evaluate(
        "(el, text) => { el.value = text; }", "\n".join(lines)
    )
    page.get_by_role("button", name="Link these mailboxes").click()

    expect(
        page.get_by_role("heading", name="2 mailboxes requested, 4,998 not used")
    ).to_be_visible()
    reasons = page.get_by_role("table", name="Not used: nothing was sent for these")
    expect(reasons.get_by_role("row")).to_have_count(3)  # the header and two reasons
    expect(reasons.get_by_role("row", name=re.compile("Listed more than once"))).to_contain_text(
        "2,499"
    )
    expect(reasons.get_by_role("row", name=re.compile("Unknown time zone"))).to_contain_text(
        "and 2,494 more"
    )
    shot(page, tmp_path, "6-summary")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download all 4,998 unused lines")).click()
    text = open(info.value.path(), encoding="utf-8-sig").read()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["line", "entry", "reason"] and len(table) == 4999
    # Reloading the summary (a refresh after the POST) sends nothing again.
    page.reload()
    expect(
        page.get_by_role("heading", name="2 mailboxes requested, 4,998 not used")
    ).to_be_visible()
    page.get_by_role("link", name="Back to Enterprise Connect").click()
    expect(page.locator('[data-count="total"]').first).to_have_text("2")
