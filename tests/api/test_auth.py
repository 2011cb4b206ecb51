"""How the API authenticates: bearer tokens only, the owner's current role, one error shape,
rate limits with standard headers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from models import ApiToken, AuditEntry, Role, User, utcnow
from tests.api.conftest import assert_error, issue_token
from webapp import deps


def test_no_token_is_401_in_the_error_shape(api):
    error = assert_error(api.get("/me"), 401, "unauthorized")
    assert "Bearer" in error["message"]


def test_a_session_cookie_is_not_accepted(client, auth, session, org, api):
    from tests.factories import make_user

    user = make_user(session, org, Role.RECRUITER)
    auth.login(user.email)
    response = api.get("/me")  # the test client sends the session cookie
    error = assert_error(response, 401, "unauthorized")
    assert "not browser sessions" in error["message"]
    assert "Set-Cookie" not in response.headers  # the session is neither read nor refreshed
    # A POST with the cookie and without a CSRF token is refused by authentication, not CSRF.
    assert_error(api.delete("/calendar-links/1"), 401)


def test_other_schemes_and_garbage_tokens_are_401(api, token_user):
    valid = token_user(Role.RECRUITER).token
    for header in [
        "Basic dXNlcjpwYXNz",
        f"Token {valid}",
        "Bearer",
        "Bearer not-a-token",
        "Bearer rdv_" + "A" * 43,
        "Bearer " + "x" * 5000,
    ]:
        assert_error(api.get("/me", headers={"Authorization": header}), 401)


def test_expired_token_and_deactivated_owner_are_refused(api, token_user, session):
    expired = token_user(Role.RECRUITER)
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == expired.user.id))
    row.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    assert "expired" in assert_error(api.get("/me", token=expired.token), 401)["message"]

    inactive = token_user(Role.ADMIN)
    assert api.get("/me", token=inactive.token).status_code == 200
    session.get(User, inactive.user.id).active = False
    session.commit()
    assert "deactivated" in assert_error(api.get("/me", token=inactive.token), 401)["message"]
    reasons = [
        e.detail["reason"]
        for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "api_token.denied"))
    ]
    assert reasons == ["expired", "inactive user"]


def test_deactivation_revokes_the_tokens_so_reactivation_does_not_revive_them(
    app, api, token_user, session
):
    from tests.conftest import AuthActions

    admin = token_user(Role.ADMIN, email="alex.kim@northwind.example")
    person = token_user(Role.RECRUITER)
    second = issue_token(session, person.user, name="second")
    assert api.get("/me", token=person.token).status_code == 200
    browser = app.test_client()
    auth = AuthActions(browser)
    auth.login(admin.user.email)
    page = f"/admin/users/{person.user.id}"
    assert auth.post(page + "/deactivate", form_page=page).status_code == 302
    assert auth.post(page + "/reactivate", form_page=page).status_code == 302
    session.expire_all()
    assert session.get(User, person.user.id).active
    for token in (person.token, second):
        assert "revoked" in assert_error(api.get("/me", token=token), 401)["message"]
    assert all(
        t.revoked_at is not None
        for t in session.scalars(select(ApiToken).where(ApiToken.user_id == person.user.id))
    )
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "user.deactivated"))
    assert entry.detail == {"api_tokens_revoked": 2}
    assert api.get("/me", token=admin.token).status_code == 200  # nobody else's


def test_the_owners_current_role_applies_on_every_request(api, token_user, session):
    person = token_user(Role.RECRUITER)
    assert_error(api.get("/compliance/inventory", token=person.token), 403, "forbidden")
    session.get(User, person.user.id).role = Role.COMPLIANCE
    session.commit()
    assert api.get("/compliance/inventory", token=person.token).status_code == 200
    assert api.get("/me", token=person.token).get_json()["role"] == "compliance"
    denied = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.denied"))
    assert denied.detail["reason"] == "role" and denied.actor_id == person.user.id


def test_unknown_paths_and_methods_answer_in_the_error_shape(api, token_user):
    token = token_user(Role.RECRUITER).token
    assert_error(api.get("/no-such-thing", token=token), 404, "not_found")
    response = api.post("/me", token=token)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, PATCH"


def test_json_bodies_are_checked_and_errors_name_the_fields(api, token_user):
    token = token_user(Role.RECRUITER).token
    assert_error(api.post("/interviews", token=token, data="x", content_type="text/plain"), 415)
    assert_error(
        api.post("/interviews", token=token, data="{not json", content_type="application/json"),
        400,
        "bad_request",
    )
    error = assert_error(
        api.post("/interviews", token=token, json={"panel": [], "surprise": 1}), 422, "invalid"
    )
    assert {"panel", "start", "title", "candidate_name", "candidate_email", "surprise"} <= set(
        error["fields"]
    )


def test_rate_limit_per_token_with_standard_headers(app_config, session):
    from tests.api.conftest import ApiClient, issue_token
    from tests.factories import make_org, make_user
    from webapp import create_app

    app = create_app(dict(app_config, API_RATE_LIMIT="3 per minute"))
    with deps.database.of(app).sessions() as db:
        org = make_org(db)
        first, second = (issue_token(db, make_user(db, org, Role.RECRUITER)) for _ in range(2))
    api = ApiClient(app.test_client())
    seen = [api.get("/me", token=first) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert seen[0].headers["X-RateLimit-Limit"] == "3"
    assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert int(seen[0].headers["X-RateLimit-Reset"]) > 0
    assert all("Retry-After" not in r.headers for r in seen)  # only a 429 says to wait
    limited = api.get("/me", token=first)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    # Another token has its own allowance.
    assert api.get("/me", token=second).status_code == 200


def test_docs_and_openapi_document_are_public(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and spec.get_json()["openapi"].startswith("3.")
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    page = docs.get_data(as_text=True)
    assert "<script" not in page and "/api/v1/interviews" in page and "bearer" in page.lower()


def test_retry_after_is_sent_only_with_a_429(client, session, token_user, api):
    """Successes and every other error carry the rate-limit headers but never Retry-After (which
    would tell a client to wait for nothing); the document says the same."""
    from webapp.api.openapi import build_spec

    recruiter, admin = token_user(Role.RECRUITER), token_user(Role.ADMIN)
    answers = [
        api.get("/me", token=recruiter.token),  # 200
        api.get("/nowhere", token=recruiter.token),  # 404
        api.get("/compliance/inventory", token=recruiter.token),  # 403
        api.get("/availability", token=recruiter.token),  # 422
        api.post("/interviews", token=recruiter.token, data="x", content_type="text/plain"),  # 415
        api.delete("/me", token=recruiter.token),  # 405
        api.get("/panel-members", token=admin.token),  # 403
    ]
    assert [r.status_code for r in answers] == [200, 404, 403, 422, 415, 405, 403]
    for response in answers:
        assert response.headers["X-RateLimit-Limit"]
        assert "Retry-After" not in response.headers, response.status_code
    spec = build_spec()
    with_retry = [
        name
        for name, response in spec["components"]["responses"].items()
        if "Retry-After" in response.get("headers", {})
    ]
    assert with_retry == ["Error429"]
    for methods in spec["paths"].values():
        for op in methods.values():
            for status, response in op["responses"].items():
                assert "Retry-After" not in response.get("headers", {}), status


def test_role_refusals_read_as_sentences(session, token_user, api):
    """The role is named with its article, and the sentence says who the operation is for."""
    admin, reviewer = token_user(Role.ADMIN), token_user(Role.COMPLIANCE)
    coordinator = token_user(Role.COORDINATOR)
    error = assert_error(api.get("/interviews", token=admin.token), 403, "forbidden")
    assert error["message"] == (
        "An IT admin cannot use this operation. It is for recruiters and coordinators."
    )
    error = assert_error(api.get("/scheduling-links", token=reviewer.token), 403, "forbidden")
    assert error["message"] == (
        "A compliance reviewer cannot use this operation. It is for recruiters."
    )
    error = assert_error(api.get("/compliance/audit", token=coordinator.token), 403)
    assert error["message"] == (
        "A coordinator cannot use this operation. It is for compliance reviewers."
    )


def _sentence(message: str) -> bool:
    return message[:1].isupper() and message.rstrip().endswith((".", "?"))


def test_default_and_not_found_messages_are_sentences(session, token_user, api):
    from webapp.api.errors import CODES

    assert [m for _code, m in CODES.values() if not _sentence(m)] == []
    admin = token_user(Role.ADMIN)
    answers = [
        api.get("/enterprise/domains/999/mailboxes", token=admin.token),
        api.get("/nowhere", token=admin.token),
        api.get("/me"),
    ]
    recruiter = token_user(Role.RECRUITER)
    answers += [
        api.get("/interviews/" + "f" * 32, token=recruiter.token),
        api.post("/scheduling-links/999/revoke", token=recruiter.token),
    ]
    messages = [r.get_json()["error"]["message"] for r in answers]
    assert [r.status_code for r in answers] == [404, 404, 401, 404, 404]
    assert messages[0] == "Your organisation has no connected domain with this id."
    assert messages[3] == "There is no interview with this id that you can see."
    assert messages[4] == "You have no self-scheduling link with this id."
    assert all(_sentence(m) for m in messages), messages
