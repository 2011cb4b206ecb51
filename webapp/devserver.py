"""``make run``: the app with the demo organisation and, unless real Cronofy credentials are set,
the local sandbox aggregator and a job worker (never used in production).

Usage: ``python -m webapp.devserver [--host 127.0.0.1] [--port 5000]``. Assumes the database has
been migrated (``flask db upgrade``, which ``make run`` does first). The sandbox listens on the
next port and keeps its state in ``instance/sandbox-state.json`` between runs.
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
import time
from pathlib import Path

import requests
from werkzeug.serving import run_simple

from webapp import ROOT, create_app
from webapp.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

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


def start_sandbox(host: str, port: int, instance: Path) -> str:
    """Start the sandbox as a child process; returns its URL once it answers."""
    secret = _sandbox_secret(instance)
    url = f"http://{host}:{port}"
    child = subprocess.Popen(
        [sys.executable, "-m", "broker.sandbox", "--host", host, "--port", str(port),
         "--client-id", SANDBOX_CLIENT_ID, "--client-secret", secret,
         "--state-file", str(instance / "sandbox-state.json"), "--quiet"],
        cwd=ROOT,
    )
    atexit.register(child.terminate)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"The sandbox aggregator exited (code {child.returncode}); is port "
                             f"{port} free?")
        try:
            if requests.get(url + "/_sandbox/config", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        child.terminate()
        raise SystemExit(f"The sandbox aggregator did not answer on {url} within 20 s.")
    os.environ.update(CRONOFY_CLIENT_ID=SANDBOX_CLIENT_ID, CRONOFY_CLIENT_SECRET=secret,
                      CRONOFY_API_BASE_URL=url, CRONOFY_APP_BASE_URL=url)
    return url


def start_worker() -> None:
    """A job-queue consumer as a child process, with the same environment as the app."""
    child = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"],
                             cwd=ROOT)
    atexit.register(child.terminate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--sandbox-port", type=int, default=None,
                        help="port of the local sandbox aggregator (default: --port + 1)")
    args = parser.parse_args(argv)
    # Turn SIGTERM into a normal exit so the atexit hook stops the sandbox child too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if os.environ.get("RENDEZVOUS_ENV") == "production":
        raise SystemExit("The development server does not run in production; use gunicorn.")
    instance = ROOT / "instance"
    sandbox_url = None
    if not os.environ.get("CRONOFY_CLIENT_ID"):
        sandbox_url = start_sandbox(args.host, args.sandbox_port or args.port + 1, instance)

    app = create_app()
    start_worker()
    with app.extensions["rendezvous.db"].sessions() as session:
        seed_demo(session)

    url = f"http://{args.host}:{args.port}/"
    print(f"\n  Rendezvous is running at {url}\n")
    print(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        print(f"    {user.role.label:<28} {user.email}")
    if sandbox_url:
        print(f"\n  Sandbox aggregator (stands in for Cronofy): {sandbox_url}/_sandbox/")
        print("  On its consent page, demo calendar identities use the password shown there.")
    else:
        print(f"\n  Using Cronofy ({app.config['CRONOFY_DATA_CENTER']} data center).")
    print("\n  Press Ctrl+C to stop.\n", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
