"""Transport to the aggregator: one pooled HTTP session, timeouts, bounded retries, the
client-side rate limiter, and the translation of HTTP failures into ``broker.errors``.

Like stripe-python's ``_http_client``: nothing here knows an endpoint's meaning. ``Transport.send``
returns a response below 400 or raises ``HTTPFailure``, an error status stripped to non-secret
facts (status, ``Retry-After``, an RFC 6749 error code, documented-looking 422 field names and
keys). ``translate`` turns that into the ``BrokerError`` services see.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import logging
import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pycronofy
import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from broker.errors import (
    BrokerError,
    Forbidden,
    Invalid,
    LinkHint,
    NeedsReauth,
    NotFound,
    NotSent,
    ProfileDisconnected,
    RateLimited,
    Unavailable,
)
from broker.ratelimit import NoBudget, RateLimiter, current_lane, current_tenant
from broker.sent import announce_sent

USER_AGENT = f"Rendezvous (pycronofy {pycronofy.__version__})"
#: Parameter names we are willing to repeat in an error (lower-case snake case, as documented).
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}(\[\])?$")
#: Documented 422 keys look like ``errors.required``.
_SAFE_KEY = re.compile(r"^errors\.[a-z0-9_.]{1,64}$")
#: RFC 6749 §5.2 error codes: anything else from a token endpoint is not repeated.
_OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)

# --- failures, stripped to non-secret facts ---------------------------------------------------


class HTTPFailure(Exception):
    """An HTTP error status, stripped to non-secret facts. Never leaves ``broker.cronofy``:
    ``translate`` turns it into a ``BrokerError``."""

    def __init__(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        oauth_error: str | None = None,
        fields: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.oauth_error = oauth_error
        self.fields = dict(fields or {})


def _safe_name(value: Any) -> str | None:
    """Only documented-looking parameter names survive into our errors (never echoed values)."""
    return value if isinstance(value, str) and _SAFE_NAME.match(value) else None


def _safe_key(value: Any) -> str | None:
    return value if isinstance(value, str) and _SAFE_KEY.match(value) else None


_SECRET_FIELDS = ("client_secret", "code", "refresh_token", "token", "access_token")


def _secrets_in(headers: Mapping[str, str], body: Any) -> tuple[str, ...]:
    """The secret values this request carried (bearer token, secret body fields)."""
    found = []
    auth = headers.get("Authorization") or ""
    if auth.startswith("Bearer "):
        found.append(auth[7:])
    if isinstance(body, dict):
        found += [v for k in _SECRET_FIELDS if isinstance(v := body.get(k), str)]
    return tuple(v for v in found if v and v != "None")


def _failure_from_response(resp: requests.Response, secrets: tuple[str, ...] = ()) -> HTTPFailure:
    retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
    oauth_error = None
    fields: dict[str, tuple[str, ...]] = {}
    try:
        body = resp.json() if resp.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        oauth_error = error if error in _OAUTH_ERRORS else None
        fields = fields_from_errors(body.get("errors"), secrets)
    return HTTPFailure(
        resp.status_code, retry_after=retry_after, oauth_error=oauth_error, fields=fields
    )


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _connect_failed_before_sending(exc: BaseException) -> bool:
    """True when the request certainly never reached the server (safe to retry any call)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        import urllib3.exceptions as u3

        seen: set[int] = set()
        stack: list[Any] = [exc]
        while stack:
            cur = stack.pop()
            if cur is None or id(cur) in seen:
                continue
            seen.add(id(cur))
            if isinstance(cur, u3.NewConnectionError | ConnectionRefusedError):
                return True
            # ``reason`` is an exception on urllib3's errors but a string on ssl's
            linked = [getattr(cur, "reason", None), cur.__cause__, cur.__context__]
            stack.extend(
                a for a in linked + list(getattr(cur, "args", ())) if isinstance(a, BaseException)
            )
    return False


