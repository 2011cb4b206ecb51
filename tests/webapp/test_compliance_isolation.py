"""Compliance stays inside the actor's organisation (issue 16).

Two organisations hold the same addresses in every table that can hold one: Alpha's calendar
link, its linked room and its audit entries carry addresses that Beta gave to its own people.
Beta's reviewer and admin look people up, export and erase; Alpha's rows, calendar events,
grants at the aggregator and audit entries stay exactly as they were, and nothing of Alpha's
shows on any of Beta's compliance pages or API answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import select

from models import (
    ApiToken,
    AuditEntry,
    ErasureRequest,
    Interview,
    InterviewStatus,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    PendingRevocation,
    ProfileLink,
    Role,
    ServiceAccountLink,
    User,
    utcnow,
)
from tests.api.conftest import ApiClient, issue_token
from tests.conftest import AuthActions
from tests.factories import make_org, make_user
from tests.webapp.scheduling_support import creds_of, link_calendar, make_panel, managed
from tests.webapp.test_enterprise import (
    connect_domain,
)
from tests.webapp.test_rooms import AURORA, link_rooms, room_rows, sandbox_availability
from tests.webapp.test_scheduling import first_slot, query_for, schedule
from webapp import deps, security
from webapp.services.audit import record

#: The calendar account Alpha linked; Beta gave a person the same address.
SHARED = "riley.chen@northwind.example"


@dataclass
class World:
    alpha: object
    beta: object
    alpha_link: ProfileLink
    alpha_room: MailboxRequest
    alpha_interview: Interview
    alpha_event_id: str
    beta_people: dict[str, User]
    beta_reviewer: User
    beta_admin: User
    beta_mailbox_id: int
    #: Strings only Alpha's records hold: none may reach Beta's reviewer.
    alpha_markers: list[str] = field(default_factory=list)


def _client_for(app, user):
    client = app.test_client()
    AuthActions(client).login(user.email)
    return client, AuthActions(client)


def _alpha_audit(session, alpha_id):
    return {
        (e.id, e.actor_label, e.target_label)
        for e in session.scalars(select(AuditEntry).where(AuditEntry.organisation_id == alpha_id))
    }


@pytest.fixture
def alpha_and_beta(app, session, sandbox, org, admin_client):
    """Alpha (``org``): a calendar link to SHARED hosting an interview, a linked room AURORA
    (through Enterprise Connect) and audit entries naming both. Beta: people at SHARED and
    AURORA with a token, a login, a mailbox request and audit entries of their own."""
    alpha = org
    alpha.name = "Alpha Recruiting"
    session.commit()
    client, auth = admin_client
    domain = connect_domain(client, auth, session, sandbox, "google")
    link_rooms(admin_client, domain, sandbox, AURORA)
    host = make_user(
        session, alpha, Role.RECRUITER, email="alpha.host@alpha.example", name="Alpha Host"
    )
    # Alpha's own account at the shared address (its own password: logins stay unambiguous).
    namesake = make_user(session, alpha, Role.COORDINATOR, email=SHARED, name="Alpha Riley")
    namesake.password_hash = security.hash_password(
        "Alpha's own password", salt_of=namesake.password_hash
    )
    issue_token(session, namesake)
    alpha_link = link_calendar(app, session, sandbox, host, email=SHARED)
    panel = make_panel(app, session, sandbox, alpha, 1)
    query = query_for(panel)
    interview, _ = schedule(app, session, host, query, first_slot(app, session, host, query).start)
    assert interview.status is InterviewStatus.SCHEDULED
    event_id = interview.events[0].event_id
    for label in (SHARED, AURORA):
        record(session, None, "assignment.created", organisation_id=alpha.id, target_label=label)
        session.add(
            AuditEntry(
                organisation_id=alpha.id,
                actor_label=label,
                action="test.alpha_by",
                outcome="success",
            )
        )
    session.commit()

    beta = make_org(session, "Beta Staffing")
    reviewer = make_user(session, beta, Role.COMPLIANCE, email="reviewer@beta.example")
    admin = make_user(session, beta, Role.ADMIN, email="admin@beta.example")
    people = {
        SHARED: make_user(session, beta, Role.RECRUITER, email=SHARED, name="Beta Riley"),
        AURORA: make_user(session, beta, Role.RECRUITER, email=AURORA, name="Beta Aurora"),
    }
    beta_domain = ServiceAccountLink(
        organisation_id=beta.id,
        provider="google",
        domain="northwind.example",
        sub="ser_beta_service_account",
        status=LinkStatus.DISCONNECTED,
    )
    session.add(beta_domain)
    session.flush()
    beta_mailbox = MailboxRequest(
        service_account_link_id=beta_domain.id,
        organisation_id=beta.id,
        user_id=people[SHARED].id,
        email=SHARED,
        kind=MailboxKind.MAILBOX,
        status=MailboxStatus.FAILED,
    )
    session.add(beta_mailbox)
    session.commit()
    for label in (
        f"{SHARED} → manager@beta.example",
        f"coordinator@beta.example → {SHARED}",
        f"coordinator@beta.example → j{SHARED}",
    ):
        record(session, None, "assignment.created", organisation_id=beta.id, target_label=label)
        record(session, None, "assignment.created", organisation_id=alpha.id, target_label=label)
    session.commit()
    for person in people.values():
        issue_token(session, person)
        _client_for(app, person)  # a login: audit entries labelled with the address, in Beta
    session.expire_all()
    alpha_room = room_rows(session)[AURORA]
    assert alpha_room.organisation_id == alpha.id and alpha_room.resource_sub
    alpha_link = session.get(ProfileLink, alpha_link.id)
    markers = [
        alpha.name,
        "Alpha Host",
        "Alpha Riley",
        alpha_link.sub,
        alpha_link.account_id,
        alpha_link.profile_id,
        alpha_link.target_calendar_id,
        alpha_room.resource_sub,
        domain.sub,
        interview.uid,
        event_id,
    ]
    return World(
        alpha,
        beta,
        alpha_link,
        alpha_room,
        session.get(Interview, interview.id),
        event_id,
        people,
        reviewer,
        admin,
        beta_mailbox.id,
        [m for m in markers if m],
    )


def _erase_in_beta(app, session, world, person_id, choice="cancel"):
    _, reviewer = _client_for(app, world.beta_reviewer)
    proposed = reviewer.post(
        f"/compliance/people/{person_id}/erasure",
        {"future_interviews": choice},
        form_page=f"/compliance/people/{person_id}",
    )
    assert proposed.status_code == 302
    request = session.scalar(select(ErasureRequest).where(ErasureRequest.person_id == person_id))
    admin_client, admin = _client_for(app, world.beta_admin)
    email = session.get(User, person_id).email
    plan = _plan(app, session, world.beta_admin, request.id)
    confirmed = admin.post(
        f"/compliance/erasures/{request.id}",
        {"decision": "confirm", "confirm_email": email},
        form_page="/compliance/erasures",
    )
    assert confirmed.status_code == 303
    receipt = admin_client.get(confirmed.location)
    assert receipt.status_code == 200 and "Erasure receipt" in receipt.get_data(as_text=True)
    session.expire_all()
    receipt = session.get(ErasureRequest, request.id).receipt
    _assert_plan_was_the_receipt(plan, receipt)
    return receipt


def _plan(app, session, admin, request_id):
    from webapp import deps
    from webapp.services import Actor
    from webapp.services.compliance import erasure_plan

    with app.app_context():
        return erasure_plan.plan_erasure(
            session,
            deps.broker(),
            deps.cipher(),
            Actor(admin.id, admin.email, admin.organisation_id, admin.role),
            request_id,
        )


#: Receipt counts that are not rows: grants, tokens, and the feature steps' counts.
GRANT_KEYS = ("links_revoked", "revocations_queued", "tokens_deleted")


def _assert_plan_was_the_receipt(plan, receipt):
    """The confirmation page's dry run announced exactly what the erasure then did."""
    done = {k: v for k, v in receipt.items() if v}
    steps = {k: done.pop(k) for k in list(done) if k in plan.steps or k.startswith("future_")}
    grants = {k: done.pop(k, 0) for k in GRANT_KEYS}
    assert steps == plan.steps
    assert grants["links_revoked"] + grants["revocations_queued"] == plan.grants_to_revoke
    assert grants["tokens_deleted"] == plan.tokens_to_delete
    assert done == plan.rows and plan.rows["accounts_deleted"] == 1


