"""Interview loops, recruiter side, against the sandbox aggregator: one sequenced availability call
per loop, all-or-none booking (claims in one transaction; a failed calendar write takes every
session back), moves and cancellations through the scheduling paths, and what is (not) stored."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from models import (
    AuditEntry,
    EventStatus,
    Interview,
    InterviewLoop,
    InterviewStatus,
    LoopState,
    SlotClaim,
)
from tests.held_jobs import HeldJobs
from tests.webapp.loop_support import (
    CANDIDATE,
    CANDIDATE_EMAIL,
    compose_loop,
    plan_for,
    session_interviews,
)
from tests.webapp.scheduling_support import managed, next_weekday
from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for, schedule
from webapp import deps
from webapp.services.availability import free_slots
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.loops import availability, booking, changes, compose
from webapp.services.loops import plan as loop_plan


def times(app, session, user, loop, **kw):
    broker, _cipher = broker_cipher(app)
    return availability.loop_times(session, broker, deps.sealer.of(app), actor_of(user), loop, **kw)


def book(app, session, user, loop, option):
    broker, _cipher = broker_cipher(app)
    return booking.book_loop(
        session,
        broker,
        deps.sealer.of(app),
        actor_of(user),
        loop.uid,
        [s.start for s in option.stops],
        jobs=deps.jobs.of(app),
    )


@pytest.fixture
def four(app, session, sandbox, org, recruiter, panel):
    """A four-session loop over Riley's two colleagues (both on the last session)."""
    (a, la), (b, lb) = panel
    plan = plan_for([[la], [lb], [la], [la, lb]], titles=["Intro", "Coding", "Design", "Values"])
    return compose_loop(app, session, recruiter, plan)


def test_one_sequenced_call_gives_itineraries_in_order(app, session, sandbox, recruiter, four):
    sandbox.call("DELETE", "/stats")
    found = times(app, session, recruiter, four)
    requests = sandbox.stats()["requests"]
    assert requests.get("POST /v1/sequenced_availability") == 1
    assert not requests.get("POST /v1/availability")
    assert found.options, "the seeded panel has free mornings"
    tz = dt.UTC
    for option in found.options:
        assert [s.title for s in option.stops] == ["Intro", "Coding", "Design", "Values"]
        assert all(a.end <= b.start for a, b in zip(option.stops, option.stops[1:], strict=False))
        assert all(
            b.start - a.end <= dt.timedelta(minutes=60)
            for a, b in zip(option.stops, option.stops[1:], strict=False)
        )
        # One day in the loop's zone.

        london = ZoneInfo("Europe/London")
        assert len({s.start.astimezone(london).date() for s in option.stops}) == 1
        assert option.stops[0].start.astimezone(tz).minute == 0  # first session on the hour
    assert (
        found.options[0].stops[3].people
        == tuple(sorted(found.options[0].stops[3].people, key=lambda n: n))
        or len(found.options[0].stops[3].people) == 2
    )


def test_booking_writes_one_event_per_session(app, session, sandbox, recruiter, four, panel):
    option = times(app, session, recruiter, four).options[0]
    loop = book(app, session, recruiter, four, option)
    assert loop.state is LoopState.BOOKED
    interviews = session_interviews(session, loop)
    assert len(interviews) == 4
    assert all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    ids = [i.events[0].event_id for i in interviews]
    assert len(set(ids)) == 4 and all(i in events for i in ids)
    for stop, event_id in zip(option.stops, ids, strict=True):
        ev = events[event_id]
        assert ev.start == stop.start and ev.end == stop.end
        assert CANDIDATE_EMAIL in {a.email for a in ev.attendees}
        assert stop.title in ev.summary
    # Nothing of the content is stored: names, titles, times live in the calendar only.
    dump = " ".join(str(row) for row in session.execute(text("SELECT * FROM interview_loop")))
    assert CANDIDATE not in dump and CANDIDATE_EMAIL not in dump and "Coding" not in dump
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "loop.booked")) is not None
    # The loop's times are no longer offered to anyone sharing its people.
    again = times(
        app, session, recruiter, compose_loop(app, session, recruiter, plan_again(four, app))
    )
    assert option.value not in {o.value for o in again.options}


