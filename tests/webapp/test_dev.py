"""The development-only package (webapp/dev): the demo organisation ``make run`` seeds, whose
logins the README lists, and the refusal to seed it into a production database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import CoordinatorAssignment, Organisation, User
from webapp.dev.demo import DEMO_ORGANISATION, DEMO_PASSWORD, DEMO_USERS


def test_seed_demo_creates_the_demo_logins_once(app, session, client, auth):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Demo organisation created." in first.output
    for user in DEMO_USERS:
        assert user.email in first.output
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0 and "already present" in again.output
    assert session.scalar(select(func.count(Organisation.id))) == 1
    assert session.scalar(select(func.count(CoordinatorAssignment.id))) == 1

    for user in DEMO_USERS:
        response = auth.login(user.email, DEMO_PASSWORD)
        assert response.status_code == 302, user.email
        row = session.scalar(select(User).where(User.email == user.email))
        assert row.role == user.role and row.organisation.name == DEMO_ORGANISATION
        auth.logout()
    assert auth.login(DEMO_USERS[0].email, "not-the-demo-password").status_code != 302


def test_seed_demo_refuses_a_production_database(app, session):
    app.config["ENVIRONMENT"] = "production"
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0 and "Refusing" in result.output
    assert session.scalar(select(func.count(Organisation.id))) == 0


def test_the_dev_server_refuses_to_run_in_production(monkeypatch):
    from webapp.dev import server

    # main() turns SIGTERM into an exit first; keep the test process's own handler.
    monkeypatch.setattr(server.signal, "signal", lambda *args: None)
    monkeypatch.setenv("RENDEZVOUS_ENV", "production")
    with pytest.raises(SystemExit, match="does not run in production"):
        server.main(["--port", "1"])
