"""Directory people: Enterprise Connect links mailboxes of people without a login, who then sit
on panels, get working hours from the IT admin, can be invited to log in later without
relinking, and are covered by the compliance export and erasure like accounts.

Every test seeds a second organisation holding the same addresses: it is never matched."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import (
    AuditEntry,
    Interview,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    SchedulingPreference,
    User,
)
from tests.factories import assign, make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.test_enterprise import FABRIKAM, connect_domain, request_list
from tests.webapp.test_scheduling import actor_of, broker_cipher, schedule
from webapp import deps
from webapp.services import Actor, accounts, authentication, directory
from webapp.services.availability import free_slots, model, roster
from webapp.services.compliance import erasure, subjects
from webapp.services.enterprise import mailboxes
from webapp.services.enterprise.address_list import Address
from webapp.services.errors import Forbidden, Invalid

ANNA, BEN, CLARA = FABRIKAM[0], FABRIKAM[1], FABRIKAM[2]


@pytest.fixture
def neighbour(session):
    """Another organisation with an account and a directory person at the same addresses."""
    other = make_org(session, name="Neighbour Ltd")
    make_user(session, other, Role.RECRUITER, email=ANNA, name="Neighbour's Anna")
    session.add(
        User(
            organisation_id=other.id,
            email=BEN,
            name="Neighbour's Ben",
            role=Role.INTERVIEWER,
            active=True,
            session_version=1,
        )
    )
    session.commit()
    return other


def _people(session, org, emails):
    session.expire_all()
    return {
        u.email: u
        for u in session.scalars(
            select(User).where(User.organisation_id == org.id, User.email.in_(emails))
        )
    }


def _link_directory(app, admin_client, session, sandbox, org, entries):
    """Connect fabrikam.example and link ``entries`` through the service (addresses with a name
    and time zone, as the mailbox page's list parser yields them); deliver the callbacks."""
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    admin = session.scalar(select(User).where(User.email == "it@northwind.example"))
    with app.test_request_context():
        from webapp.callbacks import service_account_callback_url

        report = mailboxes.request_mailboxes(
            session,
            actor_of(admin),
            link.id,
            addresses=entries,
            callback_url=service_account_callback_url,
            jobs=deps.jobs.of(app),
        )
    assert all(d["ok"] for d in sandbox.deliver())
    return link, report


def test_linking_mailboxes_without_accounts_makes_directory_people_of_this_organisation_only(
    app, admin_client, session, sandbox, org, neighbour
):
    clara = make_user(session, org, Role.RECRUITER, email=CLARA, name="Clara Account")
    before = {u.id: (u.name, u.role, u.timezone) for u in session.scalars(select(User))}
    link, report = _link_directory(
        app,
        admin_client,
        session,
        sandbox,
        org,
        [
            Address(ANNA, "Anna From Directory", "Europe/Berlin", line=1),
            Address(BEN, line=2),
            Address(CLARA, "Not Her Name", "America/New_York", line=3),
            Address("x@fabrikam.example", "Bad\x00Name", "Mars/Base", line=4),
        ],
    )
    assert report.queued == 4 and not report.rejected
    people = _people(session, org, [ANNA, BEN, CLARA, "x@fabrikam.example"])
    anna, ben = people[ANNA], people[BEN]
    assert anna.role is Role.INTERVIEWER and anna.is_directory_person
    assert (anna.name, anna.timezone) == ("Anna From Directory", "Europe/Berlin")
    assert ben.name == directory.default_name(BEN) and ben.timezone is None
    odd = people["x@fabrikam.example"]  # a name with a control character, an unknown zone
    assert odd.name == "X" and odd.timezone is None
    for person in (anna, ben, odd):
        assert person.password_hash is None and person.invite_token_hash is None
    # An account is matched, not duplicated; the admin's list does not rename it, and only
    # fills a time zone the person has not set.
    assert people[CLARA].id == clara.id and people[CLARA].role is Role.RECRUITER
    assert people[CLARA].name == "Clara Account"
    assert people[CLARA].timezone == "America/New_York"
    # The neighbour's rows at the same addresses are untouched and never linked.
    for user in session.scalars(select(User).where(User.organisation_id == neighbour.id)):
        assert (user.name, user.role, user.timezone) == before[user.id]
    owners = set(
        session.scalars(
            select(User.organisation_id).join(MailboxRequest, MailboxRequest.user_id == User.id)
        )
    )
    assert owners == {org.id}
    linked = {
        p.user_id: p
        for p in session.scalars(select(ProfileLink).where(ProfileLink.organisation_id == org.id))
    }
    for person in (anna, ben, people[CLARA]):
        assert linked[person.id].mode is LinkMode.ENTERPRISE
        assert linked[person.id].status is LinkStatus.ACTIVE
    assert not session.scalar(
        select(func.count(ProfileLink.id)).where(ProfileLink.organisation_id == neighbour.id)
    )
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "ec.mailboxes_requested"))
    assert entry.detail["directory_people_created"] == 3
    # Listing them again finds the same people (no second row per address).
    assert (
        session.scalar(
            select(func.count(User.id)).where(User.organisation_id == org.id, User.email == ANNA)
        )
        == 1
    )