def plan_again(loop, app):
    return compose.plan_of(deps.sealer.of(app), loop)


def recruiter_link(session, recruiter):
    from webapp.services.connect import link_of

    return link_of(session, recruiter.id)


# --- the pages -----------------------------------------------------------------------------------


def compose_form(panel, **overrides):
    (_a, la), (_b, lb) = panel
    data = {
        "title": "Onsite: Staff Engineer",
        "candidate_name": CANDIDATE,
        "candidate_email": CANDIDATE_EMAIL,
        "candidate_tzid": "Europe/London",
        "start_date": next_weekday(1).isoformat(),
        "days": "3",
        "days_mode": "one",
        "max_break": "60",
        "shown": "4",
    }
    for n, (title, links) in enumerate(
        [("Intro", [la]), ("Coding", [lb]), ("Design", [la]), ("Values", [la, lb])], start=1
    ):
        data[f"s{n}_title"] = title
        data[f"s{n}_panel"] = [str(link.id) for link in links]
        data[f"s{n}_duration"] = "45"
        data[f"s{n}_video"] = "on"
    data.update(overrides)
    return data


def test_compose_refusals_keep_what_was_typed(client, auth, session, recruiter, panel):
    auth.login(recruiter.email)
    bad = compose_form(panel, s2_title="", candidate_email="not-an-address")
    response = auth.post("/schedule/loops/", bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "candidate&#39;s email" in page or "candidate's email" in page
    assert 'value="Onsite: Staff Engineer"' in page and 'value="Design"' in page
    assert session.scalar(select(InterviewLoop)) is None
    # One session only, an unknown person, a gap too long: each refused, nothing stored.
    for overrides, words in (
        (
            {
                "s2_title": "",
                "s2_panel": [],
                "s3_title": "",
                "s3_panel": [],
                "s4_title": "",
                "s4_panel": [],
            },
            "2 to 8 sessions",
        ),
        ({"s3_panel": ["999999"]}, "Session 3"),
        ({"s1_buffer_before": "500"}, "Gaps around session 1"),
        ({"max_break": "-5"}, "longest break"),
        ({"s2_duration": "7"}, "session 2"),
    ):
        response = auth.post("/schedule/loops/", compose_form(panel, **overrides))
        assert response.status_code == 400, overrides
        assert words in response.get_data(as_text=True), overrides
    assert session.scalar(select(InterviewLoop)) is None
    # "Add a session" shows a fifth block and keeps every value.
    more = auth.post("/schedule/loops/", dict(compose_form(panel), add_session="1"))
    page = more.get_data(as_text=True)
    assert more.status_code == 200 and 'id="s5_title"' in page and 'value="Values"' in page
    assert session.scalar(select(InterviewLoop)) is None


def test_recruiter_composes_sees_itineraries_and_books(
    client, auth, session, sandbox, recruiter, panel
):
    auth.login(recruiter.email)
    response = auth.post("/schedule/loops/", compose_form(panel))
    assert response.status_code == 303, response.get_data(as_text=True)
    url = response.headers["Location"]
    sandbox.call("DELETE", "/stats")
    page = client.get(url).get_data(as_text=True)
    assert sandbox.stats()["requests"].get("POST /v1/sequenced_availability") == 1
    assert "Book every session" in page
    assert page.count('class="loop-option"') >= 1
    assert "Intro" in page and "Values" in page
    option = re.search(r'name="option" id="option-1" value="([^"]+)"', page).group(1)
    # A made-up option is refused; nothing is booked.
    uid = url.rstrip("/").rsplit("/", 1)[1]
    forged = auth.post(f"{url}/book", {"option": "2030-01-01T10:00:00+00:00"}, form_page=url)
    assert forged.status_code == 400
    assert session.scalar(select(Interview)) is None
    done = auth.post(f"{url}/book", {"option": option}, form_page=url)
    assert done.status_code == 303, done.get_data(as_text=True)
    loop = session.scalar(select(InterviewLoop).where(InterviewLoop.uid == uid))
    assert loop.state is LoopState.BOOKED
    assert len(session_interviews(session, loop)) == 4
    booked = client.get(url).get_data(as_text=True)
    assert "Itinerary" in booked and "Move the whole loop" in booked
    assert booked.count("Scheduled") == 4
    # Booking again is refused.
    again = auth.post(f"{url}/book", {"option": option}, form_page=f"{url}")
    assert again.status_code == 400


def test_loops_stay_inside_their_organisation(app, client, auth, session, sandbox, recruiter, four):
    """A namesake recruiter of a neighbouring organisation (same address) cannot open, book or
    cancel Riley's loop, and Riley cannot touch the neighbour's."""
    from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour, snapshot

    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    theirs = neighbour.ids["interview_loop"]
    before = snapshot(session, neighbour.org.id)
    auth.login(recruiter.email)
    assert client.get(f"/schedule/loops/{four.uid}").status_code == 200
    assert client.get(f"/schedule/loops/{theirs}").status_code == 404
    mine = f"/schedule/loops/{four.uid}"
    for action in ("book", "cancel", "reschedule", "sessions/1/cancel"):
        response = auth.post(f"/schedule/loops/{theirs}/{action}", {"option": "x"}, form_page=mine)
        assert response.status_code == 404, action
    assert snapshot(session, neighbour.org.id) == before
    listing = client.get("/schedule/loops/").get_data(as_text=True)
    assert theirs not in listing
    auth.logout()
    auth.login(recruiter.email, NEIGHBOUR_PASSWORD)
    assert client.get(f"/schedule/loops/{four.uid}").status_code == 404
    assert four.uid not in client.get("/schedule/loops/").get_data(as_text=True)


# --- all or none ---------------------------------------------------------------------------------


def live_interviews(session):
    session.expire_all()
    return session.scalars(
        select(Interview).where(
            Interview.status.in_((InterviewStatus.PENDING, InterviewStatus.SCHEDULED))
        )
    ).all()


def test_a_failed_write_midway_takes_every_session_back(app, session, sandbox, recruiter, four):
    """The third session's calendar write fails (the sandbox refuses it): the two sessions
    already written are deleted from the calendar, every session is taken back, its claims
    released, and the loop is marked failed; it can be booked again."""
    option = times(app, session, recruiter, four).options[0]
    # The first two event writes pass (a 1 ms delay), every later one is refused.
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", latency_ms=1, count=2)
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", status=500)
    try:
        loop = book(app, session, recruiter, four, option)
    finally:
        sandbox.clear_faults()
    session.expire_all()
    loop = session.get(InterviewLoop, loop.id)
    assert loop.state is LoopState.FAILED
    interviews = session_interviews(session, loop)
    assert len(interviews) == 4
    assert {i.status for i in interviews} == {InterviewStatus.FAILED}
    assert all(ev.status is EventStatus.DELETED for i in interviews for ev in i.events)
    assert session.scalar(select(SlotClaim)) is None
    ours = [e for e in managed(app, session, recruiter_link(session, recruiter))]
    assert not [e for e in ours if any(e.event_id == i.events[0].event_id for i in interviews)]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "loop.write_failed"))
    assert entry.detail["failed_session"] == 3
    # Nothing holds the time any more: the same itinerary books cleanly now.
    again = times(app, session, recruiter, loop)
    assert option.value in {o.value for o in again.options}
    rebooked = book(app, session, recruiter, loop, option)
    assert rebooked.state is LoopState.BOOKED
    assert len(live_interviews(session)) == 4


