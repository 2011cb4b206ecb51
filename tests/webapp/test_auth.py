"""Logging in and out, sessions, and what bad input gets."""

import time

from sqlalchemy import func, select

from models import AuditEntry, Role, User
from tests.conftest import csrf_token
from tests.factories import make_user

WRONG = "Wrong email or password."


def _actions(session):
    return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_login_succeeds_is_audited_and_lands_on_home(client, auth, session, riley):
    response = auth.login("RILEY.CHEN@northwind.example ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert riley.name in page
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.login"))
    assert entry.actor_id == riley.id and entry.outcome == "success"
    assert entry.ip_address == "127.0.0.1" and entry.request_id


def test_wrong_password_and_unknown_user_get_the_same_answer(client, auth, session, riley):
    wrong = auth.login("riley.chen@northwind.example", "not the password at all")
    unknown = auth.login("nobody@northwind.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert WRONG in wrong.get_data(as_text=True) and WRONG in unknown.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out
    failures = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.login_failed")
    ).all()
    assert [f.outcome for f in failures] == ["failure", "failure"]
    assert all("not the password" not in str(f.detail) for f in failures)


def test_deactivated_user_cannot_log_in(auth, session, org):
    make_user(session, org, email="gone@northwind.example", active=False)
    response = auth.login("gone@northwind.example")
    assert response.status_code == 401 and WRONG in response.get_data(as_text=True)


def test_login_clears_the_pre_login_session(client, auth, riley):
    with client.session_transaction() as s:
        s["planted"] = "by an attacker"
    auth.login("riley.chen@northwind.example")
    with client.session_transaction() as s:
        assert "planted" not in s
        assert s["_user_id"] == f"{riley.id}:1"


def test_logout_ends_every_session_of_the_user(app, auth, session, riley):
    other = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(other).login("riley.chen@northwind.example")
    auth.login("riley.chen@northwind.example")
    assert other.get("/").status_code == 200
    assert auth.logout().status_code == 302
    assert other.get("/").status_code == 302
    assert "auth.logout" in _actions(session)


def test_logout_requires_post_with_csrf(client, auth, riley):
    auth.login("riley.chen@northwind.example")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_missing_or_invalid_csrf_token_is_rejected_and_changes_nothing(client, auth, session, org):
    make_user(session, org, Role.ADMIN, email="admin@northwind.example")
    auth.login("admin@northwind.example")
    before = session.scalar(select(func.count(User.id)))
    for token in (None, "forged-token"):
        data = {"name": "Eve", "email": "eve@northwind.example", "role": "admin"}
        if token:
            data["csrf_token"] = token
        response = client.post("/admin/users", data=data)
        assert response.status_code == 400
        assert "nothing was changed" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(User.id))) == before


def test_login_is_rate_limited(app_config, riley):
    from tests.conftest import AuthActions
    from webapp import create_app

    app_config["LOGIN_RATE_LIMIT"] = "3 per minute"
    client = create_app(app_config).test_client()
    auth = AuthActions(client)
    codes = [
        auth.login("riley.chen@northwind.example", "wrong password!!").status_code for _ in range(4)
    ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429
    limited = auth.login("riley.chen@northwind.example")
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert limited.headers.get("Retry-After")


def test_next_redirect_only_to_local_paths(client, auth, riley):
    token = csrf_token(client, "/login")
    for target, expected in [
        ("/profile/", "/profile/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        response = client.post(
            "/login",
            data={
                "csrf_token": token,
                "email": "riley.chen@northwind.example",
                "password": "correct horse battery staple",
                "next": target,
            },
        )
        assert response.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf_token(client, "/profile/")})
        token = csrf_token(client, "/login")


def test_idle_and_absolute_session_timeouts(client, auth, riley):
    auth.login("riley.chen@northwind.example")
    with client.session_transaction() as s:
        s["seen_at"] = time.time() - 61 * 60
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")

    auth.login("riley.chen@northwind.example")
    with client.session_transaction() as s:
        s["login_at"] = time.time() - 13 * 3600
    assert client.get("/").status_code == 302


def test_idle_clock_is_written_once_a_minute_and_never_extends_the_idle_limit(
    app, client, auth, riley
):
    from webapp.web import SEEN_EVERY

    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    auth.login("riley.chen@northwind.example")
    client.get("/")  # shows the login's message (taking it out of the session)
    # Within the minute: the session is unchanged, so no cookie is re-signed and re-sent.
    response = client.get("/")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    # Older than the minute: the clock moves on (a new cookie), so activity keeps it open.
    with client.session_transaction() as s:
        s["seen_at"] = time.time() - SEEN_EVERY - 1
    response = client.get("/")
    assert response.status_code == 200 and "Set-Cookie" in response.headers
    with client.session_transaction() as s:
        assert time.time() - s["seen_at"] < 5
    # Within the minute the clock stays where it was written: idle time counts from the last
    # write, never from a later request, so the limit below is reached on time or earlier.
    written = time.time() - SEEN_EVERY / 2
    with client.session_transaction() as s:
        s["seen_at"] = written
    assert client.get("/").status_code == 200
    with client.session_transaction() as s:
        assert s["seen_at"] == written
        s["seen_at"] = time.time() - idle - 1
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_role_change_and_deactivation_end_sessions(app, client, auth, session, org, riley):
    auth.login("riley.chen@northwind.example")
    assert client.get("/").status_code == 200
    with app.app_context():
        user = session.get(User, riley.id)
        user.session_version += 1  # what change_role / set_active do
        session.commit()
    assert client.get("/").status_code == 302


def test_unknown_route_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is no page at this address." in response.get_data(as_text=True)


def test_unhandled_error_is_a_generic_500_with_request_id(app, client, caplog):
    from webapp.security import public

    @app.route("/boom")
    @public
    def boom():
        raise RuntimeError("internal detail: secret-value-123")

    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert response.headers["X-Request-ID"] in body
    assert "Traceback" not in body and "secret-value-123" not in body and "RuntimeError" not in body


def test_security_headers_and_cookie_flags(app_config, client, auth, riley):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers
    assert client.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"]
    login = auth.login("riley.chen@northwind.example")
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_production_cookies_are_secure(app_config, riley):
    from tests.conftest import AuthActions
    from webapp import create_app

    app_config["SESSION_COOKIE_SECURE"] = True
    client = create_app(app_config).test_client()
    response = AuthActions(client).login(
        "riley.chen@northwind.example", base_url="https://localhost"
    )
    assert "Secure" in response.headers["Set-Cookie"]
