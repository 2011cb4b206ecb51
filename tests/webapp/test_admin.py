"""Organisation administration: invitations, roles, deactivation, coordinator assignments."""

import re

import pytest
from sqlalchemy import func, select

from models import AuditEntry, CoordinatorAssignment, Role, User
from tests.conftest import AuthActions, csrf_token
from tests.factories import assign, make_org, make_user


@pytest.fixture
def admin(session, org, auth):
    user = make_user(session, org, Role.ADMIN, email="alex@northwind.example")
    auth.login(user.email)
    return user


def _count(session, model):
    return session.scalar(select(func.count(model.id)))


def _audit(session, action):
    return session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_invite_shows_a_one_time_link_that_sets_the_password(app, auth, session, admin):
    response = auth.post(
        "/admin/users",
        {"name": "Dana Fox", "email": "Dana@Northwind.example ", "role": "recruiter"},
        form_page="/admin/users",
    )
    assert response.status_code == 201
    link = re.search(
        r'value="(http://localhost/invite/[^"]+)"', response.get_data(as_text=True)
    ).group(1)
    path = link.removeprefix("http://localhost")
    dana = session.scalar(select(User).where(User.email == "dana@northwind.example"))
    assert dana.password_hash is None and dana.invite_token_hash not in link
    assert _audit(session, "user.invited")[0].target_label == "dana@northwind.example"

    browser = app.test_client()
    short = browser.post(path, data={"csrf_token": csrf_token(browser, path), "password": "short"})
    assert short.status_code == 400 and "at least 12" in short.get_data(as_text=True)
    ok = browser.post(
        path, data={"csrf_token": csrf_token(browser, path), "password": "a fine long passphrase"}
    )
    assert ok.status_code == 302
    assert "Dana Fox" in browser.get("/").get_data(as_text=True)
    assert browser.get(path).status_code == 404  # used once
    assert (
        AuthActions(app.test_client())
        .login("dana@northwind.example", "a fine long passphrase")
        .status_code
        == 302
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "X", "email": "not-an-email", "role": "recruiter"}, "valid email"),
        ({"name": "X", "email": "alex@northwind.example", "role": "recruiter"}, "already exists"),
        ({"name": "X", "email": "x@northwind.example", "role": "superuser"}, "Not a valid choice"),
        (
            {"name": "", "email": "x@northwind.example", "role": "recruiter"},
            "This field is required",
        ),
    ],
)
def test_bad_invitations_are_refused_and_change_nothing(auth, session, admin, data, message):
    before = _count(session, User)
    response = auth.post("/admin/users", data, form_page="/admin/users")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(session, User) == before


def test_role_change_is_audited_and_ends_the_users_sessions(app, auth, session, org, admin):
    bob = make_user(session, org, Role.RECRUITER)
    bob_client = app.test_client()
    AuthActions(bob_client).login(bob.email)
    response = auth.post(
        f"/admin/users/{bob.id}/role", {"role": "compliance"}, form_page=f"/admin/users/{bob.id}"
    )
    assert response.status_code == 302
    session.refresh(bob)
    assert bob.role is Role.COMPLIANCE
    assert _audit(session, "user.role_changed")[0].detail == {
        "from": "recruiter",
        "to": "compliance",
    }
    assert bob_client.get("/").status_code == 302


def test_the_last_admin_cannot_be_demoted_or_deactivated(client, auth, session, admin):
    response = auth.post(
        f"/admin/users/{admin.id}/role", {"role": "recruiter"}, form_page=f"/admin/users/{admin.id}"
    )
    assert response.status_code == 302
    assert "at least one active IT admin" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    session.refresh(admin)
    assert admin.role is Role.ADMIN
    auth.post(f"/admin/users/{admin.id}/deactivate", form_page=f"/admin/users/{admin.id}")
    session.refresh(admin)
    assert admin.active