def test_no_double_booking_across_loops_or_with_an_interview(
    app, session, sandbox, recruiter, panel, four
):
    (a, la), (b, lb) = panel
    option = times(app, session, recruiter, four).options[0]
    # A second loop sharing a person, and a single interview of that person, both pending
    # (their writes held), meet the first loop's claims: refused, nothing stored.
    other = compose_loop(
        app, session, recruiter, plan_for([[lb], [lb], [lb], [lb]], titles=list("ABCD"))
    )
    broker, _cipher = broker_cipher(app)
    held = HeldJobs()
    booking.book_loop(
        session,
        broker,
        deps.sealer.of(app),
        actor_of(recruiter),
        four.uid,
        [s.start for s in option.stops],
        jobs=held,
    )
    assert len(live_interviews(session)) == 4
    with pytest.raises(SlotTaken):
        booking.book_loop(
            session,
            broker,
            deps.sealer.of(app),
            actor_of(recruiter),
            other.uid,
            [s.start for s in option.stops],
            jobs=held,
            check_slots=False,
        )
    assert len(live_interviews(session)) == 4
    assert session.get(InterviewLoop, other.id).state is LoopState.DRAFT
    # A single interview of Coding's interviewer at the Coding session's time.
    coding = option.stops[1]
    with pytest.raises(SlotTaken):
        schedule(
            app, session, recruiter, query_for([(b, lb)], duration=60), coding.start, run=False
        )
    assert len(live_interviews(session)) == 4
    # And the other way round: a loop whose session meets a booked interview is refused.
    session.rollback()


