"""Shadows under concurrent bookings across gunicorn workers on PostgreSQL (run on the PostgreSQL
pass of .ci/run): two loops booked at once both bring the pool's one shadow, whose limit is one
interview a day. Both loops are booked (a shadow never refuses a booking), and the shadow sits in
on exactly one of them: the booking that commits second counts the first's shadow under the
pool's lock and goes without."""

from __future__ import annotations

from sqlalchemy import select

from models import InterviewLoad, InterviewLoop, InterviewStatus, LoopState
from tests.webapp.loop_support import option_posted, session_interviews
from tests.webapp.test_booking_claims import CSRF_RE, run_together, web_login
from tests.webapp.test_multiworker import (
    SECRET_KEY,
    _our_events,
    _scheduled,
    gunicorn,
    postgres_only,  # noqa: F401 (a fixture)
)
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp.security import Sealer
from webapp.services.loops import availability, compose
from webapp.services.loops import plan as loop_plan


def shadowed_loop(session, sealer, me, link, pool, start, days):
    """A loop of two sessions: ``link``'s person alone, then one of ``pool`` bringing a shadow."""
    return compose.compose_loop(
        session,
        sealer,
        me,
        loop_plan.LoopPlan(
            title="Onsite",
            candidate_name="C",
            candidate_email=f"c{link.id}@gmail.example",
            sessions=(
                loop_plan.SessionPlan("Intro", 30, (link.id,)),
                loop_plan.SessionPlan(
                    "Bar raiser", 30, (), pool_id=pool.id, pool_count=1, bring_shadow=True
                ),
            ),
            start_date=start,
            days=days,
        ),
    )


def test_one_shadow_at_a_daily_limit_sits_in_on_one_of_two_loops_booked_at_once(
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
    from tests.webapp.scheduling_support import make_panel, next_weekday
    from webapp.services.pools import manage

    (ua, la), (ub, lb), (up, lp), (us, ls) = make_panel(app, session, sandbox, org, 4)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Bar raisers")
    manage.add_member(session, me, pool.id, up.id)
    manage.add_member(session, me, pool.id, us.id, is_shadow=True, max_per_day=1)
    sealer = Sealer.from_secret(SECRET_KEY)  # the serving app's: it opens the loops' details
    day = next_weekday(29)  # the seeded calendars are quiet then

    x, y = (shadowed_loop(session, sealer, me, link, pool, day, 1) for link in (la, lb))
    broker, _cipher = broker_cipher(app)
    ox = availability.loop_times(session, broker, sealer, me, x).options[0]
    oy = next(
        o
        for o in availability.loop_times(session, broker, sealer, me, y).options
        if o.stops[1].start >= ox.end
    )
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):
        browser = web_login(base, recruiter.email)
        token = CSRF_RE.search(browser.get(f"{base}/schedule/loops/", timeout=60).text).group(1)
        # Both bookings have asked the aggregator (the shadow free for each) before either commits.
        sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)
        sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)

        outcomes = run_together(
            [
                option_posted(
                    base, browser, token, f"/schedule/loops/{loop.uid}/book", o.value, said="booked"
                )
                for loop, o in ((x, ox), (y, oy))
            ]
        )
        sandbox.clear_faults()
        interviews = _scheduled(session)
        events = _our_events(sandbox, recruiter.email)
    assert outcomes == ["booked", "booked"], outcomes
    session.expire_all()
    assert [session.get(InterviewLoop, lp_.id).state for lp_ in (x, y)] == [LoopState.BOOKED] * 2
    assert len([i for i in interviews if i.status is InterviewStatus.SCHEDULED]) == 4
    sittings = session.scalars(
        select(InterviewLoad).where(InterviewLoad.user_id == us.id, InterviewLoad.is_shadow)
    ).all()
    assert len(sittings) == 1 and sittings[0].pool_id == pool.id
    codings = {session_interviews(session, lp_)[1].id for lp_ in (x, y)}
    assert sittings[0].interview_id in codings
    # The shadow is invited to exactly one event; nobody counts them among the interviewers.
    invited = [
        e
        for e in events
        if us.email.lower() in {a["email"].lower() for a in e.get("attendees", [])}
    ]
    assert len(invited) == 1
    for interview_id in codings:
        assert ls.id not in session.get(type(interviews[0]), interview_id).panel_link_ids