def test_deactivate_and_reactivate(app, auth, session, org, admin):
    bob = make_user(session, org, Role.RECRUITER)
    bob_client = app.test_client()
    AuthActions(bob_client).login(bob.email)
    auth.post(f"/admin/users/{bob.id}/deactivate", form_page=f"/admin/users/{bob.id}")
    session.refresh(bob)
    assert not bob.active
    assert bob_client.get("/").status_code == 302
    assert AuthActions(bob_client).login(bob.email).status_code == 401
    auth.post(f"/admin/users/{bob.id}/reactivate", form_page=f"/admin/users/{bob.id}")
    session.refresh(bob)
    assert bob.active
    assert [
        e.action
        for e in session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("user.%activated"))
            .order_by(AuditEntry.id)
        )
    ] == ["user.deactivated", "user.reactivated"]


def test_assign_and_remove_a_coordinator(client, auth, session, org, admin):
    coordinator = make_user(session, org, Role.COORDINATOR)
    manager = make_user(session, org, Role.RECRUITER)
    response = auth.post(
        "/admin/assignments",
        {"coordinator_id": coordinator.id, "manager_id": manager.id},
        form_page="/admin/users",
    )
    assert response.status_code == 302
    assignment = session.scalar(select(CoordinatorAssignment))
    assert (assignment.coordinator_id, assignment.manager_id) == (coordinator.id, manager.id)
    again = auth.post(
        "/admin/assignments",
        {"coordinator_id": coordinator.id, "manager_id": manager.id},
        form_page="/admin/users",
    )
    assert again.status_code == 400 and "already assigned" in again.get_data(as_text=True)
    wrong = auth.post(
        "/admin/assignments",
        {"coordinator_id": manager.id, "manager_id": coordinator.id},
        form_page="/admin/users",
    )
    assert wrong.status_code == 400
    assert _count(session, CoordinatorAssignment) == 1
    auth.post(f"/admin/assignments/{assignment.id}/delete", form_page="/admin/users")
    assert _count(session, CoordinatorAssignment) == 0
    assert [
        e.action
        for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("assignment.%")).order_by(AuditEntry.id)
        )
    ] == ["assignment.created", "assignment.removed"]


def test_coordinator_sees_their_managers(app, session, org):
    coordinator = make_user(session, org, Role.COORDINATOR)
    manager = make_user(session, org, Role.RECRUITER, name="Sam Patel")
    make_user(session, org, Role.RECRUITER, name="Not Assigned")
    assign(session, coordinator, manager)
    client = app.test_client()
    AuthActions(client).login(coordinator.email)
    page = client.get("/managers").get_data(as_text=True)
    assert "Sam Patel" in page and "Not Assigned" not in page


def test_admin_cannot_touch_another_organisations_users(auth, session, admin):
    other_org = make_org(session)
    stranger = make_user(session, other_org, Role.RECRUITER)
    coordinator = make_user(session, other_org, Role.COORDINATOR)
    assignment = assign(session, coordinator, stranger)
    assert auth._client.get(f"/admin/users/{stranger.id}").status_code == 404
    for path in (
        f"/admin/users/{stranger.id}/deactivate",
        f"/admin/users/{stranger.id}/role",
        f"/assignments/{assignment.id}/delete",
    ):
        response = auth.post(
            "/admin" + path if path.startswith("/assignments") else path,
            {"role": "admin"},
            form_page="/admin/users",
        )
        assert response.status_code in (302, 404)
    session.refresh(stranger)
    assert stranger.active and stranger.role is Role.RECRUITER
    assert _count(session, CoordinatorAssignment) == 1
    assert "Stranger" not in auth._client.get("/admin/users").get_data(as_text=True)
    assert stranger.email not in auth._client.get("/admin/users").get_data(as_text=True)


def test_compliance_reviewer_reads_the_audit_trail(app, session, org):
    reviewer = make_user(session, org, Role.COMPLIANCE)
    client = app.test_client()
    AuthActions(client).login(reviewer.email)
    page = client.get("/compliance/audit").get_data(as_text=True)
    assert "auth.login" in page and reviewer.email in page