def test_erasure_in_one_organisation_leaves_the_other_untouched(
    app, session, sandbox, alpha_and_beta
):
    alpha_id = alpha_and_beta.alpha.id
    audit_before = _alpha_audit(session, alpha_id)
    assert {SHARED, AURORA} <= {label for _, a, t in audit_before for label in (a, t)}
    alpha_creds = creds_of(app, alpha_and_beta.alpha_link)
    room_sub = alpha_and_beta.alpha_room.resource_sub
    beta_ids = {email: user.id for email, user in alpha_and_beta.beta_people.items()}

    for person_id in beta_ids.values():
        _erase_in_beta(app, session, alpha_and_beta, person_id)

    # Beta's people, their rows and the address in Beta's trail are gone.
    for email, person_id in beta_ids.items():
        assert session.get(User, person_id) is None
        assert session.scalar(select(ApiToken).where(ApiToken.user_id == person_id)) is None
        assert (
            session.scalar(
                select(AuditEntry.id).where(
                    AuditEntry.organisation_id == alpha_and_beta.beta.id,
                    (AuditEntry.actor_label == email) | (AuditEntry.target_label == email),
                )
            )
            is None
        )
    assert session.get(MailboxRequest, alpha_and_beta.beta_mailbox_id) is None
    pairs = set(
        session.scalars(
            select(AuditEntry.target_label).where(
                AuditEntry.organisation_id == alpha_and_beta.beta.id,
                AuditEntry.action == "assignment.created",
            )
        )
    )
    erased = f"erased user #{beta_ids[SHARED]}"
    assert pairs == {
        f"{erased} → manager@beta.example",
        f"coordinator@beta.example → {erased}",
        f"coordinator@beta.example → j{SHARED}",
    }
    # Alpha's account at the same address keeps its token ...
    namesake = session.scalar(
        select(User).where(User.organisation_id == alpha_id, User.email == SHARED)
    )
    assert namesake is not None and namesake.active
    assert session.scalar(select(ApiToken).where(ApiToken.user_id == namesake.id)) is not None
    # ... its calendar link, its tokens and its grant at the aggregator are untouched ...
    link = session.get(ProfileLink, alpha_and_beta.alpha_link.id)
    assert link is not None and link.status is LinkStatus.ACTIVE and link.has_tokens
    assert (
        requests.get(
            sandbox.url + "/v1/account",
            timeout=5,
            headers={"Authorization": f"Bearer {alpha_creds.access_token}"},
        ).status_code
        == 200
    )
    # ... so are the interview it hosts and the interview's event in the calendar ...
    interview = session.get(Interview, alpha_and_beta.alpha_interview.id)
    assert interview is not None and interview.status is InterviewStatus.SCHEDULED
    assert any(e.event_id == alpha_and_beta.alpha_event_id for e in managed(app, session, link))
    # ... its linked room, still usable at the aggregator ...
    room = session.get(MailboxRequest, alpha_and_beta.alpha_room.id)
    assert room.status is MailboxStatus.LINKED and room.resource_sub == room_sub
    assert sandbox_availability(sandbox, room_sub).status_code == 200
    # ... nothing of Alpha's was queued for revocation, and its audit entries read as before.
    assert (
        session.scalar(
            select(PendingRevocation.id).where(PendingRevocation.sub.in_([link.sub, room_sub]))
        )
        is None
    )
    assert _alpha_audit(session, alpha_id) >= audit_before
    assert {e for e in _alpha_audit(session, alpha_id) if "erased user" in str(e)} == set()


