"""A job picked up twice does no harm: the same write or delete job run by two workers at once
(a redelivery after a worker restart) leaves exactly one event, or none, at the aggregator."""

from __future__ import annotations

import threading

from models import Interview, InterviewStatus
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import managed
from tests.webapp.test_scheduling import first_slot, query_for, schedule
from webapp.jobs import scheduling as scheduling_jobs


def _twice(app, fn, *args):
    """Run a task body in two threads at once, each in its own app context, as two workers."""
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker():
        with app.app_context():
            barrier.wait()
            try:
                results.append(fn(*args))
            except Exception as exc:  # a worker may lose the race and let huey retry
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def _ours(app, session, interview):
    return [
        e
        for e in managed(app, session, interview.host_link, include_deleted=False)
        if e.event_id and interview.uid in e.event_id
    ]


def test_a_write_job_run_twice_at_once_writes_one_event(app, session, sandbox, recruiter, panel):
    query = query_for(panel)
    interview, payload = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start, run=False
    )
    results, errors = _twice(app, scheduling_jobs.write_interview, interview.id, payload)
    assert results, errors
    # And once more later, as a retry delivered after both finished.
    with app.app_context():
        scheduling_jobs.write_interview(interview.id, payload)
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.SCHEDULED
    assert len(_ours(app, session, interview)) == 1


def test_a_delete_job_run_twice_at_once_leaves_nothing_and_no_error_state(
    app, session, sandbox, recruiter, panel
):
    from tests.webapp.test_scheduling import actor_of
    from webapp.services.scheduling import booking

    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    assert len(_ours(app, session, interview)) == 1
    held = HeldJobs()  # the test runs the queued delete itself, twice at once
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=held)
    assert held.queued == [("scheduling.delete_interview", (interview.id,))]
    results, errors = _twice(app, scheduling_jobs.delete_interview, interview.id)
    assert results, errors
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.CANCELLED
    assert _ours(app, session, interview) == []