def test_an_interview_booked_first_refuses_the_loop(app, session, sandbox, recruiter, panel, four):
    (a, la), (b, lb) = panel
    option = times(app, session, recruiter, four).options[0]
    design = option.stops[2]  # Design: person a
    interview, _ = schedule(
        app, session, recruiter, query_for([(a, la)], duration=60), design.start, run=False
    )
    broker, _cipher = broker_cipher(app)
    with pytest.raises(SlotTaken):
        booking.book_loop(
            session,
            broker,
            deps.sealer.of(app),
            actor_of(recruiter),
            four.uid,
            [s.start for s in option.stops],
            jobs=HeldJobs(),
            check_slots=False,
        )
    assert [i.id for i in live_interviews(session)] == [interview.id]
    # The options offered leave that time out (our claim counts as busy).
    assert option.value not in {o.value for o in times(app, session, recruiter, four).options}


# --- moving and cancelling -----------------------------------------------------------------------


def test_cancel_one_session_then_the_rest(app, session, sandbox, recruiter, four):
    option = times(app, session, recruiter, four).options[0]
    loop = book(app, session, recruiter, four, option)
    broker, cipher = broker_cipher(app)
    sealer, jobs = deps.sealer.of(app), deps.jobs.of(app)
    changes.cancel_session(
        session, broker, cipher, sealer, actor_of(recruiter), loop.uid, 2, jobs=jobs
    )
    interviews = session_interviews(session, loop)
    assert [i.status for i in interviews] == [
        InterviewStatus.SCHEDULED,
        InterviewStatus.CANCELLED,
        InterviewStatus.SCHEDULED,
        InterviewStatus.SCHEDULED,
    ]
    assert session.get(InterviewLoop, loop.id).state is LoopState.BOOKED
    with pytest.raises(Invalid):  # already cancelled
        changes.cancel_session(
            session, broker, cipher, sealer, actor_of(recruiter), loop.uid, 2, jobs=jobs
        )
    changes.cancel_loop(session, broker, cipher, sealer, actor_of(recruiter), loop.uid, jobs=jobs)
    interviews = session_interviews(session, loop)
    assert {i.status for i in interviews} == {InterviewStatus.CANCELLED}
    assert session.get(InterviewLoop, loop.id).state is LoopState.CANCELLED
    link = recruiter_link(session, recruiter)
    ids = {i.events[0].event_id for i in interviews}
    assert not [e for e in managed(app, session, link) if e.event_id in ids]


