"""A broker transport whose every call answers 200 ``{}``: for tests of what the transport tells
its rate limiter (lane, tenant), with no network and no retries; and the bare transport it is
made from."""

from __future__ import annotations

import logging
import random

import requests

from broker.cronofy.transport import Transport

URL = "https://api.example.test/v1/calendars"


class OkSession:
    def request(self, method, url, **kwargs):
        resp = requests.Response()
        resp.status_code = 200
        resp._content = b"{}"
        resp.url = url
        return resp

    def close(self) -> None:
        pass


def bare_transport(session=None, *, limiter=None, timeout: float = 1) -> Transport:
    """A transport without retries or real sleeps: over ``session``, or its own pooled one
    (as production builds it) when none is given."""
    return Transport(
        session=session,
        pool_size=2,
        timeout=timeout,
        max_retries=0,
        rate_limiter=limiter,
        backoff_base=0.1,
        backoff_cap=1,
        max_retry_after=1,
        sleep=lambda seconds: None,
        rng=random.Random(1),
        logger=logging.getLogger("test"),
    )


def ok_transport(limiter) -> Transport:
    return bare_transport(OkSession(), limiter=limiter)
