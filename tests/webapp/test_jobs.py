"""The job queue: built per app, tasks run in an app context, a real worker consumes SQLite."""

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from models import OAuthState, Role, utcnow
from tests.factories import make_org, make_user
from webapp import create_app, deps


def _states(session, user, *specs):
    for n, (expires, used) in enumerate(specs):
        session.add(
            OAuthState(
                state_hash=f"{n:064d}",
                flow="business_connect",
                user_id=user.id,
                session_binding="x" * 64,
                expires_at=expires,
                used_at=used,
            )
        )
    session.commit()


def test_purging_oauth_states_keeps_only_usable_ones(app, session):
    user = make_user(session, make_org(session), Role.RECRUITER)
    now = utcnow()
    _states(
        session,
        user,
        (now - timedelta(minutes=1), None),
        (now + timedelta(minutes=5), None),
        (now + timedelta(minutes=5), now - timedelta(days=2)),
    )
    jobs = deps.jobs.of(app)
    assert jobs.immediate
    jobs.enqueue("maintenance.purge_oauth_states")
    assert session.scalar(select(func.count(OAuthState.id))) == 1


def test_a_sqlite_queue_is_consumed_by_the_worker_command(app_config, session, tmp_path):
    user = make_user(session, make_org(session), Role.RECRUITER)
    _states(session, user, (utcnow() - timedelta(minutes=1), None))
    config = dict(app_config, JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=str(tmp_path / "jobs.sqlite3"))
    app = create_app(config)
    jobs = deps.jobs.of(app)
    jobs.enqueue("maintenance.purge_oauth_states")
    assert jobs.pending() == 1
    # A separate worker process, as in production, configured through the environment.
    env = {
        "RENDEZVOUS_ENV": "development",
        "DATABASE_URL": config["DATABASE_URL"],
        "SECRET_KEY": config["SECRET_KEY"],
        "RENDEZVOUS_TOKEN_KEYS": config["TOKEN_KEYS"],
        "RENDEZVOUS_JOBS_SQLITE_PATH": config["JOBS_SQLITE_PATH"],
        "PATH": "/usr/bin:/bin",
    }
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker", "--workers", "1"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and jobs.pending():
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            session.expire_all()
            if session.scalar(select(func.count(OAuthState.id))) == 0:
                break
            time.sleep(0.1)
        assert session.scalar(select(func.count(OAuthState.id))) == 0
    finally:
        worker.terminate()
        output = worker.communicate(timeout=15)[0].decode()
    assert "Consuming SqliteHuey queue" in output


def test_change_notifications_for_one_link_coalesce_into_one_job(app_config, session, tmp_path):
    import base64
    import hashlib
    import hmac
    import json

    from models import LinkMode, ProfileLink

    config = dict(
        app_config,
        JOBS_IMMEDIATE=False,
        JOBS_SQLITE_PATH=str(tmp_path / "q.sqlite3"),
        CRONOFY_CLIENT_ID="cid",
        CRONOFY_CLIENT_SECRET="hook-secret",
        CRONOFY_API_BASE_URL="http://127.0.0.1:9",
        CRONOFY_APP_BASE_URL="http://127.0.0.1:9",
    )
    app = create_app(config)
    user = make_user(session, make_org(session), Role.RECRUITER)
    link = ProfileLink(
        organisation_id=user.organisation_id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub="acc_coalesce",
    )
    session.add(link)
    session.commit()
    path = "/hooks/cronofy/push/" + deps.sealer.of(app).seal("push", str(link.id))
    client = app.test_client()

    def notify(since):
        body = json.dumps(
            {
                "notification": {"type": "change", "changes_since": since},
                "channel": {"channel_id": "chn_coalesce"},
            }
        ).encode()
        signature = base64.b64encode(hmac.new(b"hook-secret", body, hashlib.sha256).digest())
        response = client.post(path, data=body, headers={"Cronofy-HMAC-SHA256": signature.decode()})
        assert response.status_code == 202

    jobs = deps.jobs.of(app)
    for minute in range(5):
        notify(f"2026-11-21T09:0{minute}:00Z")
    assert jobs.pending() == 1
    task = jobs.huey.dequeue()
    # the earliest covers the rest
    assert task.args == (link.id, "2026-11-21T09:00:00+00:00", "chn_coalesce")
    jobs.huey.execute(task)  # starts the job: the claim is released (the job itself finds no creds)
    notify("2026-11-21T09:10:00Z")
    assert jobs.pending() == 1
    # A claim whose job was lost is taken over once it is older than the ttl.
    jobs.huey.dequeue()
    key = f"changes:{link.id}:chn_coalesce"
    assert jobs.enqueue_once(key, "scheduling.apply_changes", link.id, None) is None
    assert jobs.enqueue_once(key, "scheduling.apply_changes", link.id, None, ttl=0) is not None


def test_with_redis_a_burst_is_one_round_trip_each_and_one_job(app_config, session, redis_url):
    """Production queue: the coalescing claim is one SET NX EX per notification (any Redis
    version, expiring by itself), released when the job starts."""
    import redis

    from models import LinkMode, ProfileLink

    redis.Redis.from_url(redis_url).flushdb()
    app = create_app(dict(app_config, JOBS_IMMEDIATE=False, REDIS_URL=redis_url))
    jobs = deps.jobs.of(app)
    user = make_user(session, make_org(session), Role.RECRUITER)
    link = ProfileLink(
        organisation_id=user.organisation_id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub="acc_redis_coalesce",
    )
    session.add(link)
    session.commit()
    calls = []
    conn = jobs.huey.storage.conn
    original = conn.execute_command

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    conn.execute_command = counting
    first = jobs.enqueue_once(f"changes:{link.id}", "scheduling.apply_changes", link.id, None)
    calls.clear()
    for _ in range(5):
        assert (
            jobs.enqueue_once(f"changes:{link.id}", "scheduling.apply_changes", link.id, None)
            is None
        )
    assert calls == ["SET"] * 5  # one round trip per coalesced notification
    conn.execute_command = original
    assert first is not None and jobs.pending() == 1
    claim = f"rendezvous.{jobs.huey.name}.once:changes:{link.id}"
    assert 0 < conn.ttl(claim) <= 600  # a lost job's claim expires by itself
    with app.app_context():
        jobs.huey.execute(jobs.huey.dequeue())  # the job starts: the claim is released
    assert conn.exists(claim) == 0
    assert (
        jobs.enqueue_once(f"changes:{link.id}", "scheduling.apply_changes", link.id, None)
        is not None
    )


def test_keep_going_sleeps_through_short_waits_and_requeues_long_ones(
    app_config, tmp_path, monkeypatch
):
    from webapp.jobs import queue as jobs_module

    app = create_app(
        dict(app_config, JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=str(tmp_path / "q.sqlite3"))
    )
    jobs = deps.jobs.of(app)
    slept, later = [], []
    monkeypatch.setattr(jobs_module.time, "sleep", slept.append)
    monkeypatch.setattr(
        jobs, "enqueue_in", lambda delay, name, *args: later.append((delay, name, args))
    )
    passes = iter([(2, 0.5), (3, None)])
    assert jobs.keep_going("revocations.run", (), lambda: next(passes)) == 5
    assert slept == [0.5] and later == []
    passes = iter([(1, 2.0), (4, 30.0), (9, None)])
    assert jobs.keep_going("enterprise.send_batches", (7,), lambda: next(passes)) == 5
    assert slept == [0.5, 2.0] and later == [(30.0, "enterprise.send_batches", (7,))]