def test_move_the_whole_loop_and_one_session(app, session, sandbox, recruiter, panel):
    (a, la), (b, lb) = panel
    # Weeks ahead, where the seeded calendars are quiet: room to move.
    plan = plan_for(
        [[la], [lb], [la], [la, lb]],
        titles=["Intro", "Coding", "Design", "Values"],
        start_date=next_weekday(29),
    )
    loop = compose_loop(app, session, recruiter, plan)
    first = times(app, session, recruiter, loop).options[0]
    loop = book(app, session, recruiter, loop, first)
    broker, cipher = broker_cipher(app)
    sealer, jobs = deps.sealer.of(app), deps.jobs.of(app)
    # New itineraries leave the loop's own holds out of the way (the calendar's events of the
    # loop still count, as for any move: the new times must not meet the old ones).
    moving = times(app, session, recruiter, loop, ignore_loop_claims=True)
    target = next(o for o in moving.options if o.start >= first.end + dt.timedelta(hours=20))
    changes.move_loop(
        session,
        broker,
        cipher,
        sealer,
        actor_of(recruiter),
        loop.uid,
        [s.start for s in target.stops],
        jobs=jobs,
    )
    interviews = session_interviews(session, loop)
    assert all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    assert [events[i.events[0].event_id].start for i in interviews] == [
        s.start for s in target.stops
    ]
    assert {e.start for e in events.values()}.isdisjoint({s.start for s in first.stops})
    # The last session moves an hour after where it was (clear of its own event).
    last = target.stops[3]
    later = last.end
    changes.move_session(
        session, broker, cipher, sealer, actor_of(recruiter), loop.uid, 4, later, jobs=jobs
    )
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    assert events[session_interviews(session, loop)[3].events[0].event_id].start == later
    with pytest.raises(Invalid, match="overlap another session"):
        changes.move_session(
            session,
            broker,
            cipher,
            sealer,
            actor_of(recruiter),
            loop.uid,
            1,
            target.stops[1].start,
            jobs=jobs,
        )
    with pytest.raises(Invalid, match="one day"):
        changes.move_session(
            session,
            broker,
            cipher,
            sealer,
            actor_of(recruiter),
            loop.uid,
            4,
            later + dt.timedelta(days=1),
            jobs=jobs,
        )


def test_compliance_finds_the_candidates_loop_by_address(app, session, recruiter, four, org):
    from models import Role
    from tests.factories import make_user
    from webapp.services.compliance import subjects

    reviewer = make_user(session, org, Role.COMPLIANCE, email="rev@northwind.example")
    found = subjects.email_records(session, actor_of(reviewer), CANDIDATE_EMAIL.upper())
    assert [r["uid"] for r in found["interview_loop"]] == [four.uid]
    # The export shows the row as stored: the address only as its hash, the rest sealed.
    assert CANDIDATE_EMAIL not in str(found)


# --- pool picks ----------------------------------------------------------------------------------


