"""Shadows join as trainees: a loop session that picks "any 1 from pool X" and asks to bring a
shadow gets one of the pool's shadows as an extra attendee when one is free (by load, under
their own limits), shown as "shadow"; a shadow never counts toward the interviewers the session
needs, and with no shadow free the loop is booked without one and the page says so."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from models import InterviewLoad, SlotClaim, User
from tests.held_jobs import HeldJobs
from tests.tenants import seed_neighbour, snapshot
from tests.webapp.loop_support import CANDIDATE, CANDIDATE_EMAIL, compose_loop, session_interviews
from tests.webapp.scheduling_support import make_panel, managed, next_weekday
from tests.webapp.test_loops import book, recruiter_link, times
from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for, schedule
from webapp import deps
from webapp.services.availability import free_slots
from webapp.services.errors import Invalid
from webapp.services.loops import changes, checking, moving
from webapp.services.loops import plan as loop_plan
from webapp.services.pools import manage

OPTION_RE = re.compile(r'name="option" id="[^"]+" value="([^"]+)"')


def shadow_pool(app, session, sandbox, org, recruiter, *, limit=None):
    """Interviewer u2; shadows u3 and u4 (u4 with ``limit`` a day); u1 named on the intro."""
    people = make_panel(app, session, sandbox, org, 4)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    manage.add_member(session, me, pool.id, people[1][0].id)
    manage.add_member(session, me, pool.id, people[2][0].id, is_shadow=True)
    manage.add_member(session, me, pool.id, people[3][0].id, is_shadow=True, max_per_day=limit)
    return people, pool


def plan(pool, l1, day, *, shadow=True):
    return loop_plan.LoopPlan(
        title="Onsite",
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=(
            loop_plan.SessionPlan("Intro", 45, (l1.id,)),
            loop_plan.SessionPlan(
                "Coding", 60, (), pool_id=pool.id, pool_count=1, bring_shadow=shadow
            ),
        ),
        start_date=day,
        days=1,
    )


def busy_once(app, session, recruiter, person, day):
    """``person`` sits on one of our interviews on ``day`` (its last free half hour)."""
    user, link = person
    q = query_for([(user, link)], start_date=day, days=1, duration=30)
    slot = free_slots.grid(session, *broker_cipher(app), actor_of(recruiter), q).slots[-1]
    schedule(app, session, recruiter, q, slot.start)
    return slot


def shadow_rows(session, interview_id):
    session.expire_all()
    return [
        (r.user_id, r.pool_id)
        for r in session.scalars(
            select(InterviewLoad).where(
                InterviewLoad.interview_id == interview_id, InterviewLoad.is_shadow.is_(True)
            )
        )
    ]


def test_a_free_shadow_joins_by_load_as_an_extra_attendee_never_counted(
    app, client, auth, session, sandbox, org, recruiter
):
    day = next_weekday(29)  # weeks ahead: the seeded calendars are quiet
    people, pool = shadow_pool(app, session, sandbox, org, recruiter)
    (u1, l1), (u2, l2), (u3, l3), (u4, l4) = people
    busy_once(app, session, recruiter, (u3, l3), day)  # u3 has one interview that week: u4 goes
    # A neighbouring organisation holding the same addresses (its own namesakes) stays apart.
    neighbour = seed_neighbour(session, deps.cipher.of(app), [u3, u4])
    theirs = snapshot(session, neighbour.org.id)
    loop = compose_loop(app, session, recruiter, plan(pool, l1, day))
    auth.login(recruiter.email)
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    assert "Session 2 also brings a shadow of the pool, if one is free at booking" in page
    option = OPTION_RE.findall(page)[0]
    booked = auth.post(f"/schedule/loops/{loop.uid}/book", {"option": option})
    assert booked.status_code == 303, booked.get_data(as_text=True)
    intro, coding = session_interviews(session, loop)
    # The shadow is not on the panel (the session needs its 1 interviewer: u2), but invited.
    assert coding.panel_link_ids == [l2.id]
    assert shadow_rows(session, coding.id) == [(u4.id, pool.id)]
    assert shadow_rows(session, intro.id) == []
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    attendees = {a.email.lower() for a in events[coding.events[0].event_id].attendees}
    assert u4.email.lower() in attendees and u3.email.lower() not in attendees
    # Their time is held like the panel's, under our organisation only.
    subs = set(session.scalars(select(SlotClaim.sub).where(SlotClaim.interview_id == coding.id)))
    assert l4.sub in subs
    ours = session.get(User, shadow_rows(session, coding.id)[0][0])
    assert ours.organisation_id == org.id
    # The itinerary names them as a shadow.
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    assert f"{u4.name} (shadow)" in page
    assert snapshot(session, neighbour.org.id) == theirs


def test_no_shadow_under_their_limits_books_without_one_and_says_so(
    app, client, auth, session, sandbox, org, recruiter
):
    """u4's daily limit is reached and u3 sits on another booking of ours at that very time:
    no shadow is free, the loop is booked anyway (the interviewer from the pool), and the page
    says the session has no shadow. A shadow is never picked to make up the N either."""
    day = next_weekday(29)
    people, pool = shadow_pool(app, session, sandbox, org, recruiter, limit=1)
    (u1, l1), (u2, l2), (u3, l3), (u4, l4) = people
    busy_once(app, session, recruiter, (u4, l4), day)  # u4: one interview that day, limit 1
    loop = compose_loop(app, session, recruiter, plan(pool, l1, day))
    option = times(app, session, recruiter, loop).options[0]
    coding_stop = option.stops[1]
    assert coding_stop.picked == (u2.name,)
    # u3 is booked (by us) at the coding session's time.
    q = query_for([(u3, l3)], start_date=day, days=1, duration=60)
    schedule(app, session, recruiter, q, coding_stop.start)
    auth.login(recruiter.email)
    booked = auth.post(
        f"/schedule/loops/{loop.uid}/book", {"option": option.value}, follow_redirects=True
    )
    text = booked.get_data(as_text=True)
    assert booked.status_code == 200
    assert "Session 2: no shadow of the pool was free" in text
    assert 'id="no-shadow-2"' in text
    _intro, coding = session_interviews(session, loop)
    assert coding.panel_link_ids == [l2.id]
    assert shadow_rows(session, coding.id) == []
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    attendees = {a.email.lower() for a in events[coding.events[0].event_id].attendees}
    assert not {u3.email.lower(), u4.email.lower()} & attendees


def test_a_shadow_needs_a_pool_and_is_only_the_pools_own(app, session, sandbox, org, recruiter):
    people, pool = shadow_pool(app, session, sandbox, org, recruiter)
    (_u1, l1) = people[0]
    bad = loop_plan.LoopPlan(
        title="Onsite",
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=(
            loop_plan.SessionPlan("Intro", 45, (l1.id,)),
            loop_plan.SessionPlan("Coding", 60, (l1.id,), bring_shadow=True),
        ),
        start_date=next_weekday(29),
        days=1,
    )
    try:
        compose_loop(app, session, recruiter, bad)
    except Invalid as exc:
        assert exc.field == "s2_pool"
    else:
        raise AssertionError("a shadow without a pool is refused")
    # The session's shadows are the pool's shadows only (never its interviewers).
    resolved = checking.check_plan(session, actor_of(recruiter), plan(pool, l1, next_weekday(29)))
    assert {m.user.id for m in resolved[1].shadows} == {people[2][0].id, people[3][0].id}
    assert people[1][0].id not in {m.user.id for m in resolved[1].shadows}
    assert resolved[1].count == 1


def test_a_moved_session_keeps_its_shadow_only_where_they_are_still_free(
    app, session, sandbox, org, recruiter
):
    """The coding session moves an hour later: its shadow is free there and comes along
    (invited, claimed, the ledger row moved). Then it moves to where the shadow has another of
    our interviews: the move goes through, the shadow is left out (not invited, not claimed, no
    ledger row) and never double booked."""
    day = next_weekday(29)
    people, pool = shadow_pool(app, session, sandbox, org, recruiter)
    (u1, l1), (u2, l2), (u3, l3), (u4, l4) = people
    busy_once(app, session, recruiter, (u3, l3), day)  # u4 is the least loaded shadow
    loop = compose_loop(app, session, recruiter, plan(pool, l1, day))
    option = times(app, session, recruiter, loop).options[0]
    loop = book(app, session, recruiter, loop, option)
    _intro, coding = session_interviews(session, loop)
    assert shadow_rows(session, coding.id) == [(u4.id, pool.id)]
    broker, cipher = broker_cipher(app)

    def move(start):
        changes.move_session(
            session,
            broker,
            cipher,
            deps.sealer.of(app),
            actor_of(recruiter),
            loop.uid,
            2,
            start,
            jobs=deps.jobs.of(app),
        )

    def invited():
        events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
        event = events[coding.events[0].event_id]
        return event.start, {a.email.lower() for a in event.attendees}

    def claimed():
        return set(
            session.scalars(select(SlotClaim.sub).where(SlotClaim.interview_id == coding.id))
        )

    intro_end = option.stops[0].end
    later = intro_end + dt.timedelta(minutes=60)  # clear of its own event, within the break
    move(later)
    assert shadow_rows(session, coding.id) == [(u4.id, pool.id)]
    row = session.scalar(
        select(InterviewLoad).where(
            InterviewLoad.interview_id == coding.id, InterviewLoad.is_shadow.is_(True)
        )
    )
    assert row.starts_at == later
    start, attendees = invited()
    assert start == later and u4.email.lower() in attendees
    assert l4.sub in claimed()
    # u4 gets one of our interviews inside the next target time (clear of the current one).
    target = intro_end
    theirs = target + dt.timedelta(minutes=15)
    q = query_for([(u4, l4)], start_date=day, days=1, duration=30)
    assert theirs in {
        s.start for s in free_slots.grid(session, broker, cipher, actor_of(recruiter), q).slots
    }
    schedule(app, session, recruiter, q, theirs)
    move(target)
    assert shadow_rows(session, coding.id) == []
    start, attendees = invited()
    assert start == target and u4.email.lower() not in attendees
    assert l4.sub not in claimed() and l2.sub in claimed()
    session.expire_all()
    assert session.get(type(coding), coding.id).panel_link_ids == [l2.id]


def test_a_whole_loop_move_leaves_out_a_shadow_who_is_not_free_there(
    app, session, sandbox, org, recruiter
):
    day = next_weekday(29)
    people, pool = shadow_pool(app, session, sandbox, org, recruiter)
    (u1, l1), (u2, l2), (u3, l3), (u4, l4) = people
    busy_once(app, session, recruiter, (u3, l3), day)  # u4 is the least loaded shadow
    loop = compose_loop(app, session, recruiter, plan(pool, l1, day))
    option = times(app, session, recruiter, loop).options[0]
    loop = book(app, session, recruiter, loop, option)
    _intro, coding = session_interviews(session, loop)
    assert shadow_rows(session, coding.id) == [(u4.id, pool.id)]
    broker, cipher = broker_cipher(app)
    sealer = deps.sealer.of(app)
    # An itinerary clear of the current one; u4 gets one of our interviews at its coding time.
    moving = changes.moving_times(session, broker, cipher, sealer, actor_of(recruiter), loop.uid)
    target = next(o for o in moving.options if o.start >= option.end + dt.timedelta(hours=1))
    q = query_for([(u4, l4)], start_date=day, days=1, duration=30)
    schedule(app, session, recruiter, q, target.stops[1].start)
    changes.move_loop(
        session,
        broker,
        cipher,
        sealer,
        actor_of(recruiter),
        loop.uid,
        [s.start for s in target.stops],
        jobs=deps.jobs.of(app),
    )
    assert shadow_rows(session, coding.id) == []
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    event = events[coding.events[0].event_id]
    assert event.start == target.stops[1].start
    assert u4.email.lower() not in {a.email.lower() for a in event.attendees}
    subs = set(session.scalars(select(SlotClaim.sub).where(SlotClaim.interview_id == coding.id)))
    assert l4.sub not in subs and l2.sub in subs


# --- a kept shadow when a move goes back, when their call fails, and under the move's locks ----


def booked_with_shadow(app, session, sandbox, org, recruiter):
    """A loop whose coding session has shadow u4, booked weeks ahead, and an itinerary to move
    it to (clear of the current one, u4 free there)."""
    day = next_weekday(29)
    people, pool = shadow_pool(app, session, sandbox, org, recruiter)
    busy_once(app, session, recruiter, people[2], day)  # u4 is the least loaded shadow
    loop = compose_loop(app, session, recruiter, plan(pool, people[0][1], day))
    option = times(app, session, recruiter, loop).options[0]
    loop = book(app, session, recruiter, loop, option)
    _intro, coding = session_interviews(session, loop)
    assert shadow_rows(session, coding.id) == [(people[3][0].id, pool.id)]
    broker, cipher = broker_cipher(app)
    sealer = deps.sealer.of(app)
    moving_to = changes.moving_times(session, broker, cipher, sealer, actor_of(recruiter), loop.uid)
    target = next(o for o in moving_to.options if o.start >= option.end + dt.timedelta(hours=1))
    return people, pool, loop, option, target


def shadow_state(session, interview_id, sub):
    """The shadow's ledger start and the starts their claims on the interview hold."""
    session.expire_all()
    row = session.scalar(
        select(InterviewLoad).where(
            InterviewLoad.interview_id == interview_id, InterviewLoad.is_shadow.is_(True)
        )
    )
    held = set(
        session.scalars(
            select(SlotClaim.starts_at).where(
                SlotClaim.interview_id == interview_id, SlotClaim.sub == sub
            )
        )
    )
    return (row.starts_at if row is not None else None), held


