"""Fixtures shared by the whole suite (flaskr-style ``app``/``client``/``auth``).

The database is SQLite in a temporary directory unless ``DATABASE_URL`` names a PostgreSQL
server, in which case a fresh database is created on it for this run and dropped afterwards.
Either way the schema comes from the Alembic migrations, not ``create_all``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from models import Base, migrate
from tests import netguard
from tests.factories import TEST_PASSWORD_HASHING, TEST_TOKEN_KEYS
from webapp import deps


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """Fail any test that tries to reach a non-loopback address (indico's disallow fixture)."""
    netguard.install()
    yield
    netguard.uninstall()


@pytest.fixture(autouse=True, scope="session")
def _strict_audit_codes():
    """An audit action missing from webapp/services/audit_codes.py fails the test recording it."""
    from webapp.services import audit

    audit.STRICT_CODES = True
    yield
    audit.STRICT_CODES = False


def _postgres_server_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A migrated, empty database for this test run."""
    server = _postgres_server_url()
    if server is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'rendezvous-test.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    name = f"rendezvous_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def make_test_config(database_url, instance_path, **extra):
    config = {
        "INSTANCE_PATH": str(instance_path),
        "ENVIRONMENT": "testing",
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "PUBLIC_BASE_URL": "http://localhost",  # the test client's host
        "TOKEN_KEYS": TEST_TOKEN_KEYS,
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "JOBS_IMMEDIATE": True,
        "PASSWORD_HASHING": TEST_PASSWORD_HASHING,
    }
    config.update(extra)
    return config


@pytest.fixture
def app_config(database_url, tmp_path):
    """Overrides for create_app; tests may change them before asking for ``app``."""
    return make_test_config(database_url, tmp_path / "instance")


@pytest.fixture
def app(app_config, request):
    from webapp import create_app

    sandbox = None
    if "sandbox" in request.fixturenames:
        sandbox = request.getfixturevalue("sandbox")  # points app_config at the sandbox first
    application = create_app(app_config)
    if sandbox is not None:
        register_redirect_uris(sandbox, application)
    yield application
    engine = deps.database.of(application).engine
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def org(session):
    """The organisation a test acts in, with Business Connect on so its people can link
    calendars (the one ``org`` of the suite: a test that needs Business Connect off turns it
    off itself; isolation tests add a neighbour with tests/tenants.py)."""
    from tests.factories import make_org

    organisation = make_org(session)
    organisation.business_connect_enabled = True
    session.commit()
    return organisation


@pytest.fixture
def session(app):
    """A database session outside any request, for arranging and checking state."""
    with deps.database.of(app).sessions() as db:
        yield db


@pytest.fixture
def cipher(app):
    """The app's token cipher (stored credentials are encrypted with it)."""
    return deps.cipher.of(app)


@pytest.fixture
def fake_broker():
    """An in-memory CalendarBroker (tests/fakes.py) for unit tests of service branches."""
    from tests.fakes import FakeBroker

    return FakeBroker()


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on ``path`` (as a browser would have it)."""
    response = client.get(path)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {response.status_code})"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str | None = None, **kwargs):
        from tests.factories import PASSWORD

        token = csrf_token(self._client, "/login")
        return self._client.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": password or PASSWORD},
            **kwargs,
        )

    def logout(self):
        token = csrf_token(self._client, "/profile/")
        return self._client.post("/logout", data={"csrf_token": token})

    def post(self, path: str, data: dict | None = None, *, form_page: str | None = None, **kwargs):
        """POST a form with a valid CSRF token taken from ``form_page`` (default: ``path``)."""
        token = csrf_token(self._client, form_page or path)
        return self._client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


@pytest.fixture
def auth(client):
    return AuthActions(client)


class LiveServer:
    """The app served over real HTTP on a loopback port (a free one by default), in a
    background thread."""

    def __init__(self, app, port: int = 0):
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app, request):
    """The app on a free port, with its public base URL there (the test client's ``localhost``
    stays a trusted host too)."""
    server = LiveServer(app)
    app.config.update(PUBLIC_BASE_URL=server.url, TRUSTED_HOSTS=["127.0.0.1", "localhost"])
    if "sandbox" in request.fixturenames:
        register_redirect_uris(request.getfixturevalue("sandbox"), app)
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# The sandbox aggregator: one server per test run on a free port, reset before each test.

SANDBOX_CLIENT_ID = "rendezvous-test-client"
SANDBOX_CLIENT_SECRET = "sandbox-test-client-secret-0123456789"


def refresh_status(sandbox, refresh_token: str) -> int:
    """The sandbox's answer to refreshing with ``refresh_token`` (400 once it is revoked)."""
    import requests

    return requests.post(
        sandbox.url + "/oauth/token",
        timeout=5,
        json={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    ).status_code


def register_redirect_uris(sandbox, app) -> None:
    """Register ``app``'s redirect URIs, as they are now configured, besides earlier ones (as an
    app does in Cronofy's dashboard)."""
    from webapp.public_urls import oauth_redirect_uris

    sandbox.allow_redirect_uris(oauth_redirect_uris(app))


@pytest.fixture(scope="session")
def sandbox_server():
    from broker.sandbox.server import SandboxStartError, start_sandbox

    try:
        handle = start_sandbox(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, auto_deliver=False, rate_limit_enabled=False
        )
    except SandboxStartError as exc:
        pytest.fail(f"the sandbox aggregator could not start: {exc}")
    yield handle
    handle.stop()


@pytest.fixture
def sandbox(sandbox_server, app_config):
    """The sandbox's control client (broker/sandbox/client.py), the sandbox freshly reset
    (world, faults, statistics, real time), with the app configured to use it."""
    control = sandbox_server.client
    control.reset()
    app_config.update(
        CRONOFY_CLIENT_ID=SANDBOX_CLIENT_ID,
        CRONOFY_CLIENT_SECRET=SANDBOX_CLIENT_SECRET,
        CRONOFY_API_BASE_URL=sandbox_server.url,
        CRONOFY_APP_BASE_URL=sandbox_server.url,
    )
    return control


def _free_redis_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A throw-away redis-server on a free loopback port (skipped where it is not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed (CI installs it); Redis paths untested")
    tmp = tmp_path_factory.mktemp("redis")
    port = _free_redis_port()
    pidfile = tmp / "redis.pid"
    subprocess.run(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--dir",
            str(tmp),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass
    client.close()


@pytest.fixture
def riley(session, org):
    """Riley Chen, a recruiter of ``org`` (a seeded sandbox identity), no calendar linked yet."""
    from models import Role
    from tests.factories import make_user

    return make_user(
        session, org, Role.RECRUITER, email="riley.chen@northwind.example", name="Riley Chen"
    )


@pytest.fixture
def panel(app, session, sandbox, org, recruiter):
    """Two colleagues of Riley's (the ``recruiter``) with linked calendars: (user, link) pairs."""
    from tests.webapp.scheduling_support import make_panel

    return make_panel(app, session, sandbox, org, 2)


@pytest.fixture
def zone_panel(app, session, sandbox, org, client, auth, recruiter):
    """Riley (London), Sam (New York) and Anna (Berlin, linked through Enterprise Connect), each
    with their own time zone set (tests/webapp/timezone_support.py)."""
    from tests.webapp.timezone_support import three_zone_panel

    return three_zone_panel(app, session, sandbox, org, client, auth, recruiter)


@pytest.fixture
def recruiter(app, session, sandbox, riley):
    """Riley Chen with their seeded sandbox calendar linked (scheduling tests)."""
    from tests.webapp.scheduling_support import link_calendar

    link_calendar(app, session, sandbox, riley)
    return riley
