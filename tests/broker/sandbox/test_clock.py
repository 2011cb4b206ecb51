"""The sandbox's settable clock: tests set it or move it forward instead of sleeping, and every
time-dependent behaviour of the sandbox follows it; reset puts it back to real time."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pycronofy.exceptions import PyCronofyRequestError

from broker.sandbox.client import SandboxControlError
from broker.sandbox.server import start_sandbox

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT, RILEY, client_for, tokens_for

UTC = dt.UTC
#: A Tuesday years from any run of the suite, so nothing here depends on the real date.
TUESDAY = dt.datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def test_the_clock_is_real_until_set_and_reset_puts_it_back(sandbox):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    reading = sandbox.clock()
    assert reading.real and not reading.frozen
    assert before - dt.timedelta(seconds=1) <= reading.now <= before + dt.timedelta(seconds=5)
    frozen = sandbox.set_clock(TUESDAY, frozen=True)
    assert (frozen.now, frozen.frozen, frozen.real) == (TUESDAY, True, False)
    assert sandbox.advance(dt.timedelta(hours=2), seconds=30).now == TUESDAY + dt.timedelta(
        hours=2, seconds=30
    )
    assert sandbox.clock().now == TUESDAY + dt.timedelta(hours=2, seconds=30)
    running = sandbox.set_clock(TUESDAY)
    assert not running.frozen and running.now >= TUESDAY
    sandbox.reset()
    assert sandbox.clock().real
    sandbox.set_clock(TUESDAY, frozen=True)
    assert sandbox.use_real_time().real


def test_the_clock_refuses_bad_instants_and_going_back(sandbox):
    for body in [{}, {"now": "2031-03-04 12:00"}, {"now": "2031-03-04T12:00:00+01:00"},
                 {"now": "2031-03-04T12:00:00Z", "frozen": "yes"}]:  # fmt: skip
        response = sandbox.request("PUT", "/clock", body)
        assert response.status_code == 422, (body, response.text)
    for seconds in [-1, "60", True, None]:
        response = sandbox.request("POST", "/clock/advance", {"seconds": seconds})
        assert response.status_code == 422, (seconds, response.text)
    with pytest.raises(SandboxControlError) as info:
        sandbox.advance(seconds=-5)
    assert info.value.status == 422
    assert sandbox.clock().real, "a refused change changes nothing"


def test_reset_at_an_instant_seeds_the_world_from_that_day(sandbox, connect):
    answer = sandbox.reset(now=TUESDAY, frozen=True)
    assert answer["seeded_at"] == "2031-03-04T12:00:00Z"
    riley = connect(RILEY)
    # Without from/to, read-events covers the clock's days: the seeded weeks ahead of Tuesday.
    starts = sorted(e["start"] for e in riley.read_events(tzid="Etc/UTC").all())
    assert starts and starts[0][:10] >= "2031-03-04"
    assert starts[-1][:10] < "2031-04-05"
    free_busy = riley.read_free_busy(
        tzid="Etc/UTC", from_date=dt.date(2031, 3, 4), to_date=dt.date(2031, 3, 11)
    ).all()
    assert free_busy, "the seeded working week is busy in places"


def test_access_tokens_expire_when_the_clock_passes_their_lifetime(sandbox):
    sandbox.set_clock(TUESDAY, frozen=True)
    tokens = tokens_for(sandbox, RILEY)
    assert tokens["expires_in"] == 3600
    client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    sandbox.advance(seconds=3599)
    assert client.list_calendars()
    sandbox.advance(seconds=1)
    with pytest.raises(PyCronofyRequestError) as info:
        client.list_calendars()
    assert info.value.response.status_code == 401
    assert info.value.response.json()["error"] == "invalid_token"
    client.refresh_authorization()
    sandbox.advance(seconds=3599)  # the new token's hour counts from the clock's now
    assert client.list_calendars()
    sandbox.advance(seconds=1)
    with pytest.raises(PyCronofyRequestError):
        client.list_calendars()


def test_an_authorization_code_expires_on_the_clock(sandbox):
    sandbox.set_clock(TUESDAY, frozen=True)
    client = client_for(sandbox)
    code = sandbox.consent(client.user_auth_link(REDIRECT), RILEY).code
    assert code
    sandbox.advance(seconds=sandbox.config()["code_ttl"] + 1)
    with pytest.raises(PyCronofyRequestError) as info:
        client.get_authorization_from_code(code, redirect_uri=REDIRECT)
    assert info.value.response.status_code == 400
    assert info.value.response.json()["error"] == "invalid_grant", info.value.response.text


def test_rate_limit_windows_pass_when_the_clock_moves(sandbox, connect):
    sandbox.set_clock(TUESDAY, frozen=True)
    client = connect(RILEY)
    sandbox.rate_limit(per_second=2, per_minute=500)
    assert client.account() and client.account()
    with pytest.raises(PyCronofyRequestError) as info:
        client.account()
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    sandbox.advance(seconds=1)  # instead of sleeping through the window
    assert client.account() and client.account()
    sandbox.rate_limit(per_second=50, per_minute=4)  # (a new limit starts afresh)
    assert all(client.account() for _ in range(4))
    with pytest.raises(PyCronofyRequestError):
        client.account()
    sandbox.advance(seconds=59)
    with pytest.raises(PyCronofyRequestError):
        client.account()  # the minute's window holds until the oldest request is a minute old
    sandbox.advance(seconds=1)
    assert client.account()


def test_change_stamps_follow_the_clock(sandbox, connect):
    sandbox.set_clock(TUESDAY, frozen=True)
    riley = connect(RILEY, scope="read_write")
    calendar_id = next(c["calendar_id"] for c in riley.list_calendars() if c["calendar_primary"])
    event = {
        "event_id": "clock-1",
        "summary": "Interview",
        "start": "2031-03-07T02:00:00Z",
        "end": "2031-03-07T03:00:00Z",
        "tzid": "Etc/UTC",
    }
    riley.upsert_event(calendar_id, event)
    [created] = riley.read_events(tzid="Etc/UTC", only_managed=True).all()
    assert created["created"] == created["updated"] == "2031-03-04T12:00:00Z"
    sandbox.advance(dt.timedelta(minutes=5))
    riley.upsert_event(calendar_id, {**event, "summary": "Interview (moved room)"})
    [updated] = riley.read_events(tzid="Etc/UTC", only_managed=True).all()
    assert updated["updated"] == "2031-03-04T12:05:00Z"
    assert updated["created"] == "2031-03-04T12:00:00Z"


def _wait_for(condition, seconds: float = 5) -> bool:
    """Poll for what the sandbox's delivery thread does in the background."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_background_retries_fall_due_on_the_clock_not_the_wall(receiver):
    """An hour's back-off passes when the clock is advanced by an hour, at once."""
    handle = start_sandbox(
        CLIENT_ID,
        CLIENT_SECRET,
        rate_limit_enabled=False,
        auto_deliver=True,
        retry_initial_delay=3600,
        retry_max_delay=3600,
    )
    try:
        handle.client.set_clock(TUESDAY, frozen=True)
        tokens = tokens_for(handle.client, RILEY)
        receiver.status = 503
        client_for(handle, tokens["access_token"]).create_notification_channel(
            receiver.url + "/retried"
        )
        assert _wait_for(lambda: len(receiver.received) == 1)
        # The failed attempt is recorded once the sandbox has the 503 back.
        assert _wait_for(lambda: [q["attempts"] for q in handle.client.outbox()["queued"]] == [1])
        receiver.status = 200
        handle.client.advance(seconds=3599)
        assert not _wait_for(lambda: len(receiver.received) > 1, seconds=0.3), (
            [(r.path, r.body) for r in receiver.received],
            handle.client.outbox(),
        )
        handle.client.advance(seconds=1)
        assert _wait_for(lambda: len(receiver.received) == 2)
        assert [r.path for r in receiver.received] == ["/retried", "/retried"]
        assert _wait_for(lambda: handle.client.outbox()["queued"] == [])
    finally:
        handle.stop()
