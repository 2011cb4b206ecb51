"""Retries, back-off, timeouts, 429, refresh, the limiter and pooling — over real HTTP against the
sandbox's fault injection (no mocks of requests). Sleeping is injected (``sleeps``) so back-off
is asserted, not waited for; the only real waits are sub-second read timeouts."""

from __future__ import annotations

import concurrent.futures
import socket

import pytest
import requests

from broker.errors import (
    Forbidden,
    NeedsReauth,
    NotFound,
    ProfileDisconnected,
    RateLimited,
    Unavailable,
)
from broker.ratelimit import InProcessRateLimiter
from tests.broker.adapter import sandbox_control as sc
from tests.broker.adapter.sandbox_control import ConnectCounter


def _hits(control, method: str, path: str) -> int:
    stats = control.stats()
    requests_ = stats.get("requests", stats)
    for key in (f"{method} {path}", path):
        if key in requests_:
            value = requests_[key]
            return value.get(method, 0) if isinstance(value, dict) else value
    return 0


def _connections(control) -> int:
    stats = control.stats()
    return stats.get("connections", stats.get("distinct_connections", 0))


def _reset_stats(control) -> None:
    try:
        control.clear_stats()
    except AssertionError:
        pass


# --- retries and back-off ------------------------------------------------------------------------


def test_5xx_on_a_read_is_retried_with_jittered_backoff(control, broker, link, sleeps):
    creds = link()
    _reset_stats(control)
    control.add_fault(method="GET", path="/v1/calendars", status=503, count=2)
    calendars = broker.calendars(creds)
    assert calendars
    assert _hits(control, "GET", "/v1/calendars") == 3
    assert len(sleeps.calls) == 2
    # full jitter: uniform in [0, base·2^(n-1)]
    assert 0 <= sleeps.calls[0] <= 0.25 and 0 <= sleeps.calls[1] <= 0.5


def test_retries_are_bounded(control, make_broker, link, sleeps):
    broker = make_broker(max_retries=2)
    creds = link()
    _reset_stats(control)
    control.add_fault(method="GET", path="/v1/calendars", status=500, count=10)
    with pytest.raises(Unavailable) as info:
        broker.calendars(creds)
    assert info.value.status == 500 and info.value.operation == "calendars"
    assert _hits(control, "GET", "/v1/calendars") == 3
    assert len(sleeps.calls) == 2


def test_upsert_with_fixed_event_id_is_retried_and_creates_one_event(control, broker, link, sleeps):
    import datetime as dt

    from broker.types import EventWrite

    creds = link()
    cal = next(c for c in broker.calendars(creds) if c.primary and not c.readonly)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    event = EventWrite("retry-once-8812", "Interview", start, start + dt.timedelta(hours=1))
    control.add_fault(
        method="POST", path=f"/v1/calendars/{cal.calendar_id}/events", status=502, count=1
    )
    broker.upsert_event(creds, cal.calendar_id, event)
    assert len(sleeps.calls) == 1
    ours = [
        e
        for e in broker.managed_events(creds, calendar_ids=(cal.calendar_id,))
        if e.event_id == "retry-once-8812"
    ]
    assert len(ours) == 1


def test_non_idempotent_post_is_not_retried_on_5xx(control, broker, link, sleeps):
    creds = link()
    _reset_stats(control)
    control.add_fault(method="POST", path="/v1/channels", status=503, count=1)
    with pytest.raises(Unavailable):
        broker.create_channel(creds, "https://app.example.com/cronofy/push/1")
    assert _hits(control, "POST", "/v1/channels") == 1
    assert sleeps.calls == []


@pytest.mark.parametrize(("status", "error"), [(403, Forbidden), (404, NotFound)])
def test_other_4xx_are_not_retried(control, broker, link, sleeps, status, error):
    creds = link()
    _reset_stats(control)
    control.add_fault(method="GET", path="/v1/profiles", status=status, count=5)
    with pytest.raises(error):
        broker.profiles(creds)
    assert _hits(control, "GET", "/v1/profiles") == 1
    assert sleeps.calls == []


# --- 429 -----------------------------------------------------------------------------------------


def test_429_honours_retry_after(control, broker, link, sleeps):
    creds = link()
    control.add_fault(
        method="GET", path="/v1/userinfo", status=429, headers={"Retry-After": "2"}, count=1
    )
    assert broker.userinfo(creds).sub == creds.sub
    assert sleeps.calls == [2.0]


