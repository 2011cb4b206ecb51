"""CronofyBroker: the CalendarBroker port (``broker.port``) over Cronofy.

Each operation states what it means: which endpoint, idempotent or not, user token or API
key. Building and reading bodies is ``encode``/``decode``; making the call count (transport,
refresh on 401, error translation) is the ``Requestor``.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlencode, urlsplit

import requests

from broker.cronofy import decode
from broker.cronofy.events import EventCalls
from broker.cronofy.extras import ExtraCalls
from broker.cronofy.requestor import Requestor
from broker.cronofy.transport import USER_AGENT, Transport
from broker.errors import Invalid
from broker.port import CalendarBroker, OnRefresh
from broker.ratelimit import InProcessRateLimiter, RateLimiter
from broker.types import (
    DATA_CENTERS,
    DEFAULT_SERVICE_ACCOUNT_SCOPE,
    DEFAULT_USER_SCOPE,
    Calendar,
    Credentials,
    Profile,
    UserInfo,
)

__all__ = ["CronofyBroker"]


class CronofyBroker(EventCalls, ExtraCalls):
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
        if api_base_url is None or app_base_url is None:
            dc = data_center or "us"
            if dc not in DATA_CENTERS:
                raise ValueError(f"unknown data center {dc!r}; one of {', '.join(DATA_CENTERS)}")
            suffix = "" if dc == "us" else f"-{dc}"
            api_base_url = f"https://api{suffix}.cronofy.com"
            app_base_url = f"https://app{suffix}.cronofy.com"
        self.client_id = client_id
        self.api_base_url = api_base_url.rstrip("/")
        self.app_base_url = app_base_url.rstrip("/")
        self.log = logger or logging.getLogger("broker.cronofy")
        self.rate_limiter = rate_limiter if rate_limiter is not None else InProcessRateLimiter()
        self._ping_cache: tuple[float, bool] | None = None
        self._transport = Transport(
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
        self._api = Requestor(
            client_id=client_id,
            client_secret=client_secret,
            api_base_url=self.api_base_url,
            app_base_url=self.app_base_url,
            transport=self._transport,
            clock=clock,
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
                headers={"User-Agent": USER_AGENT},
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
        resp = self._api.post_token_endpoint(
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
        return self._api.read_credentials(operation, resp, None)

    def refresh(self, creds: Credentials) -> Credentials:
        """Refresh now (e.g. proactively, under a row lock); store the result — it may rotate."""
        return self._api.refresh(creds)

    def revoke(self, token: str) -> None:
        """Revoke a whole authorization by token (prefer the refresh token; it cannot expire)."""
        self._api.post_token_endpoint(
            "/oauth/token/revoke", {"token": token}, idempotent=True, operation="revoke"
        )

    def revoke_sub(self, sub: str) -> None:
        """Revoke a whole authorization by ``sub`` (account or service account)."""
        self._api.post_token_endpoint(
            "/oauth/token/revoke", {"sub": sub}, idempotent=True, operation="revoke_sub"
        )

    def revoke_profile(
        self, creds: Credentials, profile_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        """Unlink one calendar profile of the account."""
        self._api.user_call(
            "revoke_profile",
            creds,
            on_refresh,
            lambda c: c.revoke_profile(profile_id),
            idempotent=True,
        )

    # -- identity, profiles, calendars ---------------------------------------------------------

    def userinfo(self, creds: Credentials, *, on_refresh: OnRefresh | None = None) -> UserInfo:
        return self._api.user_call(
            "userinfo", creds, on_refresh, lambda c: decode.userinfo(c.userinfo()), idempotent=True
        )

    def profiles(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Profile, ...]:
        return self._api.user_call(
            "profiles",
            creds,
            on_refresh,
            lambda c: tuple(decode.profile(p) for p in c.list_profiles()),
            idempotent=True,
        )

    def calendars(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Calendar, ...]:
        """Every calendar the link can see, including delegated/shared ones (check ``readonly``)."""
        return self._api.user_call(
            "calendars",
            creds,
            on_refresh,
            lambda c: tuple(decode.calendar(x) for x in c.list_calendars()),
            idempotent=True,
        )


def _implements_the_port(broker: CronofyBroker) -> CalendarBroker:
    """Never called: mypy checks here that every signature matches ``broker.port``."""
    return broker
