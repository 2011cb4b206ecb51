"""The adapter tests' sandbox: its application, how to start one, a consent shortcut through the
sandbox's control client (broker/sandbox/client.py), and a client-side connection counter."""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import urlencode

from broker.sandbox.client import SandboxClient

CLIENT_ID = "rendezvous-adapter-tests"
CLIENT_SECRET = "adapter-tests-client-secret-0123456789"
REDIRECT_URI = "http://127.0.0.1/rendezvous/callback"
USER_SCOPE = "read_account list_calendars read_events create_event delete_event read_free_busy"


def start(**options: Any):
    """Start an in-process sandbox on a free loopback port (raises if it cannot start)."""
    from broker.sandbox.server import start_sandbox

    options.setdefault("allowed_redirect_uris", [REDIRECT_URI])  # registered, as at Cronofy
    return start_sandbox(CLIENT_ID, CLIENT_SECRET, port=0, **options)


def code_for(control: SandboxClient, email: str, authorize_url: str | None = None) -> str:
    """Approve the consent page behind ``authorize_url`` (one the broker built) as ``email``;
    return the authorization code. Without a URL a default per-user one is used."""
    if authorize_url is None:
        authorize_url = f"{control.url}/oauth/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": USER_SCOPE,
                "state": "st",
                "avoid_linking": "true",
            }
        )
    consent = control.consent(authorize_url, email)
    if not consent.code:
        raise AssertionError(f"consent gave no code: {consent.error!r}")
    return consent.code


class ConnectCounter:
    """Counts TCP connects to one port made by this process (client-side truth)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.count = 0
        self._lock = threading.Lock()
        self._real = socket.socket.connect

    def __enter__(self):
        counter = self
        real = self._real

        def connect(sock, address):
            if isinstance(address, tuple) and len(address) >= 2 and address[1] == counter.port:
                with counter._lock:
                    counter.count += 1
            return real(sock, address)

        socket.socket.connect = connect
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._real
