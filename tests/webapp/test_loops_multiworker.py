"""Loops racing across gunicorn workers on PostgreSQL: overlapping loops, the same loop twice and
single interviews of the same person, all at once: exactly one booking wins, and the calendar
holds exactly its events (run on the PostgreSQL pass of .ci/run)."""

from __future__ import annotations

import requests
from sqlalchemy import select

from models import Interview, InterviewLoop, InterviewStatus, LoopState
from tests.webapp.loop_support import option_posted, plan_for
from tests.webapp.test_booking_claims import (
    CSRF_RE,
    post_schedule_form,
    run_together,
    web_login,
)
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


def _compose(app, session, recruiter, plan, sealer):
    return compose.compose_loop(session, sealer, actor_of(recruiter), plan)


def test_overlapping_loops_and_an_interview_race_one_wins_across_workers(
    postgres_only,  # noqa: F811
    app,
    session,
    sandbox,
    org,
    recruiter,
    panel,
    database_url,
    redis_url,
    tmp_path,
):
    (a, la), (b, lb) = panel
    sealer = Sealer.from_secret(SECRET_KEY)  # the serving app's: it opens the loops' details
    loops = [
        _compose(
            app,
            session,
            recruiter,
            plan_for([[la], [lb], [la], [la, lb]], titles=[f"{n}-{k}" for k in "ABCD"]),
            sealer,
        )
        for n in range(3)
    ]
    broker, _cipher = broker_cipher(app)
    option = availability.loop_times(
        session, broker, sealer, actor_of(recruiter), loops[0]
    ).options[0]
    value = option.value
    first = option.stops[0]
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):
        browser = web_login(base, recruiter.email)
        page = browser.get(f"{base}/schedule/loops/{loops[0].uid}", timeout=60).text
        assert value in page  # the server offers the same itinerary
        token = CSRF_RE.search(page).group(1)
        # Every racer's availability check passes before anyone's claim commits.
        sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)
        sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)

        def book_loop(uid):
            path = f"/schedule/loops/{uid}/book"
            return option_posted(base, browser, token, path, value, said="won", refused="lost")

        class FirstSession:  # the slot the single interviews race for: A at session 1's time
            start = first.start

        def interview():
            with requests.Session() as own:
                own.cookies.update(browser.cookies)
                response = post_schedule_form(own, base, [la], FirstSession, title="Race")
            assert response.status_code in (303, 409), response.text[:300]
            return "won" if response.status_code == 303 else "lost"

        racers = [book_loop(loop.uid) for loop in loops] + [book_loop(loops[0].uid)]
        outcomes = run_together(racers + [interview, interview])
        sandbox.clear_faults()
        interviews = _scheduled(session)
    assert sorted(outcomes) == ["lost"] * (len(racers) + 1) + ["won"], outcomes
    live = [i for i in interviews if i.status is InterviewStatus.SCHEDULED]
    session.expire_all()
    states = [session.get(InterviewLoop, loop.id).state for loop in loops]
    if LoopState.BOOKED in states:  # a loop won: its four sessions, nothing else
        assert states.count(LoopState.BOOKED) == 1 and len(live) == 4
        assert all(s is LoopState.DRAFT for s in states if s is not LoopState.BOOKED)
    else:  # the single interview won
        assert len(live) == 1 and len(interviews) == 1
    assert len(interviews) == len(live)  # no loser left anything behind
    assert len(_our_events(sandbox, recruiter.email)) == len(live)
    # Nobody is booked twice at once.
    spans = [(ev["start"], ev["end"]) for ev in _our_events(sandbox, recruiter.email)]
    assert len(set(spans)) == len(spans)
    assert (
        session.scalar(select(Interview).where(Interview.status == InterviewStatus.FAILED)) is None
    )


