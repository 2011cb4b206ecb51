"""Colleagues' calendars delegated to a Business Connect user become panel members: a directory
person of the owner's organisation (never another's), read through the owner's account
restricted to that one calendar, free/busy only to everyone, and in a clear "needs attention"
state when the owner's link cannot read it any more.

The owner is the sandbox's assistant, whose Microsoft 365 account sees three managers'
calendars (two writable, one read-only). Every test seeds a second organisation holding the
same addresses."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import (
    AuditEntry,
    InterviewStatus,
    LinkStatus,
    PendingRevocation,
    ProfileLink,
    Role,
    User,
)
from tests.conftest import csrf_token
from tests.factories import make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import creds_of, link_calendar, managed, next_weekday
from tests.webapp.test_scheduling import actor_of, broker_cipher, schedule
from webapp.services import connect, delegation
from webapp.services.availability import free_slots, model, roster, windows
from webapp.services.compliance import erasure, subjects
from webapp.services.errors import Conflict, Invalid, NotFound

ASSISTANT = "pa.office@contoso.example"
PAGE = "/profile/calendar/"
DANA = "dana.wright@contoso.example"
LEE = "lee.okafor@contoso.example"
MARIA = "maria.garcia@contoso.example"


@pytest.fixture
def neighbour(session):
    """Another organisation with accounts at the colleagues' addresses."""
    other = make_org(session, name="Neighbour Ltd")
    make_user(session, other, Role.RECRUITER, email=DANA, name="Neighbour's Dana")
    make_user(session, other, Role.RECRUITER, email=LEE, name="Neighbour's Lee")
    return other


@pytest.fixture
def owner(app, session, sandbox, org):
    """The assistant, a recruiter of ``org``, with their Business Connect link."""
    user = make_user(session, org, Role.RECRUITER, email=ASSISTANT, name="Pat Office")
    return user, link_calendar(app, session, sandbox, user)


def offered(app, session, owner_link):
    broker, cipher = broker_cipher(app)
    from webapp.services.calendars import calendars_of

    return delegation.offered(owner_link, calendars_of(session, broker, cipher, owner_link))


def calendar_named(app, session, owner_link, prefix):
    return next(c for c in offered(app, session, owner_link) if c.name.startswith(prefix))


def add(app, session, user, owner_link, prefix, email, name=None):
    broker, cipher = broker_cipher(app)
    cal = calendar_named(app, session, owner_link, prefix)
    return delegation.add_colleague(
        session, broker, cipher, actor_of(user), calendar_id=cal.calendar_id, email=email, name=name
    )


def week(link_ids, **kw) -> model.Query:
    return model.Query(panel_link_ids=tuple(link_ids), start_date=next_weekday(1), days=5, **kw)


def busy_of(app, session, actor, link_id):
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(actor), week([link_id]))
    assert not grid.busy_problems, grid.busy_problems
    return [(b.start, b.end) for b in grid.busy[link_id]]


# --- adding a colleague --------------------------------------------------------------------


def test_the_owner_is_offered_only_calendars_that_are_not_their_own(app, session, owner):
    _user, link = owner
    names = sorted(c.name for c in offered(app, session, link))
    assert names == [
        "Dana Wright — Calendar",
        "Lee Okafor — Calendar",
        "Maria Garcia — Calendar",
    ]


def test_a_colleague_becomes_a_directory_person_of_this_organisation_only(
    app, session, sandbox, org, owner, neighbour, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA.upper(), "Dana Wright")
    dana = session.get(User, dana_link.user_id)
    assert (dana.organisation_id, dana.email, dana.role) == (org.id, DANA, Role.INTERVIEWER)
    assert dana.name == "Dana Wright" and dana.password_hash is None
    # No tokens of its own, no aggregator id of its own: read through the owner's account.
    assert not dana_link.has_tokens and dana_link.sub.startswith("dlg_")
    assert dana_link.account_id == owner_link.sub and dana_link.aggregator_sub == owner_link.sub
    assert dana_link.target_calendar_id is None
    assert dana_link.conflict_calendar_ids == [dana_link.delegated_calendar_id]
    # The neighbour's Dana is untouched and never offered to this organisation.
    theirs = session.scalar(
        select(User).where(User.organisation_id == neighbour.id, User.email == DANA)
    )
    assert theirs.name == "Neighbour's Dana" and theirs.role is Role.RECRUITER
    assert not session.scalar(select(ProfileLink.id).where(ProfileLink.user_id == theirs.id))
    choices = {u.id: link.id for link, u in roster.panel_choices(session, actor_of(riley))}
    assert choices[dana.id] == dana_link.id and theirs.id not in choices
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "calendar.delegated_added")
    )
    assert entry.actor_id == user.id and entry.target_id == str(dana.id)
    assert entry.detail["person_created"] is True


