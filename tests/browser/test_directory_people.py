"""Linking a domain whose mailboxes have no accounts and scheduling a panel of them: the IT admin
connects the sandbox's Exchange domain, pastes a list of people (names, one time zone) none of
whom has a login, sets one's working hours; a recruiter then schedules a panel of them."""

import re

from playwright.sync_api import expect
from sqlalchemy import select

from models import Interview, InterviewStatus, ProfileLink, Role, User
from tests.browser.conftest import log_in
from tests.browser.test_scheduling import fill_details, show_availability
from tests.factories import make_org, make_user

PEOPLE = [
    ("Anna Becker", "anna.becker@fabrikam.example"),
    ("Ben Schulz", "ben.schulz@fabrikam.example"),
    ("Clara Hoffmann", "clara.hoffmann@fabrikam.example"),
]


def test_linking_a_domain_whose_mailboxes_have_no_accounts_and_scheduling_a_panel_of_them(
    app_page, sandbox, session, org, recruiter
):
    page = app_page
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    # A second organisation holds an account at one of the addresses: never matched.
    neighbour = make_org(session, name="Neighbour Ltd")
    twin = make_user(session, neighbour, Role.RECRUITER, email=PEOPLE[0][1], name="Not Anna")
    log_in(page, admin.email)

    page.goto("/admin/calendar/enterprise/")
    page.get_by_role("button", name="Connect Exchange").click()
    page.get_by_role("button", name="Exchange (on-premises)").click()
    page.get_by_label("Email address").fill("svc-calendar@fabrikam.example")
    page.get_by_label("Password").fill("svc-sandbox")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("fabrikam.example is connected")

    domain = page.get_by_role("region", name="Exchange: fabrikam.example")
    domain.get_by_role("link", name="Link mailboxes…").click()
    expect(page.locator("main")).to_contain_text("directory people")
    page.get_by_label("Email addresses").fill(
        "\n".join(f"{name} <{email}>" for name, email in PEOPLE)
    )
    page.get_by_role("button", name="Link these mailboxes").click()
    expect(page.get_by_role("heading", name="3 mailboxes requested")).to_be_visible()
    page.get_by_role("link", name="Back to Enterprise Connect").click()
    sandbox.deliver()  # the aggregator answers each mailbox's request
    expect(page.locator('[data-count="linked"]').first).to_have_text("3")

    # The people are listed apart from the logins, with the names the list gave.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    people = page.get_by_role("region", name="Directory people (no login)")
    for name, email in PEOPLE:
        expect(people.get_by_role("row", name=re.compile(re.escape(email)))).to_contain_text(name)
    people.get_by_role("link", name="Manage Anna Becker").click()
    expect(page.locator("dl.facts")).to_contain_text("no login")
    page.get_by_label("Day starts").fill("08:00")
    page.get_by_label("Day ends").fill("16:00")
    page.get_by_role("button", name="Save working hours").click()
    expect(page.get_by_role("status")).to_contain_text("Working hours saved")
    expect(page.get_by_label("Day starts")).to_have_value("08:00")
    page.get_by_role("button", name="Log out").click()

    # A recruiter schedules a panel of the three: none of them has ever logged in.
    log_in(page, recruiter.email)
    show_availability(page, [name for name, _email in PEOPLE])
    expect(page.locator("main")).to_contain_text("08:00–16:00")
    fill_details(page, "Panel of directory people")
    page.get_by_role("button", name="Schedule interview").click()
    expect(page.get_by_role("heading", name="Panel of directory people")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Scheduled")

    session.expire_all()
    mine = {u.email: u for u in session.scalars(select(User).where(User.organisation_id == org.id))}
    assert all(mine[email].role is Role.INTERVIEWER for _n, email in PEOPLE)
    assert all(mine[email].password_hash is None for _n, email in PEOPLE)
    links = {
        lk.user_id: lk.id
        for lk in session.scalars(select(ProfileLink).where(ProfileLink.organisation_id == org.id))
    }
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED
    assert set(interview.panel_link_ids) == {links[mine[e].id] for _n, e in PEOPLE}
    session.refresh(twin)
    assert twin.name == "Not Anna" and twin.role is Role.RECRUITER
