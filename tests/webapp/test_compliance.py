"""Compliance reviewer: inventory, audit trail, per-person view, subject export, erasure,
retention."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from models import (
    AuditEntry,
    Base,
    CoordinatorAssignment,
    ErasureRequest,
    OAuthState,
    ProfileLink,
    Role,
    SchedulingPreference,
    User,
    utcnow,
)
from tests.conftest import AuthActions
from tests.factories import assign, make_org, make_user
from tests.webapp.test_business_connect import connect_as, creds_for
from webapp import deps
from webapp.services.compliance.audit import safe_cell


def _client_for(app, user):
    client = app.test_client()
    AuthActions(client).login(user.email)
    return client, AuthActions(client)


@pytest.fixture
def reviewer(session, org):
    return make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")


def test_inventory_is_generated_from_the_schema_with_live_counts(app, session, org, reviewer):
    client, _ = _client_for(app, reviewer)
    page = client.get("/compliance/").get_data(as_text=True)
    for table in Base.metadata.sorted_tables:
        assert f"<code>{table.name}</code>" in page
        for column in table.columns:
            assert f"<code>{column.name}</code>" in page
    users = session.scalar(select(func.count(User.id)))
    assert f'<code>user_account</code> <span class="badge">{users} row' in page
    assert "encrypted (AES-256-GCM)" in page
    assert "Calendar content" in page and "never stored" in page
    assert "Cronofy" in page and "Audit entries" in page


def test_audit_trail_filters_and_pages(app, session, org, reviewer):
    admin = make_user(session, org, Role.ADMIN, email="alex@northwind.example")
    _client_for(app, admin)
    client, _ = _client_for(app, reviewer)
    page = client.get("/compliance/audit?actor=alex@").get_data(as_text=True)
    assert "alex@northwind.example" in page and "jordan@northwind.example" not in page
    assert "auth.login" in client.get("/compliance/audit?action=auth.").get_data(as_text=True)
    assert "0 entries" in client.get("/compliance/audit?action=nothing.").get_data(as_text=True)
    today = utcnow().date()
    assert "2 entries" in client.get(
        f"/compliance/audit?since={today}&until={today}&action=auth.login"
    ).get_data(as_text=True)
    assert "0 entries" in client.get(
        f"/compliance/audit?until={today - timedelta(days=1)}"
    ).get_data(as_text=True)
    bad = client.get("/compliance/audit?since=yesterday")
    assert bad.status_code == 400 and "is not a date" in bad.get_data(as_text=True)
    reversed_range = client.get(
        f"/compliance/audit?since={today}&until={today - timedelta(days=2)}"
    )
    assert reversed_range.status_code == 400


def test_audit_export_is_formula_safe_and_audited(app, session, org, reviewer):
    session.add(
        AuditEntry(
            organisation_id=org.id,
            action="test.injection",
            outcome="success",
            target_label='=HYPERLINK("http://evil.example","x")',
        )
    )
    session.commit()
    client, _ = _client_for(app, reviewer)
    response = client.get("/compliance/audit/export.csv?action=test.")
    assert response.headers["Content-Disposition"].endswith('rendezvous-audit.csv"')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["target_label"].startswith("'=HYPERLINK")
    data = json.loads(
        client.get("/compliance/audit/export.json?action=test.").get_data(as_text=True)
    )
    assert data["entries"][0]["target_label"].startswith("=HYPERLINK")  # JSON keeps the value
    assert client.get("/compliance/audit/export.xml").status_code == 302
    exported = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "audit.exported").order_by(AuditEntry.id)
    ).all()
    assert [e.detail["format"] for e in exported] == ["csv", "json"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-2", "'-2"),
        ("@sum", "'@sum"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_person_view_and_export_show_everything_but_secrets(app, session, sandbox, org, reviewer):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    coordinator = make_user(session, org, Role.COORDINATOR)
    assign(session, coordinator, riley)
    rclient, rauth = _client_for(app, riley)
    connect_as(rclient, rauth, sandbox, riley.email)
    creds = creds_for(app, session, riley)

    client, _ = _client_for(app, reviewer)
    page = client.get(f"/compliance/people/{riley.id}").get_data(as_text=True)
    for table in (
        "user_account",
        "profile_link",
        "coordinator_assignment",
        "oauth_state",
        "audit_entry",
    ):
        assert f"<code>{table}</code>" in page, table
    assert "encrypted (key k1)" in page and "hashed (not reversible)" in page
    assert creds.access_token not in page and creds.refresh_token not in page

    export = client.get(f"/compliance/people/{riley.id}/export.json")
    document = json.loads(export.get_data(as_text=True))
    assert document["records"]["profile_link"][0]["refresh_token"] == "encrypted (key k1)"
    assert document["records"]["user_account"][0]["email"] == riley.email
    assert creds.refresh_token not in export.get_data(as_text=True)
    assert session.scalar(
        select(AuditEntry).where(AuditEntry.action == "subject.exported")
    ).target_id == str(riley.id)

    other_org_user = make_user(session, make_org(session), Role.RECRUITER)
    assert client.get(f"/compliance/people/{other_org_user.id}").status_code == 404
    assert client.get(f"/compliance/people/{other_org_user.id}/export.json").status_code == 404


def test_candidate_email_lookup_finds_no_local_record(app, session, org, reviewer):
    client, _ = _client_for(app, reviewer)
    page = client.get("/compliance/people?q=a.candidate@example.net").get_data(as_text=True)
    assert "No local record holds this email" in page


def test_erasure_proposed_by_reviewer_and_confirmed_by_admin(app, session, sandbox, org, reviewer):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    coordinator = make_user(session, org, Role.COORDINATOR)
    assign(session, coordinator, riley)
    admin = make_user(session, org, Role.ADMIN, email="alex@northwind.example")
    rclient, rauth = _client_for(app, riley)
    connect_as(rclient, rauth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    riley_id, email = riley.id, riley.email
    room = "https://northwind.webex.com/meet/riley.chen"
    session.add(
        SchedulingPreference(
            organisation_id=org.id,
            user_id=riley_id,
            start_minute=540,
            end_minute=1020,
            weekdays="12345",
            video_profile="explicit",
            video_room_url=room,
            video_room_name="Webex",
        )
    )
    session.commit()

    client, auth = _client_for(app, reviewer)
    auth.post(
        f"/compliance/people/{riley_id}/erasure",
        {"future_interviews": "cancel"},
        form_page=f"/compliance/people/{riley_id}",
    )
    request_row = session.scalar(select(ErasureRequest))
    assert request_row.status == "proposed"
    # The reviewer cannot confirm their own proposal; the admin can.
    denied = auth.post(
        f"/compliance/erasures/{request_row.id}",
        {"decision": "confirm"},
        form_page="/compliance/erasures",
    )
    assert denied.status_code == 403
    session.expire_all()
    assert session.get(User, riley_id) is not None

    admin_client, admin_auth = _client_for(app, admin)
    # What confirming will do: their calendar's grant revoked, its tokens deleted, their rows.
    plan = admin_client.get(f"/compliance/erasures/{request_row.id}").get_data(as_text=True)
    assert "<td>1</td><td>calendar authorizations revoked at the calendar service (at" in plan
    assert "<td>1</td><td>stored calendar tokens deleted</td>" in plan
    assert "<td>1</td><td>Which coordinator schedules for which hiring manager: records" in plan
    assert "<td>1</td><td>Working hours and video preferences: records deleted" in plan
    confirmed = admin_auth.post(
        f"/compliance/erasures/{request_row.id}",
        {"decision": "confirm", "confirm_email": email.upper()},
        form_page=f"/compliance/erasures/{request_row.id}",
    )
    assert confirmed.status_code == 303 and "/compliance/erasures/receipts/" in confirmed.location
    receipt = admin_client.get(confirmed.location)
    text = receipt.get_data(as_text=True)
    assert receipt.status_code == 200 and "Erasure receipt" in text
    assert "<td>1</td><td>calendar authorizations revoked at the calendar service" in text
    session.expire_all()
    assert session.get(User, riley_id) is None
    assert session.scalar(select(func.count(ProfileLink.id))) == 0
    assert session.scalar(select(func.count(CoordinatorAssignment.id))) == 0
    # Their meeting-room link goes with them (detached, it would read as the organisation's).
    assert session.scalar(select(func.count(SchedulingPreference.id))) == 0
    assert session.scalar(select(func.count(OAuthState.id))) == 0
    assert (
        session.scalar(
            select(func.count(AuditEntry.id)).where(
                (AuditEntry.actor_label == email) | (AuditEntry.target_label == email)
            )
        )
        == 0
    )
    assert (
        requests.get(
            sandbox.url + "/v1/account",
            timeout=5,
            headers={"Authorization": f"Bearer {creds.access_token}"},
        ).status_code
        == 401
    )
    tombstone = session.get(ErasureRequest, request_row.id)
    assert tombstone.status == "completed" and tombstone.receipt["accounts_deleted"] == 1
    # Export after erasure returns nothing; the email is found nowhere.
    assert client.get(f"/compliance/people/{riley_id}/export.json").status_code == 404
    assert "No local record holds this email" in client.get(
        f"/compliance/people?q={email}"
    ).get_data(as_text=True)
    assert riley_id not in [u.id for u in session.scalars(select(User))]
    history = admin_client.get("/compliance/erasures").get_data(as_text=True)
    assert f"user #{riley_id}" in history and "completed" in history
    # The session of the erased person ends.
    assert rclient.get("/").status_code == 302


def test_erasure_can_be_rejected_and_bad_input_changes_nothing(app, session, org, reviewer):
    target = make_user(session, org, Role.RECRUITER)
    admin = make_user(session, org, Role.ADMIN)
    _, auth = _client_for(app, reviewer)
    bad = auth.post(
        f"/compliance/people/{target.id}/erasure",
        {"future_interviews": "maybe"},
        form_page=f"/compliance/people/{target.id}",
    )
    assert bad.status_code == 302 and session.scalar(select(ErasureRequest)) is None
    auth.post(
        f"/compliance/people/{target.id}/erasure",
        {"future_interviews": "keep"},
        form_page=f"/compliance/people/{target.id}",
    )
    twice = auth.post(
        f"/compliance/people/{target.id}/erasure",
        {"future_interviews": "keep"},
        form_page=f"/compliance/people/{target.id}",
    )
    assert twice.status_code == 302
    assert session.scalar(select(func.count(ErasureRequest.id))) == 1
    _, admin_auth = _client_for(app, admin)
    req = session.scalar(select(ErasureRequest))
    admin_auth.post(
        f"/compliance/erasures/{req.id}", {"decision": "reject"}, form_page="/compliance/erasures"
    )
    session.expire_all()
    assert session.get(ErasureRequest, req.id).status == "rejected"
    assert session.get(User, target.id) is not None


def test_single_role_erasure_when_configured(app_config, session, org, reviewer):
    from webapp import create_app

    app = create_app(dict(app_config, ERASURE_CONFIRM_ROLE="compliance"))
    target_id = make_user(session, org, Role.RECRUITER).id
    _, auth = _client_for(app, reviewer)
    email = session.get(User, target_id).email
    response = auth.post(
        f"/compliance/people/{target_id}/erasure",
        {"future_interviews": "keep"},
        form_page=f"/compliance/people/{target_id}",
    )
    # The reviewer confirms on the confirmation page, typing the address like an admin would.
    assert response.status_code == 303 and response.location.startswith("/compliance/erasures/")
    assert email in auth._client.get(response.location).get_data(as_text=True)
    confirmed = auth.post(
        response.location, {"decision": "confirm", "confirm_email": email}, form_page=None
    )
    assert confirmed.status_code == 303 and "/receipts/" in confirmed.location
    session.expire_all()
    assert session.get(User, target_id) is None


def test_retention_purges_old_audit_entries(app, session, org):
    old = AuditEntry(
        organisation_id=org.id,
        action="old.thing",
        outcome="success",
        at=utcnow() - timedelta(days=401),
    )
    recent = AuditEntry(organisation_id=org.id, action="recent.thing", outcome="success")
    session.add_all([old, recent])
    session.commit()
    deps.jobs.of(app).enqueue("maintenance.purge_audit_entries")
    session.expire_all()
    actions = set(session.scalars(select(AuditEntry.action)))
    assert "old.thing" not in actions and "recent.thing" in actions
    assert "retention.purged" in actions


# --- erasure and the person's interviews --------------------------------------------------------

from tests.webapp.scheduling_support import make_panel, managed  # noqa: E402
from tests.webapp.test_scheduling import first_slot, query_for, schedule  # noqa: E402


@pytest.mark.parametrize(
    "choice, already_gone", [("cancel", False), ("keep", False), ("cancel", True)]
)
def test_erasure_cancels_or_keeps_the_persons_future_interviews(
    app, session, sandbox, org, reviewer, choice, already_gone
):
    from models import Interview, InterviewStatus
    from tests.webapp.scheduling_support import link_calendar

    host = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    link_calendar(app, session, sandbox, host)
    panel = make_panel(app, session, sandbox, org, 2)
    query = query_for(panel)
    interview, _ = schedule(app, session, host, query, first_slot(app, session, host, query).start)
    assert interview.status is InterviewStatus.SCHEDULED
    event_id = interview.events[0].event_id
    panel_link = panel[0][1]
    assert any(e.event_id == event_id for e in managed(app, session, interview.host_link))
    host_id = host.id
    admin = make_user(session, org, Role.ADMIN)

    _, auth = _client_for(app, reviewer)
    auth.post(
        f"/compliance/people/{host_id}/erasure",
        {"future_interviews": choice},
        form_page=f"/compliance/people/{host_id}",
    )
    request_row = session.scalar(select(ErasureRequest))
    if already_gone:
        # The event goes between the erasure reading it and deleting it: the aggregator answers
        # the delete with 404. Erasure cancels through the scheduling path, where an event
        # already gone counts as deleted, so the interview is cancelled, not a failure.
        sandbox.add_fault(method="DELETE", path="/v1/calendars/*/events", status=404)
    admin_client, admin_auth = _client_for(app, admin)
    # The confirmation page's plan reads the same future events the erasure then acts on.
    plan = admin_client.get(f"/compliance/erasures/{request_row.id}").get_data(as_text=True)
    will = "future interviews cancelled" if choice == "cancel" else "future interviews kept"
    assert f"<td>1</td><td>{will}" in plan
    admin_auth.post(
        f"/compliance/erasures/{request_row.id}",
        {"decision": "confirm", "confirm_email": "riley.chen@northwind.example"},
        form_page="/compliance/erasures",
    )
    session.expire_all()
    receipt = session.get(ErasureRequest, request_row.id).receipt
    assert session.get(User, host_id) is None
    # The host's calendar access is revoked, so look at the calendar as its owner would.
    events = sandbox.call("GET", "/events", params={"email": "riley.chen@northwind.example"})
    held = [e for e in events["events"] if e.get("event_id") == event_id and not e.get("deleted")]
    if choice == "cancel":
        assert receipt["future_interviews_cancelled"] == 1
        assert "future_interviews_not_cancelled" not in receipt
        assert held == [] or already_gone  # (the fault answered for the aggregator)
    else:
        assert receipt["future_interviews_kept"] == 1
        assert len(held) == 1
    assert session.scalar(select(func.count(Interview.id))) == 0  # local ids went with the link
    assert session.get(type(panel_link), panel_link.id) is not None  # other people untouched


def test_candidate_email_finds_interview_ids_through_the_aggregator(
    app, session, sandbox, org, reviewer, database_url
):
    from pathlib import Path

    from tests.webapp.scheduling_support import link_calendar
    from tests.webapp.test_scheduling import CANDIDATE_EMAIL

    host = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    link_calendar(app, session, sandbox, host)
    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(app, session, host, query, first_slot(app, session, host, query).start)

    client, _ = _client_for(app, reviewer)
    page = client.get(f"/compliance/people?q={CANDIDATE_EMAIL}").get_data(as_text=True)
    assert "No local record holds this email" in page
    assert f"<code>{interview.uid}</code>" in page
    other = client.get("/compliance/people?q=nobody.else@gmail.example").get_data(as_text=True)
    assert interview.uid not in other and "No interview's calendar event invites" in other
    lookups = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "subject.candidate_lookup")
        .order_by(AuditEntry.id)
    ).all()
    assert [e.detail["interviews"] for e in lookups] == [1, 0]
    assert all(CANDIDATE_EMAIL not in str(e.detail) + str(e.target_label) for e in lookups)
    if database_url.startswith("sqlite"):
        raw = Path(database_url.removeprefix("sqlite:///")).read_bytes()
        assert CANDIDATE_EMAIL.encode() not in raw