def test_an_existing_person_of_the_organisation_is_matched_not_duplicated(
    app, session, org, owner, neighbour
):
    user, owner_link = owner
    lee = make_user(session, org, Role.RECRUITER, email=LEE, name="Lee Okafor")
    link = add(app, session, user, owner_link, "Lee", LEE, "Someone Else")
    assert link.user_id == lee.id
    session.refresh(lee)
    assert lee.role is Role.RECRUITER and lee.name == "Lee Okafor"  # an account keeps its own
    assert session.scalar(select(func.count(User.id)).where(User.email == LEE)) == 2  # + twin


def test_the_colleague_is_read_through_the_owner_restricted_to_their_calendar(
    app, session, sandbox, org, owner, neighbour, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    # Dana's own calendar, linked by the neighbour organisation: the same busy times.
    twin = session.scalar(
        select(User).where(User.organisation_id == neighbour.id, User.email == DANA)
    )
    own = link_calendar(app, session, sandbox, twin)
    through_owner = busy_of(app, session, riley, dana_link.id)
    assert through_owner and through_owner == busy_of(app, session, twin, own.id)
    assert through_owner != busy_of(app, session, user, owner_link.id)


def test_owner_and_colleague_on_one_panel_are_asked_as_one_member_with_both_calendars(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    members = roster.resolve_panel(session, actor_of(riley), [owner_link.id, dana_link.id])
    query = week([owner_link.id, dana_link.id])
    window, _days = windows.window_for(query)
    built = windows.availability_query(members, query, window)
    (group,) = built.groups
    (member,) = group.members
    assert member.sub == owner_link.sub
    assert set(member.calendar_ids) == {
        owner_link.target_calendar_id,
        dana_link.delegated_calendar_id,
    }
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert grid.slots and not grid.busy_problems
    for slot in grid.slots[:20]:
        for link_id in (owner_link.id, dana_link.id):
            assert not any(b.start < slot.end and slot.start < b.end for b in grid.busy[link_id])


def test_owner_and_colleague_read_at_once_refresh_the_shared_tokens_once(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    lee_link = add(app, session, user, owner_link, "Lee", LEE)
    old = creds_of(app, owner_link)
    # The aggregator no longer takes the access token we hold: each read must refresh it, and
    # the three reads share one token set (the sandbox, like Cronofy, may rotate the refresh
    # token, so a second refresh with the old one would be refused).
    assert sandbox.expire_tokens(email=ASSISTANT) >= 1
    sandbox.clear_stats()
    broker, cipher = broker_cipher(app)
    query = week([owner_link.id, dana_link.id, lee_link.id])
    grid = free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert not grid.busy_problems, grid.busy_problems
    assert set(grid.busy) == {owner_link.id, dana_link.id, lee_link.id}
    assert sandbox.stats()["requests"].get("POST /oauth/token", 0) == 1  # one refresh
    session.expire_all()
    stored = creds_of(app, session.get(ProfileLink, owner_link.id))
    assert stored.access_token != old.access_token  # refreshed, and kept on the owner's link
    for link_id in (dana_link.id, lee_link.id):
        assert not session.get(ProfileLink, link_id).has_tokens  # never copied to them
    # And the tokens kept work: a second read needs no refresh.
    grid = free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert not grid.busy_problems


def test_a_recruiter_schedules_a_panel_with_the_colleague_free_busy_only(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Maria", MARIA)  # read-only delegation
    riley_link = link_calendar(app, session, sandbox, riley)
    query = week([riley_link.id, dana_link.id])
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert all(type(b) is model.Block for blocks in grid.busy.values() for b in blocks)
    interview, _ = schedule(app, session, riley, query, grid.slots[0].start)
    assert interview.status is InterviewStatus.SCHEDULED
    assert [e.profile_link_id for e in interview.events] == [riley_link.id]  # never theirs
    (event,) = managed(app, session, riley_link)
    assert MARIA in {a.email for a in event.attendees}
    # Nothing was written into the owner's account either.
    assert not managed(app, session, owner_link)


def test_the_schedule_page_shows_no_event_details_of_the_colleague(
    app, client, auth, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    # Titles long enough not to occur on the page by chance ("1:1" would).
    summaries = {
        e["summary"] for e in sandbox.events(email=DANA) if len(e.get("summary") or "") > 5
    }
    assert summaries
    auth.login(riley.email)
    page = client.get(
        f"/schedule/?panel={dana_link.id}&start_date={next_weekday(1).isoformat()}&days=5"
    )
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Dana Wright" in body
    assert not [s for s in summaries if s in body]


# --- refusals ------------------------------------------------------------------------------


def test_bad_choices_are_refused_and_change_nothing(app, session, sandbox, org, owner, riley):
    user, owner_link = owner
    broker, cipher = broker_cipher(app)
    before = session.scalar(select(func.count(User.id)))
    own_primary = owner_link.target_calendar_id
    for calendar_id, email, error in (
        ("cal_not_listed", DANA, Invalid),
        (own_primary, DANA, Invalid),  # the owner's own calendar
        (calendar_named(app, session, owner_link, "Dana").calendar_id, "not-an-address", Invalid),
        (calendar_named(app, session, owner_link, "Dana").calendar_id, ASSISTANT, Invalid),
    ):
        with pytest.raises(error):
            delegation.add_colleague(
                session, broker, cipher, actor_of(user), calendar_id=calendar_id, email=email
            )
    assert session.scalar(select(func.count(User.id))) == before
    assert not session.scalar(
        select(ProfileLink.id).where(ProfileLink.delegated_calendar_id.is_not(None))
    )
    # Someone with their own calendar is on panels with it already.
    riley_link = link_calendar(app, session, sandbox, riley)
    with pytest.raises(Conflict):
        add(app, session, user, owner_link, "Dana", riley.email)
    # One calendar is one colleague's.
    add(app, session, user, owner_link, "Dana", DANA)
    with pytest.raises(Conflict):
        add(app, session, user, owner_link, "Dana", LEE)
    assert riley_link.status is LinkStatus.ACTIVE
    # Someone without a calendar link of their own cannot add colleagues.
    with pytest.raises(NotFound):
        delegation.owner_link(session, actor_of(make_user(session, org, Role.RECRUITER)))


# --- when the owner's link cannot read it any more -------------------------------------------


def test_the_owner_unlinking_leaves_the_colleague_needing_attention_not_gone(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    broker, cipher = broker_cipher(app)
    connect.disconnect(session, broker, cipher, actor_of(user))
    session.expire_all()
    dana_link = session.get(ProfileLink, dana_link.id)
    assert dana_link.status is LinkStatus.NEEDS_ATTENTION
    assert dana_link.user_id is not None and session.get(User, dana_link.user_id) is not None
    assert dana_link.id not in {
        link.id for link, _u in roster.panel_choices(session, actor_of(riley))
    }
    with pytest.raises(Invalid):
        free_slots.grid(session, broker, cipher, actor_of(riley), week([dana_link.id]))
    (listed,) = delegation.delegated_from(session, session.get(ProfileLink, owner_link.id))
    assert listed.link.id == dana_link.id and not listed.usable
    # Disconnecting revoked the owner's grant only: nothing was queued for the colleague.
    assert not session.scalar(
        select(PendingRevocation.id).where(PendingRevocation.sub == dana_link.sub)
    )


def test_the_owner_losing_access_blocks_the_colleague_until_it_is_back(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    owner_link.status = LinkStatus.NEEDS_ATTENTION
    session.commit()
    assert dana_link.id not in {
        link.id for link, _u in roster.panel_choices(session, actor_of(riley))
    }
    assert not delegation.usable(session, dana_link)
    owner_link.status = LinkStatus.ACTIVE
    session.commit()
    assert delegation.usable(session, dana_link)


def test_a_withdrawn_delegation_needs_attention_and_comes_back_when_added_again(
    app, session, sandbox, owner, riley
):
    user, owner_link = owner
    taylor = "taylor.nguyen@northwind.example"
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": taylor, "writable": False}]})
    link = add(app, session, user, owner_link, "Taylor", taylor)
    assert delegation.usable(session, link)
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": taylor, "withdraw": True}]})
    broker, cipher = broker_cipher(app)
    from webapp.services.calendars import calendars_of

    listed = calendars_of(session, broker, cipher, owner_link)
    assert delegation.still_listed(session, owner_link, listed) == 1
    session.refresh(link)
    assert link.status is LinkStatus.NEEDS_ATTENTION and not delegation.usable(session, link)
    with pytest.raises(StopIteration):  # no longer offered
        calendar_named(app, session, owner_link, "Taylor")
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": taylor, "name": "Taylor (shared)"}]})
    again = add(app, session, user, owner_link, "Taylor", taylor)
    assert again.id == link.id and again.status is LinkStatus.ACTIVE
    assert busy_of(app, session, riley, again.id) is not None


def test_the_sandbox_refuses_bad_delegations(sandbox):
    from broker.sandbox.client import SandboxControlError

    for spec in (
        {"to": ASSISTANT, "owner": "nobody@contoso.example"},
        {"to": ASSISTANT, "owner": ASSISTANT},
        {"to": ASSISTANT, "owner": DANA},  # delegated already
        {"to": ASSISTANT, "owner": "taylor.nguyen@northwind.example", "writable": "yes"},
        {"to": ASSISTANT, "owner": "taylor.nguyen@northwind.example", "withdraw": True},
    ):
        with pytest.raises(SandboxControlError):
            sandbox.seed({"delegations": [spec]})


# --- compliance ----------------------------------------------------------------------------


def test_export_and_erasure_of_the_colleague_leave_the_owner_alone(
    app, session, sandbox, org, owner, neighbour
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    dana_id, link_id = dana_link.user_id, dana_link.id
    reviewer = make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    export = subjects.export_subject(session, actor_of(reviewer), dana_id)
    (row,) = export["records"]["profile_link"]
    assert row["id"] == link_id and row["delegated_calendar_id"] == dana_link.delegated_calendar_id
    assert row["delegated_from_id"] == owner_link.id
    request = erasure.propose_erasure(session, actor_of(reviewer), dana_id, "cancel")
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
        typed_confirmation=DANA,
    )
    session.expire_all()
    assert session.get(User, dana_id) is None and session.get(ProfileLink, link_id) is None
    owner_link = session.get(ProfileLink, owner_link.id)
    assert owner_link.status is LinkStatus.ACTIVE and owner_link.has_tokens
    assert not session.scalar(select(PendingRevocation.id))
    twin = session.scalar(
        select(User).where(User.organisation_id == neighbour.id, User.email == DANA)
    )
    assert twin is not None


def test_erasing_the_owner_leaves_the_colleague_needing_attention(
    app, session, sandbox, org, owner, riley
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    link_id, owner_email = dana_link.id, user.email
    reviewer = make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    request = erasure.propose_erasure(session, actor_of(reviewer), user.id, "cancel")
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
        typed_confirmation=owner_email,
    )
    session.expire_all()
    dana_link = session.get(ProfileLink, link_id)
    assert dana_link is not None and dana_link.delegated_from_id is None
    assert not delegation.usable(session, dana_link)
    assert link_id not in {link.id for link, _u in roster.panel_choices(session, actor_of(riley))}


# --- the calendar page -----------------------------------------------------------------------


def test_the_calendar_page_adds_and_removes_a_colleague(
    app, client, auth, session, sandbox, owner, neighbour
):
    user, owner_link = owner
    auth.login(user.email)
    page = client.get("/profile/calendar/")
    body = page.get_data(as_text=True)
    assert "Colleagues' calendars" in body and "Lee Okafor — Calendar" in body
    cal = calendar_named(app, session, owner_link, "Lee")
    response = auth.post(
        "/profile/calendar/colleagues",
        data={"calendar_id": cal.calendar_id, "email": LEE, "name": "Lee Okafor"},
        form_page=PAGE,
    )
    assert response.status_code == 303
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "Lee Okafor" in page and "On panels" in page
    link = session.scalar(
        select(ProfileLink).where(ProfileLink.delegated_calendar_id == cal.calendar_id)
    )
    assert link.organisation_id == owner_link.organisation_id
    # Bad input: a clear 4xx on the page, nothing changed.
    count = session.scalar(select(func.count(ProfileLink.id)))
    for data, status, words in (
        ({"calendar_id": "cal_elsewhere", "email": DANA}, 400, "Choose one of the colleagues"),
        ({"calendar_id": cal.calendar_id, "email": "nope"}, 400, "Enter the colleague"),
        ({"calendar_id": cal.calendar_id, "email": DANA}, 409, "already added"),
    ):
        response = auth.post("/profile/calendar/colleagues", data=data, form_page=PAGE)
        assert response.status_code == status and words in response.get_data(as_text=True)
    assert session.scalar(select(func.count(ProfileLink.id))) == count
    # Removing it; another person's delegated link cannot be removed from here.
    response = auth.post(f"/profile/calendar/colleagues/{link.id}/remove", form_page=PAGE)
    assert response.status_code == 303
    session.refresh(link)
    assert link.status is LinkStatus.DISCONNECTED
    assert (
        auth.post(f"/profile/calendar/colleagues/{link.id}/remove", form_page=PAGE).status_code
        == 404
    )
    assert (
        auth.post(
            f"/profile/calendar/colleagues/{owner_link.id}/remove", form_page=PAGE
        ).status_code
        == 404
    )


def test_another_user_cannot_remove_the_owners_colleague(
    app, client, auth, session, sandbox, owner, riley
):
    user, owner_link = owner
    link = add(app, session, user, owner_link, "Dana", DANA)
    link_calendar(app, session, sandbox, riley)
    auth.login(riley.email)
    assert (
        auth.post(f"/profile/calendar/colleagues/{link.id}/remove", form_page=PAGE).status_code
        == 404
    )
    session.refresh(link)
    assert link.status is LinkStatus.ACTIVE


def test_an_it_admin_has_no_calendar_page_to_add_colleagues(client, auth, session, org):
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    auth.login(admin.email)
    token = csrf_token(client, "/")
    response = client.post(
        "/profile/calendar/colleagues",
        data={"csrf_token": token, "calendar_id": "x", "email": DANA},
    )
    assert response.status_code == 403


def test_the_api_names_the_colleague_free_in_each_slot_and_shows_busy_times_only(
    client, session, sandbox, owner, recruiter
):
    from tests.api.conftest import ApiClient, issue_token

    user, owner_link = owner
    dana_link = add(app_of(client), session, user, owner_link, "Dana", DANA)
    riley_link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    api = ApiClient(client, issue_token(session, recruiter))
    params = [("panel", str(riley_link.id)), ("panel", str(dana_link.id))]
    params += [("start_date", next_weekday(1).isoformat()), ("days", "5")]
    response = api.get("/availability", query_string=params)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["slots"]
    assert all(set(s["free_link_ids"]) == {riley_link.id, dana_link.id} for s in body["slots"])
    assert all(set(b) == {"start", "end", "status"} for m in body["members"] for b in m["busy"])


def app_of(client):
    return client.application


def test_relinking_through_the_app_leaves_colleagues_needing_attention_until_added_again(
    app, client, auth, session, sandbox, org, neighbour
):
    from tests.webapp.test_business_connect import connect_as

    user = make_user(session, org, Role.RECRUITER, email=ASSISTANT, name="Pat Office")
    business_connect_on(session, org)
    auth.login(user.email)
    connect_as(client, auth, sandbox, ASSISTANT, provider="office365")
    owner_link = connect.link_of(session, user.id)
    cal = calendar_named(app, session, owner_link, "Dana")
    response = auth.post(
        "/profile/calendar/colleagues",
        data={"calendar_id": cal.calendar_id, "email": DANA},
        form_page=PAGE,
    )
    assert response.status_code == 303
    link = session.scalar(select(ProfileLink).where(ProfileLink.delegated_calendar_id.is_not(None)))
    # The owner links their account again: the colleague needs attention, listed as such.
    connect_as(client, auth, sandbox, ASSISTANT, provider="office365")
    session.refresh(link)
    assert link.status is LinkStatus.NEEDS_ATTENTION
    page = client.get(PAGE).get_data(as_text=True)
    assert "Needs attention" in page and "Dana Wright" in page
    # Added again, the same link is back on panels.
    response = auth.post(
        "/profile/calendar/colleagues",
        data={"calendar_id": cal.calendar_id, "email": DANA},
        form_page=PAGE,
    )
    assert response.status_code == 303
    session.refresh(link)
    assert link.status is LinkStatus.ACTIVE and delegation.usable(session, link)
    assert "On panels" in client.get(PAGE).get_data(as_text=True)
    # Disconnecting from the page does the same, and revokes only the owner's authorization.
    response = auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    assert response.status_code == 200
    session.refresh(link)
    assert link.status is LinkStatus.NEEDS_ATTENTION and not link.has_tokens


def business_connect_on(session, org):
    org.business_connect_enabled = True
    session.commit()


def test_the_it_admin_sees_whose_account_reads_a_colleague_and_when_it_needs_attention(
    app, client, auth, session, sandbox, org, owner
):
    user, owner_link = owner
    dana_link = add(app, session, user, owner_link, "Dana", DANA)
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    auth.login(admin.email)
    page = client.get(f"/admin/users/{dana_link.user_id}").get_data(as_text=True)
    assert "Delegated: read through Pat Office's calendar account, free/busy only" in page
    assert "needs attention" not in page
    owner_link.status = LinkStatus.NEEDS_ATTENTION
    session.commit()
    page = client.get(f"/admin/users/{dana_link.user_id}").get_data(as_text=True)
    assert "needs attention" in page
