"""Broker benchmark against an in-process sandbox (``make bench``; not collected by pytest).

Reports, in one run:

1. TCP connections opened per 100 calls — CronofyBroker (one pooled session) vs plain pycronofy
   (``requests.get`` per call), counted client-side at ``socket.connect`` (connections opened
   during the 100 calls) and server-side from ``/_sandbox/stats`` (distinct connections that
   carried them, so a connection opened just before counts there but not client-side).
2. Achieved calls/s against a configured rate-limit ceiling, with the same ceiling enforced by
   the sandbox, from several threads — and the number of failed calls (should be 0).

    uv run python tests/perf/broker_bench.py [--calls 300] [--per-second 50] [--per-minute 500]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pycronofy  # noqa: E402

from broker.cronofy import CronofyBroker  # noqa: E402
from broker.errors import BrokerError  # noqa: E402
from broker.ratelimit import InProcessRateLimiter  # noqa: E402
from broker.sandbox.client import SandboxClient  # noqa: E402
from tests.broker.adapter import sandbox_control as sc  # noqa: E402
from tests.broker.adapter.sandbox_control import ConnectCounter  # noqa: E402


def server_connections(control: SandboxClient) -> int | None:
    try:
        stats = control.stats()
    except Exception:  # noqa: BLE001 - optional figure
        return None
    value = stats.get("connections", stats.get("distinct_connections"))
    return value if isinstance(value, int) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-second", type=int, default=50)
    parser.add_argument("--per-minute", type=int, default=500)
    args = parser.parse_args()

    handle = sc.start(auto_deliver=False)
    try:
        rows = []
        for label, url in (("sandbox (start_sandbox, HTTP/1.1 keep-alive)", handle.url),):
            control = SandboxClient(url)
            control.rate_limit(per_second=100_000, per_minute=1_000_000, enabled=False)
            port = urlsplit(url).port
            broker = CronofyBroker(
                sc.CLIENT_ID,
                sc.CLIENT_SECRET,
                api_base_url=url,
                app_base_url=url,
                rate_limiter=InProcessRateLimiter(100_000, 1_000_000),
            )
            creds = broker.exchange_code(
                sc.code_for(
                    control,
                    "riley.chen@northwind.example",
                    broker.authorization_url(sc.REDIRECT_URI, "bench"),
                ),
                sc.REDIRECT_URI,
            )
            plain = pycronofy.Client(
                client_id=sc.CLIENT_ID,
                client_secret=sc.CLIENT_SECRET,
                access_token=creds.access_token,
            )
            plain.request_handler.base_url = url  # the reference's §0.4 recipe
            plain.app_base_url = url

            # Defaults bind this iteration's values (the functions run within it anyway).
            def measure(run, control=control, port=port):
                control.clear_stats()
                with ConnectCounter(port) as counter:
                    run()
                return counter.count, server_connections(control)

            def ours_seq(broker=broker, creds=creds):
                for _ in range(100):
                    broker.calendars(creds)

            def ours_threads(broker=broker, creds=creds):
                with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
                    list(pool.map(lambda _: broker.calendars(creds), range(100)))

            def theirs(plain=plain):
                for _ in range(100):
                    plain.list_calendars()

            rows.append((label, "CronofyBroker, sequential", *measure(ours_seq)))
            rows.append(
                (label, f"CronofyBroker, {args.threads} threads (pool 10)", *measure(ours_threads))
            )
            rows.append((label, "plain pycronofy 2.1.1, sequential", *measure(theirs)))
            broker.close()

        control = handle.client
        broker = CronofyBroker(
            sc.CLIENT_ID, sc.CLIENT_SECRET, api_base_url=handle.url, app_base_url=handle.url
        )
        creds = broker.exchange_code(
            sc.code_for(
                control,
                "riley.chen@northwind.example",
                broker.authorization_url(sc.REDIRECT_URI, "bench"),
            ),
            sc.REDIRECT_URI,
        )

        # 2. throughput at the ceiling, enforced on both sides (the sandbox as start_sandbox
        # runs it)
        control.rate_limit(per_second=args.per_second, per_minute=args.per_minute, enabled=True)
        limited = CronofyBroker(
            sc.CLIENT_ID,
            sc.CLIENT_SECRET,
            api_base_url=handle.url,
            app_base_url=handle.url,
            rate_limiter=InProcessRateLimiter(args.per_second, args.per_minute),
            max_retries=0,
        )
        failures: list[str] = []
        sent_at: list[float] = []

        def one(_):
            try:
                limited.calendars(creds)
                sent_at.append(time.perf_counter())
            except BrokerError as exc:
                failures.append(type(exc).__name__)

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
            list(pool.map(one, range(args.calls)))
        elapsed = time.perf_counter() - started
        achieved = args.calls / elapsed
        sent_at.sort()
        peak, j = 0, 0
        for i, t in enumerate(sent_at):
            while sent_at[j] <= t - 1.0:
                j += 1
            peak = max(peak, i - j + 1)
        # Steady state: after the first window's burst, each further second admits per_second.
        steady = (
            (len(sent_at) - args.per_second) / (sent_at[-1] - sent_at[args.per_second - 1])
            if len(sent_at) > args.per_second + 1
            else float("nan")
        )

        print("## Broker benchmark (in-process sandbox, loopback)\n")
        print(
            "| client | TCP connects during 100 calls (client-side) "
            "| distinct connections (sandbox stats) |"
        )
        print("|---|---:|---:|")
        for _server, name, count, server in rows:
            print(f"| {name} | {count} | {server if server is not None else 'n/a'} |")
        print()
        print(
            "| calls | threads | configured ceiling (client + sandbox) | mean calls/s "
            "| steady-state calls/s | peak in any 1 s | failed calls |"
        )
        print("|---:|---:|---|---:|---:|---:|---:|")
        print(
            f"| {args.calls} | {args.threads} | {args.per_second}/s, {args.per_minute}/min "
            f"| {achieved:.1f} | {steady:.1f} | {peak} | {len(failures)} |"
        )
        if failures:
            print(f"\nfailures: {sorted(set(failures))}")
        limited.close()
        broker.close()
        return 1 if failures else 0
    finally:
        handle.stop()


if __name__ == "__main__":
    raise SystemExit(main())
