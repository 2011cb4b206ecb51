"""Correct with several worker processes: run on the PostgreSQL pass of .ci/run.

SQLite is the single-process development database; production runs several gunicorn workers
against PostgreSQL, where the row lock (SELECT … FOR UPDATE) is what serialises token refreshes
and the slot claims' unique constraint is what lets exactly one of many bookings of a slot commit.
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
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from models import Interview, InterviewStatus, ProfileLink, Role, utcnow
from tests.conftest import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    AuthActions,
    register_redirect_uris,
)
from tests.factories import PASSWORD, TEST_TOKEN_KEYS, make_org, make_user
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_business_connect import connect_as, token_calls
from webapp import deps
from webapp.security import Sealer
from webapp.services import credentials

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "w" * 48


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "several worker processes need PostgreSQL (the PostgreSQL pass of .ci/run runs this)"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(
    sandbox,
    database_url,
    redis_url,
    tmp_path,
    *,
    workers: int = 4,
    jobs_worker: bool = False,
    extra_env: dict[str, str] | None = None,
):
    """The app in production under gunicorn (``workers`` processes of 4 threads) on
    ``database_url`` and a Redis emptied first (rate limits, job queue), with its own huey worker
    if asked; yields the base URL and a function returning the output so far. Stopped (SIGTERM,
    graceful) and checked for a clean exit afterwards. ``extra_env`` overrides the environment
    (the single sign-on tests run the ``testing`` environment: only it may reach a provider on
    loopback)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    env = dict(
        os.environ,
        RENDEZVOUS_ENV="production",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        RENDEZVOUS_TOKEN_KEYS=TEST_TOKEN_KEYS,
        RENDEZVOUS_SECURE_COOKIES="false",
        RENDEZVOUS_BIND=f"127.0.0.1:{port}",
        RENDEZVOUS_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        RENDEZVOUS_THREADS="4",
        CRONOFY_CLIENT_ID=SANDBOX_CLIENT_ID,
        CRONOFY_CLIENT_SECRET=SANDBOX_CLIENT_SECRET,
        CRONOFY_API_BASE_URL=sandbox.url,
        CRONOFY_APP_BASE_URL=sandbox.url,
        REDIS_URL=redis_url,
    )
    env.update(extra_env or {})
    log = open(tmp_path / "gunicorn.log", "wb")  # a file: a full pipe would stall the workers
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    consumer = None
    if jobs_worker:
        consumer = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def output() -> str:
        return (tmp_path / "gunicorn.log").read_text(errors="replace")

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.RequestException:  # not listening yet, or busy booting workers
                assert server.poll() is None and time.monotonic() < deadline, (
                    "gunicorn did not start: " + output()
                )
                time.sleep(0.2)
        yield base, output
    finally:
        for process in (consumer, server):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in (consumer, server):
            if process is not None:
                process.wait(timeout=60)
        log.close()
    assert server.returncode == 0, output()


def test_ten_concurrent_requests_on_an_expired_token_refresh_once_across_workers(
    postgres_only, app, session, sandbox, database_url, redis_url, tmp_path
):
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

    with gunicorn(sandbox, database_url, redis_url, tmp_path) as (base, output):
        browser = requests.Session()
        form = browser.get(base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        login = browser.post(
            base + "/login",
            timeout=10,
            allow_redirects=False,
            data={"csrf_token": token, "email": riley.email, "password": PASSWORD},
        )
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
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output()))) == 4, output()


def test_six_tabs_finishing_a_connect_at_once_leave_one_channel_across_workers(
    postgres_only, app, session, sandbox, database_url, redis_url, tmp_path
):
    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    with gunicorn(sandbox, database_url, redis_url, tmp_path) as (base, output):
        app.config["PUBLIC_BASE_URL"] = base
        register_redirect_uris(sandbox, app)  # the workers' own callback URL, as at Cronofy
        browser = requests.Session()
        form = browser.get(base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        assert (
            browser.post(
                base + "/login",
                timeout=10,
                allow_redirects=False,
                data={"csrf_token": token, "email": riley.email, "password": PASSWORD},
            ).status_code
            == 302
        )
        returns = []
        for _ in range(6):  # six tabs, each through the consent page, none back yet
            page = browser.get(base + "/profile/calendar/", timeout=10).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            started = browser.post(
                base + "/profile/calendar/connect",
                timeout=10,
                allow_redirects=False,
                data={"csrf_token": token, "provider": "google"},
            )
            assert started.status_code == 303
            returns.append(sandbox.consent(started.headers["Location"], riley.email).redirect_url)
        # Slow channel calls make the tabs' channel work overlap unless something serialises it.
        sandbox.add_fault(method="POST", path="/v1/channels", latency_ms=300)

        def finish(url):
            with requests.Session() as own:  # a connection of its own: spread over the workers
                own.cookies.update(browser.cookies)
                return own.get(url, timeout=60, allow_redirects=False)

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(finish, returns))
        assert all(a.status_code == 302 for a in answers), [a.status_code for a in answers]
        session.expire_all()
        link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == riley.id))
        creds = credentials.load_credentials(link, deps.cipher.of(app))
        assert len(deps.broker.of(app).channels(creds)) == 1
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output()))) == 4, output()


