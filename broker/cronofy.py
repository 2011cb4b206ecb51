"""CronofyBroker: the CalendarBroker port over pycronofy — the only module that imports pycronofy.

What this adds on top of pycronofy (which has no timeouts, opens a connection per call, never
refreshes, drops token-response fields and puts secrets in its exception text):

* **Endpoint as a constructor argument** — a data center or explicit API/app base URLs (the
  sandbox, cassettes). pycronofy's module-level ``settings`` are never touched: each call builds
  a throw-away ``pycronofy.Client`` and gives it our request handler and base URLs.
* **One pooled ``requests.Session``** per broker (= per process) with connect/read timeouts on
  every request; ``pool_block=True`` bounds the number of open connections by the pool size.
* **Bounded retries** with exponential back-off and full jitter for idempotent calls on timeouts,
  connection errors, 5xx and 429 (``Retry-After`` honoured up to a cap); non-idempotent calls are
  retried only when the connection could not even be opened. Other 4xx are never retried.
* **Client-side rate limiting** (``broker.ratelimit``) under the application's 50/s, 500/min.
* **401 → one refresh → retry**; new Credentials go to the caller's ``on_refresh`` (refresh
  tokens may rotate — the broker never touches the database).
* **Error translation in one place** (``_translate``), raised outside any ``except`` block so no
  vendor exception (with the client secret, codes or tokens in its text) is chained.
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycronofy
import requests
from pycronofy.batch import BatchBuilder
from pycronofy.exceptions import PyCronofyException, PyCronofyPartialSuccessError
from pycronofy.request_handler import RequestHandler
from requests.adapters import HTTPAdapter

from broker.errors import (
    BrokerError,
    Forbidden,
    Invalid,
    LinkHint,
    NeedsReauth,
    NotFound,
    ProfileDisconnected,
    RateLimited,
    Unavailable,
)
from broker.ratelimit import InProcessRateLimiter, RateLimiter
from broker.types import (
    CONFERENCING_PROVIDERS,
    DATA_CENTERS,
    DEFAULT_SERVICE_ACCOUNT_SCOPE,
    DEFAULT_USER_SCOPE,
    EXPLICIT_CONFERENCING,
    Attendee,
    AvailabilityQuery,
    BatchDelete,
    BatchEntryResult,
    BatchOperation,
    BatchResult,
    BatchUpsert,
    BusyPeriod,
    Calendar,
    Channel,
    ConferencingProfile,
    Credentials,
    EventWrite,
    LinkingProfile,
    ManagedEvent,
    Profile,
    Resource,
    ServiceAccountAuthorizationRequest,
    Slot,
    SmartInvite,
    SmartInviteReply,
    SmartInviteWrite,
    UserInfo,
)

__all__ = ["CronofyBroker", "OnRefresh"]

T = TypeVar("T")
OnRefresh = Callable[[Credentials], None]

_USER_AGENT = "Rendezvous (pycronofy %s)" % pycronofy.__version__
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
_MAX_BATCH = 50


# --- internal failure carrier -----------------------------------------------------------------


class _HTTPFailure(Exception):
    """An HTTP error status, stripped to non-secret facts. Never leaves this module."""

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


def _failure_from_response(resp: requests.Response, secrets: tuple[str, ...] = ()) -> _HTTPFailure:
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
        fields = _failure_from_errors(body.get("errors"), secrets)
    return _HTTPFailure(
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
            stack.extend(
                [getattr(cur, "reason", None), cur.__cause__, cur.__context__]
                + [a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)]
            )
    return False


class _BlockAllCookies(http.cookiejar.DefaultCookiePolicy):
    """The aggregator is stateless per request; never let one user's cookie ride on another's call."""

    def set_ok(self, cookie, request):  # noqa: D401
        return False


# --- transport: pooled session, timeouts, limiter, retries ------------------------------------


class _Transport:
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
        adapter = HTTPAdapter(
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
                self.rate_limiter.acquire()
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
                raise Unavailable("calendar aggregator did not answer (%s)" % net_error) from None

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


class _PooledRequestHandler(RequestHandler):
    """pycronofy's RequestHandler with its HTTP routed through our transport (no module globals)."""

    def __init__(
        self, auth, transport: _Transport, base_url: str, *, idempotent: bool, api_key: bool = False
    ) -> None:
        self.auth = auth
        self.user_agent = _USER_AGENT
        self.base_url = base_url
        self._transport = transport
        self._idempotent = idempotent
        self._api_key = api_key

    def _request(
        self,
        request_method,
        endpoint="",
        url="",
        data=None,
        params=None,
        use_api_key=False,
        omit_api_version=False,
    ):
        if endpoint and omit_api_version and not url:
            url = "%s/%s" % (self.base_url, endpoint)
        if endpoint and not url:
            url = "%s/%s/%s" % (self.base_url, pycronofy.settings.API_VERSION, endpoint)
        # next_page URLs come from the response: never send our bearer token to another host.
        if not url.startswith(self.base_url + "/"):
            raise _HTTPFailure(0)
        token = (
            self.auth.get_api_key()
            if (use_api_key or self._api_key)
            else self.auth.get_authorization()
        )
        headers = {"Authorization": token, "User-Agent": self.user_agent}
        method = request_method.upper()
        return self._transport.send(
            # pycronofy sends ``{}`` even on GET; we send no body where none is meaningful.
            method,
            url,
            headers=headers,
            json=data if data else (None if method == "GET" else {}),
            params={
                k: _query_value(v) for k, v in (params or {}).items() if v is not None and v != ()
            },
            idempotent=self._idempotent,
        )