def test_a_whole_loop_move_taken_back_gives_a_kept_shadow_their_time_and_load_back(
    app, session, sandbox, org, recruiter
):
    """The coding session's write is refused after the intro's went through: the loop goes
    back, and its shadow (kept by the move) holds their previous time again and their load
    counts there, as the panel's does; the write back invites them."""
    people, _pool, loop, option, target = booked_with_shadow(app, session, sandbox, org, recruiter)
    (_u1, _l1), (_u2, l2), _p3, (u4, l4) = people
    _intro, coding = session_interviews(session, loop)
    old = option.stops[1].start
    assert shadow_state(session, coding.id, l4.sub) == (old, {old})
    broker, cipher = broker_cipher(app)
    sealer, jobs = deps.sealer.of(app), deps.jobs.of(app)
    held = HeldJobs()
    changes.move_loop(
        session,
        broker,
        cipher,
        sealer,
        actor_of(recruiter),
        loop.uid,
        [s.start for s in target.stops],
        jobs=held,
    )
    new = target.stops[1].start
    assert shadow_state(session, coding.id, l4.sub) == (new, {new})  # kept by the move
    [(name, args)] = held.queued
    assert name == "scheduling.move_loop"
    # The intro's event write passes (a 1 ms delay), the coding session's is refused.
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", latency_ms=1, count=1)
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", status=500)
    back = HeldJobs()
    try:
        assert moving.run_loop_move(session, broker, cipher, sealer, *args, jobs=back) == (
            "went back"
        )
    finally:
        sandbox.clear_faults()
    assert shadow_state(session, coding.id, l4.sub) == (old, {old})
    session.expire_all()
    loads = set(
        session.scalars(
            select(InterviewLoad.starts_at).where(InterviewLoad.interview_id == coding.id)
        )
    )
    assert loads == {old}  # the panel's load too
    assert old in set(
        session.scalars(
            select(SlotClaim.starts_at).where(
                SlotClaim.interview_id == coding.id, SlotClaim.sub == l2.sub
            )
        )
    )
    for name, a in back.queued:  # the calendar answers again: the writes back go through
        jobs.enqueue(name, *a)
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    event = events[coding.events[0].event_id]
    assert event.start == old
    assert u4.email.lower() in {a.email.lower() for a in event.attendees}