def test_two_sessions_pick_from_a_pool_by_load_and_the_booking_keeps_the_picks(
    app, session, sandbox, org, recruiter
):
    """Sessions 2 and 4 ask for "any 1 from Backend": the aggregator's answer says who of the
    pool is free (still one sequenced call), the pick goes to the least loaded under their
    limits (a shadow never), every member's reason is shown, and booking writes the picked
    person on the session's panel and in the load ledger under the pool."""
    from models import InterviewLoad
    from tests.webapp.scheduling_support import make_panel
    from webapp.services.pools import manage

    people = make_panel(app, session, sandbox, org, 5)
    (u1, l1), (u2, l2), (u3, l3), (u4, l4), (u5, l5) = people
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    for user in (u2, u3, u4):
        manage.add_member(session, me, pool.id, user.id)
    manage.add_member(session, me, pool.id, u5.id, is_shadow=True)
    # Weeks ahead, where the seeded calendars are quiet: everyone of the pool is free.
    day = next_weekday(29)
    # u2 and u3 already sit on one of our interviews that week: u4 has the least load.
    for user, link in ((u2, l2), (u3, l3)):
        q = query_for([(user, link)], start_date=day, days=1, duration=30)
        slot = free_slots.grid(session, *broker_cipher(app), me, q).slots[-1]
        schedule(app, session, recruiter, q, slot.start)
    plan = loop_plan.LoopPlan(
        title="Onsite",
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=(
            loop_plan.SessionPlan("Intro", 45, (l1.id,)),
            loop_plan.SessionPlan("Coding", 60, (), pool_id=pool.id, pool_count=1),
            loop_plan.SessionPlan("Design", 60, (l1.id,)),
            loop_plan.SessionPlan("Systems", 60, (), pool_id=pool.id, pool_count=1),
        ),
        start_date=day,
        days=1,
    )
    loop = compose_loop(app, session, recruiter, plan)
    sandbox.call("DELETE", "/stats")
    found = times(app, session, recruiter, loop)
    assert sandbox.stats()["requests"].get("POST /v1/sequenced_availability") == 1
    option = found.options[0]
    coding, systems = option.stops[1], option.stops[3]
    assert coding.picked == (u4.name,)  # the least loaded
    assert systems.picked == (u4.name,) or systems.picked[0] in (u2.name, u3.name)
    for name in (u2.name, u3.name, u4.name, u5.name):
        assert name in coding.why
    assert "shadow" in coding.why and u5.name not in coding.picked + systems.picked
    assert f"{u2.name}: 1 interview" in coding.why
    loop = book(app, session, recruiter, loop, option)
    interviews = session_interviews(session, loop)
    by_name = {u.name: (u, link) for u, link in people}
    assert by_name[coding.picked[0]][1].id in interviews[1].panel_link_ids
    assert by_name[systems.picked[0]][1].id in interviews[3].panel_link_ids
    rows = session.scalars(
        select(InterviewLoad).where(InterviewLoad.interview_id == interviews[1].id)
    ).all()
    assert [(r.user_id, r.pool_id) for r in rows] == [(by_name[coding.picked[0]][0].id, pool.id)]


