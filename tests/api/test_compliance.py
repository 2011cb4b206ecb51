"""Compliance reviewer endpoints: inventory, audit trail (filtered, cursor-paged), subject
export."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, Role
from tests.api.conftest import ApiClient, assert_error
from tests.factories import make_org, make_user
from tests.held_jobs import HeldJobs
from webapp.services.audit import record


def test_inventory_lists_every_table_with_its_classification(client, token_user):
    api = ApiClient(client, token_user(Role.COMPLIANCE).token)
    body = api.get("/compliance/inventory").get_json()
    tables = {t["name"]: t for t in body["tables"]}
    token_columns = {c["name"]: c for c in tables["api_token"]["columns"]}
    assert (
        token_columns["token_hash"]["hashed"]
        and token_columns["token_hash"]["category"] == "secret-hashed"
    )
    assert tables["api_token"]["rows"] == 1  # the reviewer's own token
    assert body["not_stored"] and body["processor"] and body["retention"]


def test_audit_trail_pages_through_everything_once(client, session, org, token_user):
    reviewer = token_user(Role.COMPLIANCE)
    api = ApiClient(client, reviewer.token)
    from webapp.services import Actor

    actor = Actor(reviewer.user.id, reviewer.user.email, org.id, Role.COMPLIANCE)
    for n in range(7):
        record(session, actor, "retention.purged", target_label=f"thing-{n}")
    session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, "action": "retention.purged"}
        if cursor:
            params["cursor"] = cursor
        body = api.get("/compliance/audit", query_string=params).get_json()
        seen += [e["target_label"] for e in body["items"]]
        pages += 1
        if pages == 2:  # entries arriving meanwhile do not make the next page repeat any
            record(session, actor, "retention.purged", target_label="late")
            session.commit()
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen == [f"thing-{n}" for n in range(6, -1, -1)]
    # Other organisations' entries never show.
    other = make_org(session)
    record(session, None, "retention.purged", organisation_id=other.id, target_label="foreign")
    session.commit()
    body = api.get(
        "/compliance/audit", query_string={"action": "retention.purged", "limit": 100}
    ).get_json()
    assert "foreign" not in {e["target_label"] for e in body["items"]}


def test_audit_filters_are_validated(client, token_user):
    api = ApiClient(client, token_user(Role.COMPLIANCE).token)
    assert (
        "since"
        in assert_error(api.get("/compliance/audit", query_string={"since": "nope"}), 422)["fields"]
    )
    error = assert_error(
        api.get("/compliance/audit", query_string={"since": "2026-05-02", "until": "2026-05-01"}),
        422,
    )
    assert "since" in error["fields"]
    first = api.get("/compliance/audit", query_string={"limit": 1}).get_json()
    if first["next_cursor"]:
        assert (
            "cursor"
            in assert_error(
                api.get(
                    "/compliance/audit",
                    query_string={"limit": 1, "action": "x", "cursor": first["next_cursor"]},
                ),
                422,
            )["fields"]
        )
    assert (
        "limit"
        in assert_error(api.get("/compliance/audit", query_string={"limit": 101}), 422)["fields"]
    )


def test_subject_export_is_everything_about_a_person_and_is_audited(
    client, session, org, token_user
):
    api = ApiClient(client, token_user(Role.COMPLIANCE).token)
    subject = token_user(Role.RECRUITER, email="subject.person@northwind.example")
    body = api.get(f"/compliance/people/{subject.user.id}/export").get_json()
    assert body["person_id"] == subject.user.id
    assert body["records"]["user_account"][0]["email"] == "subject.person@northwind.example"
    [token] = body["records"]["api_token"]
    assert token["token_hash"] == "hashed (not reversible)" and subject.token not in str(body)
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "subject.exported"))
    foreign = make_user(session, make_org(session), Role.RECRUITER)
    assert_error(api.get(f"/compliance/people/{foreign.id}/export"), 404, "not_found")


def test_only_reviewers_see_compliance_data(client, token_user):
    for role in (Role.RECRUITER, Role.COORDINATOR, Role.ADMIN):
        api = ApiClient(client, token_user(role).token)
        for path in ("/compliance/inventory", "/compliance/audit", "/compliance/people/1/export"):
            assert_error(api.get(path), 403, "forbidden")


def test_erasing_a_person_deletes_their_tokens(client, session, org, token_user):
    from models import ApiToken
    from webapp.services import Actor
    from webapp.services.compliance import erasure

    subject = token_user(Role.RECRUITER)
    reviewer = token_user(Role.COMPLIANCE).user
    admin = token_user(Role.ADMIN).user
    assert ApiClient(client, subject.token).get("/me").status_code == 200
    request = erasure.propose_erasure(
        session,
        Actor(reviewer.id, reviewer.email, org.id, Role.COMPLIANCE),
        subject.user.id,
        "keep",
    )
    erasure.decide_erasure(
        session,
        None,
        None,
        Actor(admin.id, admin.email, org.id, Role.ADMIN),
        request.id,
        approve=True,
        confirm_role=Role.ADMIN,
        jobs=HeldJobs(),
        typed_confirmation=subject.user.email,
    )
    assert session.scalar(select(ApiToken).where(ApiToken.user_id == subject.user.id)) is None
    assert_error(ApiClient(client, subject.token).get("/me"), 401)
