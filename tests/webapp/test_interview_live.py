"""The interview page follows its calendar write: a status endpoint its script polls (the same
people as the page, nothing from the calendar), and without JavaScript a Refresh link and a
reload that stops once the write settles or after a few minutes."""

from __future__ import annotations

import datetime as dt

import pytest

from models import Interview, InterviewStatus, Role, utcnow
from tests.factories import assign, make_org, make_user
from tests.held_jobs import HeldJobs
from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_scheduling import (
    CANDIDATE,
    CANDIDATE_EMAIL,
    NOTES,
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
from webapp.services.scheduling import booking, rescheduling, sync

META_REFRESH = 'http-equiv="refresh"'


@pytest.fixture
def trio(app, session, sandbox, org, recruiter):
    """Three colleagues with linked calendars besides Riley."""
    return make_panel(app, session, sandbox, org, 3)


def run_held(app, held: HeldJobs) -> None:
    """Run what a service queued, now (the test app's queue runs each job at once)."""
    for name, args in held.queued:
        deps.jobs.of(app).enqueue(name, *args)
    held.queued.clear()


def pending_interview(app, session, recruiter, trio):
    query = query_for(trio)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start, run=False
    )
    return interview, query


def status_of(client, uid: str):
    response = client.get(f"/interviews/{uid}/status")
    return response.status_code, response.get_json(silent=True)


def test_status_follows_the_write_and_says_nothing_of_the_calendar(
    app, client, auth, session, sandbox, recruiter, trio
):
    query = query_for(trio)
    slot = first_slot(app, session, recruiter, query)
    held = HeldJobs()
    broker, cipher = broker_cipher(app)
    interview, _ = booking.create_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(recruiter),
        booking.NewInterview(
            query=query,
            start=slot.start,
            candidate_name=CANDIDATE,
            candidate_email=CANDIDATE_EMAIL,
            title=TITLE,
            notes=NOTES,
            video=True,
        ),
        jobs=held,
    )
    auth.login(recruiter.email)

    code, answer = status_of(client, interview.uid)
    assert code == 200
    assert answer == {
        "status": "pending",
        "label": "Being written to the calendar",
        "settling": True,
    }
    response = client.get(f"/interviews/{interview.uid}/status")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    for secret in (TITLE, CANDIDATE, CANDIDATE_EMAIL, NOTES, slot.start.isoformat()[:16]):
        assert secret not in body

    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert "not in the calendar yet" in page
    assert META_REFRESH in page and "<noscript>" in page  # without JavaScript: reload itself
    assert f'href="/interviews/{interview.uid}">Refresh</a>' in page
    assert f'data-status-url="/interviews/{interview.uid}/status"' in page
    assert "data-settling" in page and "interview_live.js" in page

    run_held(app, held)  # the calendar confirms
    code, answer = status_of(client, interview.uid)
    assert (code, answer["status"], answer["settling"]) == (200, "scheduled", False)
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    local = slot.start.astimezone(model.zone("Europe/London")).strftime("%H:%M")
    assert TITLE in page and local in page
    assert META_REFRESH not in page and "data-settling" not in page and ">Refresh</a>" not in page


def test_a_move_shows_the_old_time_as_being_written_until_it_is_confirmed(
    app, client, auth, session, sandbox, recruiter, trio
):
    query = query_for(trio)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    interview, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    old, new = grid.slots[0].start, grid.slots[-1].start
    held = HeldJobs()
    rescheduling.reschedule_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(recruiter),
        interview.uid,
        new,
        jobs=held,
    )
    auth.login(recruiter.email)
    fmt = "%A %d %B %Y, %H:%M"
    tz = model.zone("Europe/London")
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert (
        old.astimezone(tz).strftime(fmt) in page
        and "(as the calendar has it now; a change is being written)" in page
    )
    assert status_of(client, interview.uid)[1]["settling"] is True

    run_held(app, held)
    assert status_of(client, interview.uid)[1]["status"] == "scheduled"
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert new.astimezone(tz).strftime(fmt) in page
    assert "being written" not in page and META_REFRESH not in page


def test_without_javascript_the_page_stops_reloading_after_a_few_minutes(
    app, client, auth, session, sandbox, recruiter, trio
):
    interview, _query = pending_interview(app, session, recruiter, trio)
    session.get(Interview, interview.id).updated_at = dt.datetime.now(dt.UTC) - dt.timedelta(
        minutes=6
    )
    session.commit()
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert META_REFRESH not in page  # a write this late is stuck: no endless reloading
    assert ">Refresh</a>" in page and "data-settling" in page  # the script still follows it


def test_the_status_is_for_those_who_see_the_page(
    app, client, auth, session, sandbox, org, recruiter, trio, cipher
):
    interview, _query = pending_interview(app, session, recruiter, trio)
    uid = interview.uid

    assert client.get(f"/interviews/{uid}/status").status_code in (302, 303)  # log in first

    member = trio[0][0]  # on the panel, did not schedule it: sees it, as on the page
    auth.login(member.email)
    assert status_of(client, uid)[0] == 200
    auth.logout()

    coordinator = make_user(session, org, Role.COORDINATOR, email="coord@northwind.example")
    assign(session, coordinator, make_user(session, org, Role.RECRUITER))
    auth.login(coordinator.email)  # a coordinator of another manager
    assert status_of(client, uid)[0] == 404
    assert client.get(f"/interviews/{uid}").status_code == 404
    auth.logout()

    neighbour = seed_neighbour(session, cipher, [recruiter])
    twin = neighbour.twins[recruiter.email]  # same address, the neighbour's account

    auth.login(twin.email, NEIGHBOUR_PASSWORD)
    assert status_of(client, uid)[0] == 404
    auth.logout()

    outsider = make_user(session, make_org(session), Role.RECRUITER)
    auth.login(outsider.email)
    assert status_of(client, uid)[0] == 404
    assert status_of(client, "x" * 40)[0] == 404
    session.expire_all()
    assert session.get(Interview, interview.id).status is InterviewStatus.PENDING


def test_a_cancellation_and_a_write_that_never_gets_through_settle_too(
    app, client, auth, session, sandbox, recruiter, trio
):
    query = query_for(trio)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    cancelled, _ = schedule(app, session, recruiter, query, grid.slots[0].start)
    held = HeldJobs()
    booking.cancel_interview(session, actor_of(recruiter), cancelled.uid, jobs=held)
    auth.login(recruiter.email)
    assert status_of(client, cancelled.uid)[1] == {
        "status": "cancelling",
        "label": "Being cancelled",
        "settling": True,
    }
    page = client.get(f"/interviews/{cancelled.uid}").get_data(as_text=True)
    assert "deleting this interview from the calendar" in page and META_REFRESH in page
    run_held(app, held)
    assert status_of(client, cancelled.uid)[1]["status"] == "cancelled"
    assert status_of(client, cancelled.uid)[1]["settling"] is False

    # A write that never gets through: reconciliation gives up on it, and the page stops waiting.
    failing, _query = pending_interview(app, session, recruiter, trio)
    session.get(Interview, failing.id).updated_at = utcnow() - 2 * sync.PENDING_GIVE_UP
    session.commit()
    sync.reconcile(session, broker, cipher)
    assert status_of(client, failing.uid)[1] == {
        "status": "failed",
        "label": "Could not be written",
        "settling": False,
    }
    page = client.get(f"/interviews/{failing.uid}").get_data(as_text=True)
    assert "could not be written to the calendar" in page
    assert META_REFRESH not in page and "data-settling" not in page
