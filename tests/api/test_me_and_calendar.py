"""Me, my calendar links, their calendars, and disconnecting, against the sandbox."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, LinkStatus, ProfileLink, Role
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.factories import make_user
from tests.webapp.scheduling_support import link_calendar


def test_me_describes_the_owner_and_the_token(client, session, org, token_user):
    person = token_user(Role.COORDINATOR, name="Morgan Lee")
    body = ApiClient(client, person.token).get("/me").get_json()
    assert body["name"] == "Morgan Lee" and body["role"] == "coordinator"
    assert body["organisation"] == {"id": org.id, "name": org.name}
    assert body["token"]["prefix"] == person.token[:8] and "token_hash" not in str(body)


def test_my_calendar_link_its_calendars_and_disconnect(app, client, session, sandbox, org):
    user = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    link = link_calendar(app, session, sandbox, user)
    api = ApiClient(client, issue_token(session, user))
    listed = api.get("/calendar-links").get_json()
    assert listed["next_cursor"] is None
    [item] = listed["items"]
    assert item["id"] == link.id and item["status"] == "active" and item["mode"] == "business"
    assert item["account_email"] == "riley.chen@northwind.example"
    assert item["target_calendar_id"] == link.target_calendar_id

    calendars = api.get(f"/calendar-links/{link.id}/calendars").get_json()["items"]
    assert link.target_calendar_id in {c["calendar_id"] for c in calendars}
    assert all(c["name"] for c in calendars)

    report = api.delete(f"/calendar-links/{link.id}")
    assert report.status_code == 200
    assert report.get_json() == {
        "account_email": "riley.chen@northwind.example",
        "revoked_at_aggregator": True,
        "revocation_queued": False,
        "tokens_deleted": True,
    }
    session.expire_all()
    stored = session.get(ProfileLink, link.id)
    assert stored.status is LinkStatus.DISCONNECTED and stored.refresh_token is None
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.disconnected"))
    assert_error(api.delete(f"/calendar-links/{link.id}"), 404)
    assert_error(api.get(f"/calendar-links/{link.id}/calendars"), 409, "disconnected")


def test_someone_elses_link_is_404(app, client, session, sandbox, org):
    owner = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    link = link_calendar(app, session, sandbox, owner)
    other = make_user(session, org, Role.RECRUITER)
    api = ApiClient(client, issue_token(session, other))
    assert api.get("/calendar-links").get_json()["items"] == []
    assert_error(api.get(f"/calendar-links/{link.id}/calendars"), 404, "not_found")
    assert_error(api.delete(f"/calendar-links/{link.id}"), 404, "not_found")
    session.expire_all()
    assert session.get(ProfileLink, link.id).status is LinkStatus.ACTIVE


def test_admins_and_reviewers_have_no_calendar_links(client, session, org, token_user):
    for role in (Role.ADMIN, Role.COMPLIANCE):
        api = ApiClient(client, token_user(role).token)
        assert_error(api.get("/calendar-links"), 403, "forbidden")
        assert_error(api.delete("/calendar-links/1"), 403, "forbidden")
