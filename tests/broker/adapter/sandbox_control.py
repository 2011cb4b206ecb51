"""A thin client for the sandbox's ``/_sandbox/`` control API, used by the adapter tests and the
benchmark. Kept separate from the broker: production code never calls these endpoints."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

import requests

CLIENT_ID = "rendezvous-adapter-tests"
CLIENT_SECRET = "adapter-tests-client-secret-0123456789"
REDIRECT_URI = "http://127.0.0.1/rendezvous/callback"
USER_SCOPE = "read_account list_calendars read_events create_event delete_event read_free_busy"


def start(**options: Any):
    """Start an in-process sandbox on a free loopback port (raises if it cannot start)."""
    from broker.sandbox.server import start_sandbox

    options.setdefault("allowed_redirect_uris", [REDIRECT_URI])  # registered, as at Cronofy
    return start_sandbox(CLIENT_ID, CLIENT_SECRET, port=0, **options)


@dataclass
class Control:
    url: str

    def __post_init__(self) -> None:
        self.http = requests.Session()

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        resp = self.http.request(method, f"{self.url}/_sandbox/{path}", timeout=10, **kw)
        if resp.status_code >= 400:
            raise AssertionError(f"sandbox control {method} {path}: {resp.status_code} {resp.text}")
        return resp

    # -- consent ----------------------------------------------------------------------------

    def consent(
        self, email: str, authorize_url: str | None = None, *, decision: str = "approve"
    ) -> str:
        """Approve the consent page behind ``authorize_url`` (one the broker built) as ``email``;
        return the authorization code. Without a URL a default per-user one is used."""
        if authorize_url is None:
            from urllib.parse import urlencode

            authorize_url = f"{self.url}/oauth/authorize?" + urlencode(
                {
                    "response_type": "code",
                    "client_id": CLIENT_ID,
                    "redirect_uri": REDIRECT_URI,
                    "scope": USER_SCOPE,
                    "state": "st",
                    "avoid_linking": "true",
                }
            )
        data = self._call(
            "POST",
            "consent",
            json={"authorize_url": authorize_url, "email": email, "decision": decision},
        ).json()
        if not data.get("code"):
            raise AssertionError(f"consent gave no code: {data.get('error')!r}")
        return data["code"]

    def identities(self) -> list[dict[str, Any]]:
        data = self._call("GET", "identities").json()
        return data.get("identities", data) if isinstance(data, dict) else data

    # -- faults and limits ------------------------------------------------------------------

    def fault(
        self,
        method: str,
        path: str,
        status: int | None = None,
        *,
        count: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        latency_ms: int | None = None,
        probability: float | None = None,
    ) -> None:
        rule: dict[str, Any] = {"method": method, "path": path, "count": count}
        if status is not None:
            rule["status"] = status
        if body is not None:
            rule["body"] = body
        if headers:
            rule["headers"] = headers
        if latency_ms is not None:
            rule["latency_ms"] = latency_ms
        if probability is not None:
            rule["probability"] = probability
        self._call("POST", "faults", json=rule)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def rate_limit(self, *, per_second: int, per_minute: int, enabled: bool = True) -> None:
        self._call(
            "PUT",
            "rate-limit",
            json={"per_second": per_second, "per_minute": per_minute, "enabled": enabled},
        )

    def expire(self, access_token: str) -> None:
        self._call("POST", "tokens/expire", json={"access_token": access_token})

    def disconnect(self, profile_id: str) -> None:
        self._call("POST", f"profiles/{profile_id}/disconnect")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats").json()


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
