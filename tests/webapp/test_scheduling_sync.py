"""Writes under broker faults (retried until confirmed), changes flowing back from calendars, and
reconciliation in both directions."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select

from models import CreatedEvent, EventStatus, Interview, InterviewStatus, Role, utcnow
from tests.factories import make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, managed, next_weekday
from tests.webapp.test_scheduling import (
    CANDIDATE_EMAIL,
    TITLE,
    actor_of,
    broker_cipher,
    first_slot,
    query_for,
    schedule,
    sealer_of,
)
from webapp import deps
from webapp.services.availability import free_slots, model
from webapp.services.scheduling import booking, rescheduling, sync, writes
from webapp.services.scheduling.content import Content


def run_retries(app) -> int:
    """Run every retry the queue has scheduled (what the worker does once their delay passed)."""
    huey = deps.jobs.of(app).huey
    ran = 0
    far = dt.datetime.utcnow() + dt.timedelta(days=1)
    for task in huey.read_schedule(far):
        task.eta = None  # its delay is over
        huey.execute(task)
        ran += 1
    return ran


def ours(app, session, link, uid):
    return [e for e in managed(app, session, link) if e.event_id.startswith(f"rdv-{uid}")]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"status": 500},
        {"status": 429, "headers": {"Retry-After": "0"}},
        {"status": 423, "body": {"error": "profile_disconnected"}},
    ],
)
def test_a_failed_write_leaves_the_interview_pending_and_a_retry_writes_it_once(
    app, session, sandbox, recruiter, panel, fault
):
    query = query_for(panel)
    slot = first_slot(app, session, recruiter, query)
    rule = sandbox.add_fault(method="POST", path="/v1/calendars/*/events", **fault)
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    assert interview.status is InterviewStatus.PENDING
    assert interview.events[0].status is EventStatus.PENDING
    sandbox.call("DELETE", "/faults", json={"id": rule["ids"][0]})
    host = interview.host_link
    if fault["status"] == 423:  # the person relinks; the retry then goes through
        session.refresh(host)
        from models import LinkStatus

        host.status = LinkStatus.ACTIVE
        session.commit()
    assert not ours(app, session, host, interview.uid)
    assert run_retries(app) >= 1
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.SCHEDULED
    assert len(ours(app, session, host, interview.uid)) == 1
    assert run_retries(app) == 0  # nothing left to retry


def test_a_timeout_after_the_aggregator_wrote_does_not_double_the_event(
    app, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    slot = first_slot(app, session, recruiter, query)
    deps.broker.of(app)  # noqa: B018 - the adapter's read timeout applies
    rule = sandbox.add_fault(
        method="POST", path="/v1/calendars/*/events", latency_ms=12_000, count=1
    )
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    sandbox.call("DELETE", "/faults", json={"id": rule["ids"][0]})
    run_retries(app)
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.SCHEDULED
    assert len(ours(app, session, interview.host_link, interview.uid)) == 1


def test_a_failed_delete_is_retried_until_the_event_is_gone(
    app, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    rule = sandbox.add_fault(method="DELETE", path="/v1/calendars/*/events", status=503)
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=deps.jobs.of(app))
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.CANCELLING
    assert len(ours(app, session, interview.host_link, interview.uid)) == 1
    sandbox.call("DELETE", "/faults", json={"id": rule["ids"][0]})
    run_retries(app)
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.CANCELLED
    assert not ours(app, session, interview.host_link, interview.uid)


def test_the_write_job_never_rewrites_a_cancelled_interview(
    app, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    interview, payload = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start, run=False
    )
    jobs = deps.jobs.of(app)
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=jobs)  # deletes
    with app.app_context():
        jobs.enqueue("scheduling.write_interview", interview.id, payload)  # a late retry
    assert not ours(app, session, interview.host_link, interview.uid)
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.CANCELLED


@pytest.mark.parametrize("unknown_delete_status", [202, 404])
def test_a_delete_the_aggregator_answers_not_found_counts_as_deleted(
    app, session, sandbox, recruiter, panel, unknown_delete_status
):
    """Cancelled before its write reached the calendar, the event is not at the aggregator, which
    answers its delete with 202 or (the stricter reading) 404. Either way the event is gone, as
    the person cancelling wanted: the interview is cancelled, not retried until it fails."""
    from broker import errors as broker_errors
    from tests.webapp.scheduling_support import creds_of

    sandbox.call("PATCH", "/config", json={"unknown_event_delete_status": unknown_delete_status})
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start, run=False
    )
    event = interview.events[0]
    broker, cipher = broker_cipher(app)
    if unknown_delete_status == 404:  # the aggregator does answer this delete with a 404
        with pytest.raises(broker_errors.NotFound):
            broker.delete_event(
                creds_of(app, interview.host_link), event.calendar_id, event.event_id
            )
    held = HeldJobs()  # the delete is run here, by hand
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=held)
    assert held.names() == ["scheduling.delete_interview"]
    assert writes.run_delete(session, broker, cipher, interview.id) == "deleted"
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.CANCELLED
    assert [e.status for e in interview.events] == [EventStatus.DELETED]


def test_a_tampered_payload_writes_nothing(app, session, sandbox, recruiter, panel):
    query = query_for(panel)
    interview, payload = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start, run=False
    )
    broker, cipher = broker_cipher(app)
    other = sealer_of(app).seal_json("write:someone-else", {"summary": "x"})
    for bad in (payload[:-4] + "AAAA", other):
        assert (
            writes.run_write(session, broker, cipher, sealer_of(app), interview.id, bad)
            == "unreadable"
        )
    assert not ours(app, session, interview.host_link, interview.uid)


# --- changes flowing back ------------------------------------------------------------------------


@pytest.fixture
def pushed(app, sandbox, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server.url
    return live_server


def open_channel(app, session, link):
    from webapp.callbacks import push_url

    with app.test_request_context():
        url = push_url(link.id)
    from tests.webapp.scheduling_support import creds_of

    deps.broker.of(app).create_channel(creds_of(app, link), url)


def test_deleted_in_outlook_shows_as_cancelled_in_calendar_after_the_push(
    app, client, auth, session, sandbox, pushed, recruiter, panel
):
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    host = interview.host_link
    open_channel(app, session, host)
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": host.account_email,
            "action": "delete",
            "event_id": interview.events[0].event_id,
        },
    )
    delivered = sandbox.deliver()
    assert delivered
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.CANCELLED_IN_CALENDAR
    assert interview.needs_notice
    auth.login(recruiter.email)
    listing = client.get("/interviews/").get_data(as_text=True)
    assert "changed in a calendar" in listing and "Cancelled in calendar" in listing
    past = listing[listing.index('id="past"') :]
    assert "Cancelled in calendar" in past  # no longer among the upcoming ones
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert "cancelled in the calendar" in page
    session.expire_all()
    assert not session.get(Interview, interview.id).needs_notice  # told once


def test_moved_in_outlook_shows_the_new_time(
    app, client, auth, session, sandbox, pushed, recruiter, panel
):
    query = query_for(panel)
    slot = first_slot(app, session, recruiter, query)
    interview, _ = schedule(app, session, recruiter, query, slot.start)
    host = interview.host_link
    open_channel(app, session, host)
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": host.account_email,
            "action": "move",
            "event_id": interview.events[0].event_id,
            "shift_minutes": 90,
        },
    )
    sandbox.deliver()
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.SCHEDULED
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    moved = (slot.start + dt.timedelta(minutes=90)).astimezone(model.zone("Europe/London"))
    assert moved.strftime("%A %d %B %Y, %H:%M") in page


def test_reconciliation_repairs_drift_both_ways(app, session, sandbox, recruiter, panel):
    broker, cipher = broker_cipher(app)
    query = query_for(panel)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    kept, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    gone, _ = schedule(app, session, recruiter, query, grid.slots[1].start)
    host = kept.host_link
    # Deleted in the calendar without any push reaching us.
    sandbox.call(
        "POST",
        "/external-change",
        json={"email": host.account_email, "action": "delete", "event_id": gone.events[0].event_id},
    )
    # An event with our prefix that no interview holds (e.g. written after a cancel raced it).
    from tests.webapp.scheduling_support import creds_of

    stray = Content(summary="stray", start=grid.slots[2].start, end=grid.slots[2].end).event(
        "rdv-" + "0" * 32 + "-0"
    )
    broker.upsert_event(creds_of(app, host), host.target_calendar_id, stray)
    # An external event in the same calendar: never touched.
    before_external = [
        e
        for e in sandbox.call("GET", "/events", params={"email": host.account_email})["events"]
        if not e.get("event_id")
    ]
    counts = sync.reconcile(session, broker, cipher)
    assert counts["cancelled_in_calendar"] == 1 and counts["orphans_deleted"] == 1
    session.expire_all()
    assert session.get(Interview, kept.id).status is InterviewStatus.SCHEDULED
    assert session.get(Interview, gone.id).status is InterviewStatus.CANCELLED_IN_CALENDAR
    remaining = {e.event_id for e in managed(app, session, host)}
    assert remaining == {kept.events[0].event_id}
    after_external = [
        e
        for e in sandbox.call("GET", "/events", params={"email": host.account_email})["events"]
        if not e.get("event_id")
    ]
    assert after_external == before_external
    assert sync.reconcile(session, broker, cipher).get("orphans_deleted", 0) == 0


def test_reconciliation_settles_writes_whose_job_gave_up(app, session, sandbox, recruiter, panel):
    broker, cipher = broker_cipher(app)
    query = query_for(panel)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    written, payload = schedule(app, session, recruiter, query, grid.slots[0].start, run=False)
    # The event got written but the confirmation was lost.
    content = sealer_of(app).open_json(f"write:{written.uid}", payload)
    from tests.webapp.scheduling_support import creds_of

    broker.upsert_event(
        creds_of(app, written.host_link),
        written.events[0].calendar_id,
        Content.from_dict(content).event(written.events[0].event_id),
    )
    lost, _ = schedule(app, session, recruiter, query, grid.slots[1].start, run=False)
    later = utcnow() + dt.timedelta(hours=1)
    sync.reconcile(session, broker, cipher, now=later)
    session.expire_all()
    assert session.get(Interview, written.id).status is InterviewStatus.SCHEDULED
    failed = session.get(Interview, lost.id)
    assert failed.status is InterviewStatus.FAILED and failed.needs_notice
    assert (
        session.scalars(select(CreatedEvent).where(CreatedEvent.interview_id == lost.id))
        .one()
        .status
        is EventStatus.DELETED
    )


def test_failed_writes_log_no_event_content(app, session, sandbox, recruiter, panel, caplog):
    query = query_for(panel)
    slot = first_slot(app, session, recruiter, query)
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", status=503)
    with caplog.at_level(logging.DEBUG):
        interview, _ = schedule(app, session, recruiter, query, slot.start)
    assert interview.status is InterviewStatus.PENDING
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "will retry" in text  # the failure was logged…
    for content in (TITLE, CANDIDATE_EMAIL, "Casey Candidate", "secret-notes-9912"):
        assert content not in text  # …without any of the event's content


def test_a_coordinator_moves_an_interview_created_for_their_manager(app, session, sandbox, org):
    from tests.factories import assign

    manager = make_user(
        session, org, Role.RECRUITER, email="dana.wright@contoso.example", name="Dana Wright"
    )
    mlink = link_calendar(app, session, sandbox, manager)
    coordinator = make_user(session, org, Role.COORDINATOR, email="msp@northwind.example")
    assign(session, coordinator, manager)
    broker, cipher = broker_cipher(app)
    query = model.Query(
        panel_link_ids=(mlink.id,), start_date=next_weekday(1), days=5, on_behalf_of_id=manager.id
    )
    grid = free_slots.grid(session, broker, cipher, actor_of(coordinator), query)
    interview, _ = schedule(app, session, coordinator, query, grid.slots[0].start)
    moved, payload = rescheduling.reschedule_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(coordinator),
        interview.uid,
        grid.slots[-1].start,
        jobs=deps.jobs.of(app),  # the write job runs at once
    )
    [ev] = ours(app, session, mlink, interview.uid)
    assert ev.start == grid.slots[-1].start


def test_reconciliation_reads_only_calendars_we_wrote_to(app, session, sandbox, recruiter, panel):
    broker, cipher = broker_cipher(app)
    query = query_for(panel)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    interview, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    written = {e.profile_link_id for e in interview.events}
    assert len(written) < len(panel) + 1  # the panel's other calendars hold no event of ours
    sandbox.call("DELETE", "/stats")
    sync.reconcile(session, broker, cipher)
    assert sandbox.stats()["requests"].get("GET /v1/events", 0) == len(written)


def test_the_periodic_reconciliation_spreads_its_pass_over_the_period_and_repairs_drift(
    app, session, sandbox, recruiter, panel
):
    """The job runs every minute and reads the part of the 15-minute pass due then (one read
    per interviewing calendar in all), in the background lane as periodic work."""
    from webapp.services import pacing

    broker, cipher = broker_cipher(app)
    query = query_for(panel)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    kept, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    gone, _ = schedule(app, session, recruiter, query, grid.slots[1].start)
    written = {e.profile_link_id for i in (kept, gone) for e in i.events}
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": gone.host_link.account_email,
            "action": "delete",
            "event_id": gone.events[0].event_id,
        },
    )
    sandbox.call("DELETE", "/stats")
    jobs = deps.jobs.of(app)
    start = utcnow()
    reports = []
    for minute in range(15):
        at = start + dt.timedelta(minutes=minute)
        reports.append(
            sync.reconcile_tick(session, broker, cipher, jobs, now=at, clock=lambda at=at: at)
        )
    assert sum(r.done for r in reports) == len(written)
    assert max(r.done for r in reports) == 1  # ceil(links / 15) a minute, not all at once
    assert sum(r.counts.get("cancelled_in_calendar", 0) for r in reports) == 1
    assert sandbox.stats()["requests"].get("GET /v1/events", 0) == len(written)
    session.expire_all()
    assert session.get(Interview, gone.id).status is InterviewStatus.CANCELLED_IN_CALENDAR
    assert session.get(Interview, kept.id).status is InterviewStatus.SCHEDULED
    [status] = [s for s in pacing.status(jobs, now=start) if s.name == sync.RECONCILE_TASK]
    assert not status.running and not status.behind and status.done == len(written)
    # the job itself (real time): the new pass waits for the period to end
    result = jobs._tasks["scheduling.reconcile_events"].call_local()
    assert result["outcome"] == "idle"