def test_a_loop_move_racing_a_booking_for_a_one_a_day_shadow_sits_them_in_once(
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
    """Loop X (shadow sitting in, one interview a day at most) moves to the next day while loop
    Y is booked on that day, across workers, both having asked the aggregator before either
    commits. The move keeps the shadow only if they are under their limit there, read under the
    same locks the booking takes: whichever commits second counts the first, so the shadow sits
    in on exactly one interview that day (the move and the booking both go through)."""
    import datetime as dt

    from tests.webapp.scheduling_support import make_panel, next_weekday
    from webapp.services.pools import manage

    (ua, la), (ub, lb), (up, lp), (us, ls) = make_panel(app, session, sandbox, org, 4)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Bar raisers")
    manage.add_member(session, me, pool.id, up.id)
    manage.add_member(session, me, pool.id, us.id, is_shadow=True, max_per_day=1)
    sealer = Sealer.from_secret(SECRET_KEY)  # the serving app's: it opens the loops' details
    first = next_weekday(29)  # the seeded calendars are quiet then
    if first.isoweekday() == 5:
        first += dt.timedelta(days=3)  # two working days in a row
    second = first + dt.timedelta(days=1)

    x, y = (shadowed_loop(session, sealer, me, link, pool, first, 2) for link in (la, lb))
    broker, _cipher = broker_cipher(app)
    xs = availability.loop_times(session, broker, sealer, me, x).options
    ox = next(o for o in xs if o.start.date() == first)
    moved = next(o for o in xs if o.start.date() == second)
    oy = next(
        o
        for o in availability.loop_times(session, broker, sealer, me, y).options
        if o.start.date() == second and o.stops[1].start >= moved.end
    )
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):
        browser = web_login(base, recruiter.email)
        token = CSRF_RE.search(browser.get(f"{base}/schedule/loops/", timeout=60).text).group(1)
        booked = browser.post(  # X first, on its own: the shadow sits in on its bar raiser
            f"{base}/schedule/loops/{x.uid}/book",
            data={"csrf_token": token, "option": ox.value},
            timeout=60,
            allow_redirects=False,
        )
        assert booked.status_code == 303, booked.text[:300]
        _written(session, x, output)
        x_coding = session_interviews(session, x)[1]
        assert [
            r.user_id
            for r in session.scalars(
                select(InterviewLoad).where(
                    InterviewLoad.interview_id == x_coding.id, InterviewLoad.is_shadow
                )
            )
        ] == [us.id]
        sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)
        sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)

        outcomes = run_together(
            [
                option_posted(
                    base, browser, token, f"/schedule/loops/{x.uid}/reschedule", moved.value
                ),
                option_posted(base, browser, token, f"/schedule/loops/{y.uid}/book", oy.value),
            ]
        )
        sandbox.clear_faults()
        _scheduled(session)
        events = _our_events(sandbox, recruiter.email)
    assert outcomes == ["done", "done"], outcomes
    session.expire_all()
    sittings = session.scalars(
        select(InterviewLoad).where(InterviewLoad.user_id == us.id, InterviewLoad.is_shadow)
    ).all()
    assert len(sittings) == 1, [(s.interview_id, s.starts_at) for s in sittings]
    assert sittings[0].starts_at.date() == second
    codings = {x_coding.id, session_interviews(session, y)[1].id}
    assert sittings[0].interview_id in codings
    invited = [
        e
        for e in events
        if us.email.lower() in {a["email"].lower() for a in e.get("attendees", [])}
    ]
    assert len(invited) == 1, invited


def _written(session, loop, output, timeout: float = 60) -> None:
    """Wait until the jobs worker wrote the loop's sessions (scheduled, moveable)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        session.expire_all()
        statuses = [i.status for i in session_interviews(session, loop)]
        if all(s is InterviewStatus.SCHEDULED for s in statuses):
            return
        assert time.monotonic() < deadline, (statuses, output())
        time.sleep(0.2)