def test_directory_people_cannot_log_in(app, client, auth, session, org, neighbour):
    person = User(
        organisation_id=org.id,
        email=ANNA,
        name="Anna",
        role=Role.INTERVIEWER,
        active=True,
        session_version=1,
        password_hash=None,
    )
    session.add(person)
    session.commit()
    response = auth.login(ANNA, password="whatever-password-1")
    assert response.status_code != 302 or response.headers["Location"] != "/"
    # Even a forged session naming them opens nothing.
    assert authentication.load_session_user(session, f"{person.id}:1") is None
    assert not person.is_active
    # The neighbour's account at the same address still logs in with its own password.
    client2 = app.test_client()
    from tests.conftest import AuthActions

    assert AuthActions(client2).login(ANNA).status_code == 302


def test_mailbox_page_links_a_pasted_list_of_people_without_accounts(
    admin_client, session, sandbox, org, neighbour
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    page = request_list(auth, link, [ANNA, BEN]).get_data(as_text=True)
    assert "2 mailboxes requested" in page
    assert all(d["ok"] for d in sandbox.deliver())
    people = _people(session, org, [ANNA, BEN])
    assert {p.role for p in people.values()} == {Role.INTERVIEWER}
    users_page = client.get("/admin/users").get_data(as_text=True)
    assert "Directory people (no login)" in users_page
    assert directory.default_name(ANNA) in users_page
    assert "Neighbour&#39;s" not in users_page and "Neighbour's" not in users_page


@pytest.fixture
def directory_panel(app, admin_client, session, sandbox, org, neighbour):
    _link_directory(
        app,
        admin_client,
        session,
        sandbox,
        org,
        [Address(ANNA, "Anna Directory", "Europe/Berlin"), Address(BEN)],
    )
    people = _people(session, org, [ANNA, BEN])
    links = {
        p.user_id: p
        for p in session.scalars(select(ProfileLink).where(ProfileLink.organisation_id == org.id))
    }
    return [(people[e], links[people[e].id]) for e in (ANNA, BEN)]


def test_admin_sets_working_hours_of_a_directory_person_and_bad_input_changes_nothing(
    admin_client, session, org, neighbour, directory_panel
):
    client, auth = admin_client
    (anna, _), _ = directory_panel
    page = client.get(f"/admin/users/{anna.id}").get_data(as_text=True)
    assert "Invite to log in" in page and "Working hours" in page
    assert "Change role" not in page
    form = f"/admin/users/{anna.id}"
    for bad in (
        {"start": "17:00", "end": "09:00", "weekdays": ["1"]},
        {"start": "9am", "end": "17:00", "weekdays": ["1"]},
        {"start": "09:00", "end": "17:00"},
    ):
        assert auth.post(f"{form}/hours", bad, form_page=form).status_code == 400
    assert (
        session.scalar(select(SchedulingPreference).where(SchedulingPreference.user_id == anna.id))
        is None
    )
    saved = auth.post(
        f"{form}/hours",
        {"start": "08:00", "end": "15:30", "weekdays": ["1", "2", "3"]},
        form_page=form,
    )
    assert saved.status_code == 303
    org_row = session.get(type(org), org.id)
    hours = roster.hours_for(session, [anna], org_row)[anna.id]
    assert (hours.start_minute, hours.end_minute, hours.weekdays, hours.tzid) == (
        480,
        930,
        "123",
        "Europe/Berlin",
    )
    # The neighbour's namesake is not this admin's to change.
    twin = session.scalar(select(User).where(User.email == ANNA, User.organisation_id != org.id))
    assert (
        auth.post(
            f"/admin/users/{twin.id}/hours",
            {"start": "08:00", "end": "15:30", "weekdays": ["1"]},
            form_page=form,
        ).status_code
        == 404
    )
    assert (
        session.scalar(select(SchedulingPreference).where(SchedulingPreference.user_id == twin.id))
        is None
    )


def test_directory_people_sit_on_panels_a_recruiter_and_a_coordinator_schedule(
    app, session, sandbox, org, recruiter, neighbour, directory_panel
):
    (anna, anna_link), (ben, ben_link) = directory_panel
    choices = {u.id for _l, u in roster.panel_choices(session, actor_of(recruiter))}
    assert {anna.id, ben.id} <= choices
    assert (
        not {
            u.id for u in session.scalars(select(User).where(User.organisation_id == neighbour.id))
        }
        & choices
    )
    query = model.Query(
        panel_link_ids=(anna_link.id, ben_link.id), start_date=next_weekday(1), days=5
    )
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    assert grid.slots and {m.user.id for m in grid.members} == {anna.id, ben.id}
    interview, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    assert interview.status is InterviewStatus.SCHEDULED
    assert interview.panel_link_ids == [anna_link.id, ben_link.id]

    # A coordinator adds the directory people to a panel for the manager assigned to them.
    coordinator = make_user(session, org, Role.COORDINATOR, email="coord@northwind.example")
    assign(session, coordinator, recruiter)
    manager_link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    on_behalf = model.Query(
        panel_link_ids=(manager_link.id, anna_link.id),
        start_date=next_weekday(2),
        days=5,
        on_behalf_of_id=recruiter.id,
    )
    grid = free_slots.grid(session, broker, cipher, actor_of(coordinator), on_behalf)
    assert all(type(b) is model.Block for blocks in grid.busy.values() for b in blocks)
    made, _ = schedule(app, session, coordinator, on_behalf, grid.slots[0].start)
    assert made.on_behalf_of_id == recruiter.id and made.host_link_id == manager_link.id
    # Not for a manager who is not assigned to them, nor without one.
    with pytest.raises(Forbidden):
        free_slots.grid(
            session,
            broker,
            cipher,
            actor_of(coordinator),
            model.Query(panel_link_ids=(anna_link.id,), on_behalf_of_id=anna.id),
        )
    with pytest.raises(Invalid):
        free_slots.grid(
            session, broker, cipher, actor_of(coordinator), model.Query((anna_link.id,))
        )
    # A coordinator with no assignment has nobody to choose.
    idle = make_user(session, org, Role.COORDINATOR, email="idle@northwind.example")
    assert roster.panel_choices(session, actor_of(idle)) == []


def test_a_directory_person_is_invited_to_log_in_later_without_relinking(
    app, admin_client, session, org, neighbour, directory_panel
):
    client, auth = admin_client
    (anna, anna_link), (ben, _) = directory_panel
    form = f"/admin/users/{anna.id}"
    # The interviewer "role" is not one an invitation may give.
    assert (
        auth.post(f"{form}/invite-to-log-in", {"role": "interviewer"}, form_page=form).status_code
        == 303
    )
    session.expire_all()
    assert session.get(User, anna.id).role is Role.INTERVIEWER
    page = auth.post(f"{form}/invite-to-log-in", {"role": "recruiter"}, form_page=form)
    assert page.status_code == 201
    text = page.get_data(as_text=True)
    assert "/invite/" in text
    token = text.split("/invite/", 1)[1].split('"', 1)[0]
    session.expire_all()
    anna = session.get(User, anna.id)
    assert anna.role is Role.RECRUITER and anna.invite_token_hash
    # Her calendar link is the same row, still active: nothing to relink.
    same = session.get(ProfileLink, anna_link.id)
    assert same.user_id == anna.id and same.status is LinkStatus.ACTIVE and same.has_tokens
    # The invitation form at the users page converts a directory person too (same row).
    invited, _token = accounts.invite_user(
        session,
        Actor(None, "admin", org.id, Role.ADMIN),
        email=ben.email,
        name="Ben Invited",
        role="coordinator",
        invite_days=7,
    )
    assert invited.id == ben.id and invited.role is Role.COORDINATOR
    # Anna accepts and logs in; her own calendar is there.
    browser = app.test_client()
    from tests.conftest import AuthActions, csrf_token

    accept = browser.post(
        f"/invite/{token}",
        data={
            "csrf_token": csrf_token(browser, f"/invite/{token}"),
            "password": "a-long-enough-password-1",
            "confirm": "a-long-enough-password-1",
        },
    )
    assert accept.status_code in (302, 303), accept.get_data(as_text=True)
    AuthActions(browser).logout()
    assert AuthActions(browser).login(ANNA, password="a-long-enough-password-1").status_code == 302
    assert same.account_email in browser.get("/profile/calendar/").get_data(as_text=True)
    # The neighbour's namesake keeps its own state.
    twin = session.scalar(
        select(User).where(User.email == ANNA, User.organisation_id == neighbour.id)
    )
    assert twin.name == "Neighbour's Anna" and twin.invite_token_hash is None


def test_role_changes_are_refused_for_directory_people(session, org, directory_panel):
    (anna, _), _ = directory_panel
    admin = Actor(None, "admin", org.id, Role.ADMIN)
    with pytest.raises(Invalid):
        accounts.change_role(session, admin, anna.id, "admin")
    with pytest.raises(Invalid):
        accounts.reissue_invite(session, admin, anna.id, invite_days=7)
    with pytest.raises(Invalid):
        accounts.invite_user(
            session,
            admin,
            email="new@northwind.example",
            name="New",
            role="interviewer",
            invite_days=7,
        )


def test_compliance_export_and_erasure_cover_directory_people(
    app, session, sandbox, org, neighbour, directory_panel
):
    (anna, anna_link), _ = directory_panel
    anna_id, link_id = anna.id, anna_link.id
    reviewer = make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")
    admin = session.scalar(select(User).where(User.email == "it@northwind.example"))
    found = subjects.find_people(session, actor_of(reviewer), ANNA)
    assert [u.id for u in found] == [anna.id]
    export = subjects.export_subject(session, actor_of(reviewer), anna.id)
    records = export["records"]
    assert records["user_account"][0]["email"] == ANNA
    assert records["user_account"][0]["role"] == "interviewer"
    assert [r["id"] for r in records["profile_link"]] == [anna_link.id]
    assert [r["email"] for r in records["mailbox_request"]] == [ANNA]
    request = erasure.propose_erasure(session, actor_of(reviewer), anna.id, "cancel")
    broker, cipher = broker_cipher(app)
    erasure.decide_erasure(
        session,
        broker,
        cipher,
        actor_of(admin),
        request.id,
        approve=True,
        confirm_role=Role.ADMIN,
        jobs=HeldJobs(),
        typed_confirmation=ANNA,
    )
    session.expire_all()
    assert session.get(User, anna_id) is None
    assert session.get(ProfileLink, link_id) is None
    assert not session.scalar(
        select(func.count(MailboxRequest.id)).where(
            MailboxRequest.organisation_id == org.id, MailboxRequest.email == ANNA
        )
    )
    twin = session.scalar(
        select(User).where(User.email == ANNA, User.organisation_id == neighbour.id)
    )
    assert twin is not None and twin.name == "Neighbour's Anna"
    assert session.scalar(select(Interview.id)) is None  # nothing was scheduled, nothing touched
    # Ben's mailbox stays linked.
    assert (
        session.scalar(
            select(func.count(MailboxRequest.id)).where(
                MailboxRequest.status == MailboxStatus.LINKED
            )
        )
        == 1
    )


def test_a_person_made_by_a_concurrent_request_is_matched_not_duplicated(
    app, admin_client, session, sandbox, org, neighbour, monkeypatch
):
    """Two admins link the same address at once: the second insert meets the unique address
    (in a savepoint), and the person the other request made is matched instead."""
    from sqlalchemy.orm import Session

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    real = directory.people_by_email
    calls = []

    def stale(db, organisation_id, domain):
        calls.append(1)
        found = real(db, organisation_id, domain)
        if len(calls) == 2:  # the other request commits Anna between our read and our insert
            with Session(session.get_bind()) as other:
                other.add(
                    User(
                        organisation_id=org.id,
                        email=ANNA,
                        name="Made Elsewhere",
                        role=Role.INTERVIEWER,
                        active=True,
                        session_version=1,
                    )
                )
                other.commit()
        if len(calls) <= 2:
            found.pop(ANNA, None)
        return found

    monkeypatch.setattr(directory, "people_by_email", stale)
    admin = session.scalar(select(User).where(User.email == "it@northwind.example"))
    with app.test_request_context():
        from webapp.callbacks import service_account_callback_url

        report = mailboxes.request_mailboxes(
            session,
            actor_of(admin),
            link.id,
            addresses=[Address(ANNA, "Anna"), Address(BEN, "Ben")],
            callback_url=service_account_callback_url,
            jobs=HeldJobs(),
        )
    assert report.queued == 2 and len(calls) == 4  # read, stale read, insert refused, again
    people = _people(session, org, [ANNA, BEN])
    assert (
        session.scalar(
            select(func.count(User.id)).where(User.organisation_id == org.id, User.email == ANNA)
        )
        == 1
    )
    requests_ = {r.email: r.user_id for r in session.scalars(select(MailboxRequest))}
    assert requests_ == {ANNA: people[ANNA].id, BEN: people[BEN].id}
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "ec.mailboxes_requested"))
    assert entry.detail["directory_people_created"] == 1
