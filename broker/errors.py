"""The broker's error hierarchy: the only exceptions services ever see from ``broker``.

Translation from HTTP/pycronofy failures happens in one place (``broker.cronofy``). Every error
is raised ``from None`` and outside the ``except`` block that caught the vendor exception, so
neither ``__cause__`` nor ``__context__`` carries pycronofy's message (which embeds the client
secret, authorization codes and refresh tokens). Messages here are fixed strings plus
identifiers that are not secret (status codes, operation names, ``sub``/profile ids, error keys).

    BrokerError
    ├── NeedsReauth          the link must be re-authorized by a person (invalid_grant,
    │                        401 after refresh)
    │   └── ProfileDisconnected   423 / profile lost provider credentials (relink the profile)
    ├── Forbidden            403: token valid but lacks a scope / elevated permission
    ├── RateLimited          429 after bounded retries (``retry_after`` seconds if known)
    ├── Unavailable          timeouts, connection errors, 5xx after bounded retries
    ├── Invalid              422 (``fields``: {param: (error keys…)}), or a request we refuse
    │                        to send
    ├── NotFound             404
    └── InvalidNotification  a push notification/callback body we cannot parse
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkHint:
    """Which link an authorization failure concerns (ids only, never tokens)."""

    sub: str | None = None
    profile_id: str | None = None
    service_account_id: str | None = None

    def __str__(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("sub", self.sub),
                ("profile", self.profile_id),
                ("service_account", self.service_account_id),
            )
            if v
        ]
        return ", ".join(parts) or "unknown link"


class BrokerError(Exception):
    """Base class. ``status`` is the HTTP status when there was one; ``operation`` the port
    method."""

    default_message = "calendar aggregator error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.operation = operation
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f" during {self.operation}" if self.operation else ""
        code = f" (HTTP {self.status})" if self.status else ""
        return f"{self.message}{where}{code}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class NeedsReauth(BrokerError):
    """The person (or IT admin) must link again; the stored tokens are no longer usable."""

    default_message = "calendar link needs to be re-authorized"

    def __init__(
        self,
        message: str | None = None,
        *,
        link_hint: LinkHint | None = None,
        reason: str | None = None,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        self.link_hint = link_hint
        #: e.g. ``invalid_grant``, ``unauthorized``, ``profile_disconnected``.
        self.reason = reason
        super().__init__(message, status=status, operation=operation)

    def __str__(self) -> str:
        base = BrokerError.__str__(self)
        bits = []
        if self.reason:
            bits.append(self.reason)
        if self.link_hint:
            bits.append(str(self.link_hint))
        return f"{base} [{'; '.join(bits)}]" if bits else base


class ProfileDisconnected(NeedsReauth):
    """423: the calendar profile has no usable provider credentials; send the user to relink it.

    A subclass of NeedsReauth so code that handles "ask the person to link again" covers it;
    catch it first when the relink page (``profile_relink_url``) should be offered instead of a
    fresh OAuth flow.
    """

    default_message = "calendar profile is disconnected at the provider"


class Forbidden(BrokerError):
    """403: the token lacks a scope or the calendar lacks elevated permission."""

    default_message = "not permitted by the granted scope"


class RateLimited(BrokerError):
    """429 after bounded retries."""

    default_message = "rate limited by the calendar aggregator"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, operation=operation)


class NotSent(RateLimited):
    """Not sent at all: our own rate limiter had no room in the lane within the caller's
    patience (``broker.ratelimit.patience``); ``retry_after`` is when it will. The aggregator
    saw nothing, so there was no 429."""

    default_message = "not sent: no aggregator budget left for this work right now"


class Unavailable(BrokerError):
    """The aggregator could not be reached or kept failing (timeouts, connection errors, 5xx)."""

    default_message = "calendar aggregator unavailable"


class Invalid(BrokerError):
    """422 (or a request refused before sending). ``fields`` maps parameter → error keys."""

    default_message = "calendar aggregator rejected the request"

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, tuple[str, ...]] | None = None,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        self.fields: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (fields or {}).items()}
        super().__init__(message, status=status, operation=operation)

    def __str__(self) -> str:
        base = BrokerError.__str__(self)
        if not self.fields:
            return base
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(self.fields.items()))
        return f"{base} [{detail}]"


class NotFound(BrokerError):
    """404: calendar, channel, event or page unknown."""

    default_message = "not found at the calendar aggregator"


class InvalidNotification(BrokerError, ValueError):
    """A push notification or callback body that is not the documented JSON shape."""

    default_message = "malformed notification body"
