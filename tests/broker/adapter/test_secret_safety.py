"""Force every failure the adapter translates and prove no secret leaks anywhere.

pycronofy's own exception text contains the client secret, authorization codes and refresh
tokens. For each failure (forced through the sandbox's fault injection, with error bodies that
*echo* the secrets back, as a careless server might) we check ``str(exc)``, ``repr(exc)``, the
whole ``__cause__``/``__context__`` chain, the formatted traceback and every log record of every
logger at DEBUG — none may contain the client secret, access token, refresh token or code.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import traceback

import pytest

from broker.errors import BrokerError
from broker.types import EventWrite
from tests.broker.adapter import sandbox_control as sc


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _assert_clean(exc: BaseException, caplog, secrets: list[str]) -> None:
    assert isinstance(exc, BrokerError)
    assert exc.__cause__ is None and exc.__context__ is None, "vendor exception chained"
    texts = [caplog.text, "".join(traceback.format_exception(exc))]
    for e in _chain(exc):
        texts += [str(e), repr(e), repr(vars(e)) if hasattr(e, "__dict__") else ""]
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret and secret not in blob, f"secret leaked via {type(exc).__name__}"


def _echo(*secrets: str) -> dict:
    text = " ".join(secrets)
    return {
        "error": text,
        "error_description": text,
        "errors": {"summary": [{"key": text, "description": text}], text: [{"key": text}]},
    }


@pytest.fixture
def capture(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, including urllib3's
    return caplog


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_translated_failure_is_secret_free(control, make_broker, link, capture):
    broker = make_broker(max_retries=1, timeout=(1, 0.3))
    creds = link()
    code = sc.code_for(control, "taylor.nguyen@northwind.example")
    secrets = [sc.CLIENT_SECRET, creds.access_token, creds.refresh_token, code]
    cal = next(c for c in broker.calendars(creds) if c.primary)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=4)
    event = EventWrite("leak-check-1", "Interview", start, start + dt.timedelta(hours=1))
    echo = _echo(*secrets)

    cases = [
        # (fault rule or None, the call)
        (("POST", "/oauth/token", 400, echo), lambda: broker.exchange_code(code, sc.REDIRECT_URI)),
        (("POST", "/oauth/token", 401, echo), lambda: broker.exchange_code(code, sc.REDIRECT_URI)),
        (("POST", "/oauth/token", 500, echo), lambda: broker.refresh(creds)),
        (("POST", "/oauth/token", 400, echo), lambda: broker.refresh(creds)),
        (("POST", "/oauth/token/revoke", 503, echo), lambda: broker.revoke(creds.refresh_token)),
        (("GET", "/v1/calendars", 401, echo), lambda: broker.calendars(creds)),
        (("GET", "/v1/calendars", 403, echo), lambda: broker.calendars(creds)),
        (("GET", "/v1/calendars", 404, echo), lambda: broker.calendars(creds)),
        (
            ("POST", f"/v1/calendars/{cal.calendar_id}/events", 422, echo),
            lambda: broker.upsert_event(creds, cal.calendar_id, event),
        ),
        (
            ("POST", f"/v1/calendars/{cal.calendar_id}/events", 423, echo),
            lambda: broker.upsert_event(creds, cal.calendar_id, event),
        ),
        (("GET", "/v1/userinfo", 429, echo), lambda: broker.userinfo(creds)),
        (("GET", "/v1/userinfo", 502, echo), lambda: broker.userinfo(creds)),
        (
            ("POST", "/v1/channels", 400, echo),
            lambda: broker.create_channel(creds, "https://app.example.com/push/9"),
        ),
    ]
    for (method, path, status, body), call in cases:
        control.clear_faults()
        # count high enough that the one refresh after a 401 also fails where relevant
        control.add_fault(method=method, path=path, status=status, body=body, count=10)
        if status == 401 and path != "/oauth/token":
            control.add_fault(method="POST", path="/oauth/token", status=400, body=echo, count=10)
        capture.clear()
        with pytest.raises(BrokerError) as info:
            call()
        _assert_clean(info.value, capture, secrets)

    # a read timeout and a refused connection
    control.clear_faults()
    control.add_fault(method="POST", path="/oauth/token", latency_ms=800, count=5)
    capture.clear()
    with pytest.raises(BrokerError) as info:
        broker.exchange_code(code, sc.REDIRECT_URI)
    _assert_clean(info.value, capture, secrets)

    url = f"http://127.0.0.1:{_closed_port()}"
    dead = make_broker(api_base_url=url, app_base_url=url, max_retries=0)
    capture.clear()
    with pytest.raises(BrokerError) as info:
        dead.refresh(creds)
    _assert_clean(info.value, capture, secrets)


def test_invalid_error_keeps_only_documented_names_and_keys(control, broker, link):
    creds = link()
    cal = next(c for c in broker.calendars(creds) if c.primary)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=4)
    control.add_fault(
        method="POST",
        path=f"/v1/calendars/{cal.calendar_id}/events",
        status=422,
        count=1,
        body={
            "errors": {
                "summary": [{"key": "errors.required", "description": creds.access_token}],
                creds.refresh_token: [{"key": "errors.x"}],
                "start": [{"key": creds.access_token}],
            }
        },
    )
    from broker.errors import Invalid

    with pytest.raises(Invalid) as info:
        broker.upsert_event(
            creds,
            cal.calendar_id,
            EventWrite("k-1", "Interview", start, start + dt.timedelta(hours=1)),
        )
    assert info.value.fields == {"summary": ("errors.required",), "start": ()}
