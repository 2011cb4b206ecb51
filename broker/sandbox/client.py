"""A typed client for the sandbox's control API (``/_sandbox/...``), shipped with the sandbox.

Tests, benchmarks and demos arrange and check aggregator-side state through it: reset the world,
consent as a seeded person without a browser, inject faults, deliver queued notifications, set
the sandbox's clock. Production code never calls these endpoints (they exist only here).

    client = SandboxClient(handle.url)
    client.reset(now=dt.datetime(2030, 1, 8, 9, tzinfo=dt.UTC), frozen=True)
    client.advance(seconds=3600)          # every access token issued before has expired
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import requests

PREFIX = "/_sandbox"


class SandboxControlError(AssertionError):
    """The control API refused a call; carries the status and the answer."""

    def __init__(self, method: str, path: str, response: requests.Response):
        self.status = response.status_code
        self.body = response.text
        super().__init__(f"sandbox {method} {path}: {self.status} {self.body}")


@dataclass(frozen=True)
class ClockReading:
    now: dt.datetime
    frozen: bool
    #: The clock is the real time (neither set nor advanced since the last reset).
    real: bool

    @property
    def today(self) -> dt.date:
        return self.now.date()


@dataclass(frozen=True)
class Consent:
    """Where the consent page sends the browser, and what that URL carries."""

    redirect_url: str
    code: str | None
    state: str | None
    error: str | None


def _z(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("give the sandbox an aware datetime")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reading(body: dict[str, Any]) -> ClockReading:
    now = dt.datetime.strptime(body["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return ClockReading(now=now, frozen=body["frozen"], real=body["real"])


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class SandboxClient:
    """The control API of the sandbox at ``url`` (one pooled HTTP session)."""

    def __init__(self, url: str, *, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    # -- raw calls ------------------------------------------------------------------------------

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """``method`` on ``/_sandbox{path}``, the answer as it came (for checking the control
        API's own refusals)."""
        kwargs.setdefault("timeout", self.timeout)
        if json is not None:
            kwargs["json"] = json
        return self.http.request(method, self.url + PREFIX + path, **kwargs)

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """Like ``request``, raising ``SandboxControlError`` on a 4xx/5xx; the JSON answer."""
        response = self.request(method, path, json, **kwargs)
        if response.status_code >= 400:
            raise SandboxControlError(method, path, response)
        return response.json() if response.content else None

    # -- the world ------------------------------------------------------------------------------

    def reset(self, *, now: dt.datetime | None = None, frozen: bool = False) -> dict[str, Any]:
        """The seeded world again, start-up options, no faults/tokens/channels/queues; the clock
        back to real time, or at ``now`` (frozen there if asked) with the world seeded from its
        day."""
        body = {"now": _z(now), "frozen": frozen} if now is not None else {}
        return self.call("POST", "/reset", body)

    def identities(self) -> list[dict[str, Any]]:
        return self.call("GET", "/identities")["identities"]

    def identity(self, email: str) -> dict[str, Any]:
        for identity in self.identities():
            if identity["email"].lower() == email.lower():
                return identity
        raise LookupError(f"no sandbox identity {email}")

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add domains, people and events (``POST /_sandbox/seed``)."""
        return self.call("POST", "/seed", body)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Events as the sandbox holds them (``email``, ``calendar_id``, ``include_deleted``)."""
        return self.call("GET", "/events", params=params)["events"]

    def external_change(self, **change: Any) -> dict[str, Any]:
        """Someone edits their calendar outside the app (create/update/move/delete); returns
        the event."""
        return self.call("POST", "/external-change", change)["event"]

    def attendee_response(
        self,
        organizer: str,
        attendee: str,
        status: str,
        *,
        event_id: str | None = None,
        event_uid: str | None = None,
        calendar_id: str | None = None,
    ) -> dict[str, Any]:
        """``attendee`` answers ``organizer``'s event from their mail client; returns the event."""
        body = _without_none(
            {
                "organizer": organizer,
                "attendee": attendee,
                "status": status,
                "event_id": event_id,
                "event_uid": event_uid,
                "calendar_id": calendar_id,
            }
        )
        return self.call("POST", "/attendee-response", body)["event"]

    # -- consent and tokens ---------------------------------------------------------------------

    def consent(
        self,
        authorize_url: str,
        email: str,
        *,
        decision: str = "approve",
        password: str | None = None,
        **extra: Any,
    ) -> Consent:
        """Approve (or deny) the consent page behind ``authorize_url`` as ``email``, as the
        consent form would; ``password`` defaults to the identity's own."""
        if password is None:
            password = self.identity(email)["password"]
        body = {
            "authorize_url": authorize_url,
            "email": email,
            "password": password,
            "decision": decision,
            **extra,
        }
        answer = self.call("POST", "/consent", body)
        return Consent(answer["redirect_url"], answer["code"], answer["state"], answer["error"])

    def tokens(self, email: str, scope: str | None = None, **extra: Any) -> dict[str, Any]:
        """Consent and code exchange in one call: the token response (``enterprise=True`` for a
        service account)."""
        return self.call(
            "POST", "/tokens", _without_none({"email": email, "scope": scope, **extra})
        )

    def expire_tokens(self, **which: Any) -> int:
        """Expire access tokens now: ``access_token=``, an account's (``email=``/``sub=``) or
        all; how many."""
        return self.call("POST", "/tokens/expire", which)["expired"]

    def disconnect_profile(self, profile_id: str) -> dict[str, Any]:
        return self.call("POST", f"/profiles/{profile_id}/disconnect")

    def reconnect_profile(self, profile_id: str) -> dict[str, Any]:
        return self.call("POST", f"/profiles/{profile_id}/reconnect")

    def set_mailbox_failures(self, failures: dict[str, str]) -> dict[str, str]:
        """Mailbox email → ``error_key`` reported on its next service-account authorization."""
        return self.call("PUT", "/mailbox-failures", {"mailboxes": failures})["mailboxes"]

    # -- notifications --------------------------------------------------------------------------

    def deliver(self) -> list[dict[str, Any]]:
        """Deliver every queued notification and callback now; what was delivered."""
        return self.call("POST", "/deliver")["delivered"]

    def outbox(self) -> dict[str, Any]:
        """``queued`` items and the ``log`` of deliveries."""
        return self.call("GET", "/outbox")

    # -- faults, limits, options, statistics ----------------------------------------------------

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """A fault rule: ``method``, ``path``, ``status``, ``count``, ``body``, ``headers``,
        ``latency_ms``, ``probability``, ``account``."""
        return self.call("POST", "/faults", _without_none(rule))

    def faults(self) -> list[dict[str, Any]]:
        return self.call("GET", "/faults")["rules"]

    def clear_faults(self) -> None:
        self.call("DELETE", "/faults")

    def rate_limit(self, *, per_second: int, per_minute: int, enabled: bool = True) -> None:
        body = {"per_second": per_second, "per_minute": per_minute, "enabled": enabled}
        self.call("PUT", "/rate-limit", body)

    def config(self) -> dict[str, Any]:
        return self.call("GET", "/config")

    def update_config(self, **options: Any) -> dict[str, Any]:
        return self.call("PATCH", "/config", options)

    def allow_redirect_uris(self, uris: list[str]) -> None:
        """Register ``uris`` besides the redirect URIs registered already (as in Cronofy's
        dashboard; the consent page refuses any other)."""
        known = self.config()["allowed_redirect_uris"]
        self.update_config(allowed_redirect_uris=known + [u for u in uris if u not in known])

    def stats(self) -> dict[str, Any]:
        return self.call("GET", "/stats")

    def clear_stats(self) -> None:
        self.call("DELETE", "/stats")

    # -- the clock ------------------------------------------------------------------------------

    def clock(self) -> ClockReading:
        return _reading(self.call("GET", "/clock"))

    def set_clock(self, now: dt.datetime, *, frozen: bool = False) -> ClockReading:
        """The sandbox's time is ``now`` from here on (frozen there, or running on)."""
        return _reading(self.call("PUT", "/clock", {"now": _z(now), "frozen": frozen}))

    def advance(self, delta: dt.timedelta | None = None, *, seconds: float = 0) -> ClockReading:
        """Move the sandbox's clock forward, instead of sleeping."""
        total = seconds + (delta.total_seconds() if delta is not None else 0)
        return _reading(self.call("POST", "/clock/advance", {"seconds": total}))

    def use_real_time(self) -> ClockReading:
        return _reading(self.call("DELETE", "/clock"))
