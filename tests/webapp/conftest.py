"""Fixtures of the web app's tests beyond the suite's own (tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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


SMTP_USER, SMTP_PASSWORD = "rendezvous", "smtp-pass-5c1e9a-not-logged"


class Inbox:
    def __init__(self):
        self.envelopes = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app_config):
    """A real SMTP server (aiosmtpd) on a loopback port, requiring a login, that the app sends
    to; what arrives is in the returned inbox's ``envelopes``."""
    inbox = Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (SMTP_USER, SMTP_PASSWORD)
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,  # a loopback test server has no certificate
        auth_required=True,
    )
    controller.start()
    app_config.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_SECURITY="none",
        SMTP_USER=SMTP_USER,
        SMTP_PASSWORD=SMTP_PASSWORD,
        MAIL_FROM="Northwind Hiring <hiring@northwind.example>",
    )
    yield inbox
    controller.stop()