def test_429_without_retry_after_backs_off(control, broker, link, sleeps):
    creds = link()
    control.add_fault(method="GET", path="/v1/userinfo", status=429, count=2)
    broker.userinfo(creds)
    assert len(sleeps.calls) == 2 and all(0 <= s <= 0.5 for s in sleeps.calls)


def test_429s_are_counted_in_the_lane_of_the_call(control, broker, link, sleeps):
    """Operators see 429s per lane (/metrics): each 429 answered, retried or not, counts once
    in the lane the call was made in; successes count nothing."""
    from broker.ratelimit import background

    creds = link()
    broker.userinfo(creds)
    control.add_fault(method="GET", path="/v1/userinfo", status=429, count=2)
    with background():
        broker.userinfo(creds)  # two 429s, then an answer
    control.add_fault(method="GET", path="/v1/userinfo", status=429, count=1)
    broker.userinfo(creds)
    lanes = broker.rate_limiter.usage()["lanes"]
    assert (lanes["background"]["rejected"], lanes["interactive"]["rejected"]) == (2, 1)


def test_429_with_a_long_retry_after_is_surfaced_not_slept(control, broker, link, sleeps):
    creds = link()
    control.add_fault(
        method="GET", path="/v1/userinfo", status=429, headers={"Retry-After": "120"}, count=5
    )
    with pytest.raises(RateLimited) as info:
        broker.userinfo(creds)
    assert info.value.retry_after == 120.0 and info.value.status == 429
    assert sleeps.calls == []


# --- timeouts and connection errors ------------------------------------------------------------


def test_read_timeout_is_retried_for_reads(control, make_broker, link, sleeps):
    broker = make_broker(timeout=(1, 0.3))
    creds = link()
    control.add_fault(method="GET", path="/v1/calendars", latency_ms=900, count=1)
    assert broker.calendars(creds)
    assert len(sleeps.calls) == 1


def test_read_timeout_is_not_retried_for_non_idempotent_calls(control, make_broker, link, sleeps):
    broker = make_broker(timeout=(1, 0.3))
    creds = link()
    control.add_fault(method="POST", path="/v1/channels", latency_ms=900, count=1)
    with pytest.raises(Unavailable) as info:
        broker.create_channel(creds, "https://app.example.com/cronofy/push/2")
    assert "ReadTimeout" in str(info.value)
    assert sleeps.calls == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_even_for_posts_then_unavailable(make_broker, sleeps):
    url = f"http://127.0.0.1:{_closed_port()}"
    broker = make_broker(api_base_url=url, app_base_url=url, max_retries=2)
    with pytest.raises(Unavailable):
        broker.exchange_code("x" * 32, sc.REDIRECT_URI)
    # nothing reached a server, so even the single-use code exchange may try again
    assert len(sleeps.calls) == 2


# --- authorization failures ----------------------------------------------------------------------


def test_expired_token_refreshes_once_and_hands_over_new_credentials(control, broker, link):
    creds = link()
    control.expire_tokens(access_token=creds.access_token)
    seen = []
    info = broker.userinfo(creds, on_refresh=seen.append)
    assert info.sub == creds.sub
    assert len(seen) == 1
    new = seen[0]
    assert new.access_token != creds.access_token and new.refresh_token
    assert new.sub == creds.sub and new.linking_profile == creds.linking_profile
    # the new token works without another refresh
    assert broker.userinfo(new, on_refresh=seen.append).sub == creds.sub
    assert len(seen) == 1


def test_401_twice_means_reauth(control, broker, link):
    creds = link()
    control.add_fault(method="GET", path="/v1/calendars", status=401, count=2)
    seen = []
    with pytest.raises(NeedsReauth) as info:
        broker.calendars(creds, on_refresh=seen.append)
    assert info.value.reason == "unauthorized" and info.value.link_hint.sub == creds.sub
    assert len(seen) == 1  # the refreshed creds were still handed over for storage


def test_revoked_authorization_needs_reauth_naming_the_link(control, broker, link):
    creds = link()
    broker.revoke(creds.refresh_token)
    with pytest.raises(NeedsReauth) as info:
        broker.calendars(creds)
    assert info.value.reason == "invalid_grant"
    assert info.value.link_hint.sub == creds.sub
    assert info.value.link_hint.profile_id == creds.linking_profile.profile_id