def test_a_whole_loop_move_keeps_a_pool_picks_limit(app, session, sandbox, org, recruiter):
    """Moving the whole loop onto a day where the person picked from the pool already sits on
    an interview (one a day) is refused with the reason, and changes nothing: the sessions keep
    their times, the ledger its rows. A move onto a free day goes through."""
    from models import InterviewLoad
    from tests.webapp.scheduling_support import make_panel
    from webapp.services.pools import manage
    from webapp.services.pools.limits import OverLimit

    (u1, l1), (u2, l2) = make_panel(app, session, sandbox, org, 2)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    manage.add_member(session, me, pool.id, u2.id, max_per_day=1)
    plan = loop_plan.LoopPlan(
        title="Onsite",
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=(
            loop_plan.SessionPlan("Intro", 45, (l1.id,)),
            loop_plan.SessionPlan("Coding", 60, (), pool_id=pool.id, pool_count=1),
        ),
        start_date=next_weekday(29),  # weeks ahead, where the seeded calendars are quiet
        days=3,
    )
    loop = compose_loop(app, session, recruiter, plan)
    first = times(app, session, recruiter, loop).options[0]
    assert first.stops[1].picked == (u2.name,)
    loop = book(app, session, recruiter, loop, first)
    moving = times(app, session, recruiter, loop, ignore_loop_claims=True)
    other_days = [o for o in moving.options if o.start.date() != first.start.date()]
    full_day = other_days[0].start.date()
    # u2 gets an interview of their own on the first other day: that day is now full for them.
    q = query_for([(u2, l2)], start_date=full_day, days=1, duration=30)
    slot = free_slots.grid(session, *broker_cipher(app), me, q).slots[-1]
    schedule(app, session, recruiter, q, slot.start)
    # The day's first itinerary, clear of u2's own interview (the day's last slot).
    target = next(o for o in other_days if o.start.date() == full_day)
    broker, cipher = broker_cipher(app)
    before = [i.events[0].event_id for i in session_interviews(session, loop)]
    ledger_before = session.execute(
        select(InterviewLoad.interview_id, InterviewLoad.starts_at).order_by(InterviewLoad.id)
    ).all()
    with pytest.raises(OverLimit, match="limit of 1 interview a day"):
        changes.move_loop(
            session,
            broker,
            cipher,
            deps.sealer.of(app),
            actor_of(recruiter),
            loop.uid,
            [s.start for s in target.stops],
            jobs=deps.jobs.of(app),
        )
    session.rollback()
    session.expire_all()
    interviews = session_interviews(session, loop)
    assert all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    assert [i.events[0].event_id for i in interviews] == before
    assert (
        session.execute(
            select(InterviewLoad.interview_id, InterviewLoad.starts_at).order_by(InterviewLoad.id)
        ).all()
        == ledger_before
    )
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    assert [events[e].start for e in before] == [s.start for s in first.stops]
    # A day where u2 has nothing else: the move goes through.
    free_day = next(o for o in other_days if o.start.date() not in (full_day, first.start.date()))
    changes.move_loop(
        session,
        broker,
        cipher,
        deps.sealer.of(app),
        actor_of(recruiter),
        loop.uid,
        [s.start for s in free_day.stops],
        jobs=deps.jobs.of(app),
    )
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    assert [events[e].start for e in before] == [s.start for s in free_day.stops]


def test_erasing_a_person_deletes_the_loops_made_for_their_address(
    app, session, sandbox, org, recruiter, panel
):
    """Someone interviewed through a loop later joins (same address): erasing them deletes the
    loop kept for that address, its sessions with it; another organisation's is untouched."""
    from models import LoopSession, Role
    from tests.factories import make_user
    from tests.tenants import seed_neighbour
    from webapp.services.compliance import erasure

    (_a, la), (_b, lb) = panel
    loop_id = compose_loop(app, session, recruiter, plan_for([[la], [lb]], titles=["A", "B"])).id
    joined = make_user(session, org, Role.RECRUITER, email=CANDIDATE_EMAIL, name=CANDIDATE)
    neighbour = seed_neighbour(session, deps.cipher.of(app), [joined])
    theirs = session.scalar(
        select(InterviewLoop.id).where(InterviewLoop.uid == neighbour.ids["interview_loop"])
    )
    reviewer = make_user(session, org, Role.COMPLIANCE, email="rev@northwind.example")
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    request = erasure.propose_erasure(session, actor_of(reviewer), joined.id, "keep")
    erasure.decide_erasure(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        actor_of(admin),
        request.id,
        approve=True,
        confirm_role=Role.ADMIN,
        jobs=deps.jobs.of(app),
        typed_confirmation=CANDIDATE_EMAIL,
    )
    session.expire_all()
    assert session.get(InterviewLoop, loop_id) is None
    assert session.scalar(select(LoopSession).where(LoopSession.loop_id == loop_id)) is None
    assert session.get(InterviewLoop, theirs) is not None