def test_a_failed_shadow_call_keeps_the_shadow_on_a_moved_loop(
    app, session, sandbox, org, recruiter
):
    """The shadow's own availability call fails (the sequenced call for the panel answers): the
    loop moves and the shadow comes along, unverified but claimed at the new time and invited,
    never dropped for a brief outage."""
    people, _pool, loop, _option, target = booked_with_shadow(app, session, sandbox, org, recruiter)
    (u4, l4) = people[3]
    _intro, coding = session_interviews(session, loop)
    broker, cipher = broker_cipher(app)
    sandbox.add_fault(method="POST", path="/v1/availability", status=500)
    try:
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
        fired = [r for r in sandbox.faults() if r["path"] == "/v1/availability"]
        assert fired and fired[0]["fired"] >= 1  # the shadow's call was made, and failed
    finally:
        sandbox.clear_faults()
    new = target.stops[1].start
    assert shadow_state(session, coding.id, l4.sub) == (new, {new})
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    event = events[coding.events[0].event_id]
    assert event.start == new
    assert u4.email.lower() in {a.email.lower() for a in event.attendees}


def record_move(monkeypatch):
    """What a move does, in order: the shadows' availability calls ("ask"), people locked
    ("lock", their ids) and the interview's claims given up ("release")."""
    from webapp.services import claims
    from webapp.services.pools import picking

    seen = []
    ask, lock, release = free_slots.free_at, picking.lock_people, claims.release

    def asking(broker, members, query, start, **kw):
        if kw.get("asks") and not members:
            seen.append(("ask",))
        return ask(broker, members, query, start, **kw)

    def locking(session, organisation_id, user_ids):
        ids = sorted(set(user_ids))
        seen.append(("lock", tuple(ids)))
        return lock(session, organisation_id, ids)

    def releasing(session, interview_id):
        seen.append(("release",))
        return release(session, interview_id)

    monkeypatch.setattr(free_slots, "free_at", asking)
    monkeypatch.setattr(picking, "lock_people", locking)
    monkeypatch.setattr(claims, "release", releasing)
    return seen


