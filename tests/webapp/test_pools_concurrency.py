"""Pool limits hold under concurrent bookings: many bookings at once, at different times of one
day, each asking "any 1" from a pool whose two people may do one interview a day each. Exactly
two win (one per person); nobody ends the day over their limit.

Different times, so the slot claims (which stop two bookings of one time) play no part: only the
pick's lock (``picking.lock_people``) stands between the racers and an over-limit day. Run in one
process against SQLite or PostgreSQL (threads of the test server), and across four gunicorn
workers on PostgreSQL (the PostgreSQL pass of .ci/run).
"""

from __future__ import annotations

import datetime as dt

import requests
from sqlalchemy import func, select

from models import Interview, InterviewLoad, Role
from tests.factories import make_user
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_booking_claims import CSRF_RE, run_together, web_login
from tests.webapp.test_multiworker import gunicorn, postgres_only  # noqa: F401 (fixture)
from tests.webapp.test_pools_scheduling import actor_of, grid_of, week_ahead
from webapp.services.availability import model
from webapp.services.pools import manage

RACERS = 8


def race_world(app, session, sandbox, org, recruiter):
    """A pool of two (one interview a day each) and RACERS start times of one day, apart from
    each other, at which both are free."""
    admin = make_user(session, org, Role.ADMIN)
    people = make_panel(app, session, sandbox, org, 2)
    pool = manage.create_pool(session, actor_of(admin), "Backend")
    for user, _link in people:
        manage.add_member(session, actor_of(admin), pool.id, user.id, max_per_day=1)
    subs = {link.sub for _u, link in people}
    for offset in range(7):
        day = week_ahead() + dt.timedelta(days=offset)
        query = model.Query(
            panel_link_ids=(), start_date=day, days=1, duration=15, pools=((pool.id, 1),)
        )
        starts, last_end = [], None
        for slot in grid_of(app, session, recruiter, query).slots:
            if subs <= set(slot.participants) and (last_end is None or slot.start >= last_end):
                starts.append(slot.start)
                last_end = slot.end
        if len(starts) >= RACERS:
            return pool, people, day, starts[:RACERS]
    raise AssertionError("no day with enough common free time in the seeded calendars")


def booker(base: str, browser: requests.Session, pool, day: dt.date, start: dt.datetime):
    def go() -> str:
        with requests.Session() as own:
            own.cookies.update(browser.cookies)
            page = own.get(base + "/schedule/", timeout=60)
            response = own.post(
                base + "/schedule/",
                timeout=60,
                allow_redirects=False,
                data={
                    "csrf_token": CSRF_RE.search(page.text).group(1),
                    "pools": f"{pool.id}:1",
                    "duration": "15",
                    "days": "1",
                    "start_date": day.isoformat(),
                    "required": "all",
                    "tzid": "Europe/London",
                    "slot": start.isoformat(),
                    "candidate_name": "R",
                    "candidate_email": "r@gmail.example",
                    "title": "Race",
                },
            )
        assert response.status_code in (303, 409), response.text[:300]
        if response.status_code == 409:
            assert "Nobody from the pool can take that time any more" in response.text
        return "won" if response.status_code == 303 else "lost"

    return go


def check(session, outcomes, people):
    assert sorted(outcomes) == ["lost"] * (RACERS - 2) + ["won"] * 2, outcomes
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Interview)) == 2
    per_person = dict(
        session.execute(
            select(InterviewLoad.user_id, func.count()).group_by(InterviewLoad.user_id)
        ).all()
    )
    assert per_person == {u.id: 1 for u, _l in people}  # each at their limit, nobody over it


def test_concurrent_bookings_never_push_anyone_over_their_daily_limit(
    app, session, sandbox, org, recruiter, live_server
):
    pool, people, day, starts = race_world(app, session, sandbox, org, recruiter)
    browser = web_login(live_server.url, recruiter.email)
    outcomes = run_together([booker(live_server.url, browser, pool, day, s) for s in starts])
    check(session, outcomes, people)


def test_concurrent_bookings_respect_limits_across_gunicorn_workers(
    postgres_only,  # noqa: F811
    app,
    session,
    sandbox,
    org,
    recruiter,
    database_url,
    redis_url,
    tmp_path,
):
    pool, people, day, starts = race_world(app, session, sandbox, org, recruiter)
    with gunicorn(sandbox, database_url, redis_url, tmp_path) as (base, _output):
        browser = web_login(base, recruiter.email)
        outcomes = run_together([booker(base, browser, pool, day, s) for s in starts])
    check(session, outcomes, people)
