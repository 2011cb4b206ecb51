"""/metrics: for operators' monitoring, behind a bearer token. Installation-wide figures only
(aggregator lane usage and 429s, job backlog per task); no session grants it, and nothing in it
names an organisation, a person or a calendar. /readyz stays public and minimal."""

from __future__ import annotations

import json

import pytest

from models import Role
from tests.conftest import AuthActions
from tests.factories import make_org, make_user
from webapp import create_app, deps

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def token(app_config):
    """Operators configured a metrics token (asked for before ``app``)."""
    app_config["METRICS_TOKEN"] = TOKEN


@pytest.fixture
def queue(app_config, tmp_path):
    """A real SQLite queue (jobs wait in it) instead of running at once."""
    app_config.update(JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=str(tmp_path / "q.sqlite3"))


def _metrics(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def test_metrics_is_not_there_without_a_configured_token(client):
    assert _metrics(client).status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x", TOKEN],
)
def test_metrics_refuses_a_missing_or_wrong_token(token, app, header):
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.get_data(as_text=True)


def test_a_signed_in_it_admin_is_not_enough(token, app, session, client):
    """Installation-wide figures are the operators', not any one organisation's admins'."""
    admin = make_user(session, make_org(session), Role.ADMIN)
    session.commit()
    AuthActions(client).login(admin.email)
    assert client.get("/profile/").status_code == 200  # signed in
    assert client.get("/metrics").status_code == 401
    assert _metrics(client).status_code == 200


def test_metrics_reports_lanes_429s_and_backlog_per_task(token, queue, sandbox, app):
    jobs = deps.jobs.of(app)
    jobs.enqueue("enterprise.send_batches", 1)
    jobs.enqueue("enterprise.send_batches", 2)
    jobs.enqueue("mail.send_message", 3)
    jobs.enqueue_in(600, "enterprise.send_batches", 4)
    limiter = deps.broker.of(app).rate_limiter
    limiter.acquire("background")
    limiter.note_rejected("interactive")

    response = _metrics(app.test_client())
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    lanes = body["aggregator"]["lanes"]
    assert body["aggregator"]["scope"] == "process"  # no Redis: this process's own counts
    assert lanes["background"]["minute"] == 1 and lanes["interactive"]["rejected"] == 1
    assert lanes["background"]["cap_minute"] < lanes["interactive"]["cap_minute"] == 500
    backlog = body["backlog"]
    assert backlog["enterprise.send_batches"] == {"pending": 2, "scheduled": 1}
    assert backlog["mail.send_message"] == {"pending": 1, "scheduled": 0}
    assert backlog["_scan"]["truncated"] == 0
    # the queue is read, not consumed
    assert jobs.pending() == 4  # (huey keeps delayed jobs in the queue too)
    # /readyz stays minimal: the depth only
    assert set(app.test_client().get("/readyz").json["checks"]) == {
        "database",
        "broker",
        "queue_depth",
    }


def test_backlog_is_read_from_a_redis_queue_too(app_config, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    app = create_app(
        dict(app_config, METRICS_TOKEN=TOKEN, JOBS_IMMEDIATE=False, REDIS_URL=redis_url)
    )
    jobs = deps.jobs.of(app)
    jobs.enqueue("revocations.run", 1)
    jobs.enqueue("revocations.run", 2)
    jobs.enqueue_in(600, "calendar.check_profile", 5)
    backlog = _metrics(app.test_client()).json["backlog"]
    assert backlog["revocations.run"] == {"pending": 2, "scheduled": 0}
    assert backlog["calendar.check_profile"] == {"pending": 0, "scheduled": 1}
    assert jobs.pending() == 3


def test_metrics_names_no_organisation_or_person(token, queue, sandbox, app, session):
    """Two organisations with queued work: the report has task names and counts, nothing else."""
    people = []
    for name in ("Acme Metrics Ltd", "Globex Metrics plc"):
        org = make_org(session, name=name)
        people.append(make_user(session, org, Role.ADMIN, email="shared@example.com"))
    session.commit()
    jobs = deps.jobs.of(app)
    for person in people:
        jobs.enqueue("mail.send_message", person.id)
    text = json.dumps(_metrics(app.test_client()).json)
    for secret in ("Acme", "Globex", "shared@example.com", TOKEN):
        assert secret not in text


def test_metrics_report_each_paced_pass_and_which_fall_behind(token, app):
    """The periodic passes' progress and a list of those falling behind (task names and counts
    only); a pass overdue now and one whose last pass finished late are both behind."""
    from datetime import timedelta

    from models import utcnow

    jobs = deps.jobs.of(app)
    now = utcnow()

    def state(name, started, due, done, finished=None, late=0, lag=0):
        jobs.set_state(
            f"pass:{name}",
            {
                "pass_no": 2,
                "started_at": (now + timedelta(minutes=started)).isoformat(),
                "due_at": (now + timedelta(minutes=due)).isoformat(),
                "finished_at": (now + timedelta(minutes=finished)).isoformat()
                if finished is not None
                else None,
                "total": 40,
                "done": done,
                "cursor": None,
                "overdue_noted": False,
                "late_passes": late,
                "last_lag_seconds": lag,
                "deferrals": 3,
            },
        )

    state("scheduling.reconcile_events", -7, 8, 20)  # on time, half done
    state("test.overdue", -17, -2, 30)  # overdue by two minutes
    state("test.late", -20, -5, 40, finished=-1, late=2, lag=240)  # finished, but late
    jobs.set_state("pass:index", {"names": ["scheduling.reconcile_events", "test.late"]})
    jobs.set_state("pass:index", {"names": [*jobs.state("pass:index")["names"], "test.overdue"]})
    body = _metrics(app.test_client()).json
    assert body["falling_behind"] == ["test.late", "test.overdue"]
    reconcile = body["periodic"]["scheduling.reconcile_events"]
    assert reconcile["running"] and not reconcile["behind"]
    assert (reconcile["done"], reconcile["total"], reconcile["deferrals"]) == (20, 40, 3)
    overdue = body["periodic"]["test.overdue"]
    assert overdue["behind"] and 110 <= overdue["lag_seconds"] <= 200
    late = body["periodic"]["test.late"]
    assert late["behind"] and not late["running"] and late["lag_seconds"] == 240
    assert late["late_passes"] == 2
