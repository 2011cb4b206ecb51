"""The 500 page renders whatever the failed request left behind: a transaction broken by a failed
flush (every loaded object expired, the signed-in user included), or no database at all."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models import Role, User
from tests.conftest import AuthActions
from tests.factories import make_user
from webapp import deps
from webapp.db import db_session
from webapp.security import allow

BROKEN = "/_test/broken-transaction"


@pytest.fixture
def failing_app(app):
    """The app with a route whose transaction breaks (added before any request)."""

    @app.route(BROKEN)
    @allow(Role.RECRUITER)
    def broken_transaction():
        db = db_session()
        me = db.scalar(select(User).where(User.role == Role.RECRUITER))
        # A uniqueness violation in the middle of the request, as a relink once hit.
        db.add(
            User(
                organisation_id=me.organisation_id,
                email=me.email,
                name="Twin",
                role=Role.RECRUITER,
                password_hash="x",
            )
        )
        db.flush()
        return "unreachable"

    return app


def assert_500_page(response, caplog):
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "Something went wrong" in text and "Go to the start page" in text
    request_id = response.headers["X-Request-ID"]
    assert request_id and f"quote reference <code>{request_id}</code>" in text
    assert "Traceback" not in text and "IntegrityError" not in text and "UNIQUE" not in text
    assert any(r.name == "webapp.errors" and request_id in r.getMessage() for r in caplog.records)


def test_a_request_whose_transaction_broke_gets_the_500_page(failing_app, session, org, caplog):
    riley = make_user(
        session, org, Role.RECRUITER, email="riley.chen@northwind.example", name="Riley Chen"
    )
    client = failing_app.test_client()
    AuthActions(client).login(riley.email)
    with caplog.at_level(logging.ERROR, logger="webapp.errors"):
        response = client.get(BROKEN)
    assert_500_page(response, caplog)
    # Nothing of the failed request was written, and the next request works as usual.
    session.expire_all()
    assert len(session.scalars(select(User).where(User.email == riley.email)).all()) == 1
    home = client.get("/")
    assert home.status_code == 200 and "Riley" in home.get_data(as_text=True)


def test_the_500_page_renders_with_the_database_down(
    failing_app, session, org, caplog, monkeypatch
):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    client = failing_app.test_client()
    AuthActions(client).login(riley.email)

    def no_database():
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database down"))

    monkeypatch.setattr(deps.database.of(failing_app), "sessions", no_database)
    with caplog.at_level(logging.ERROR, logger="webapp.errors"):
        response = client.get("/")  # loading the signed-in user already fails
    assert_500_page(response, caplog)
    assert "database down" not in response.get_data(as_text=True)
