"""The Cronofy adapter: CronofyBroker implements the CalendarBroker port (``broker.port``) over
pycronofy. This package is the only code that imports pycronofy.

What it adds on top of pycronofy (which has no timeouts, opens a connection per call, never
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
* **Error translation in one place** (``transport.translate``), raised outside any ``except``
  block so no vendor exception (with the client secret, codes or tokens in its text) is chained.

Modules, from the wire up (in the manner of stripe-python's ``_http_client`` /
``_api_requestor`` / resources):

``transport``  pooled session, timeouts, retries, rate limiter; HTTP failures stripped to
               non-secret facts and translated into ``broker.errors``
``requestor``  pycronofy clients over the transport; user token or API key; 401 → refresh;
               the OAuth token endpoint
``encode``     ``broker.types`` → request bodies and query values (refuses what is known bad)
``decode``     responses → ``broker.types``
``broker``     CronofyBroker: construction, readiness ping, authorization and identity;
``events``     its calendar reads and writes (free/busy, availability, events, batch) and
``extras``     its channels, Enterprise Connect, conferencing and Smart Invites
"""

from broker.cronofy.broker import CronofyBroker

__all__ = ["CronofyBroker"]
