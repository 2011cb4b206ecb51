"""Requests to the aggregator on behalf of the broker: pycronofy clients wired to our transport,
the 401 → one refresh → retry dance, the OAuth token endpoint, and the one place where
failures become ``broker.errors`` (raised outside any ``except`` block, so no vendor exception,
whose text may carry the client secret, codes or tokens, is chained).

Like stripe-python's ``_api_requestor``: it knows how to make a call count, not what a call means.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pycronofy
import requests
from pycronofy.auth import Auth
from pycronofy.exceptions import PyCronofyException
from pycronofy.request_handler import RequestHandler

from broker.cronofy import decode
from broker.cronofy.transport import USER_AGENT, HTTPFailure, Transport, translate
from broker.errors import BrokerError, LinkHint, NeedsReauth
from broker.port import OnRefresh
from broker.types import Credentials

T = TypeVar("T")


class _PooledRequestHandler(RequestHandler):
    """pycronofy's RequestHandler with its HTTP routed through our transport (no module globals)."""

    def __init__(
        self,
        auth: Auth,
        transport: Transport,
        base_url: str,
        *,
        idempotent: bool,
        api_key: bool = False,
    ) -> None:
        self.auth = auth
        self.user_agent = USER_AGENT
        self.base_url = base_url
        self._transport = transport
        self._idempotent = idempotent
        self._api_key = api_key

    def _request(
        self,
        request_method: str,
        endpoint: str = "",
        url: str = "",
        data: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        use_api_key: bool = False,
        omit_api_version: bool = False,
    ) -> requests.Response:
        if endpoint and omit_api_version and not url:
            url = f"{self.base_url}/{endpoint}"
        if endpoint and not url:
            url = f"{self.base_url}/{pycronofy.settings.API_VERSION}/{endpoint}"
        # next_page URLs come from the response: never send our bearer token to another host.
        if not url.startswith(self.base_url + "/"):
            raise HTTPFailure(0)
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


class Requestor:
    """Makes calls for one broker: shared by its threads, holding no per-user state."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        api_base_url: str,
        app_base_url: str,
        transport: Transport,
        clock: Callable[[], dt.datetime],
        logger: logging.Logger,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_base_url = api_base_url
        self.app_base_url = app_base_url
        self.transport = transport
        self.clock = clock
        self.log = logger

    def client(
        self, access_token: str | None, *, idempotent: bool, api_key: bool = False
    ) -> pycronofy.Client:
        """A throw-away pycronofy client over our transport (pycronofy's globals untouched)."""
        client = pycronofy.Client(
            client_id=self.client_id, client_secret=self.client_secret, access_token=access_token
        )
        client.request_handler = _PooledRequestHandler(
            client.auth,
            self.transport,
            self.api_base_url,
            idempotent=idempotent,
            api_key=api_key,
        )
        client.app_base_url = self.app_base_url
        return client

    @staticmethod
    def hint(creds: Credentials | None) -> LinkHint | None:
        if creds is None:
            return None
        return LinkHint(
            sub=creds.sub or creds.account_id,
            profile_id=creds.linking_profile.profile_id if creds.linking_profile else None,
            service_account_id=creds.service_account_id,
        )

    def run(self, operation: str, fn: Callable[[], T], creds: Credentials | None = None) -> T:
        """Run ``fn`` and translate failures; the raise happens outside ``except`` on purpose."""
        failure: HTTPFailure | None = None
        try:
            return self.run_raw(operation, fn)
        except HTTPFailure as f:
            failure = f
        raise translate(failure, operation, self.hint(creds)) from None

    def run_raw(self, operation: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; let HTTPFailure through, turn response-shape surprises into BrokerError."""
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

    def app_call(self, operation: str, fn: Callable[[pycronofy.Client], T]) -> T:
        """Call with the application's API key (client secret); idempotent calls only."""
        return self.run(operation, lambda: fn(self.client(None, idempotent=True, api_key=True)))

    def user_call(
        self,
        operation: str,
        creds: Credentials,
        on_refresh: OnRefresh | None,
        fn: Callable[[pycronofy.Client], T],
        *,
        idempotent: bool,
    ) -> T:
        """Call with the user's token; on 401 refresh once, hand the new creds over, retry once."""
        failure: HTTPFailure | None = None
        try:
            return self.run_raw(
                operation, lambda: fn(self.client(creds.access_token, idempotent=idempotent))
            )
        except HTTPFailure as f:
            failure = f
        if failure.status != 401:
            raise translate(failure, operation, self.hint(creds)) from None
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
        return self.run(
            operation,
            lambda: fn(self.client(new_creds.access_token, idempotent=idempotent)),
            new_creds,
        )

    def post_token_endpoint(
        self,
        path: str,
        body: dict[str, Any],
        *,
        idempotent: bool,
        operation: str,
        on_bad_request: Callable[[HTTPFailure], BrokerError] | None = None,
    ) -> requests.Response:
        """POST client credentials + ``body`` to an OAuth endpoint (never through pycronofy,
        which drops response fields and would echo the secret in its error text)."""
        payload = {"client_id": self.client_id, "client_secret": self.client_secret, **body}
        failure: HTTPFailure | None = None
        try:
            return self.run_raw(
                operation,
                lambda: self.transport.send(
                    "POST",
                    f"{self.api_base_url}{path}",
                    headers={"User-Agent": USER_AGENT},
                    json=payload,
                    idempotent=idempotent,
                ),
            )
        except HTTPFailure as f:
            failure = f
        if failure.status == 400 and on_bad_request is not None:
            raise on_bad_request(failure) from None
        if failure.status == 401:
            raise BrokerError(
                "the aggregator rejected the application's client credentials",
                status=401,
                operation=operation,
            ) from None
        raise translate(failure, operation) from None

    def read_credentials(
        self, operation: str, resp: requests.Response, previous: Credentials | None
    ) -> Credentials:
        """The Credentials of a token response (missing fields kept from ``previous``)."""
        return self.run(operation, lambda: decode.credentials(resp.json(), previous, self.clock()))

    def refresh(self, creds: Credentials) -> Credentials:
        """Refresh now (e.g. proactively, under a row lock); store the result — it may rotate."""
        operation = "refresh"
        resp = self.post_token_endpoint(
            "/oauth/token",
            {"grant_type": "refresh_token", "refresh_token": creds.refresh_token},
            # Not idempotent: with rotation, a lost response followed by a retry would burn the
            # only valid refresh token.
            idempotent=False,
            operation=operation,
            on_bad_request=lambda f: NeedsReauth(
                "refresh token no longer valid; link again",
                link_hint=self.hint(creds),
                reason=f.oauth_error or "invalid_grant",
                status=400,
                operation=operation,
            ),
        )
        return self.read_credentials(operation, resp, creds)
