"""A candidate moving their interview races other bookings of the same time, across gunicorn
workers on PostgreSQL: the slot claims let exactly one of them have it (the PostgreSQL pass of
.ci/run runs this)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from sqlalchemy import select

from models import Interview, InterviewStatus, SlotClaim
from tests.conftest import CSRF_RE
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_candidate_links import slots_on_page
from tests.webapp.test_multiworker import SECRET_KEY, _our_events, _scheduled, gunicorn
from tests.webapp.test_scheduling import actor_of
from webapp.security import Sealer
from webapp.services import candidate_links


@pytest.fixture
def on_postgres(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several worker processes need PostgreSQL (the PostgreSQL pass of .ci/run)")


@pytest.mark.parametrize("head_start", [0.0, 0.25], ids=["together", "candidate-first"])
def test_a_candidates_move_and_other_bookings_of_that_time_make_one_booking_across_workers(
    on_postgres,
    app,
    session,
    sandbox,
    org,
    recruiter,
    database_url,
    redis_url,
    tmp_path,
    head_start,
):
    """The candidate's move (its form already open) against three API bookings of the same
    time, all at once or with the candidate a little ahead: exactly one of them has it."""
    from tests.webapp.test_booking_claims import race_world, racers, run_together

    people = [link for _u, link in make_panel(app, session, sandbox, org, 1)]
    panel, slot, api_token, _tokens = race_world(
        app, session, sandbox, org, recruiter, people, seal=Sealer.from_secret(SECRET_KEY)
    )
    sandbox.call("DELETE", "/faults")  # the candidate books at ordinary speed first
    _link, token = candidate_links.create_link(
        session,
        Sealer.from_secret(SECRET_KEY),
        actor_of(recruiter),
        panel_link_ids=[people[0].id],
        duration=60,
        start_date=slot.start.date(),
        days=2,
        expires_days=3,
        candidate_name="Casey Mover",
        candidate_email="casey.mover@gmail.example",
        candidate_tzid="Europe/London",
        title="Move race",
        candidate_may_change=True,
        change_cutoff_hours=0,
    )
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, _out):
        with requests.Session() as candidate:
            page = candidate.get(f"{base}/c/{token}", timeout=60).text
            far = [
                s
                for s in slots_on_page(page)
                if abs(dt.datetime.fromisoformat(s) - slot.start) >= dt.timedelta(hours=3)
            ]
            booked = candidate.post(
                f"{base}/c/{token}",
                timeout=60,
                data={"csrf_token": CSRF_RE.search(page).group(1), "slot": far[-1]},
            )
            assert booked.status_code == 200, booked.text[:300]
            [mine] = _scheduled(session)
            assert mine.status is InterviewStatus.SCHEDULED
            sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)

            form = candidate.get(f"{base}/c/{token}/reschedule", timeout=60)
            assert form.status_code == 200, form.text[:300]

            def move():
                response = candidate.post(
                    f"{base}/c/{token}/reschedule",
                    timeout=60,
                    allow_redirects=False,
                    data={
                        "csrf_token": CSRF_RE.search(form.text).group(1),
                        "slot": slot.start.isoformat(),
                    },
                )
                assert response.status_code in (302, 409), response.text[:300]
                return "won" if response.status_code == 302 else "lost"

            api, _web, _candidates = racers(base, panel, slot, api_token, [], None)

            def later_api():
                time.sleep(head_start)
                return api()

            outcomes = run_together([move, later_api, later_api, later_api])
            interviews = _scheduled(session)
    assert sorted(outcomes) == ["lost"] * 3 + ["won"], outcomes
    holders = {
        c.interview_id
        for c in session.scalars(select(SlotClaim).where(SlotClaim.starts_at == slot.start))
    }
    assert len(holders) <= 1
    session.expire_all()
    mine = session.get(Interview, mine.id)
    if outcomes[0] == "won":  # the candidate's interview moved; no other booking was made
        assert len(interviews) == 1 and mine.status is InterviewStatus.SCHEDULED
        assert len(_our_events(sandbox, recruiter.email)) == 1
    else:  # an API booking has the time; the candidate keeps theirs
        assert len(interviews) == 2
        assert all(i.status is InterviewStatus.SCHEDULED for i in interviews)
        assert len(_our_events(sandbox, recruiter.email)) == 2
    events = _our_events(sandbox, recruiter.email)
    starts = [e["start"] for e in events]
    assert slot.start.strftime("%Y-%m-%dT%H:%M:%SZ") in starts