def test_disconnected_profile_is_423(control, broker, link):
    import datetime as dt

    from broker.types import EventWrite

    creds = link("morgan.lee@northwind.example")
    cal = next(c for c in broker.calendars(creds) if c.primary)
    control.disconnect_profile(cal.profile_id)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    with pytest.raises(ProfileDisconnected) as info:
        broker.upsert_event(
            creds,
            cal.calendar_id,
            EventWrite("disc-1", "Interview", start, start + dt.timedelta(hours=1)),
        )
    assert isinstance(info.value, NeedsReauth) and info.value.status == 423
    profile = next(p for p in broker.profiles(creds) if p.profile_id == cal.profile_id)
    assert not profile.connected and profile.relink_url


# --- pooling -------------------------------------------------------------------------------------


def test_n_calls_open_connections_bounded_by_the_pool(sandbox_server, control, make_broker):
    from urllib.parse import urlsplit

    import pycronofy

    url = sandbox_server.url
    broker = make_broker(pool_size=4)
    creds = broker.exchange_code(
        sc.code_for(
            control, "riley.chen@northwind.example", broker.authorization_url(sc.REDIRECT_URI, "st")
        ),
        sc.REDIRECT_URI,
    )
    port = urlsplit(url).port

    _reset_stats(control)
    with ConnectCounter(port) as sequential:
        for _ in range(40):
            broker.calendars(creds)
    assert sequential.count <= 1
    assert _connections(control) <= 1  # the server agrees
    assert _hits(control, "GET", "/v1/calendars") == 40

    with ConnectCounter(port) as threaded:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda _: broker.calendars(creds), range(120)))
    assert threaded.count <= 4  # pool_block=True: 12 threads share at most 4 sockets

    # plain pycronofy (requests.get per call): one new connection per call
    plain = pycronofy.Client(
        client_id=sc.CLIENT_ID, client_secret=sc.CLIENT_SECRET, access_token=creds.access_token
    )
    plain.request_handler.base_url = url
    _reset_stats(control)
    with ConnectCounter(port) as unpooled:
        for _ in range(10):
            plain.list_calendars()
    assert unpooled.count == 10
    assert _connections(control) == 10


# --- the client-side limiter ---------------------------------------------------------------------


def test_limiter_keeps_a_burst_under_the_servers_limit(control, make_broker, link):
    creds = link()
    control.rate_limit(per_second=10, per_minute=1000, enabled=True)
    try:
        # Without a client-side limiter, a burst trips the server's limit …
        unlimited = make_broker(rate_limiter=InProcessRateLimiter(10_000, 100_000), max_retries=0)
        with pytest.raises(RateLimited):
            with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
                list(pool.map(lambda _: unlimited.calendars(creds), range(60)))
    finally:
        control.rate_limit(per_second=10_000, per_minute=100_000, enabled=False)
    import time

    # Let requests still being processed by the sandbox finish before its windows restart
    # (re-enabling clears them): a straggler counted into the new window would look like ours.
    time.sleep(0.5)
    control.rate_limit(per_second=10, per_minute=1000, enabled=True)
    try:
        # … with the limiter at the server's ceiling (real sleeping, ~2.5 s) there is no 429 at all.
        limited = make_broker(
            rate_limiter=InProcessRateLimiter(10, 1000), max_retries=0, sleep=time.sleep
        )
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: limited.calendars(creds), range(25)))
        assert len(results) == 25
    finally:
        control.rate_limit(per_second=10_000, per_minute=100_000, enabled=False)


def test_ping(make_broker, sandbox_server, control):
    def probes() -> int:  # requests the aggregator saw on its root, whatever the method
        return sum(
            n for route, n in control.stats()["requests"].items() if route.split(" ", 1)[1] == "/"
        )

    broker = make_broker()
    before = probes()
    assert all(broker.ping() for _ in range(5))
    assert probes() - before == 1  # cached: /readyz probes do not each reach the aggregator
    broker._PING_TTL = 0  # once the cached answer is old, it asks again
    assert broker.ping() is True and probes() - before == 2

    # A limiter with no room left: the answer is yes without spending a request.
    limiter = InProcessRateLimiter(1, 1)
    limiter.acquire()
    before = probes()
    assert make_broker(rate_limiter=limiter).ping() is True and probes() == before

    port = _closed_port()
    dead = make_broker(
        api_base_url=f"http://127.0.0.1:{port}", app_base_url=f"http://127.0.0.1:{port}"
    )
    with ConnectCounter(port) as attempts:
        assert dead.ping() is False
        assert dead.ping() is False
    assert attempts.count == 1  # cached: no second connection attempt within the TTL


def test_session_sends_no_cookies_and_has_timeouts(broker):
    session = broker._transport.session
    assert isinstance(session, requests.Session)
    assert broker._transport.timeout == (2, 5)
