"""Fixtures for the adapter's sandbox-backed tests: one in-process sandbox per module."""

from __future__ import annotations

import random

import pytest

from broker.cronofy import CronofyBroker
from broker.ratelimit import InProcessRateLimiter
from tests.broker.adapter import sandbox_control as sc


@pytest.fixture(scope="module")
def sandbox_server():
    """A sandbox on a free loopback port; fails fast (never skips) if it cannot start."""
    try:
        handle = sc.start(auto_deliver=False)
    except Exception as exc:  # noqa: BLE001 - report any start-up problem clearly
        pytest.fail(
            f"could not start the sandbox aggregator (broker.sandbox.server): "
            f"{type(exc).__name__}: {exc}",
            pytrace=False,
        )
    yield handle
    handle.stop()


@pytest.fixture
def control(sandbox_server):
    ctl = sandbox_server.client
    ctl.clear_faults()
    ctl.rate_limit(per_second=10_000, per_minute=100_000, enabled=False)
    yield ctl
    ctl.clear_faults()


class SleepRecorder:
    """Injected instead of time.sleep: records back-off waits, never blocks the test."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def make_broker(sandbox_server, sleeps):
    made: list[CronofyBroker] = []

    def factory(**kw) -> CronofyBroker:
        options = dict(
            api_base_url=sandbox_server.url,
            app_base_url=sandbox_server.url,
            timeout=(2, 5),
            rate_limiter=InProcessRateLimiter(10_000, 100_000),
            sleep=sleeps,
            rng=random.Random(7),
        )
        options.update(kw)
        b = CronofyBroker(sc.CLIENT_ID, sc.CLIENT_SECRET, **options)
        made.append(b)
        return b

    yield factory
    for b in made:
        b.close()


@pytest.fixture
def broker(make_broker):
    return make_broker()


@pytest.fixture
def link(control, broker):
    """Fresh Credentials for a seeded person (each test gets its own authorization)."""

    def _link(email: str = "riley.chen@northwind.example"):
        code = sc.code_for(control, email, broker.authorization_url(sc.REDIRECT_URI, "st"))
        return broker.exchange_code(code, sc.REDIRECT_URI)

    return _link
