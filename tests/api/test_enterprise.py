"""Enterprise Connect through the API: domains, mailbox status, bulk link requests (IT admin)."""

from __future__ import annotations

import pytest

from models import MailboxStatus, Role
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.conftest import AuthActions
from tests.factories import make_user
from tests.webapp.test_enterprise import FABRIKAM, connect_domain, rows, users_on


@pytest.fixture
def admin_setup(app, session, org, sandbox, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(admin.email)
    link = connect_domain(client, auth, session, sandbox)
    return ApiClient(app.test_client(), issue_token(session, admin)), link


def test_bulk_request_then_status(app, session, sandbox, org, admin_setup):
    api, link = admin_setup
    users_on(session, org, FABRIKAM[:3] + ["ceo.office@fabrikam.example"])
    [domain] = api.get("/enterprise/domains").get_json()["items"]
    assert domain["id"] == link.id and domain["domain"] == "fabrikam.example"
    assert domain["mailboxes"]["total"] == 0

    response = api.post(
        f"/enterprise/domains/{link.id}/mailbox-requests",
        json={
            "emails": [*FABRIKAM[:3], "ceo.office@fabrikam.example", "not-an-email", FABRIKAM[0]]
        },
    )
    assert response.status_code == 202, response.get_json()
    report = response.get_json()
    assert report["queued"] == 4
    assert {r["reason"] for r in report["rejected"]} == {
        "not a valid email address",
        "listed more than once",
    }
    assert {r.status for r in rows(session, link).values()} == {MailboxStatus.PENDING}
    sandbox.deliver()

    counts = api.get("/enterprise/domains").get_json()["items"][0]["mailboxes"]
    assert counts["linked"] == 3 and counts["failed"] == 1 and counts["waiting"] == 0
    first = api.get(
        f"/enterprise/domains/{link.id}/mailboxes", query_string={"limit": 2}
    ).get_json()
    second = api.get(
        f"/enterprise/domains/{link.id}/mailboxes",
        query_string={"limit": 2, "cursor": first["next_cursor"]},
    ).get_json()
    emails = [m["email"] for m in first["items"] + second["items"]]
    assert emails == sorted(FABRIKAM[:3] + ["ceo.office@fabrikam.example"])
    assert second["next_cursor"] is None
    failed = api.get(
        f"/enterprise/domains/{link.id}/mailboxes", query_string={"status": "failed"}
    ).get_json()["items"]
    assert [m["error_key"] for m in failed] == ["outside_impersonation_scope"]
    assert (
        "status"
        in assert_error(
            api.get(f"/enterprise/domains/{link.id}/mailboxes", query_string={"status": "bogus"}),
            422,
        )["fields"]
    )


def test_nothing_chosen_is_422_and_other_orgs_domains_are_404(session, org, admin_setup):
    api, link = admin_setup
    assert_error(api.post(f"/enterprise/domains/{link.id}/mailbox-requests", json={}), 422)
    assert_error(api.get("/enterprise/domains/999999/mailboxes"), 404)
    assert_error(
        api.post("/enterprise/domains/999999/mailbox-requests", json={"all_users": True}), 404
    )


def test_only_it_admins(client, token_user):
    for role in (Role.RECRUITER, Role.COORDINATOR, Role.COMPLIANCE):
        api = ApiClient(client, token_user(role).token)
        assert_error(api.get("/enterprise/domains"), 403)
        assert_error(
            api.post("/enterprise/domains/1/mailbox-requests", json={"all_users": True}), 403
        )