def move_coding(app, session, recruiter, loop, start):
    broker, cipher = broker_cipher(app)
    changes.move_session(
        session,
        broker,
        cipher,
        deps.sealer.of(app),
        actor_of(recruiter),
        loop.uid,
        2,
        start,
        jobs=deps.jobs.of(app),
    )


def test_a_moves_shadow_calls_are_answered_before_its_locked_part(
    app, session, sandbox, org, recruiter, monkeypatch
):
    """The shadow's availability call is made and answered before the move locks anyone or
    touches a claim row (never while the move holds its locks)."""
    people, _pool, loop, option, _target = booked_with_shadow(app, session, sandbox, org, recruiter)
    (u4, l4) = people[3]
    _intro, coding = session_interviews(session, loop)
    later = option.stops[0].end + dt.timedelta(minutes=60)
    seen = record_move(monkeypatch)
    move_coding(app, session, recruiter, loop, later)
    assert ("ask",) in seen
    first_locked = next(n for n, e in enumerate(seen) if e[0] in ("lock", "release"))
    assert all(e[0] != "ask" for e in seen[first_locked:]), seen
    assert shadow_state(session, coding.id, l4.sub) == (later, {later})


def test_a_moves_shadow_is_locked_with_its_people_before_the_claims_change(
    app, session, sandbox, org, recruiter, monkeypatch
):
    """The shadow's limits are read under the same locks a booking takes: the move locks the
    shadow (with the pool-picked people, in one set) before it gives up or takes any claim."""
    people, _pool, loop, option, _target = booked_with_shadow(app, session, sandbox, org, recruiter)
    (u4, l4) = people[3]
    _intro, coding = session_interviews(session, loop)
    later = option.stops[0].end + dt.timedelta(minutes=60)
    seen = record_move(monkeypatch)
    move_coding(app, session, recruiter, loop, later)
    released = seen.index(("release",))
    assert any(e[0] == "lock" and u4.id in e[1] for e in seen[:released]), seen
    assert shadow_state(session, coding.id, l4.sub) == (later, {later})
