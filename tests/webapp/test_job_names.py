"""Task names, schedules and the names jobs were queued under by the previous release."""

from __future__ import annotations

import datetime as dt
import re
from datetime import timedelta

import pytest
from huey import crontab
from huey.registry import Message
from sqlalchemy import func, select

from models import OAuthState, Role, utcnow
from tests.factories import make_org, make_user
from webapp import create_app, deps
from webapp.jobs import FORMER_NAMES, TASK_GROUPS
from webapp.jobs.queue import WIRE_MODULE

#: The periodic tasks and their schedules, as they ran before the tasks moved into webapp/jobs.
SCHEDULES = {
    "calendar.recover_links": crontab(minute="*/10"),
    "enterprise.resume_stalled": crontab(minute="*"),
    "maintenance.purge_api_tokens": crontab(minute="41", hour="3"),
    "maintenance.purge_audit_entries": crontab(minute="17", hour="3"),
    "maintenance.purge_idempotency_keys": crontab(minute="23"),
    "maintenance.purge_interview_load": crontab(minute="47", hour="3"),
    "maintenance.purge_mailbox_lists": crontab(minute="37"),
    "maintenance.purge_oauth_states": crontab(minute="*/30"),
    "revocations.resume": crontab(minute="*"),
    "scheduling.purge_links": crontab(minute="40", hour="3"),
    # every minute since issue 21: each run does the part of the 15-minute pass due then
    "scheduling.reconcile_events": crontab(minute="*"),
    "scheduling.settle_claims": crontab(minute="*/5"),
}


@pytest.fixture
def queue_app(app_config, tmp_path):
    """An app with a real (SQLite) queue, so messages wait until executed."""
    config = dict(app_config, JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=str(tmp_path / "q.sqlite3"))
    return create_app(config)


def _all_specs():
    return {name: spec for group in TASK_GROUPS for name, spec in group.specs.items()}


def test_every_task_is_named_area_dot_verb_object_after_its_group():
    for group in TASK_GROUPS:
        for name in group.specs:
            assert re.fullmatch(r"[a-z]+\.[a-z]+(_[a-z]+)*", name), name
            assert name.startswith(group.area + "."), name
    assert len({g.area for g in TASK_GROUPS}) == len(TASK_GROUPS)


def test_the_queue_knows_exactly_the_listed_tasks(queue_app):
    jobs = deps.jobs.of(queue_app)
    assert set(jobs._tasks) == set(_all_specs())


def test_periodic_schedules_are_unchanged(queue_app):
    huey = deps.jobs.of(queue_app).huey
    periodic = {t.__name__: t for t in huey._registry._periodic_tasks}
    assert set(periodic) == set(SCHEDULES)
    start = dt.datetime(2026, 3, 2)  # a Monday: one whole week, minute by minute
    for name, expected in SCHEDULES.items():
        task = periodic[name]()
        for minute in range(7 * 24 * 60):
            moment = start + timedelta(minutes=minute)
            assert task.validate_datetime(moment) == expected(moment), (name, moment)


def test_messages_go_on_the_wire_under_the_same_prefix_as_before(queue_app):
    jobs = deps.jobs.of(queue_app)
    jobs.enqueue("maintenance.purge_oauth_states")
    [message] = [jobs.huey.serializer.deserialize(m) for m in jobs.huey.storage.enqueued_items()]
    assert message.name == f"{WIRE_MODULE}.maintenance.purge_oauth_states"
    assert WIRE_MODULE == "webapp.jobs"  # what every earlier release queued under


def test_every_former_name_runs_its_task_now_and_is_never_scheduled(queue_app):
    huey = deps.jobs.of(queue_app).huey
    specs = _all_specs()
    periodic = {t.__name__ for t in huey._registry._periodic_tasks}
    for old, new in FORMER_NAMES.items():
        assert old not in specs and new in specs, old
        alias = huey._registry.string_to_task(f"{WIRE_MODULE}.{old}")
        assert old not in periodic
        assert alias.default_retries == specs[new].retries
        assert alias.default_retry_delay == specs[new].retry_delay
        assert alias.default_priority == specs[new].priority  # still taken in its lane's order


@pytest.mark.parametrize("old", ["purge_oauth_states", "maintenance.purge_oauth_states"])
def test_a_job_queued_under_an_old_name_before_the_deploy_still_runs(queue_app, session, old):
    user = make_user(session, make_org(session), Role.RECRUITER)
    session.add(
        OAuthState(
            state_hash="0" * 64,
            flow="business_connect",
            user_id=user.id,
            session_binding="x" * 64,
            expires_at=utcnow() - timedelta(minutes=1),
        )
    )
    session.commit()
    huey = deps.jobs.of(queue_app).huey
    # What the previous release wrote into the queue: a message naming the task by its old name.
    huey.storage.enqueue(
        huey.serializer.serialize(Message("m1", f"{WIRE_MODULE}.{old}", None, 0, 0, None, (), {}))
    )
    assert huey.pending_count() == 1
    huey.execute(huey.dequeue())
    assert huey.pending_count() == 0
    session.expire_all()
    assert session.scalar(select(func.count(OAuthState.id))) == 0


def test_an_unknown_name_is_still_refused(queue_app):
    from huey.exceptions import HueyException

    huey = deps.jobs.of(queue_app).huey
    with pytest.raises(HueyException):
        huey._registry.string_to_task(f"{WIRE_MODULE}.ec_no_such_task")
