"""The sandbox as a server::

python -m broker.sandbox --host 127.0.0.1 --port PORT --client-id ID --client-secret SECRET
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from werkzeug.serving import make_server

from .app import create_sandbox_app
from .server import KeepAliveApp, KeepAliveRequestHandler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m broker.sandbox",
        description="A local Cronofy-compatible calendar aggregator for development and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", required=True)
    parser.add_argument(
        "--client-secret",
        action="append",
        required=True,
        help="repeat to have several active secrets (rotation)",
    )
    parser.add_argument("--state-file", help="JSON file to load at start and save after changes")
    parser.add_argument("--seed", type=int, help="seed for the generated world")
    parser.add_argument("--token-ttl", type=int, help="access-token lifetime in seconds (3600)")
    parser.add_argument(
        "--service-account-token-ttl",
        type=int,
        help="Enterprise Connect token lifetime in seconds (1800)",
    )
    parser.add_argument(
        "--rotate-refresh-tokens",
        action="store_true",
        help="issue a new refresh token on every refresh and invalidate the old one",
    )
    parser.add_argument("--page-size", type=int, help="events/free_busy page size (100)")
    parser.add_argument("--rate-limit-per-second", type=int, help="requests per second (50)")
    parser.add_argument("--rate-limit-per-minute", type=int, help="requests per minute (500)")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn rate limiting off")
    parser.add_argument(
        "--no-auto-deliver",
        action="store_true",
        help="queue notifications until POST /_sandbox/deliver",
    )
    parser.add_argument(
        "--allowed-redirect-uri",
        action="append",
        default=[],
        help="register a redirect URI (repeatable); as at Cronofy, no other is accepted",
    )
    parser.add_argument(
        "--notify-own-changes",
        action="store_true",
        help="also push change notifications for the app's own writes",
    )
    parser.add_argument(
        "--link-accounts-by-cookie",
        action="store_true",
        help="link accounts authorized in one browser, as Cronofy's cookie does",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> dict:
    options = {
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "state_file": args.state_file,
    }
    mapping = {
        "seed": args.seed,
        "token_ttl": args.token_ttl,
        "service_account_token_ttl": args.service_account_token_ttl,
        "page_size": args.page_size,
        "rate_limit_per_second": args.rate_limit_per_second,
        "rate_limit_per_minute": args.rate_limit_per_minute,
    }
    options.update({k: v for k, v in mapping.items() if v is not None})
    if args.rotate_refresh_tokens:
        options["rotate_refresh_tokens"] = True
    if args.no_rate_limit:
        options["rate_limit_enabled"] = False
    if args.no_auto_deliver:
        options["auto_deliver"] = False
    if args.allowed_redirect_uri:
        options["allowed_redirect_uris"] = args.allowed_redirect_uri
    if args.notify_own_changes:
        options["notify_own_changes"] = True
    if args.link_accounts_by_cookie:
        options["link_accounts_by_cookie"] = True
    return options


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_sandbox_app(**options_from(args))
    server = make_server(
        args.host,
        args.port,
        KeepAliveApp(app),
        threaded=True,
        request_handler=KeepAliveRequestHandler,
    )

    def _stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(
        f"Cronofy sandbox for client {args.client_id} on http://{args.host}:{server.port} "
        f"(index: /_sandbox/)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["sandbox"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