def test_a_pool_limit_holds_when_two_loops_pick_the_same_person_at_once_across_workers(
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
    """One pool member, at most one interview a day; two loops (different people otherwise,
    different times, the same day) each pick them at once from several workers: the booking
    that commits second sees the first's load under the pool's lock and refuses, so the
    person gets one interview that day."""
    from models import InterviewLoad
    from tests.webapp.scheduling_support import make_panel, next_weekday
    from webapp.services.pools import manage

    (ua, la), (ub, lb), (up, _lp) = make_panel(app, session, sandbox, org, 3)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Bar raisers")
    manage.add_member(session, me, pool.id, up.id, max_per_day=1)
    sealer = Sealer.from_secret(SECRET_KEY)
    day = next_weekday(29)  # the seeded calendars are quiet then

    def loop_of(link):
        return _compose(
            app,
            session,
            recruiter,
            loop_plan.LoopPlan(
                title="Onsite",
                candidate_name="C",
                candidate_email=f"c{link.id}@gmail.example",
                sessions=(
                    loop_plan.SessionPlan("Intro", 30, (link.id,)),
                    loop_plan.SessionPlan("Bar raiser", 30, (), pool_id=pool.id, pool_count=1),
                ),
                start_date=day,
                days=1,
            ),
            sealer,
        )

    x, y = loop_of(la), loop_of(lb)
    broker, _cipher = broker_cipher(app)
    ox = availability.loop_times(session, broker, sealer, me, x).options[0]
    oy = next(
        o
        for o in availability.loop_times(session, broker, sealer, me, y).options
        if o.stops[1].start >= ox.end
    )
    assert ox.stops[1].picked == oy.stops[1].picked == (up.name,)
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, output):
        browser = web_login(base, recruiter.email)
        token = CSRF_RE.search(browser.get(f"{base}/schedule/loops/", timeout=60).text).group(1)
        sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)

        def book(loop, option):
            path = f"/schedule/loops/{loop.uid}/book"
            return option_posted(
                base, browser, token, path, option.value, said="won", refused="lost"
            )

        outcomes = run_together([book(x, ox), book(y, oy)] * 3)
        sandbox.clear_faults()
        interviews = _scheduled(session)
    assert sorted(outcomes) == ["lost"] * 5 + ["won"], outcomes
    session.expire_all()
    states = sorted(session.get(InterviewLoop, loop.id).state.value for loop in (x, y))
    assert states == ["booked", "draft"]
    assert len([i for i in interviews if i.status is InterviewStatus.SCHEDULED]) == 2
    picked_rows = session.scalars(select(InterviewLoad).where(InterviewLoad.user_id == up.id)).all()
    assert len(picked_rows) == 1 and picked_rows[0].pool_id == pool.id


def test_the_last_two_sessions_cancelled_at_once_cancel_the_loop(
    postgres_only,  # noqa: F811
    app,
    session,
    sandbox,
    org,
    recruiter,
    panel,
):
    """The two sessions of a loop cancelled in two transactions at once (as two workers do):
    the first holds the loop's row until it commits, so the second, once it gets the row, sees
    the first session cancelled and ends the loop. (Without the lock each would see the other
    still live and the loop would stay booked with nothing left.)"""
    import threading

    from tests.held_jobs import HeldJobs
    from webapp import deps
    from webapp.services.loops import booking
    from webapp.services.scheduling import booking as single

    (a, la), (b, lb) = panel
    sealer = deps.sealer.of(app)
    loop = _compose(app, session, recruiter, plan_for([[la], [lb]]), sealer)
    broker, cipher = broker_cipher(app)
    option = availability.loop_times(session, broker, sealer, actor_of(recruiter), loop).options[0]
    held = HeldJobs()
    booking.book_loop(
        session,
        broker,
        sealer,
        actor_of(recruiter),
        loop.uid,
        [s.start for s in option.stops],
        jobs=held,
    )
    [(_name, args)] = held.queued
    assert booking.run_loop_write(session, broker, cipher, sealer, *args, jobs=held) == "written"
    session.expire_all()
    ids = [s.interview_id for s in session.get(InterviewLoop, loop.id).sessions]
    database = deps.database.of(app)
    second_done = threading.Event()

    def second():
        with database.sessions() as db:
            # mark_cancelling ends the loop if this was its last live session: it waits for
            # the first transaction's lock on the loop's row, then reads its cancellation.
            single.mark_cancelling(db, db.get(Interview, ids[1]))
            db.commit()
        second_done.set()

    with database.sessions() as db:
        single.mark_cancelling(db, db.get(Interview, ids[0]))  # holds the loop's row now
        worker = threading.Thread(target=second)
        worker.start()
        assert not second_done.wait(1.0), "the second transaction waits for the loop's row"
        db.commit()
    worker.join(10)
    assert second_done.is_set()
    session.expire_all()
    assert session.get(InterviewLoop, loop.id).state is LoopState.CANCELLED