def _scheduled(session, timeout: float = 60) -> list[Interview]:
    """The interviews, once none is still waiting for its calendar write (the huey worker)."""
    deadline = time.monotonic() + timeout
    while True:
        session.expire_all()
        found = list(session.scalars(select(Interview)))
        if all(i.status is not InterviewStatus.PENDING for i in found):
            return found
        assert time.monotonic() < deadline, [i.status for i in found]
        time.sleep(0.2)


def _our_events(sandbox, email: str) -> list[dict]:
    events = sandbox.call("GET", "/events", params={"email": email})["events"]
    return [e for e in events if (e.get("event_id") or "").startswith("rdv-")]


def test_twenty_concurrent_api_bookings_of_one_slot_make_one_interview_across_workers(
    postgres_only, app, session, sandbox, org, recruiter, database_url, redis_url, tmp_path
):
    from tests.webapp.test_booking_claims import race_world, racers, run_together

    people = [link for _u, link in make_panel(app, session, sandbox, org, 1)]
    panel, slot, api_token, _tokens = race_world(app, session, sandbox, org, recruiter, people)
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):
        api, _web, _candidates = racers(base, panel, slot, api_token, [], None)
        outcomes = run_together([api] * 20)
        interviews = _scheduled(session)
    assert sorted(outcomes) == ["lost"] * 19 + ["won"], outcomes
    assert len(interviews) == 1 and interviews[0].status is InterviewStatus.SCHEDULED
    assert len(_our_events(sandbox, recruiter.email)) == 1
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output()))) == 4


def test_web_api_and_candidate_link_races_make_one_interview_across_workers(
    postgres_only, app, session, sandbox, org, recruiter, database_url, redis_url, tmp_path
):
    from tests.webapp.test_booking_claims import race_world, racers, run_together, web_login

    people = [link for _u, link in make_panel(app, session, sandbox, org, 1)]
    panel, slot, api_token, tokens = race_world(
        app, session, sandbox, org, recruiter, people, seal=Sealer.from_secret(SECRET_KEY)
    )
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, _output):
        browser = web_login(base, recruiter.email)
        api, web, candidates = racers(base, panel, slot, api_token, tokens, browser)
        outcomes = run_together([api, api, api, web, web, web, *candidates])
        interviews = _scheduled(session)
    assert sorted(outcomes) == ["lost"] * 8 + ["won"], outcomes
    assert len(interviews) == 1 and interviews[0].status is InterviewStatus.SCHEDULED
    assert len(_our_events(sandbox, recruiter.email)) == 1


