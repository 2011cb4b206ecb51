"""A broker transport whose every call answers 200 ``{}``: for tests of what the transport tells
its rate limiter (lane, tenant), with no network and no retries."""

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


def ok_transport(limiter) -> Transport:
    return Transport(
        session=OkSession(),  # type: ignore[arg-type]
        pool_size=1,
        timeout=1,
        max_retries=0,
        rate_limiter=limiter,
        backoff_base=0.1,
        backoff_cap=1,
        max_retry_after=1,
        sleep=lambda seconds: None,
        rng=random.Random(1),
        logger=logging.getLogger("test"),
    )