def test_erasure_revokes_and_deletes_what_its_own_organisation_holds_at_the_address(
    app, session, sandbox, org
):
    """Inside the organisation an address still counts: a colleague's link to the person's
    calendar account goes too, with its grant revoked and its interviews' events deleted."""
    colleague = make_user(session, org, Role.RECRUITER, email="assistant@northwind.example")
    person = make_user(session, org, Role.RECRUITER, email=SHARED)
    link = link_calendar(app, session, sandbox, colleague, email=SHARED)
    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, colleague, query, first_slot(app, session, colleague, query).start
    )
    event_id = interview.events[0].event_id
    creds, link_id = creds_of(app, link), link.id
    reviewer = make_user(session, org, Role.COMPLIANCE)
    admin = make_user(session, org, Role.ADMIN)
    world = SimpleNamespace(beta_reviewer=reviewer, beta_admin=admin)

    receipt = _erase_in_beta(app, session, world, person.id, "cancel")

    assert session.get(ProfileLink, link_id) is None
    assert receipt["future_interviews_cancelled"] == 1 and receipt["links_revoked"] == 1
    assert (
        requests.get(
            sandbox.url + "/v1/account",
            timeout=5,
            headers={"Authorization": f"Bearer {creds.access_token}"},
        ).status_code
        == 401
    )
    events = sandbox.call("GET", "/events", params={"email": SHARED})
    assert not [
        e for e in events["events"] if e.get("event_id") == event_id and not e.get("deleted")
    ]