def test_six_confirmations_of_one_erasure_at_once_erase_once_across_workers(
    postgres_only, app, session, sandbox, database_url, redis_url, tmp_path
):
    """A double click, or two IT admins: one confirmation carries the erasure out and gets the
    receipt; the others wait for it and are sent to that same receipt."""
    from models import AuditEntry, ErasureRequest

    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    admin = make_user(session, org, Role.ADMIN, email="alex@northwind.example")
    reviewer = make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")
    leaver = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(leaver.email)
    connect_as(client, auth, sandbox, leaver.email)
    reviewer_client = app.test_client()
    AuthActions(reviewer_client).login(reviewer.email)
    AuthActions(reviewer_client).post(
        f"/compliance/people/{leaver.id}/erasure",
        {"future_interviews": "keep"},
        form_page=f"/compliance/people/{leaver.id}",
    )
    request_id = session.scalar(select(ErasureRequest.id))

    with gunicorn(sandbox, database_url, redis_url, tmp_path) as (base, output):
        browser = requests.Session()
        form = browser.get(base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        login = browser.post(
            base + "/login",
            timeout=10,
            allow_redirects=False,
            data={"csrf_token": token, "email": admin.email, "password": PASSWORD},
        )
        assert login.status_code == 302
        page = browser.get(f"{base}/compliance/erasures/{request_id}", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        # A slow revocation keeps the first erasure busy while the others arrive.
        sandbox.add_fault(method="POST", path="/oauth/token/revoke", latency_ms=500)

        def confirm(_):
            with requests.Session() as own:  # a connection of its own: spread over the workers
                own.cookies.update(browser.cookies)
                return own.post(
                    f"{base}/compliance/erasures/{request_id}",
                    timeout=60,
                    allow_redirects=False,
                    data={
                        "csrf_token": token,
                        "decision": "confirm",
                        "confirm_email": "riley.chen@northwind.example",
                    },
                )

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(confirm, range(6)))
        session.expire_all()
        row = session.get(ErasureRequest, request_id)
        receipt = f"/compliance/erasures/receipts/{row.receipt_ref}"
        assert row.status == "completed" and row.receipt["accounts_deleted"] == 1
        assert [a.status_code for a in answers] == [303] * 6
        assert {a.headers["Location"] for a in answers} == {receipt}
        erased = select(AuditEntry).where(AuditEntry.action == "subject.erased")
        assert len(session.scalars(erased).all()) == 1
        assert browser.get(base + receipt, timeout=30).status_code == 200
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output()))) == 4, output()


def test_duplicate_enterprise_callbacks_at_once_link_each_mailbox_once_across_workers(
    postgres_only, app, admin_client, session, sandbox, org, database_url, redis_url, tmp_path
):
    """The aggregator's callback for each of four mailboxes arrives four times at once, spread
    over the gunicorn workers: each is accepted once (the others are replays: 409), its code
    is redeemed once by the job worker, and each mailbox gets exactly one link."""
    import json

    from models import AuditEntry, MailboxRequest, MailboxStatus, ServiceAccountLink
    from tests.webapp.test_enterprise import FABRIKAM, connect_domain, users_on
    from webapp.services import Actor
    from webapp.services.enterprise import mailboxes

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:4])
    seal = Sealer.from_secret(SECRET_KEY)  # the gunicorn workers' secret
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):

        def callback_url(request_id: int) -> str:
            return f"{base}/hooks/cronofy/sa/{seal.seal('sa', str(request_id))}"

        admin = session.scalar(select(ServiceAccountLink)).connected_by_id
        actor = Actor(admin, "it@northwind.example", org.id, Role.ADMIN)
        with app.test_request_context():
            mailboxes.request_mailboxes(
                session,
                actor,
                link.id,
                emails=FABRIKAM[:4],
                callback_url=callback_url,
                jobs=deps.jobs.of(app),  # sends the batch at once (this app runs jobs inline)
            )
        items = [i for i in sandbox.call("GET", "/outbox")["queued"] if i["kind"] == "callback"]
        assert len(items) == 4
        calls = token_calls(sandbox)
        sandbox.add_fault(method="POST", path="/oauth/token", latency_ms=300)  # slow exchanges

        def post(item):
            with requests.Session() as own:  # a connection of its own: spread over the workers
                return item["url"], own.post(
                    item["url"],
                    data=json.dumps(item["body"]),
                    headers={"Content-Type": "application/json"},
                    timeout=60,
                ).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(post, [i for i in items for _ in range(4)]))
        for item in items:
            assert sorted(s for u, s in answers if u == item["url"]) == [200, 409, 409, 409]
        deadline = time.monotonic() + 60
        while True:
            session.expire_all()
            found = list(session.scalars(select(MailboxRequest)))
            if all(r.status is not MailboxStatus.PENDING for r in found):
                break
            assert time.monotonic() < deadline, output()
            time.sleep(0.2)
    assert {r.status for r in found} == {MailboxStatus.LINKED}
    assert token_calls(sandbox) == calls + 4  # one exchange per code, never a second
    assert len(set(session.scalars(select(ProfileLink.user_id)))) == 4
    assert len(list(session.scalars(select(ProfileLink)))) == 4
    linked = session.scalars(select(AuditEntry).where(AuditEntry.action == "ec.mailbox_linked"))
    assert len(list(linked)) == 4
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", output()))) == 4, output()
