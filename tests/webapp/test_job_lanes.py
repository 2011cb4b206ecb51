"""Which aggregator rate-limit lane a job's calls use: background for bulk, periodic and
push follow-up work, interactive for follow-ups of what a person just did."""

from __future__ import annotations

import pytest
from flask import Flask

from broker.ratelimit import BACKGROUND, INTERACTIVE, current_lane, current_tenant
from webapp.jobs import TASK_GROUPS
from webapp.jobs.queue import TaskGroup, crontab, install


def _specs():
    return {name: spec for group in TASK_GROUPS for name, spec in group.specs.items()}


def test_bulk_periodic_and_push_follow_up_tasks_run_in_the_background_lane():
    specs = _specs()
    for name in (
        "enterprise.send_batches",  # bulk linking
        "enterprise.choose_calendars",  # calendar choices after a bulk link
        "enterprise.choose_calendar",  # (one mailbox's, queued by earlier releases)
        "enterprise.resume_stalled",
        "revocations.run",
        "revocations.resume",
        "scheduling.reconcile_events",  # periodic reconciliation
        "scheduling.apply_changes",  # push follow-up
        "calendar.check_profile",  # push follow-up
        "calendar.recover_links",
    ):
        assert specs[name].lane == BACKGROUND, name
    for spec in specs.values():
        if spec.schedule is not None:
            assert spec.lane == BACKGROUND  # nobody waits for a periodic task


def test_follow_ups_of_a_persons_action_stay_interactive():
    specs = _specs()
    for name in (
        "scheduling.write_interview",
        "scheduling.delete_interview",
        "mail.send_message",
    ):
        assert specs[name].lane == INTERACTIVE, name


def test_the_job_wrapper_sets_the_lane_for_the_task_and_restores_it(tmp_path):
    group = TaskGroup("lanetest")
    seen: dict[str, str] = {}

    @group.task("person")
    def person() -> None:
        seen["person"] = current_lane()

    @group.task("bulk", lane=BACKGROUND)
    def bulk() -> None:
        seen["bulk"] = current_lane()

    @group.periodic("sweep", crontab(minute="*/5"))
    def sweep() -> None:
        seen["sweep"] = current_lane()

    bg_group = TaskGroup("lanebg", lane=BACKGROUND)

    @bg_group.task("run")
    def run() -> None:
        seen["group"] = current_lane()

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["JOBS_IMMEDIATE"] = True
    jobs = install(app, [group, bg_group])
    assert current_lane() == INTERACTIVE
    jobs.enqueue("lanetest.bulk")
    assert current_lane() == INTERACTIVE  # restored after the job
    jobs.enqueue("lanetest.person")
    jobs.enqueue("lanebg.run")
    jobs._tasks["lanetest.sweep"].call_local()
    assert seen == {
        "bulk": BACKGROUND,
        "person": INTERACTIVE,
        "group": BACKGROUND,
        "sweep": BACKGROUND,
    }


def test_a_task_naming_an_unknown_lane_is_refused():
    with pytest.raises(ValueError):
        TaskGroup("x", lane="bulk")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TaskGroup("y").task("z", lane="urgent")(lambda: None)  # type: ignore[arg-type]


def test_the_job_wrapper_sets_the_tenant_from_the_jobs_organisation_and_restores_it(tmp_path):
    group = TaskGroup("tenanttest", lane=BACKGROUND)
    seen: dict[str, object] = {}

    @group.task("bulk", tenant=lambda domain_id: domain_id * 10)
    def bulk(domain_id: int) -> None:
        seen["bulk"] = (current_lane(), current_tenant())

    @group.task("unknown", tenant=lambda domain_id: None)  # the row is gone: nobody's share
    def unknown(domain_id: int) -> None:
        seen["unknown"] = current_tenant()

    @group.task("periodic_like")
    def plain() -> None:
        seen["plain"] = current_tenant()

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["JOBS_IMMEDIATE"] = True
    jobs = install(app, [group])
    jobs.enqueue("tenanttest.bulk", 7)
    assert current_tenant() is None  # restored after the job
    jobs.enqueue("tenanttest.unknown", 7)
    jobs.enqueue("tenanttest.periodic_like")
    assert seen == {"bulk": (BACKGROUND, "70"), "unknown": None, "plain": None}


def test_bulk_linking_jobs_name_their_organisation():
    specs = _specs()
    assert specs["enterprise.send_batches"].tenant is not None
    assert specs["enterprise.choose_calendar"].tenant is not None
    assert specs["enterprise.choose_calendars"].tenant is not None


def test_push_follow_ups_go_before_periodic_reads_and_the_job_wrapper_says_so(tmp_path):
    """Within the background lane: follow-ups of a push notification are push work, the
    periodic sweeps are periodic work (they yield while push work waits), and the periodic
    restarts of bulk work stay bulk."""
    from broker.ratelimit import BULK, PERIODIC, PUSH, current_work

    specs = _specs()
    for name in ("scheduling.apply_changes", "calendar.check_profile"):
        assert specs[name].work == PUSH, name
    for name in (
        "scheduling.reconcile_events",
        "scheduling.settle_claims",
        "calendar.recover_links",
    ):
        assert specs[name].work == PERIODIC, name
    for name in ("enterprise.resume_stalled", "revocations.resume", "enterprise.send_batches"):
        assert specs[name].work == BULK, name

    group = TaskGroup("worktest", lane=BACKGROUND)
    seen: dict[str, str] = {}

    @group.task("follow", work=PUSH)
    def follow() -> None:
        seen["follow"] = current_work()

    @group.periodic("sweep", crontab(minute="*"))
    def sweep() -> None:
        seen["sweep"] = current_work()

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["JOBS_IMMEDIATE"] = True
    jobs = install(app, [group])
    jobs.enqueue("worktest.follow")
    jobs._tasks["worktest.sweep"].call_local()
    assert seen == {"follow": PUSH, "sweep": PERIODIC}
    assert current_work() == BULK  # restored after the jobs
    with pytest.raises(ValueError):
        TaskGroup("z").task("y", work="urgent")(lambda: None)  # type: ignore[arg-type]
