"""Push-notification endpoint throughput under gunicorn, against a hello-world Flask app.

Both run under the same gunicorn.conf.py settings on this machine; wrk drives each for the same
time over loopback with the same connections. The webhook requests carry a valid HMAC and hit a
real calendar link, so every request verifies the signature, opens the sealed reference, parses
the body and reads the link. Also reports each server's resident memory per worker afterwards.

    uv run python -m tests.perf.webhook_throughput [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-client-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(target: str, env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", target],
        cwd=ROOT,
        env=dict(env, RENDEZVOUS_BIND=f"127.0.0.1:{port}", RENDEZVOUS_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn {target} did not start")


def worker_rss_mib(master: subprocess.Popen) -> list[float]:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
    pids = children.read_text().split() if children.exists() else []
    sizes = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return sizes


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


def run_wrk(url: str, body: bytes, headers: dict, seconds: int, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write(f"wrk.body = {json.dumps(body.decode())}\n")
        for name, value in headers.items():
            script.write(f'wrk.headers["{name}"] = "{value}"\n')
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    os.unlink(script.name)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} requests failed against {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def prepare_app(workdir: Path, redis_url: str) -> tuple[dict, str]:
    """A migrated SQLite database with one organisation, user and calendar link."""
    from tests.factories import TEST_TOKEN_KEYS

    env = dict(
        os.environ,
        RENDEZVOUS_ENV="production",
        SECRET_KEY="b" * 48,
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{workdir}/bench.sqlite3",
        RENDEZVOUS_TOKEN_KEYS=TEST_TOKEN_KEYS,
        CRONOFY_CLIENT_ID="bench",
        CRONOFY_CLIENT_SECRET=SECRET,
        CRONOFY_API_BASE_URL="http://127.0.0.1:9",
        CRONOFY_APP_BASE_URL="http://127.0.0.1:9",
        RENDEZVOUS_PUBLIC_BASE_URL="http://127.0.0.1",
        RENDEZVOUS_JOBS_SQLITE_PATH=str(workdir / "jobs.sqlite3"),
    )
    code = """
from models import LinkMode, Organisation, ProfileLink, Role, User, migrate
from webapp import deps  # noqa: E402
from webapp import create_app
import os
migrate.upgrade(os.environ["DATABASE_URL"])
app = create_app()
with deps.database.of(app).sessions() as s:
    org = Organisation(name="Bench"); s.add(org); s.flush()
    user = User(
        organisation_id=org.id, email="bench@northwind.example", name="Bench", role=Role.RECRUITER
    )
    s.add(user); s.flush()
    link = ProfileLink(organisation_id=org.id, user_id=user.id, mode=LinkMode.BUSINESS,
                       sub="acc_bench", channel_id="chn_bench")
    s.add(link); s.commit()
    print(deps.sealer.of(app).seal("push", str(link.id)))
"""
    ref = (
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return env, ref


def start_redis(workdir: Path) -> tuple[str, int]:
    """A throw-away redis-server on a free loopback port (the production job queue)."""
    port = free_port()
    subprocess.run(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(workdir / "redis.pid"),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    pidfile = workdir / "redis.pid"  # the daemon answers a moment before it writes this
    while not pidfile.exists() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", int(pidfile.read_text())


def measure_ours(
    env: dict, ref: str, body: bytes, headers: dict, args
) -> tuple[float, list[float]]:
    port = free_port()
    ours = start_gunicorn("wsgi:app", env, port)
    try:
        url = f"http://127.0.0.1:{port}/hooks/cronofy/push/{ref}"
        check = requests.post(url, data=body, headers=headers, timeout=5)
        assert check.status_code == 202, check.status_code
        return run_wrk(url, body, headers, args.seconds, args.connections), worker_rss_mib(ours)
    finally:
        stop(ours)


def signed_change() -> tuple[bytes, dict]:
    """A change notification for the bench link's channel, signed as the aggregator signs it."""
    body = json.dumps(
        {
            "notification": {"type": "change", "changes_since": "2026-11-21T09:00:00Z"},
            "channel": {"channel_id": "chn_bench", "callback_url": "x", "filters": {}},
        }
    ).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, {"Content-Type": "application/json", "Cronofy-HMAC-SHA256": signature}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (make bench installs it)")

    with tempfile.TemporaryDirectory() as tmp:
        redis_url, redis_pid = start_redis(Path(tmp))
        try:
            env, ref = prepare_app(Path(tmp), redis_url)
            ours_rps, ours_rss = measure_ours(env, ref, *signed_change(), args)
        finally:
            os.kill(redis_pid, signal.SIGTERM)
        # The development set-up: no Redis, so a SQLite job queue.
        development = {k: v for k, v in env.items() if k != "REDIS_URL"}
        development["RENDEZVOUS_ENV"] = "development"
        sqlite_rps, _ = measure_ours(development, ref, *signed_change(), args)

        port = free_port()
        hello = start_gunicorn("tests.perf.hello_app:app", env, port)
        body, headers = signed_change()
        try:
            hello_rps = run_wrk(
                f"http://127.0.0.1:{port}/", body, headers, args.seconds, args.connections
            )
            hello_rss = worker_rss_mib(hello)
        finally:
            stop(hello)

    print("## Push-notification endpoint under gunicorn (wrk, loopback)\n")
    print(
        f"wrk -t2 -c{args.connections} -d{args.seconds}s, same gunicorn.conf.py "
        f"({len(ours_rss)} gthread workers), valid HMAC on every request.\n"
    )
    print("| server | requests/s | ratio | goal |")
    print("|---|---:|---:|---|")
    print(f"| hello-world Flask app | {hello_rps:,.0f} | 1.00 | |")
    print(
        f"| Rendezvous push webhook, Redis job queue (production) | {ours_rps:,.0f} | "
        f"{ours_rps / hello_rps:.2f} | ≥ 0.5 |"
    )
    print(
        f"| Rendezvous push webhook, SQLite job queue (development) | {sqlite_rps:,.0f} | "
        f"{sqlite_rps / hello_rps:.2f} | |"
    )
    print("\n## Resident memory per gunicorn worker after the run\n")
    print("| server | workers | RSS per worker (MiB) |")
    print("|---|---:|---|")
    for name, sizes in (("Rendezvous", ours_rss), ("hello-world", hello_rss)):
        print(f"| {name} | {len(sizes)} | " + ", ".join(f"{s:.0f}" for s in sizes) + " |")


if __name__ == "__main__":
    main()
