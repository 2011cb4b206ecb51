"""What POST /interviews and /reschedule answer: the requested title and times (the calendar
write is queued, so nothing can be read back yet), marked ``in_calendar: false``; GET answers
with what the calendar says, marked ``in_calendar: true``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from models import Interview, InterviewStatus
from tests.api.conftest import ApiClient, issue_token
from tests.api.test_scheduling import TITLE, _panel_params, _schedule
from tests.conftest import register_redirect_uris
from webapp import deps


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@pytest.fixture
def queued_app_config(app_config, tmp_path):
    """Jobs wait in a queue (as in production) instead of running inside the request."""
    return dict(app_config, JOBS_IMMEDIATE=False, JOBS_SQLITE_PATH=str(tmp_path / "jobs.db"))


@pytest.fixture
def queued(queued_app_config, sandbox):
    from webapp import create_app

    app = create_app(queued_app_config)
    register_redirect_uris(sandbox, app)
    yield app
    deps.database.of(app).engine.dispose()


def test_a_created_interview_answers_with_what_was_requested_while_queued(
    app, queued, session, sandbox, recruiter, panel
):
    api = ApiClient(queued.test_client(), issue_token(session, recruiter))
    slots = api.get("/availability", query_string=_panel_params(panel)).get_json()["slots"]
    created = _schedule(api, panel, slots[0]["start"], duration=45)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "pending" and body["in_calendar"] is False
    assert body["title"] == TITLE
    assert _at(body["start"]) == _at(slots[0]["start"])
    assert _at(body["end"]) == _at(slots[0]["start"]) + dt.timedelta(minutes=45)

    # Nothing is in the calendar yet: reading it back says so instead of inventing values.
    shown = api.get(f"/interviews/{body['uid']}").get_json()
    assert shown["status"] == "pending" and shown["in_calendar"] is False
    assert shown["title"] is None and shown["start"] is None
    # The queued write is still the only place the event's content lives.
    assert deps.jobs.of(queued).huey.pending_count() == 1
    interview = session.scalar(select(Interview).where(Interview.uid == body["uid"]))
    assert interview.status is InterviewStatus.PENDING


def test_answers_say_whether_the_calendar_confirmed(
    app, client, session, sandbox, recruiter, panel
):
    """With the write done (jobs run at once here), GET reads the event: in_calendar true; a move
    answers with the new times as requested."""
    api = ApiClient(client, issue_token(session, recruiter))
    slots = api.get("/availability", query_string=_panel_params(panel)).get_json()["slots"]
    created = _schedule(api, panel, slots[0]["start"]).get_json()
    assert created["title"] == TITLE and created["in_calendar"] is False
    assert _at(created["end"]) - _at(created["start"]) == dt.timedelta(minutes=60)

    shown = api.get(f"/interviews/{created['uid']}").get_json()
    assert shown["status"] == "scheduled" and shown["in_calendar"] is True
    assert shown["title"] == TITLE and _at(shown["start"]) == _at(created["start"])
    listed = api.get("/interviews").get_json()["items"]
    assert [(i["uid"], i["in_calendar"]) for i in listed] == [(created["uid"], True)]

    later = next(s["start"] for s in slots[1:] if s["start"] >= slots[0]["end"])
    moved = api.post(f"/interviews/{created['uid']}/reschedule", json={"start": later})
    assert moved.status_code == 200, moved.get_json()
    answer = moved.get_json()
    # A move asked for new times only: the title is not repeated (it is calendar content).
    assert answer["in_calendar"] is False and answer["title"] is None
    assert _at(answer["start"]) == _at(later)
    assert _at(answer["end"]) == _at(later) + dt.timedelta(minutes=60)  # keeps its length

    cancelled = api.post(f"/interviews/{created['uid']}/cancel").get_json()
    assert cancelled["in_calendar"] is False and cancelled["start"] is None


def test_the_requested_title_is_not_kept_with_an_idempotency_key(
    app, client, session, sandbox, recruiter, panel
):
    """The first answer is kept (sealed) for a retry, but calendar content never rests in the
    database: the kept copy has no title, and a replay echoes it from the (same) request."""
    from models import IdempotencyKey
    from webapp.services import idempotency

    api = ApiClient(client, issue_token(session, recruiter))
    slots = api.get("/availability", query_string=_panel_params(panel)).get_json()["slots"]
    body = {
        "panel": [link.id for _u, link in panel],
        "start": slots[0]["start"],
        "title": f"  {TITLE} ",
        "candidate_name": "Casey Candidate",
        "candidate_email": "casey.candidate@gmail.example",
    }
    key = {"Idempotency-Key": "retry-safe-7"}
    first = api.post("/interviews", json=body, headers=key)
    assert first.status_code == 201 and first.get_json()["title"] == TITLE
    session.expire_all()
    (row,) = session.scalars(select(IdempotencyKey)).all()
    kept = idempotency._open(deps.cipher.of(app), row)
    assert TITLE not in kept and '"title": null' in kept
    again = api.post("/interviews", json=body, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
