"""``make run``: the app with the demo organisation and, unless real Cronofy credentials are set,
the local sandbox aggregator and a job worker (never used in production).

Usage: ``python -m webapp.dev.server [--host 127.0.0.1] [--port 5000]``. Assumes the database has
been migrated (``flask db upgrade``, which ``make run`` does first). The sandbox listens on the
next port and keeps its state in ``instance/sandbox-state.json`` between runs. Links and OAuth
redirects point at ``http://HOST:PORT`` (or ``RENDEZVOUS_PUBLIC_BASE_URL`` when set), never at
whatever Host header a request carries; the sandbox accepts exactly the app's redirect URIs.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

from webapp import ROOT, create_app, deps
from webapp.config import ConfigError
from webapp.dev.demo import DEMO_ORGANISATION, DEMO_PASSWORD, DEMO_USERS, seed_demo
from webapp.dev.demo_world import (
    CANDIDATE_CUTOFF_HOURS,
    DemoError,
    Populated,
    demo_organisation_id,
    populate,
)
from webapp.public_urls import oauth_redirect_uris
from webapp.services.errors import ServiceError

SANDBOX_CLIENT_ID = "rendezvous-dev"


def _sandbox_secret(instance: Path) -> str:
    """A development-only client secret shared by the app and its sandbox, kept in instance/."""
    path = instance / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if "SANDBOX_CLIENT_SECRET" not in stored:
        stored["SANDBOX_CLIENT_SECRET"] = secrets.token_urlsafe(32)
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
    return stored["SANDBOX_CLIENT_SECRET"]


def use_sandbox(host: str, port: int, instance: Path) -> str:
    """Point the app (and the job worker) at a sandbox on ``host:port``; returns its URL."""
    url = f"http://{host}:{port}"
    os.environ.update(
        CRONOFY_CLIENT_ID=SANDBOX_CLIENT_ID,
        CRONOFY_CLIENT_SECRET=_sandbox_secret(instance),
        CRONOFY_API_BASE_URL=url,
        CRONOFY_APP_BASE_URL=url,
    )
    return url


def start_sandbox(host: str, port: int, redirect_uris: list[str], instance: Path) -> None:
    """Start the sandbox (see use_sandbox) as a child process, with the app's redirect URIs
    registered as they are at Cronofy; returns once it answers."""
    url = os.environ["CRONOFY_API_BASE_URL"]
    registered = [arg for uri in redirect_uris for arg in ("--allowed-redirect-uri", uri)]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broker.sandbox",
            "--host",
            host,
            "--port",
            str(port),
            "--client-id",
            SANDBOX_CLIENT_ID,
            "--client-secret",
            os.environ["CRONOFY_CLIENT_SECRET"],
            "--state-file",
            str(instance / "sandbox-state.json"),
            "--quiet",
            *registered,
        ],
        cwd=ROOT,
    )
    atexit.register(child.terminate)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(
                f"The sandbox aggregator exited (code {child.returncode}); is port {port} free?"
            )
        try:
            if requests.get(url + "/_sandbox/config", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        child.terminate()
        raise SystemExit(f"The sandbox aggregator did not answer on {url} within 20 s.")


def start_worker() -> None:
    """A job-queue consumer as a child process, with the same environment as the app."""
    child = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"], cwd=ROOT
    )
    atexit.register(child.terminate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("RENDEZVOUS_DEV_HOST") or "127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("RENDEZVOUS_DEV_PORT") or 5000)
    )
    parser.add_argument(
        "--sandbox-port",
        type=int,
        default=None,
        help="port of the local sandbox aggregator (default: --port + 1)",
    )
    args = parser.parse_args(argv)
    # Turn SIGTERM into a normal exit so the atexit hook stops the sandbox child too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if os.environ.get("RENDEZVOUS_ENV") == "production":
        raise SystemExit("The development server does not run in production; use gunicorn.")
    # The app, and the job worker it starts, build their links from where this server listens.
    os.environ.update(RENDEZVOUS_DEV_HOST=args.host, RENDEZVOUS_DEV_PORT=str(args.port))
    instance = ROOT / "instance"
    sandbox_url, sandbox_port = None, args.sandbox_port or args.port + 1
    if not os.environ.get("CRONOFY_CLIENT_ID"):
        sandbox_url = use_sandbox(args.host, sandbox_port, instance)

    try:
        app = create_app()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    if sandbox_url:
        start_sandbox(args.host, sandbox_port, oauth_redirect_uris(app), instance)
    start_worker()
    # Serve at once: linking the demo's calendars needs the aggregator's callbacks to arrive.
    server = make_server(args.host, args.port, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    with deps.database.of(app).sessions() as session:
        created = seed_demo(session)
        organisation_id = demo_organisation_id(session, DEMO_ORGANISATION)
    populated = None
    if created and sandbox_url and organisation_id is not None:
        print("\n  Linking the demo calendars and scheduling its interviews ...", flush=True)
        try:
            populated = populate(app, organisation_id, sandbox_url)
        except (DemoError, ServiceError, requests.RequestException) as exc:
            print(f"  The demo could not be completed: {exc}", flush=True)
            print("  (Stop, delete instance/rendezvous.sqlite3 and instance/sandbox-state.json,")
            print("  and run again to start the demo afresh.)", flush=True)

    url = app.config["PUBLIC_BASE_URL"] + "/"
    print(f"\n  Rendezvous is running at {url}\n")
    print(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        print(f"    {user.role.label:<28} {user.email}")
    if sandbox_url:
        print(f"\n  Sandbox aggregator (stands in for Cronofy): {sandbox_url}/_sandbox/")
        print("  On its consent page, demo calendar identities use the password shown there.")
    else:
        print(f"\n  Using Cronofy ({app.config['CRONOFY_DATA_CENTER']} data center).")
    if populated is not None:
        _print_populated(populated)
    print("\n  Press Ctrl+C to stop.\n", flush=True)
    try:
        while serving.is_alive():
            serving.join(0.5)
    finally:
        server.shutdown()


def _print_populated(done: Populated) -> None:
    print("\n  Demo calendars linked through the sandbox:")
    print(f"    Business Connect: {', '.join(done.linked)}")
    if done.delegated:
        print(f"    Delegated to Sam's account, on panels: {', '.join(done.delegated)}")
    print(
        f"    Enterprise Connect (fabrikam.example): {done.mailboxes.get('linked', 0)} mailboxes"
        f" linked, {done.mailboxes.get('failed', 0)} refused (outside the service account's"
        " scope)"
    )
    print(f"  Interviews: {'; '.join(done.interviews)}")
    if done.candidate_page:
        print(
            "  The booked candidate link, as its candidate sees it (they may reschedule or cancel"
            f" up to {CANDIDATE_CUTOFF_HOURS} hours before):\n    {done.candidate_page}"
        )


if __name__ == "__main__":
    main()