def test_a_grant_the_aggregator_would_not_revoke_now_is_queued(app, session, sandbox, org):
    person = make_user(session, org, Role.RECRUITER, email=SHARED)
    link = link_calendar(app, session, sandbox, person)
    creds, sub = creds_of(app, link), link.sub
    reviewer = make_user(session, org, Role.COMPLIANCE)
    admin = make_user(session, org, Role.ADMIN)
    sandbox.add_fault(method="POST", path="/oauth/token/revoke", status=503, count=50)
    receipt = _erase_in_beta(
        app, session, SimpleNamespace(beta_reviewer=reviewer, beta_admin=admin), person.id
    )
    assert receipt["links_revoked"] == 0 and receipt["revocations_queued"] == 1
    queued = session.scalar(select(PendingRevocation).where(PendingRevocation.sub == sub))
    assert queued is not None and queued.organisation_id == org.id
    sandbox.call("DELETE", "/faults")
    from webapp.services import revocations

    revocations.run(session, deps.broker.of(app), now=utcnow() + timedelta(hours=2))
    assert (
        requests.get(
            sandbox.url + "/v1/account",
            timeout=5,
            headers={"Authorization": f"Bearer {creds.access_token}"},
        ).status_code
        == 401
    )


def test_reviewers_see_only_their_own_organisation(app, client, session, alpha_and_beta):
    beta_client, _ = _client_for(app, alpha_and_beta.beta_reviewer)
    api = ApiClient(client, issue_token(session, alpha_and_beta.beta_reviewer))
    person = alpha_and_beta.beta_people[SHARED]
    pages = [
        "/compliance/",
        "/compliance/audit",
        "/compliance/audit/export.csv",
        "/compliance/audit/export.json",
        "/compliance/erasures",
        f"/compliance/people?q={SHARED}",
        f"/compliance/people?q={AURORA}",
        "/compliance/people?q=alpha.host@alpha.example",
        "/compliance/people?q=Alpha",
        f"/compliance/people/{person.id}",
        f"/compliance/people/{person.id}/export.json",
        f"/compliance/people/{alpha_and_beta.beta_people[AURORA].id}",
    ]
    for path in pages:
        response = beta_client.get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        leaked = [m for m in alpha_and_beta.alpha_markers if m in text]
        assert not leaked, (path, leaked)
    for path in (
        "/compliance/inventory",
        "/compliance/audit?limit=100",
        f"/compliance/people/{person.id}/export",
    ):
        response = api.get(path)
        assert response.status_code == 200, path
        leaked = [m for m in alpha_and_beta.alpha_markers if m in response.get_data(as_text=True)]
        assert not leaked, (path, leaked)
    # Alpha's people are not Beta's to see.
    alpha_host = session.scalar(select(User).where(User.email == "alpha.host@alpha.example"))
    assert beta_client.get(f"/compliance/people/{alpha_host.id}").status_code == 404
    assert api.get(f"/compliance/people/{alpha_host.id}/export").status_code == 404

    # The export is Beta's person's rows only, and still no secret.
    document = json.loads(
        beta_client.get(f"/compliance/people/{person.id}/export.json").get_data(as_text=True)
    )
    records = document["records"]
    assert "profile_link" not in records
    assert [r["id"] for r in records["mailbox_request"]] == [alpha_and_beta.beta_mailbox_id]
    assert all(
        r["organisation_id"] == alpha_and_beta.beta.id
        for rows in records.values()
        for r in rows
        if "organisation_id" in r
    )
    assert {r["token_hash"] for r in records["api_token"]} == {"hashed (not reversible)"}
    # An address with no Beta account shows no record, whatever Alpha holds at it.
    page = beta_client.get("/compliance/people?q=alpha.host@alpha.example").get_data(as_text=True)
    assert "No local record holds this email" in page
    # The inventory counts Beta's rows: Beta has no calendar link, Alpha has two.
    inventory = beta_client.get("/compliance/").get_data(as_text=True)
    assert '<code>profile_link</code> <span class="badge">0 row' in inventory
    tables = {t["name"]: t["rows"] for t in api.get("/compliance/inventory").get_json()["tables"]}
    assert tables["profile_link"] == 0 and tables["user_account"] == 4
    assert tables["organisation"] == 1


def test_every_table_belongs_to_an_organisation():
    """The compliance scope finds each table's organisation (a new table needs a path)."""
    from models import Base
    from webapp.services.compliance.scope import organisation_scope

    for table in Base.metadata.sorted_tables:
        organisation_scope(table, 1)