def test_reconciliation_takes_back_a_loop_whose_write_job_never_finished(
    app, session, sandbox, recruiter, four
):
    """The write job died after the first session (its events written, the rest pending);
    reconciliation marked an unwritten session failed: the periodic check takes the whole loop
    back, deleting the written session's events."""
    from webapp.services.scheduling import writes

    option = times(app, session, recruiter, four).options[0]
    broker, cipher = broker_cipher(app)
    held = HeldJobs()
    loop = booking.book_loop(
        session,
        broker,
        deps.sealer.of(app),
        actor_of(recruiter),
        four.uid,
        [s.start for s in option.stops],
        jobs=held,
    )
    [(name, (loop_id, payloads))] = [(n, a) for n, a in held.queued]
    assert name == "scheduling.write_loop"
    first, second, *_rest = session_interviews(session, loop)
    writes.run_write(
        session, broker, cipher, deps.sealer.of(app), first.id, payloads[str(first.id)]
    )
    assert booking.take_back_broken(session, broker, cipher, jobs=held) == 0  # nothing failed
    second.status = InterviewStatus.FAILED  # what reconciliation concludes for a lost write
    session.commit()
    assert booking.take_back_broken(session, broker, cipher, jobs=held) == 1
    session.expire_all()
    assert session.get(InterviewLoop, loop_id).state is LoopState.FAILED
    assert not live_interviews(session)
    assert session.scalar(select(SlotClaim)) is None
    ids = {i.events[0].event_id for i in session_interviews(session, loop)}
    assert not [
        e for e in managed(app, session, recruiter_link(session, recruiter)) if e.event_id in ids
    ]
    assert booking.take_back_broken(session, broker, cipher, jobs=held) == 0


def test_a_loop_too_long_for_one_day_splits_over_two_when_allowed(
    app, session, sandbox, recruiter, panel
):
    (_a, la), (_b, lb) = panel
    people = [[la], [lb], [la], [lb], [la]]
    quiet = next_weekday(29)
    long_day = dict(titles=list("ABCDE"), start_date=quiet, days=3)
    one = compose_loop(
        app,
        session,
        recruiter,
        plan_for(people, **long_day, **{f"duration{n}": 120 for n in range(1, 6)}),
    )
    assert times(app, session, recruiter, one).options == ()  # ten hours: not in one day
    two = compose_loop(
        app,
        session,
        recruiter,
        plan_for(people, **long_day, split_days=True, **{f"duration{n}": 120 for n in range(1, 6)}),
    )
    found = times(app, session, recruiter, two).options
    assert found
    london = ZoneInfo("Europe/London")
    for option in found:
        dates = sorted({s.start.astimezone(london).date() for s in option.stops})
        assert len(dates) == 2 and (dates[1] - dates[0]).days in (1, 3)


def test_fits_days_counts_the_next_weekday_as_following():
    monday = dt.date(2030, 1, 7)
    friday = monday + dt.timedelta(days=4)
    london = ZoneInfo("Europe/London")

    def at(day, hour):
        return dt.datetime.combine(day, dt.time(hour), london)

    one = plan_for([[], []], start_date=monday)
    split = plan_for([[], []], start_date=monday, split_days=True)
    same = ([at(monday, 9), at(monday, 11)], [at(monday, 10), at(monday, 12)])
    assert availability.fits_days(one, *same) and availability.fits_days(split, *same)
    tuesday = ([at(monday, 16), at(monday + dt.timedelta(days=1), 9)], [at(monday, 17)] * 2)
    assert not availability.fits_days(one, *tuesday)
    tuesday = (
        [at(monday, 16), at(monday + dt.timedelta(days=1), 9)],
        [at(monday, 17), at(monday + dt.timedelta(days=1), 10)],
    )
    assert availability.fits_days(split, *tuesday)
    weekend = (
        [at(friday, 16), at(friday + dt.timedelta(days=3), 9)],
        [at(friday, 17), at(friday + dt.timedelta(days=3), 10)],
    )
    assert availability.fits_days(split, *weekend)
    later = (
        [at(monday, 16), at(monday + dt.timedelta(days=3), 9)],
        [at(monday, 17), at(monday + dt.timedelta(days=3), 10)],
    )
    assert not availability.fits_days(split, *later)