def fields_from_errors(errors: Any, secrets: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """``{"errors": {param: [{key, description}]}}`` → ``{param: (key, …)}``; descriptions and
    anything not shaped like a documented name/key are dropped (they may echo request values)."""

    def clean(value: str | None) -> str | None:
        return value if value and not any(s in value for s in secrets) else None

    fields: dict[str, tuple[str, ...]] = {}
    if isinstance(errors, dict):
        for name, items in errors.items():
            if clean(_safe_name(name)):
                fields[name] = (
                    tuple(
                        k
                        for k in (
                            clean(_safe_key(i.get("key"))) for i in items if isinstance(i, dict)
                        )
                        if k
                    )
                    if isinstance(items, list)
                    else ()
                )
    return fields


class _BlockAllCookies(http.cookiejar.DefaultCookiePolicy):
    """The aggregator is stateless per request: never let one user's cookie ride on another's
    call."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False


# --- transport: pooled session, timeouts, limiter, retries ------------------------------------


def _announcing(conn: Any) -> Any:
    """``conn`` (a urllib3 connection) announcing each request once it is written, before the
    answer is read (``broker.sent``). Wrapped on the instance, so whatever connection class the
    pool makes (vcrpy's, in the cassette tests) keeps its own behaviour."""
    write = conn.request

    def request(*args: Any, **kwargs: Any) -> None:
        write(*args, **kwargs)
        announce_sent()

    conn.request = request
    return conn


class _AnnouncingHTTPPool(HTTPConnectionPool):
    def _new_conn(self) -> Any:
        return _announcing(super()._new_conn())


class _AnnouncingHTTPSPool(HTTPSConnectionPool):
    def _new_conn(self) -> Any:
        return _announcing(super()._new_conn())


class _Adapter(HTTPAdapter):
    """requests' adapter whose connections announce a written request (``broker.sent``)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _AnnouncingHTTPPool,
            "https": _AnnouncingHTTPSPool,
        }


class Transport:
    def __init__(
        self,
        *,
        session: requests.Session | None,
        pool_size: int,
        timeout: float | tuple[float, float],
        max_retries: int,
        rate_limiter: RateLimiter | None,
        backoff_base: float,
        backoff_cap: float,
        max_retry_after: float,
        sleep: Callable[[float], None],
        rng: random.Random,
        logger: logging.Logger,
    ) -> None:
        self._own_session = session is None
        self._pool_size = pool_size
        self._session = session or self._new_session()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.rate_limiter = rate_limiter
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.rng = rng
        self.log = logger

    def _new_session(self) -> requests.Session:
        s = requests.Session()
        adapter = _Adapter(
            pool_connections=4, pool_maxsize=self._pool_size, max_retries=0, pool_block=True
        )
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        s.cookies.set_policy(_BlockAllCookies())
        return s

    @property
    def session(self) -> requests.Session:
        # A pool inherited across fork() would share sockets between workers: start afresh.
        if self._own_session and os.getpid() != self._pid:
            with self._lock:
                if os.getpid() != self._pid:
                    self._session = self._new_session()
                    self._pid = os.getpid()
        return self._session

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def _note_rejected(self) -> None:
        """Count a 429 in the lane of the call (operators see it in the metrics); a limiter
        without counters (a test double) is left alone."""
        note = getattr(self.rate_limiter, "note_rejected", None)
        if note is not None:
            try:
                note(current_lane())
            except Exception as exc:  # a metrics hiccup must not fail the call
                self.log.warning("could not count a 429: %s", type(exc).__name__)

    def _backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1))))

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool,
    ) -> requests.Response:
        """Send with limiter, timeouts and bounded retries; return a <400 response or raise."""
        path = urlsplit(url).path
        attempts = self.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limiter is not None:
                # interactive unless the caller (a background job) said otherwise; a job done
                # for one organisation also names it, for its fair share of the background lane
                # (a caller with a patience hears NotSent instead of waiting longer)
                who = current_tenant()
                try:
                    if who is None:
                        self.rate_limiter.acquire(current_lane())
                    else:
                        self.rate_limiter.acquire(current_lane(), tenant=who)
                except NoBudget as exc:
                    raise NotSent(retry_after=exc.wait) from None
            started = time.monotonic()
            resp: requests.Response | None = None
            net_error: str | None = None
            not_sent = False
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=dict(headers),
                    json=json,
                    params=params,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                # Keep only the class name: str(exc) can carry URLs with query parameters.
                net_error = type(exc).__name__
                not_sent = _connect_failed_before_sending(exc)
            elapsed_ms = (time.monotonic() - started) * 1000

            if resp is None:
                retryable = idempotent or not_sent
                self.log.warning(
                    "cronofy %s %s failed: %s (attempt %d/%d, %.0f ms)",
                    method,
                    path,
                    net_error,
                    attempt,
                    attempts,
                    elapsed_ms,
                )
                if retryable and attempt < attempts:
                    self.sleep(self._backoff(attempt))
                    continue
                raise Unavailable(f"calendar aggregator did not answer ({net_error})") from None

            status = resp.status_code
            self.log.debug(
                "cronofy %s %s -> %d (attempt %d, %.0f ms)",
                method,
                path,
                status,
                attempt,
                elapsed_ms,
            )
            if status < 400:
                return resp
            if status == 429:
                self._note_rejected()
            failure = _failure_from_response(resp, _secrets_in(headers, json))
            resp.close()
            if attempt < attempts and idempotent:
                if status == 429:
                    wait = failure.retry_after
                    if wait is None:
                        wait = self._backoff(attempt)
                    if wait <= self.max_retry_after:
                        self.log.warning(
                            "cronofy %s %s rate limited; retrying in %.2f s", method, path, wait
                        )
                        self.sleep(wait)
                        continue
                elif status >= 500:
                    wait = self._backoff(attempt)
                    self.log.warning(
                        "cronofy %s %s -> %d; retrying in %.2f s", method, path, status, wait
                    )
                    self.sleep(wait)
                    continue
            raise failure


# --- translation into broker.errors -----------------------------------------------------------


def translate(failure: HTTPFailure, operation: str, hint: LinkHint | None = None) -> BrokerError:
    """The BrokerError for an HTTP failure; ``hint`` names the link for authorization errors."""
    status = failure.status
    code = status or None
    if status == 0:
        return BrokerError(
            "refused to follow a URL outside the configured API host",
            status=code,
            operation=operation,
        )
    if status == 401:
        return NeedsReauth(
            "access was not accepted; link again",
            link_hint=hint,
            reason="unauthorized",
            status=code,
            operation=operation,
        )
    if status == 403:
        return Forbidden(status=code, operation=operation)
    if status == 404:
        return NotFound(status=code, operation=operation)
    if status == 422:
        return Invalid(fields=failure.fields, status=code, operation=operation)
    if status == 423:
        return ProfileDisconnected(
            link_hint=hint, reason="profile_disconnected", status=code, operation=operation
        )
    if status == 429:
        return RateLimited(retry_after=failure.retry_after, status=code, operation=operation)
    if status >= 500:
        return Unavailable(status=code, operation=operation)
    if status == 402:
        return BrokerError(
            "feature not included in the aggregator plan", status=code, operation=operation
        )
    if status == 400:
        return Invalid(
            fields={"request": (failure.oauth_error,)} if failure.oauth_error else {},
            status=code,
            operation=operation,
        )
    return BrokerError(
        "unexpected status from the calendar aggregator", status=code, operation=operation
    )
