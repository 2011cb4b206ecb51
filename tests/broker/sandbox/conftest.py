"""Fixtures for the sandbox suite: one sandbox on a free port, reset before every test, a local
callback receiver, and real pycronofy clients pointed at the sandbox."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import pycronofy
import pytest
import requests
from pycronofy.request_handler import RequestHandler
from werkzeug.datastructures import Headers
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from broker.sandbox.client import SandboxClient
from broker.sandbox.server import SandboxHandle, SandboxStartError, start_sandbox

CLIENT_ID = "rendezvous-test"
CLIENT_SECRET = "sandbox-test-secret"
DEFAULT_SCOPE = "read_account list_calendars read_events create_event delete_event"
#: The redirect URIs the test application registered (the consent page refuses any other).
REDIRECT = "http://127.0.0.1:5000/calendar/callback"
EC_REDIRECT = "http://127.0.0.1:5000/admin/enterprise/callback"

RILEY = "riley.chen@northwind.example"
SAM = "sam.patel@contoso.example"
MORGAN = "morgan.lee@northwind.example"
ALEX = "alex.kim@northwind.example"
ASSISTANT = "pa.office@contoso.example"
DANA = "dana.wright@contoso.example"
SVC = "svc-calendar@fabrikam.example"


@pytest.fixture(scope="session")
def sandbox_server() -> SandboxHandle:
    """A sandbox for the whole session; rate limiting and background delivery are off."""
    try:
        handle = start_sandbox(
            CLIENT_ID,
            CLIENT_SECRET,
            rate_limit_enabled=False,
            auto_deliver=False,
            allowed_redirect_uris=[REDIRECT, EC_REDIRECT],
        )
    except SandboxStartError as exc:  # fail fast with the reason (ARCHITECTURE example 10)
        pytest.fail(f"the sandbox aggregator could not start: {exc}", pytrace=False)
    yield handle
    handle.stop()


#: This test's "now" (see ``now``), set by the reset before each test.
_NOW: list[dt.datetime] = []


@pytest.fixture(autouse=True)
def _fresh_world(sandbox_server: SandboxHandle):
    seeded_at = sandbox_server.client.reset()["seeded_at"]
    _NOW[:] = [dt.datetime.strptime(seeded_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)]


def now() -> dt.datetime:
    """This test's "now": the instant (sandbox clock, UTC) the sandbox laid its world out from at
    the reset before the test, read once. Periods a test lays out from it (``today()`` + n days)
    match the seeded world and cannot straddle midnight, however long the run takes."""
    return _NOW[0]


def today() -> dt.date:
    """The day of this test's ``now()`` (UTC)."""
    return now().date()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxClient:
    """The sandbox's control client (as in every suite), the world freshly reset."""
    return sandbox_server.client


@dataclass
class Received:
    path: str
    headers: Headers  # case-insensitive, like a real app's view of them
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Receiver:
    """A loopback HTTP server standing in for the app's callback endpoints."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_type(self, notification_type: str) -> list[Received]:
        return [
            r
            for r in self.received
            if (r.json().get("notification") or {}).get("type") == notification_type
        ]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
        self.status = 200


@pytest.fixture(scope="session")
def _receiver_server():
    holder: dict[str, Receiver] = {}

    @Request.application
    def app(request: Request) -> Response:
        receiver = holder["r"]
        with receiver.lock:
            receiver.received.append(
                Received(
                    request.full_path.rstrip("?"), Headers(request.headers), request.get_data()
                )
            )
        return Response("ok", status=receiver.status)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    holder["r"] = Receiver(url=f"http://127.0.0.1:{server.port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    server.shutdown()


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    _receiver_server.clear()
    return _receiver_server


class LowercaseBooleans(RequestHandler):
    """pycronofy's handler, sending query booleans as ``true``/``false`` like every other
    official SDK (and our broker); pycronofy itself would send ``True``/``False``."""

    def _request(self, request_method, endpoint="", url="", data=None, params=None, **kw):
        params = {
            k: (("true" if v else "false") if isinstance(v, bool) else v)
            for k, v in (params or {}).items()
        }
        return super()._request(request_method, endpoint, url, data=data, params=params, **kw)


def client_for(
    sandbox: SandboxClient | SandboxHandle,
    access_token: str | None = None,
    refresh_token: str | None = None,
    secret: str = CLIENT_SECRET,
    *,
    python_booleans: bool = False,
) -> pycronofy.Client:
    """A real pycronofy client pointed at the sandbox (§0.4), settings left untouched.

    Its query booleans are lowercase unless ``python_booleans`` (pycronofy as shipped)."""
    client = pycronofy.Client(
        client_id=CLIENT_ID,
        client_secret=secret,
        access_token=access_token,
        refresh_token=refresh_token,
    )
    if not python_booleans:
        client.request_handler = LowercaseBooleans(client.auth)
    client.request_handler.base_url = sandbox.url
    client.app_base_url = sandbox.url
    return client


EC_SCOPE = "service_account/accounts/manage service_account/resources/manage"


def tokens_for(sandbox: SandboxClient, email: str, scope: str | None = None, **extra) -> dict:
    """Tokens straight from the control API; ``enterprise=True`` for a service account."""
    scope = scope or (EC_SCOPE if extra.get("enterprise") else DEFAULT_SCOPE)
    return sandbox.tokens(email, scope, **extra)


@pytest.fixture
def connect(sandbox: SandboxClient):
    """``connect(email)`` → a pycronofy client holding that person's tokens."""

    def _connect(email: str, scope: str = DEFAULT_SCOPE) -> pycronofy.Client:
        tokens = tokens_for(sandbox, email, scope)
        client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
        client.sub = tokens["sub"]  # type: ignore[attr-defined]
        return client

    return _connect


def api(
    sandbox: SandboxClient, method: str, path: str, token: str | None = None, **kwargs
) -> requests.Response:
    """A raw call for endpoints pycronofy lacks or for checking exact wire behaviour."""
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, sandbox.url + path, headers=headers, timeout=10, **kwargs)
