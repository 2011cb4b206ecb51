"""Production plumbing: health endpoints, proxy headers, redacted JSON logs, gunicorn."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from webapp import create_app, deps
from webapp.logs import redact

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_is_always_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_reports_database_broker_and_queue(app, client, sandbox):
    body = client.get("/readyz").json
    assert body == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "queue_depth": 0},
    }


def test_readyz_probes_the_aggregator_once_however_often_it_is_asked(app, client, sandbox):
    for _ in range(5):
        assert client.get("/readyz").json["checks"]["broker"] == "ok"
    seen = {
        route: n
        for route, n in sandbox.stats()["requests"].items()
        if route.split(" ", 1)[1] == "/"
    }
    assert sum(seen.values()) == 1, seen


def test_readyz_fails_when_the_aggregator_is_unreachable(app_config):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    app = create_app(
        dict(
            app_config,
            CRONOFY_CLIENT_ID="x",
            CRONOFY_CLIENT_SECRET="y",
            CRONOFY_API_BASE_URL=f"http://127.0.0.1:{closed_port}",
            CRONOFY_APP_BASE_URL=f"http://127.0.0.1:{closed_port}",
        )
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["broker"] == "unreachable"


def test_readyz_fails_when_the_database_is_gone(app_config, tmp_path):
    app = create_app(dict(app_config, DATABASE_URL=f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["checks"]["database"] == "unavailable"


def test_proxy_fix_trusts_the_configured_hops(app_config):
    app = create_app(dict(app_config, PROXY_HOPS=1))
    response = app.test_client().get(
        "/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rendezvous.example"}
    )
    assert "Strict-Transport-Security" in response.headers  # the request counts as https
    plain = (
        create_app(app_config).test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    )
    assert "Strict-Transport-Security" not in plain.headers


@pytest.mark.parametrize(
    "line, secret",
    [
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        (
            '{"refresh_token": "3gBYG1XamYDUEXUyybbummQWEe5YqPmf"}',
            "3gBYG1XamYDUEXUyybbummQWEe5YqPmf",
        ),
        ("client_secret=CRN_supersecretvalue&x=1", "CRN_supersecretvalue"),
        ("GET /invite/q1w2e3r4t5y6u7i8o9p0asdfghjkl HTTP/1.1", "q1w2e3r4t5y6u7i8o9p0asdfghjkl"),
        (
            "POST /hooks/cronofy/push/9pfOtiDFFEpEOCLMRnwha7eTiNXgnpm3PwN9LUo",
            "9pfOtiDFFEpEOCLMRnwha7eTiN",
        ),
        ("?code=Kq0abcdefghijklmnopqrstuvwxyz12&state=s", "Kq0abcdefghijklmnopqrstuvwxyz12"),
    ],
)
def test_secrets_are_redacted_from_log_lines(line, secret):
    assert secret not in redact(line)


def test_json_logs_carry_request_ids_and_no_secrets(app_config, capsys):
    app = create_app(dict(app_config, LOG_FORMAT="json"))
    from webapp.security import public

    @app.route("/log-something")
    @public
    def log_something():
        logging.getLogger("webapp.test").warning("calling with Bearer %s", "tok_abcdefghijklmnop")
        return "ok"

    response = app.test_client().get("/log-something")
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    entry = next(record for record in lines if record["logger"] == "webapp.test")
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert "tok_abcdefghijklmnop" not in entry["message"] and "[redacted]" in entry["message"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _production_env(database_url: str, port: int, **extra) -> dict:
    from tests.factories import TEST_TOKEN_KEYS

    return {
        **os.environ,
        "RENDEZVOUS_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": database_url,
        "RENDEZVOUS_TOKEN_KEYS": TEST_TOKEN_KEYS,
        "RENDEZVOUS_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "RENDEZVOUS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **extra,
    }


@contextmanager
def gunicorn(env: dict, port: int):
    """gunicorn serving wsgi:app on ``port`` until the block ends; yields the base URL and a
    list that holds its output once it has stopped."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.RequestException:  # not listening yet, or busy booting workers
                assert time.monotonic() < deadline, "gunicorn did not start"
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", output
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output.append(server.communicate(timeout=40)[0].decode())
    assert server.returncode == 0, output[0]


def test_gunicorn_serves_the_app_with_the_production_config(database_url, redis_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one gunicorn smoke test is enough; it runs on the SQLite pass")
    port = _free_port()
    with gunicorn(_production_env(database_url, port, REDIS_URL=redis_url), port) as (base, output):
        response = requests.get(base + "/healthz", timeout=5)
        assert response.json() == {"status": "ok"}
        login = requests.get(base + "/login", timeout=5)
        assert login.status_code == 200 and "Secure" in login.headers["Set-Cookie"]
    assert '"GET /healthz" 200' in output[0]


def test_production_refuses_to_start_without_redis_for_its_limits(database_url):
    """Limits kept per process let each worker allow the whole limit (23 of 30 logins passed a
    10-per-minute limit with 3 workers): production needs the shared store."""
    port = _free_port()
    env = _production_env(database_url, port, WEB_CONCURRENCY="3")
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Refusing to start in production without REDIS_URL" in output
    assert "Traceback" not in output and "Booting worker" not in output  # one line, no workers


def test_the_login_limit_holds_across_gunicorn_workers(database_url, redis_url, session):
    import re

    import redis

    from models import Role
    from tests.factories import make_org, make_user

    redis.Redis.from_url(redis_url).flushdb()  # no limit left over from another test
    user = make_user(session, make_org(session), Role.RECRUITER)
    port = _free_port()
    env = _production_env(
        database_url,
        port,
        REDIS_URL=redis_url,
        WEB_CONCURRENCY="3",
        RENDEZVOUS_SECURE_COOKIES="false",
        RENDEZVOUS_LOGIN_RATE_LIMIT="10 per minute",
    )
    with gunicorn(env, port) as (base, output):
        answers = []
        for _ in range(30):
            with requests.Session() as browser:  # a connection of its own: any worker answers
                form = browser.get(base + "/login", timeout=10).text
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
                answers.append(
                    browser.post(
                        base + "/login",
                        timeout=10,
                        allow_redirects=False,
                        data={
                            "csrf_token": token,
                            "email": user.email,
                            "password": "wrong password",
                        },
                    ).status_code
                )
    assert answers.count(401) == 10 and answers.count(429) == 20, answers
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output[0]))) == 3


def test_client_secret_rotation_uses_the_first_for_calls_and_accepts_both_signatures(app_config):
    from webapp.bootstrap import client_secrets

    config = dict(
        app_config,
        CRONOFY_CLIENT_ID="cid",
        CRONOFY_CLIENT_SECRET="new-secret, old-secret",
        CRONOFY_API_BASE_URL="http://127.0.0.1:9",
        CRONOFY_APP_BASE_URL="http://127.0.0.1:9",
    )
    app = create_app(config)
    assert client_secrets(app.config) == ["new-secret", "old-secret"]
    assert deps.broker.of(app)._api.client_secret == "new-secret"


def test_a_gunicorn_worker_freezes_what_it_loaded_out_of_the_collectors_sight():
    """gunicorn.conf.py's post_worker_init, called by gunicorn once a worker has loaded the app."""
    import gc
    import runpy

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        settings["post_worker_init"](None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
