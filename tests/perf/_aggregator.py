"""The sandbox aggregator in its own process for the benchmarks that need it with its real limits
(not a benchmark itself: the leading underscore keeps ``make bench`` from running it).

    python -m tests.perf._aggregator --port PORT --client-id ID --client-secret SECRET
        [--per-second 50] [--per-minute 500] [--delivery-threads 8]

It is ``python -m broker.sandbox`` with two things a benchmark needs and the sandbox's own
server does not have:

* **callbacks delivered from several threads** (Cronofy does not deliver one at a time): the
  sandbox's own deliverer is one thread, so a bulk link of thousands of mailboxes would be paced
  by it rather than by the app;
* **the aggregator's own request log**: every API request (``/v1/…``, ``/oauth/token``: what
  the rate limit counts) as it arrives at the server, with the time on this process's monotonic
  clock, its route class and the status answered (429 when the sandbox refused it).
  ``GET /_bench/log?since=N`` returns the entries from index N on, so the benchmark judges the
  request rate by what the aggregator saw, not by what the app believed it sent.
  ``GET /_bench/clock`` returns this process's monotonic clock (to line events up).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from broker.sandbox import notify  # noqa: E402
from broker.sandbox.app import API_PREFIXES, create_sandbox_app  # noqa: E402
from broker.sandbox.server import KeepAliveApp, KeepAliveRequestHandler  # noqa: E402

_EVENTS = re.compile(r"^/v1/calendars/[^/]+/events")


def route_class(method: str, path: str) -> str:
    """A short name for what an aggregator request is, from its method and path."""
    if path == "/v1/service_account_authorizations":
        return "sa_batch"
    if path == "/oauth/token":
        return "token"
    if path == "/v1/availability":
        return "availability"
    if path == "/v1/free_busy":
        return "free_busy"
    if path == "/v1/calendars":
        return "calendars"
    if _EVENTS.match(path):
        return "event_write" if method in ("POST", "DELETE") else "events_read"
    if path.startswith("/v1/events"):
        return "events_read"
    return f"{method} {'/'.join(path.split('/')[:3])}"


class RequestLog:
    """Every API request as it arrives: (monotonic seconds, route class, status)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[tuple[float, str, int]] = []

    def wrap(self, app):
        def logged(environ, start_response):
            path = environ.get("PATH_INFO", "")
            if path == "/_bench/log":
                since = int(environ.get("QUERY_STRING", "").partition("since=")[2] or "0")
                with self.lock:
                    body = json.dumps(self.entries[since:]).encode()
                start_response("200 OK", [("Content-Type", "application/json")])
                return [body]
            if path == "/_bench/clock":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [json.dumps(time.monotonic()).encode()]
            if not path.startswith(API_PREFIXES):
                return app(environ, start_response)
            arrived = time.monotonic()
            kind = route_class(environ.get("REQUEST_METHOD", "GET"), path)

            def start(status, headers, exc_info=None):
                with self.lock:
                    self.entries.append((arrived, kind, int(status.split()[0])))
                return start_response(status, headers, exc_info)

            return app(environ, start)

        return logged


def deliver_concurrently(app, stop: threading.Event, threads: int) -> list[threading.Thread]:
    """Deliver due callbacks from several threads, each claiming its own items."""
    state = app.extensions["sandbox"].state

    def worker(index: int) -> None:
        while not stop.is_set():
            with state.lock:
                now = state.clock.time()
                due = sorted(
                    (i for i in state.world.outbox.values() if i.next_attempt_at <= now),
                    key=lambda i: i.next_attempt_at,
                )
                mine = [i.item_id for n, i in enumerate(due) if n % threads == index][:10]
            claimed = notify._claim(state, mine)
            for item in claimed:
                notify.process(state, item)
            if not claimed:
                time.sleep(0.02)

    pool = [
        threading.Thread(target=worker, args=(n,), daemon=True, name=f"deliver-{n}")
        for n in range(threads)
    ]
    for t in pool:
        t.start()
    return pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--per-second", type=int, default=50)
    parser.add_argument("--per-minute", type=int, default=500)
    parser.add_argument("--delivery-threads", type=int, default=8)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_sandbox_app(
        client_id=args.client_id,
        client_secret=[args.client_secret],
        auto_deliver=False,
        rate_limit_enabled=True,
        rate_limit_per_second=args.per_second,
        rate_limit_per_minute=args.per_minute,
        delivery_timeout=30.0,
    )
    log = RequestLog()
    server = make_server(
        "127.0.0.1",
        args.port,
        KeepAliveApp(log.wrap(app)),
        threaded=True,
        request_handler=KeepAliveRequestHandler,
    )
    stop = threading.Event()
    pool = deliver_concurrently(app, stop, args.delivery_threads)

    def _stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for t in pool:
            t.join(2)
        server.server_close()
        app.extensions["sandbox"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
