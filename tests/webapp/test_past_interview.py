"""An interview whose time has come can no longer be moved or cancelled: the calendar has told
everyone and the meeting is under way or over. The service refuses (a clear 4xx on the web and
through the API, nothing changed) and the interview's page no longer offers either.

The app runs on real time (``models.utcnow``); the test books a slot ahead as usual, then moves
the process's clock (time-machine, which the sandbox's clock follows too) to a fixed instant
ten minutes after that slot began."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from models import Interview, InterviewStatus
from tests.api.conftest import ApiClient, issue_token
from tests.webapp.test_scheduling import (
    actor_of,
    broker_cipher,
    managed,
    query_for,
    schedule,
    sealer_of,
)
from webapp import deps
from webapp.services.availability import free_slots
from webapp.services.errors import Invalid
from webapp.services.scheduling import reading, rescheduling

TAKEN_PLACE = "This interview has already taken place."


def test_a_started_interview_is_neither_moved_nor_cancelled(
    app, client, auth, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    start = grid.slots[0].start
    interview, _ = schedule(app, session, recruiter, query, start)
    uid = interview.uid
    auth.login(recruiter.email)
    before = client.get(f"/interviews/{uid}").get_data(as_text=True)
    assert f'href="/interviews/{uid}/reschedule"' in before and "Cancel interview" in before
    assert TAKEN_PLACE not in before

    with time_machine.travel(start + dt.timedelta(minutes=10), tick=True):
        tomorrow = start + dt.timedelta(days=1)
        with pytest.raises(Invalid, match=TAKEN_PLACE):
            rescheduling.reschedule_interview(
                session,
                broker,
                cipher,
                sealer_of(app),
                actor_of(recruiter),
                uid,
                tomorrow,
                jobs=deps.jobs.of(app),
            )
        session.rollback()

        auth.login(recruiter.email)
        shown = client.get(f"/interviews/{uid}").get_data(as_text=True)
        assert "already taken place, so it can no longer be moved or cancelled" in shown
        assert "/reschedule" not in shown and "Cancel interview" not in shown
        form = client.get(f"/interviews/{uid}/reschedule")
        assert form.status_code == 400 and TAKEN_PLACE in form.get_data(as_text=True)
        confirm = client.get(f"/interviews/{uid}/cancel").get_data(as_text=True)
        assert "Yes, cancel the interview" not in confirm and "already taken place" in confirm
        refused = auth.post(
            f"/interviews/{uid}/cancel",
            {"confirm": "yes"},
            form_page=f"/interviews/{uid}",
            follow_redirects=True,
        )
        assert TAKEN_PLACE in refused.get_data(as_text=True)
        moved = auth.post(
            f"/interviews/{uid}/reschedule",
            {"slot": tomorrow.isoformat()},
            form_page=f"/interviews/{uid}",
            follow_redirects=True,
        )
        assert TAKEN_PLACE in moved.get_data(as_text=True)

        api = ApiClient(client, issue_token(session, recruiter))
        for path, body in (
            (f"/interviews/{uid}/cancel", None),
            (f"/interviews/{uid}/reschedule", {"start": tomorrow.isoformat()}),
        ):
            answer = api.post(path, json=body) if body else api.post(path)
            assert answer.status_code == 422, answer.get_data(as_text=True)
            assert TAKEN_PLACE in answer.get_data(as_text=True)

        # Nothing changed: still scheduled, the same event at the same time.
        session.expire_all()
        kept = session.get(Interview, interview.id)
        assert kept.status is InterviewStatus.SCHEDULED
        ours = [
            e for e in managed(app, session, kept.host_link) if e.event_id.startswith(f"rdv-{uid}")
        ]
        assert len(ours) == 1 and ours[0].start == start
        assert reading.view_interview(session, broker, cipher, actor_of(recruiter), uid).started


def test_has_started_reads_the_event_time_against_a_given_now():
    class Event:
        deleted = False
        start = dt.datetime(2030, 6, 3, 10, 0, tzinfo=dt.UTC)

    at = Event.start
    assert not reading.has_started(Event(), at - dt.timedelta(seconds=1))
    assert reading.has_started(Event(), at)
    assert reading.has_started(Event(), at + dt.timedelta(hours=2))
    assert not reading.has_started(None, at)
    gone = Event()
    gone.deleted = True
    assert not reading.has_started(gone, at)