def _query_value(value: Any) -> Any:
    """Booleans as ``true``/``false``, as every other official SDK sends them; pycronofy would
    let requests write Python's ``True``/``False``, which Cronofy may refuse
    (``errors.must_be_boolean``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# --- formatting helpers -----------------------------------------------------------------------


def _fmt_time(value: dt.datetime | dt.date, name: str = "time") -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise Invalid("naive datetime", fields={name: ("errors.timezone_required",)})
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise Invalid("unsupported time value", fields={name: ("errors.invalid_time",)})


def _query_days(
    start: dt.datetime | dt.date | None, end: dt.datetime | dt.date | None, tzid: str
) -> tuple[str | None, str | None]:
    """``from``/``to`` of read-events and free/busy: dates in ``tzid``, ``to`` exclusive.

    Cronofy documents both as dates interpreted in the query's ``tzid`` (events that end on or
    after ``from`` and start before ``to``). A date is sent as it is; an instant is widened to
    the local day that holds it, so ``[start, end)`` is always covered — in particular ``end``
    at local midnight after the last day shown gives ``to`` = the day after that last day.
    """
    try:
        zone = ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("unknown time zone", fields={"tzid": ("errors.invalid_tzid",)}) from None

    def day(value: dt.datetime | dt.date, name: str, *, exclusive_end: bool) -> str:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise Invalid("naive datetime", fields={name: ("errors.timezone_required",)})
            if exclusive_end:
                last = (value - dt.timedelta(microseconds=1)).astimezone(zone).date()
                return (last + dt.timedelta(days=1)).isoformat()
            return value.astimezone(zone).date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        raise Invalid("unsupported date value", fields={name: ("errors.invalid_date",)})

    from_ = day(start, "from", exclusive_end=False) if start is not None else None
    to = day(end, "to", exclusive_end=True) if end is not None else None
    return from_, to


def _parse_time(value: Any) -> dt.datetime | dt.date:
    if isinstance(value, dict):
        value = value.get("time")
    if not isinstance(value, str):
        raise ValueError("time missing")
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _parse_dt(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = _parse_time(value)
    if not isinstance(parsed, dt.datetime):
        return dt.datetime.combine(parsed, dt.time(), tzinfo=dt.UTC)
    return parsed


def _minutes(value: dt.timedelta, name: str) -> dict[str, int]:
    seconds = value.total_seconds()
    if seconds < 0 or seconds % 60:
        raise Invalid("durations are whole minutes", fields={name: ("errors.whole_minutes",)})
    return {"minutes": int(seconds // 60)}


def _calendar(c: Mapping[str, Any], profile: Mapping[str, Any] | None = None) -> Calendar:
    profile = profile or {}
    return Calendar(
        calendar_id=c["calendar_id"],
        profile_id=c.get("profile_id") or profile.get("profile_id"),
        profile_name=c.get("profile_name") or profile.get("profile_name"),
        provider_name=c.get("provider_name") or profile.get("provider_name"),
        name=c.get("calendar_name") or "",
        readonly=bool(c.get("calendar_readonly", False)),
        deleted=bool(c.get("calendar_deleted", False)),
        primary=bool(c.get("calendar_primary", False)),
        integrated_conferencing=bool(c.get("calendar_integrated_conferencing_available", False)),
        permission_level=c.get("permission_level"),
    )


def _profile(p: Mapping[str, Any]) -> Profile:
    return Profile(
        profile_id=p["profile_id"],
        provider_name=p.get("provider_name") or "",
        provider_service=p.get("provider_service"),
        profile_name=p.get("profile_name") or "",
        connected=bool(p.get("profile_connected", False)),
        relink_url=p.get("profile_relink_url") or None,
        initial_sync_required=bool(p.get("profile_initial_sync_required", False)),
        calendars=tuple(_calendar(c, p) for c in p.get("profile_calendars") or ()),
    )


def _attendee(a: Mapping[str, Any]) -> Attendee:
    return Attendee(
        email=a.get("email") or "", display_name=a.get("display_name"), status=a.get("status")
    )


def _managed_event(e: Mapping[str, Any]) -> ManagedEvent:
    conferencing = e.get("conferencing") if isinstance(e.get("conferencing"), dict) else {}
    location = e.get("location") if isinstance(e.get("location"), dict) else {}
    return ManagedEvent(
        event_id=e.get("event_id"),
        event_uid=e.get("event_uid") or "",
        calendar_id=e["calendar_id"],
        start=_parse_time(e["start"]),
        end=_parse_time(e["end"]),
        status=e.get("status") or e.get("event_status"),
        deleted=bool(e.get("deleted", False)),
        summary=e.get("summary"),
        attendees=tuple(_attendee(a) for a in e.get("attendees") or ()),
        participation_status=e.get("participation_status"),
        join_url=conferencing.get("join_url") or e.get("meeting_url"),
        conferencing_provider=conferencing.get("provider_name")
        or conferencing.get("provider_description"),
        location=location.get("description"),
        created=_parse_dt(e.get("created")),
        updated=_parse_dt(e.get("updated")),
        description=e.get("description") if isinstance(e.get("description"), str) else None,
        tzid=e["start"].get("tzid") if isinstance(e.get("start"), dict) else None,
        transparency=e.get("transparency"),
        event_private=e.get("event_private") if isinstance(e.get("event_private"), bool) else None,
    )


def _event_body(event: EventWrite) -> dict[str, Any]:
    if not event.event_id:
        raise Invalid("event_id is required", fields={"event_id": ("errors.required",)})
    if not event.summary:
        raise Invalid("summary is required", fields={"summary": ("errors.required",)})
    # Length limits (1024/4096) are left to the aggregator, which answers 422 with the field.
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "summary": event.summary,
        "start": _fmt_time(event.start, "start"),
        "end": _fmt_time(event.end, "end"),
        "tzid": event.tzid,
    }
    if body["end"] <= body["start"] and type(event.start) is type(event.end):
        raise Invalid("end must be after start", fields={"end": ("errors.end_before_start",)})
    if event.description is not None:
        body["description"] = event.description
    if event.location:
        body["location"] = {"description": event.location}
    if event.url:
        body["url"] = event.url
    if event.attendees or event.remove_attendees:
        attendees: dict[str, list[dict[str, str]]] = {}
        if event.attendees:
            attendees["invite"] = [
                {"email": a.email, **({"display_name": a.display_name} if a.display_name else {})}
                for a in event.attendees
            ]
        if event.remove_attendees:
            attendees["remove"] = [{"email": e} for e in event.remove_attendees]
        body["attendees"] = attendees
    if event.reminders_minutes:
        body["reminders"] = [{"minutes": m} for m in event.reminders_minutes]
    if event.reminders_create_only:
        body["reminders_create_only"] = True
    if event.transparency:
        body["transparency"] = event.transparency
    if event.event_private is not None:
        body["event_private"] = event.event_private
    if event.conferencing_profile_id == EXPLICIT_CONFERENCING:
        body["conferencing"] = _explicit_conferencing(event)
    elif event.conferencing_profile_id:
        body["conferencing"] = {"profile_id": event.conferencing_profile_id}
    if event.subscription_url:
        body["subscriptions"] = [
            {
                "type": "webhook",
                "uri": event.subscription_url,
                "interactions": [
                    {"type": "conferencing_assigned"},
                    {"type": "conferencing_failing"},
                ],
            }
        ]
    return body


def _explicit_conferencing(event: EventWrite) -> dict[str, str]:
    """``{"profile_id": "explicit", "provider_description", "join_url"}`` (cronofy-csharp
    UpsertEvent tests, docs conferencing-services/create); refused here when incomplete."""
    description, url = event.conferencing_description, event.conferencing_join_url
    if not description or not url or not url.startswith("https://"):
        raise Invalid(
            "explicit conferencing needs a provider_description and an https join_url",
            fields={"conferencing": ("errors.invalid",)},
        )
    return {
        "profile_id": EXPLICIT_CONFERENCING,
        "provider_description": description,
        "join_url": url,
    }


def _smart_invite(data: Mapping[str, Any], fallback_id: str) -> SmartInvite:
    recipient = data.get("recipient") if isinstance(data.get("recipient"), dict) else {}
    if not recipient and isinstance(data.get("recipients"), list) and data["recipients"]:
        recipient = data["recipients"][0]
    attachments = data.get("attachments") if isinstance(data.get("attachments"), dict) else {}
    event = data.get("event") if isinstance(data.get("event"), dict) else {}
    return SmartInvite(
        smart_invite_id=data.get("smart_invite_id") or fallback_id,
        recipient_email=recipient.get("email"),
        recipient_status=recipient.get("status"),
        callback_url=data.get("callback_url"),
        icalendar=attachments.get("icalendar"),
        replies=tuple(
            SmartInviteReply(
                email=r.get("email") or "", status=r.get("status") or "", comment=r.get("comment")
            )
            for r in data.get("replies") or ()
            if isinstance(r, dict)
        ),
        # Documented as {time, tzid} objects; plain strings are read too.
        start=_parse_time(event["start"]) if event.get("start") else None,
        end=_parse_time(event["end"]) if event.get("end") else None,
    )


# --- the broker -------------------------------------------------------------------------------


class CronofyBroker:
    """CalendarBroker over Cronofy. Create one per process and share it between threads."""

    _PING_TTL = 15.0

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        data_center: str | None = "us",
        api_base_url: str | None = None,
        app_base_url: str | None = None,
        timeout: float | tuple[float, float] = (3.05, 10),
        max_retries: int = 3,
        rate_limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
        pool_size: int = 10,
        backoff_base: float = 0.25,
        backoff_cap: float = 8.0,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        if (api_base_url is None) != (app_base_url is None):
            raise ValueError("give both api_base_url and app_base_url, or neither")
        if api_base_url is None:
            dc = data_center or "us"
            if dc not in DATA_CENTERS:
                raise ValueError(f"unknown data center {dc!r}; one of {', '.join(DATA_CENTERS)}")
            suffix = "" if dc == "us" else f"-{dc}"
            api_base_url = f"https://api{suffix}.cronofy.com"
            app_base_url = f"https://app{suffix}.cronofy.com"
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.app_base_url = app_base_url.rstrip("/")
        self.log = logger or logging.getLogger("broker.cronofy")
        self._clock = clock
        self.rate_limiter = rate_limiter if rate_limiter is not None else InProcessRateLimiter()
        self._ping_cache: tuple[float, bool] | None = None
        self._transport = _Transport(
            session=session,
            pool_size=pool_size,
            timeout=timeout,
            max_retries=max_retries,
            rate_limiter=self.rate_limiter,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
            sleep=sleep,
            rng=rng or random.Random(),
            logger=self.log,
        )

    def __repr__(self) -> str:
        return f"CronofyBroker(client_id={self.client_id!r}, api={self.api_base_url!r})"

    def ping(self) -> bool:
        """True if the API host answers HTTP at all (readiness probes); cached for 15 s.

        No credentials are sent and no retries made. When the limiter has no room the
        answer is True without a request: we are evidently talking to the aggregator.
        """
        now = time.monotonic()
        cached = self._ping_cache
        if cached is not None and now - cached[0] < self._PING_TTL:
            return cached[1]
        try_acquire = getattr(self.rate_limiter, "try_acquire", None)
        if try_acquire is not None and try_acquire() > 0:
            return True
        connect = (
            self._transport.timeout[0]
            if isinstance(self._transport.timeout, tuple)
            else self._transport.timeout
        )
        ok = False
        try:
            resp = self._transport.session.request(
                "GET",
                f"{self.api_base_url}/",
                headers={"User-Agent": _USER_AGENT},
                timeout=(min(connect, 2.0), 2.0),
                allow_redirects=False,
            )
            resp.close()
            ok = True
        except requests.exceptions.RequestException:
            self.log.warning("cronofy ping: %s unreachable", urlsplit(self.api_base_url).netloc)
        self._ping_cache = (now, ok)
        return ok

    def close(self) -> None:
        """Close pooled connections (only if the broker created its own session)."""
        self._transport.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _client(
        self, access_token: str | None, *, idempotent: bool, api_key: bool = False
    ) -> pycronofy.Client:
        client = pycronofy.Client(
            client_id=self.client_id, client_secret=self._client_secret, access_token=access_token
        )
        client.request_handler = _PooledRequestHandler(
            client.auth,
            self._transport,
            self.api_base_url,
            idempotent=idempotent,
            api_key=api_key,
        )
        client.app_base_url = self.app_base_url
        return client

    @staticmethod
    def _hint(creds: Credentials | None) -> LinkHint | None:
        if creds is None:
            return None
        return LinkHint(
            sub=creds.sub or creds.account_id,
            profile_id=creds.linking_profile.profile_id if creds.linking_profile else None,
            service_account_id=creds.service_account_id,
        )

    def _translate(
        self, failure: _HTTPFailure, operation: str, creds: Credentials | None = None
    ) -> BrokerError:
        status = failure.status
        kw = {"status": status or None, "operation": operation}
        if status == 0:
            return BrokerError("refused to follow a URL outside the configured API host", **kw)
        if status == 401:
            return NeedsReauth(
                "access was not accepted; link again",
                link_hint=self._hint(creds),
                reason="unauthorized",
                **kw,
            )
        if status == 403:
            return Forbidden(**kw)
        if status == 404:
            return NotFound(**kw)
        if status == 422:
            return Invalid(fields=failure.fields, **kw)
        if status == 423:
            return ProfileDisconnected(
                link_hint=self._hint(creds), reason="profile_disconnected", **kw
            )
        if status == 429:
            return RateLimited(retry_after=failure.retry_after, **kw)
        if status >= 500:
            return Unavailable(**kw)
        if status == 402:
            return BrokerError("feature not included in the aggregator plan", **kw)
        if status == 400:
            return Invalid(
                fields={"request": (failure.oauth_error,)} if failure.oauth_error else {}, **kw
            )
        return BrokerError("unexpected status from the calendar aggregator", **kw)

    def _run(self, operation: str, fn: Callable[[], T], creds: Credentials | None = None) -> T:
        """Run ``fn`` and translate failures; the raise happens outside ``except`` on purpose."""
        failure: _HTTPFailure | None = None
        try:
            return self._run_raw(operation, fn)
        except _HTTPFailure as f:
            failure = f
        raise self._translate(failure, operation, creds) from None

    def _run_raw(self, operation: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; let _HTTPFailure through, turn response-shape surprises into BrokerError."""
        unexpected: str | None = None
        try:
            return fn()
        except BrokerError as exc:
            if exc.operation is None:
                exc.operation = operation
            raise
        except (
            KeyError,
            ValueError,
            IndexError,
            AttributeError,
            TypeError,
            PyCronofyException,
        ) as exc:
            unexpected = type(exc).__name__  # the class only: messages may quote the response
        self.log.warning("cronofy %s: unexpected response shape (%s)", operation, unexpected)
        raise BrokerError(
            "unexpected response shape from the calendar aggregator", operation=operation
        ) from None

    def _user_call(
        self,
        operation: str,
        creds: Credentials,
        on_refresh: OnRefresh | None,
        fn: Callable[[pycronofy.Client], T],
        *,
        idempotent: bool,
    ) -> T:
        """Call with the user's token; on 401 refresh once, hand the new creds over, retry once."""
        failure: _HTTPFailure | None = None
        try:
            return self._run_raw(
                operation, lambda: fn(self._client(creds.access_token, idempotent=idempotent))
            )
        except _HTTPFailure as f:
            failure = f
        if failure.status != 401:
            raise self._translate(failure, operation, creds) from None
        self.log.info("cronofy %s: access token rejected, refreshing once", operation)
        new_creds = self.refresh(creds)
        if on_refresh is not None:
            on_refresh(new_creds)
        else:
            self.log.warning(
                "cronofy %s refreshed credentials but no on_refresh was given; "
                "a rotated refresh token may be lost",
                operation,
            )
        return self._run(
            operation,
            lambda: fn(self._client(new_creds.access_token, idempotent=idempotent)),
            new_creds,
        )

    def _post_token_endpoint(
        self,
        path: str,
        body: dict[str, Any],
        *,
        idempotent: bool,
        operation: str,
        on_bad_request: Callable[[_HTTPFailure], BrokerError] | None = None,
    ) -> requests.Response:
        """POST client credentials + ``body`` to an OAuth endpoint (never through pycronofy,
        which drops response fields and would echo the secret in its error text)."""
        payload = {"client_id": self.client_id, "client_secret": self._client_secret, **body}
        failure: _HTTPFailure | None = None
        try:
            return self._run_raw(
                operation,
                lambda: self._transport.send(
                    "POST",
                    f"{self.api_base_url}{path}",
                    headers={"User-Agent": _USER_AGENT},
                    json=payload,
                    idempotent=idempotent,
                ),
            )
        except _HTTPFailure as f:
            failure = f
        if failure.status == 400 and on_bad_request is not None:
            raise on_bad_request(failure) from None
        if failure.status == 401:
            raise BrokerError(
                "the aggregator rejected the application's client credentials",
                status=401,
                operation=operation,
            ) from None
        raise self._translate(failure, operation) from None

    def _credentials(self, data: Mapping[str, Any], previous: Credentials | None) -> Credentials:
        now = self._clock()
        access = data.get("access_token")
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise ValueError("token response without tokens")
        lp = data.get("linking_profile")
        linking_profile = (
            LinkingProfile(
                provider_name=lp.get("provider_name") or "",
                provider_service=lp.get("provider_service"),
                profile_id=lp["profile_id"],
                profile_name=lp.get("profile_name") or "",
            )
            if isinstance(lp, dict) and lp.get("profile_id")
            else (previous.linking_profile if previous else None)
        )
        return Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=now + dt.timedelta(seconds=int(data.get("expires_in") or 0)),
            scope=data.get("scope") or (previous.scope if previous else ""),
            sub=data.get("sub") or (previous.sub if previous else None),
            account_id=data.get("account_id") or (previous.account_id if previous else None),
            linking_profile=linking_profile,
            service_account_id=data.get("service_account_id")
            or (previous.service_account_id if previous else None),
        )

    # -- authorization -------------------------------------------------------------------------

    def authorization_url(
        self,
        redirect_uri: str,
        state: str,
        *,
        scope: Sequence[str] = DEFAULT_USER_SCOPE,
        provider_name: str | None = None,
        delegated_scope: Sequence[str] | None = None,
        link_token: str | None = None,
    ) -> str:
        """Where to send a person to link a calendar (Individual/Business Connect)."""
        # Built here rather than with pycronofy's user_auth_link, which always emits an empty
        # provider_name and Python-style avoid_linking=False and cannot add delegated_scope.
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scope),
            "state": state,
            "avoid_linking": "true",
        }
        if provider_name:
            params["provider_name"] = provider_name
        if delegated_scope:
            params["delegated_scope"] = " ".join(delegated_scope)
        if link_token:
            params["link_token"] = link_token
        return f"{self.app_base_url}/oauth/authorize?{urlencode(params)}"

    def enterprise_connect_url(
        self,
        redirect_uri: str,
        state: str,
        *,
        scope: Sequence[str] = DEFAULT_SERVICE_ACCOUNT_SCOPE,
        delegated_scope: Sequence[str] = DEFAULT_USER_SCOPE,
    ) -> str:
        """Where to send an IT admin to authorize a service account for the domain."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scope),
            "delegated_scope": " ".join(delegated_scope),
            "state": state,
        }
        return f"{self.app_base_url}/enterprise_connect/oauth/authorize?{urlencode(params)}"

    def exchange_code(self, code: str, redirect_uri: str) -> Credentials:
        """Redeem an authorization code (user, admin or service-account callback) for Credentials.

        ``invalid_grant`` (unknown/used code, redirect_uri mismatch) raises Invalid with
        ``fields={"code": ("invalid_grant",)}``. Never retried after sending: codes are single use.
        """
        operation = "exchange_code"
        resp = self._post_token_endpoint(
            "/oauth/token",
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            idempotent=False,
            operation=operation,
            on_bad_request=lambda f: Invalid(
                "authorization code was not accepted",
                fields={"code": (f.oauth_error or "invalid_request",)},
                status=400,
                operation=operation,
            ),
        )
        return self._run(operation, lambda: self._credentials(resp.json(), None))

    def refresh(self, creds: Credentials) -> Credentials:
        """Refresh now (e.g. proactively, under a row lock); store the result — it may rotate."""
        operation = "refresh"
        resp = self._post_token_endpoint(
            "/oauth/token",
            {"grant_type": "refresh_token", "refresh_token": creds.refresh_token},
            # Not idempotent: with rotation, a lost response followed by a retry would burn the
            # only valid refresh token.
            idempotent=False,
            operation=operation,
            on_bad_request=lambda f: NeedsReauth(
                "refresh token no longer valid; link again",
                link_hint=self._hint(creds),
                reason=f.oauth_error or "invalid_grant",
                status=400,
                operation=operation,
            ),
        )
        return self._run(operation, lambda: self._credentials(resp.json(), creds))

    def revoke(self, token: str) -> None:
        """Revoke a whole authorization by token (prefer the refresh token; it cannot expire)."""
        self._post_token_endpoint(
            "/oauth/token/revoke", {"token": token}, idempotent=True, operation="revoke"
        )

    def revoke_sub(self, sub: str) -> None:
        """Revoke a whole authorization by ``sub`` (account or service account)."""
        self._post_token_endpoint(
            "/oauth/token/revoke", {"sub": sub}, idempotent=True, operation="revoke_sub"
        )

    def revoke_profile(
        self, creds: Credentials, profile_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        """Unlink one calendar profile of the account."""
        self._user_call(
            "revoke_profile",
            creds,
            on_refresh,
            lambda c: c.revoke_profile(profile_id),
            idempotent=True,
        )

    # -- identity, profiles, calendars ---------------------------------------------------------

    def userinfo(self, creds: Credentials, *, on_refresh: OnRefresh | None = None) -> UserInfo:
        def call(c: pycronofy.Client) -> UserInfo:
            data = c.userinfo()
            kind = data.get("cronofy.type") or "account"
            cdata = data.get("cronofy.data") if isinstance(data.get("cronofy.data"), dict) else {}
            authz = (
                cdata.get("authorization") if isinstance(cdata.get("authorization"), dict) else {}
            )
            if kind == "service_account":
                sa = (
                    cdata.get("service_account")
                    if isinstance(cdata.get("service_account"), dict)
                    else {}
                )
                return UserInfo(
                    sub=data["sub"],
                    kind="service_account",
                    email=data.get("email") or data.get("cronofy.service_account.email"),
                    name=data.get("name"),
                    scope=authz.get("scope"),
                    status=authz.get("status"),
                    domain=sa.get("domain") or data.get("cronofy.service_account.domain"),
                    provider_name=sa.get("provider_name"),
                    delegated_scope=authz.get("delegated_scope"),
                )
            return UserInfo(
                sub=data["sub"],
                kind="account",
                email=data.get("email"),
                name=data.get("name"),
                zoneinfo=data.get("zoneinfo"),
                scope=authz.get("scope"),
                status=authz.get("status"),
                profiles=tuple(_profile(p) for p in cdata.get("profiles") or ()),
                conferencing_profiles=tuple(
                    ConferencingProfile(
                        profile_id=p["profile_id"],
                        provider_name=p.get("provider_name") or "",
                        profile_name=p.get("profile_name"),
                        connected=bool(p.get("profile_connected", False)),
                    )
                    for p in cdata.get("conferencing_profiles") or ()
                ),
            )

        return self._user_call("userinfo", creds, on_refresh, call, idempotent=True)

    def profiles(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Profile, ...]:
        return self._user_call(
            "profiles",
            creds,
            on_refresh,
            lambda c: tuple(_profile(p) for p in c.list_profiles()),
            idempotent=True,
        )

    def calendars(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Calendar, ...]:
        """Every calendar the link can see, including delegated/shared ones (check ``readonly``)."""
        return self._user_call(
            "calendars",
            creds,
            on_refresh,
            lambda c: tuple(_calendar(x) for x in c.list_calendars()),
            idempotent=True,
        )

    # -- free/busy and availability ------------------------------------------------------------

    def free_busy(
        self,
        creds: Credentials,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        calendar_ids: Sequence[str] = (),
        tzid: str = "Etc/UTC",
        include_managed: bool = True,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[BusyPeriod, ...]:
        """Busy blocks of the days from ``start`` up to ``end`` (exclusive) in ``tzid``, across
        all pages. Give dates; instants are widened to the local days that hold them."""
        from_, to = _query_days(start, end, tzid)

        def call(c: pycronofy.Client) -> tuple[BusyPeriod, ...]:
            pages = c.read_free_busy(
                calendar_ids=tuple(calendar_ids),
                from_date=from_,
                to_date=to,
                tzid=tzid,
                include_managed=include_managed,
            )
            return tuple(
                BusyPeriod(
                    calendar_id=b["calendar_id"],
                    start=_parse_time(b["start"]),
                    end=_parse_time(b["end"]),
                    status=b.get("free_busy_status") or "busy",
                )
                for b in pages.all()
            )

        return self._user_call("free_busy", creds, on_refresh, call, idempotent=True)

    def availability(
        self,
        query: AvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[Slot, ...]:
        """Common free time of several members. Without ``creds`` the app's API key is used
        (the documented way for multi-account queries); with ``creds`` the user's token."""
        if not query.groups or not any(g.members for g in query.groups):
            raise Invalid(
                "at least one member is required",
                fields={"participants": ("errors.required",)},
                operation="availability",
            )
        if not query.periods and not query.query_slots:
            raise Invalid(
                "query periods or slots are required",
                fields={"query_periods": ("errors.required",)},
                operation="availability",
            )
        participants = []
        for group in query.groups:
            members = []
            for m in group.members:
                member: dict[str, Any] = {"sub": m.sub}
                if m.calendar_ids:
                    member["calendar_ids"] = list(m.calendar_ids)
                if m.available_periods:
                    member["available_periods"] = [
                        {"start": _fmt_time(p.start), "end": _fmt_time(p.end)}
                        for p in m.available_periods
                    ]
                if m.managed_availability:
                    member["managed_availability"] = True
                members.append(member)
            participants.append({"members": members, "required": group.required})
        duration = _minutes(query.duration, "required_duration")
        periods = [{"start": _fmt_time(p.start), "end": _fmt_time(p.end)} for p in query.periods]
        slots = [{"start": _fmt_time(s)} for s in query.query_slots]
        buffer: dict[str, Any] = {}
        if query.buffer_before:
            buffer["before"] = _minutes(query.buffer_before, "buffer")
        if query.buffer_after:
            buffer["after"] = _minutes(query.buffer_after, "buffer")
        interval = (
            _minutes(query.start_interval, "start_interval") if query.start_interval else None
        )

        # The documented body, with ``query_periods`` (the current name; pycronofy's
        # availability() can only send the older ``available_periods``).
        body: dict[str, Any] = {"participants": participants, "required_duration": duration}
        if periods:
            body["query_periods"] = periods
        if slots:
            body["query_slots"] = slots
        if buffer:
            body["buffer"] = buffer
        if interval:
            body["start_interval"] = interval
        if query.response_format:
            body["response_format"] = query.response_format
        if query.max_results:
            body["max_results"] = query.max_results
        answer = (
            "available_slots"
            if query.response_format in ("slots", "overlapping_slots")
            else "available_periods"
        )

        def call(c: pycronofy.Client) -> tuple[Slot, ...]:
            found = c.request_handler.post(endpoint="availability", data=body).json()[answer]
            return tuple(
                Slot(
                    start=_parse_dt(s["start"]),
                    end=_parse_dt(s["end"]),
                    participants=tuple(p["sub"] for p in s.get("participants") or ()),
                )
                for s in found
            )

        if creds is None:
            return self._run(
                "availability", lambda: call(self._client(None, idempotent=True, api_key=True))
            )
        return self._user_call("availability", creds, on_refresh, call, idempotent=True)

    # -- managed events ------------------------------------------------------------------------

    def upsert_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event: EventWrite,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Create or update our event ``event.event_id`` (idempotent: safe to retry)."""
        body = _event_body(event)
        self._user_call(
            "upsert_event",
            creds,
            on_refresh,
            lambda c: c.upsert_event(calendar_id, dict(body)),
            idempotent=True,
        )

    def delete_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event_id: str,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self._user_call(
            "delete_event",
            creds,
            on_refresh,
            lambda c: c.delete_event(calendar_id, event_id),
            idempotent=True,
        )

    def managed_events(
        self,
        creds: Credentials,
        *,
        calendar_ids: Sequence[str] = (),
        start: dt.datetime | dt.date | None = None,
        end: dt.datetime | dt.date | None = None,
        last_modified: dt.datetime | None = None,
        include_deleted: bool = False,
        tzid: str = "Etc/UTC",
        localized: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[ManagedEvent, ...]:
        """The app's own events (``only_managed``), across all pages; read on demand, not stored.

        ``start``/``end`` bound the days in ``tzid`` (``end`` exclusive), as for free/busy.
        ``localized`` asks for ``localized_times``, so each event says its own zone (``tzid``)."""
        from_, to = _query_days(start, end, tzid)
        since = _fmt_time(last_modified, "last_modified") if last_modified is not None else None

        def call(c: pycronofy.Client) -> tuple[ManagedEvent, ...]:
            pages = c.read_events(
                calendar_ids=tuple(calendar_ids),
                from_date=from_,
                to_date=to,
                last_modified=since,
                tzid=tzid,
                only_managed=True,
                include_managed=True,
                include_deleted=include_deleted,
                localized_times=localized,
            )
            return tuple(_managed_event(e) for e in pages.all())

        return self._user_call("managed_events", creds, on_refresh, call, idempotent=True)

    # -- channels ------------------------------------------------------------------------------

    def create_channel(
        self,
        creds: Credentials,
        callback_url: str,
        *,
        calendar_ids: Sequence[str] = (),
        only_managed: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> Channel:
        if len(callback_url) > 128:
            raise Invalid(
                "callback_url longer than 128 characters",
                fields={"callback_url": ("errors.too_long",)},
                operation="create_channel",
            )

        def call(c: pycronofy.Client) -> Channel:
            return self._channel(
                c.create_notification_channel(
                    callback_url, calendar_ids=tuple(calendar_ids), only_managed=only_managed
                )
            )

        # Not idempotent: a retried POST could open a second channel.
        return self._user_call("create_channel", creds, on_refresh, call, idempotent=False)

    @staticmethod
    def _channel(ch: Mapping[str, Any]) -> Channel:
        filters = ch.get("filters") if isinstance(ch.get("filters"), dict) else {}
        return Channel(
            channel_id=ch["channel_id"],
            callback_url=ch.get("callback_url") or "",
            calendar_ids=tuple(filters.get("calendar_ids") or ()),
            only_managed=bool(filters.get("only_managed", False)),
        )

    def channels(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Channel, ...]:
        return self._user_call(
            "channels",
            creds,
            on_refresh,
            lambda c: tuple(self._channel(x) for x in c.list_notification_channels()),
            idempotent=True,
        )

    def close_channel(
        self, creds: Credentials, channel_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        self._user_call(
            "close_channel",
            creds,
            on_refresh,
            lambda c: c.close_notification_channel(channel_id),
            idempotent=True,
        )

    # -- Enterprise Connect --------------------------------------------------------------------

    def authorize_service_account_user(
        self,
        sa_creds: Credentials,
        request: ServiceAccountAuthorizationRequest,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Ask for access to one mailbox; the answer arrives later at ``request.callback_url``."""
        self._user_call(
            "authorize_service_account_user",
            sa_creds,
            on_refresh,
            lambda c: c.authorize_with_service_account(
                request.email, request.scope, request.callback_url, state=request.state
            ),
            idempotent=False,
        )

    def authorize_service_account_users(
        self,
        sa_creds: Credentials,
        requests_: Sequence[ServiceAccountAuthorizationRequest],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Ask for access to 1–50 mailboxes in one call (state per entry, as documented)."""
        if not 1 <= len(requests_) <= _MAX_BATCH:
            raise Invalid(
                "between 1 and 50 authorizations per call",
                fields={"service_account_authorizations": ("errors.batch_size",)},
                operation="authorize_service_account_users",
            )
        entries = []
        for r in requests_:
            entry = {"email": r.email, "callback_url": r.callback_url, "scope": r.scope}
            if r.state is not None:
                entry["state"] = r.state
            entries.append(entry)
        self._user_call(
            "authorize_service_account_users",
            sa_creds,
            on_refresh,
            lambda c: c.authorize_multiple_accounts_via_service_account([dict(e) for e in entries]),
            idempotent=False,
        )

    def resources(
        self, sa_creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Resource, ...]:
        return self._user_call(
            "resources",
            sa_creds,
            on_refresh,
            lambda c: tuple(Resource(email=r["email"], name=r.get("name")) for r in c.resources()),
            idempotent=True,
        )

    # -- conferencing --------------------------------------------------------------------------

    def conferencing_authorization_url(
        self,
        creds: Credentials,
        redirect_uri: str,
        *,
        provider_name: str | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> str:
        """Where to send a person to connect Zoom, GoTo or Teams to their account."""
        if provider_name is not None and provider_name not in CONFERENCING_PROVIDERS:
            raise Invalid(
                f"unknown conferencing provider_name {provider_name[:32]!r}",
                fields={"provider_name": ("errors.invalid",)},
                operation="conferencing_authorization_url",
            )
        return self._user_call(
            "conferencing_authorization_url",
            creds,
            on_refresh,
            lambda c: c.get_conferencing_services_auth_link(redirect_uri, provider_name),
            idempotent=True,
        )

    # -- Smart Invites (API key) ---------------------------------------------------------------

    def upsert_smart_invite(self, invite: SmartInviteWrite) -> SmartInvite:
        """Create or update an invitation (the documented body: ``method: request``, the
        organizer's name and email, and the ``callback_url`` answers are reported to)."""
        event: dict[str, Any] = {
            "summary": invite.summary,
            "start": _fmt_time(invite.start, "start"),
            "end": _fmt_time(invite.end, "end"),
            "tzid": invite.tzid,
        }
        if invite.description is not None:
            event["description"] = invite.description
        if invite.location:
            event["location"] = {"description": invite.location}
        body: dict[str, Any] = {
            "method": "request",
            "smart_invite_id": invite.smart_invite_id,
            "recipient": {"email": invite.recipient_email},
            "event": event,
        }
        if invite.callback_url:
            body["callback_url"] = invite.callback_url
        organizer = {
            k: v
            for k, v in (("name", invite.organizer_name), ("email", invite.organizer_email))
            if v
        }
        if organizer:
            body["organizer"] = organizer

        # pycronofy's upsert_smart_invite cannot send ``method``: post the body through its
        # request handler (API key, our transport) instead.
        def call() -> SmartInvite:
            client = self._client(None, idempotent=True, api_key=True)
            data = client.request_handler.post("smart_invites", data=body, use_api_key=True).json()
            return _smart_invite(data, invite.smart_invite_id)

        return self._run("upsert_smart_invite", call)

    def smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        return self._run(
            "smart_invite",
            lambda: _smart_invite(
                self._client(None, idempotent=True, api_key=True).get_smart_invite(
                    smart_invite_id, recipient_email
                ),
                smart_invite_id,
            ),
        )

    def cancel_smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        return self._run(
            "cancel_smart_invite",
            lambda: _smart_invite(
                self._client(None, idempotent=True, api_key=True).cancel_smart_invite(
                    smart_invite_id, {"email": recipient_email}
                ),
                smart_invite_id,
            ),
        )

    # -- batch ---------------------------------------------------------------------------------

    def batch(
        self,
        creds: Credentials,
        operations: Sequence[BatchOperation],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> BatchResult:
        """Up to 50 upserts/deletes in one request; per-entry outcome, never a partial raise."""
        ops = tuple(operations)
        if not 1 <= len(ops) <= _MAX_BATCH:
            raise Invalid(
                "between 1 and 50 operations per batch",
                fields={"batch": ("errors.batch_size",)},
                operation="batch",
            )
        bodies: list[tuple[str, str, dict[str, Any]]] = []
        for op in ops:
            if isinstance(op, BatchUpsert):
                bodies.append(("upsert", op.calendar_id, _event_body(op.event)))
            elif isinstance(op, BatchDelete):
                bodies.append(("delete", op.calendar_id, {"event_id": op.event_id}))
            else:
                raise TypeError(f"unsupported batch operation {type(op).__name__}")

        def call(c: pycronofy.Client) -> BatchResult:
            builder = BatchBuilder()
            for kind, calendar_id, body in bodies:
                if kind == "upsert":
                    builder.upsert_event(calendar_id, dict(body))
                else:
                    builder.delete_event(calendar_id, body["event_id"])
            response = None
            try:
                response = c.batch(builder)
            except PyCronofyPartialSuccessError as partial:
                # pycronofy counts 200/201/204 as errors (status % 100 == 2); judge ourselves.
                response = partial.batch_response
            entries = []
            for op, entry in zip(ops, response.entries, strict=False):
                res = entry.response if isinstance(entry.response, dict) else {}
                status = int(res.get("status") or 0)
                data = res.get("data") if isinstance(res.get("data"), dict) else {}
                errors = _failure_from_errors(data.get("errors"), (c.auth.access_token or "",))
                entries.append(BatchEntryResult(operation=op, status=status, errors=errors))
            if len(entries) != len(ops):
                raise ValueError("batch response length mismatch")
            return BatchResult(entries=tuple(entries))

        # Upserts with fixed event_ids and deletes are idempotent, so the batch is too.
        return self._user_call("batch", creds, on_refresh, call, idempotent=True)


def _failure_from_errors(errors: Any, secrets: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
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
