"""``make run``: the development server with the demo organisation (never used in production).

Usage: ``python -m webapp.devserver [--host 127.0.0.1] [--port 5000]``. Assumes the database has
been migrated (``flask db upgrade``, which ``make run`` does first).
"""

from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from webapp import create_app
from webapp.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)

    app = create_app()
    if app.config["ENVIRONMENT"] == "production":
        raise SystemExit("The development server does not run in production; use gunicorn.")
    with app.extensions["rendezvous.db"].sessions() as session:
        seed_demo(session)

    url = f"http://{args.host}:{args.port}/"
    print(f"\n  Rendezvous is running at {url}\n")
    print(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        print(f"    {user.role.label:<28} {user.email}")
    print("\n  Press Ctrl+C to stop.\n", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
