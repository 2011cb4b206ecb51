"""Correct with several worker processes: run on the PostgreSQL pass of .ci/run.

SQLite is the single-process development database; production runs several gunicorn workers
against PostgreSQL, where the row lock (SELECT … FOR UPDATE) is what serialises token refreshes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from models import ProfileLink, Role, utcnow
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, AuthActions
from tests.factories import PASSWORD, TEST_TOKEN_KEYS, make_org, make_user
from tests.webapp.test_business_connect import connect_as, token_calls

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several worker processes need PostgreSQL (the PostgreSQL pass of .ci/run "
                    "runs this)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ten_concurrent_requests_on_an_expired_token_refresh_once_across_workers(
        postgres_only, app, session, sandbox, database_url, redis_url):
    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == riley.id))
    link.token_expires_at = utcnow() - timedelta(minutes=5)
    session.commit()

    port = _free_port()
    env = dict(os.environ, RENDEZVOUS_ENV="production", SECRET_KEY="w" * 48,
               DATABASE_URL=database_url, RENDEZVOUS_TOKEN_KEYS=TEST_TOKEN_KEYS,
               RENDEZVOUS_SECURE_COOKIES="false", RENDEZVOUS_BIND=f"127.0.0.1:{port}",
               RENDEZVOUS_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
               WEB_CONCURRENCY="4", RENDEZVOUS_THREADS="4",
               CRONOFY_CLIENT_ID=SANDBOX_CLIENT_ID, CRONOFY_CLIENT_SECRET=SANDBOX_CLIENT_SECRET,
               CRONOFY_API_BASE_URL=sandbox.url, CRONOFY_APP_BASE_URL=sandbox.url,
               REDIS_URL=redis_url)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.RequestException:  # not listening yet, or busy booting workers
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        browser = requests.Session()
        form = browser.get(base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        login = browser.post(base + "/login", timeout=10, allow_redirects=False, data={
            "csrf_token": token, "email": riley.email, "password": PASSWORD})
        assert login.status_code == 302
        before = token_calls(sandbox)
        # A slow token endpoint makes the refreshes overlap unless something serialises them.
        sandbox.add_fault(method="POST", path="/oauth/token", latency_ms=500)

        def load(_):
            # A connection of its own per request, so the requests spread over the workers.
            with requests.Session() as own:
                own.cookies.update(browser.cookies)
                return own.get(base + "/profile/calendar/", timeout=30)

        with ThreadPoolExecutor(max_workers=10) as pool:
            pages = list(pool.map(load, range(10)))
        assert all(p.status_code == 200 and "Writable" in p.text for p in pages)
        assert token_calls(sandbox) - before == 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert server.returncode == 0, output
    pids = set(re.findall(r"Booting worker with pid: (\d+)", output))
    assert len(pids) == 4, output  # the requests really were spread over several processes
