"""Fixtures of the web app's tests beyond the suite's own (tests/conftest.py)."""

from __future__ import annotations

import pytest

from models import Role
from tests.conftest import AuthActions
from tests.factories import make_user


@pytest.fixture
def admin_client(app, session, org, sandbox, live_server):
    """An IT admin of ``org`` logged in: (test client, its AuthActions), with the aggregator able
    to call the live app back (Enterprise Connect's callbacks)."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(admin.email)
    return client, auth
