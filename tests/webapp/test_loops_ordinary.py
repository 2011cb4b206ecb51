"""A session of a loop moved or cancelled from the ordinary interview page or the API follows the
loop's rules (order, gaps, days, longest break, length kept), and the loop ends with its last
live session whichever path cancelled it; a neighbouring organisation reaches none of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from models import AuditEntry, InterviewLoop, InterviewStatus, LoopState
from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.held_jobs import HeldJobs
from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour, snapshot
from tests.webapp.loop_support import compose_loop, plan_for, session_interviews
from tests.webapp.scheduling_support import managed, next_weekday
from tests.webapp.test_loops import book, recruiter_link, times
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services.errors import Invalid
from webapp.services.loops import changes, moving
from webapp.services.scheduling import sync


def booked_loop(app, session, recruiter, panel):
    """A four-session one-day loop weeks ahead (quiet calendars: room to move), booked."""
    (_a, la), (_b, lb) = panel
    plan = plan_for(
        [[la], [lb], [la], [la, lb]],
        titles=["Intro", "Coding", "Design", "Values"],
        start_date=next_weekday(29),
    )
    loop = compose_loop(app, session, recruiter, plan)
    option = times(app, session, recruiter, loop).options[0]
    return book(app, session, recruiter, loop, option), option


def starts(app, session, recruiter, loop):
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    return [events[i.events[0].event_id].start for i in session_interviews(session, loop)]


def state(session, loop):
    session.expire_all()
    return session.get(InterviewLoop, loop.id).state


def test_the_interview_page_moves_a_session_only_as_the_loop_allows(
    app, client, auth, session, sandbox, recruiter, panel
):
    loop, option = booked_loop(app, session, recruiter, panel)
    before = starts(app, session, recruiter, loop)
    second, last = session_interviews(session, loop)[1], session_interviews(session, loop)[3]
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{second.uid}").get_data(as_text=True)
    assert "session 2 of an interview loop" in page
    assert f'href="/schedule/loops/{loop.uid}"' in page
    form = f"/interviews/{second.uid}/reschedule"
    assert f'href="/schedule/loops/{loop.uid}"' in client.get(form).get_data(as_text=True)
    refusals = [
        # Onto the first session's time: out of order.
        ({"slot": option.stops[0].start.isoformat(), "duration": "60"}, "overlap another"),
        # Its length is the loop's.
        ({"slot": option.stops[1].start.isoformat(), "duration": "30"}, "keeps its length"),
    ]
    for data, said in refusals:
        response = auth.post(form, data, follow_redirects=True)
        assert said in response.get_data(as_text=True), said
    # The last session three hours after the third: beyond the one-day loop's 60-minute break.
    far = option.stops[2].end + dt.timedelta(hours=3)
    response = auth.post(
        f"/interviews/{last.uid}/reschedule",
        {"slot": far.isoformat(), "duration": "60"},
        follow_redirects=True,
    )
    assert "more than 60 minutes between two sessions" in response.get_data(as_text=True)
    assert starts(app, session, recruiter, loop) == before
    # A move the loop allows goes through: the last session an hour later (clear of its event).
    later = option.stops[3].end
    response = auth.post(
        f"/interviews/{last.uid}/reschedule", {"slot": later.isoformat(), "duration": "60"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert starts(app, session, recruiter, loop) == before[:3] + [later]
    assert state(session, loop) is LoopState.BOOKED


def test_cancelling_every_session_from_the_interview_page_cancels_the_loop(
    app, client, auth, session, sandbox, recruiter, panel
):
    loop, _option = booked_loop(app, session, recruiter, panel)
    interviews = session_interviews(session, loop)
    auth.login(recruiter.email)
    for n, interview in enumerate(interviews, start=1):
        page = f"/interviews/{interview.uid}/cancel"
        response = auth.post(page, {"confirm": "yes"})
        assert response.status_code == 303
        assert state(session, loop) is (LoopState.CANCELLED if n == 4 else LoopState.BOOKED)
    assert {i.status for i in session_interviews(session, loop)} == {InterviewStatus.CANCELLED}
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "loop.cancelled"))
    assert [e.detail for e in entries] == [{"last_session": 4}]
    assert not starts_left(app, session, recruiter, interviews)


def starts_left(app, session, recruiter, interviews):
    ids = {i.events[0].event_id for i in interviews}
    return [
        e for e in managed(app, session, recruiter_link(session, recruiter)) if e.event_id in ids
    ]


def test_the_api_follows_the_loop_and_a_neighbour_reaches_nothing(
    app, client, auth, session, sandbox, recruiter, panel
):
    loop, option = booked_loop(app, session, recruiter, panel)
    interviews = session_interviews(session, loop)
    before = starts(app, session, recruiter, loop)
    # The neighbouring organisation's namesake (same address), by page and by API.
    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    ours = snapshot(session, recruiter.organisation_id)
    twin = neighbour.twins[recruiter.email]
    stranger = ApiClient(client, issue_token(session, twin))
    for interview in interviews:
        body = {"start": option.stops[3].end.isoformat()}
        assert_error(stranger.post(f"/interviews/{interview.uid}/reschedule", json=body), 404)
        assert_error(stranger.post(f"/interviews/{interview.uid}/cancel"), 404)
    auth.login(recruiter.email, NEIGHBOUR_PASSWORD)
    mine = "/interviews/"
    for interview in interviews:
        cancel = auth.post(
            f"/interviews/{interview.uid}/cancel", {"confirm": "yes"}, form_page=mine
        )
        assert cancel.status_code == 404
    auth.logout()
    assert snapshot(session, recruiter.organisation_id) == ours
    api = ApiClient(client, issue_token(session, recruiter))
    # Out of order, and with another length: refused, nothing moves.
    error = assert_error(
        api.post(
            f"/interviews/{interviews[0].uid}/reschedule",
            json={"start": option.stops[1].start.isoformat()},
        ),
        422,
    )
    assert "overlap another session" in error["message"]
    error = assert_error(
        api.post(
            f"/interviews/{interviews[3].uid}/reschedule",
            json={"start": option.stops[3].end.isoformat(), "duration": 30},
        ),
        422,
    )
    assert "keeps its length" in error["message"]
    assert starts(app, session, recruiter, loop) == before
    moved = api.post(
        f"/interviews/{interviews[3].uid}/reschedule",
        json={"start": option.stops[3].end.isoformat()},
    )
    assert moved.status_code == 200, moved.get_json()
    assert dt.datetime.fromisoformat(moved.get_json()["start"]) == option.stops[3].end
    for n, interview in enumerate(interviews, start=1):
        assert api.post(f"/interviews/{interview.uid}/cancel").status_code == 200
        assert state(session, loop) is (LoopState.CANCELLED if n == 4 else LoopState.BOOKED)


def test_the_loop_ends_when_its_last_session_is_deleted_in_the_calendar(
    app, session, sandbox, recruiter, panel
):
    """Three sessions cancelled on the loop page, the fourth's event deleted by someone in their
    calendar: reconciliation's cancelled-in-calendar ends the loop too."""
    loop, _option = booked_loop(app, session, recruiter, panel)
    broker, cipher = broker_cipher(app)
    sealer, jobs = deps.sealer.of(app), deps.jobs.of(app)
    for ordinal in (1, 2, 3):
        changes.cancel_session(
            session, broker, cipher, sealer, actor_of(recruiter), loop.uid, ordinal, jobs=jobs
        )
    assert state(session, loop) is LoopState.BOOKED
    last = session_interviews(session, loop)[3]
    sync._mark_cancelled_in_calendar(session, last)
    session.commit()
    assert state(session, loop) is LoopState.CANCELLED
    try:
        changes.cancel_session(
            session, broker, cipher, sealer, actor_of(recruiter), loop.uid, 4, jobs=jobs
        )
    except Invalid as exc:
        assert "booked loop" in exc.message
    else:
        raise AssertionError("a cancelled loop cannot be changed")


# --- a whole-loop move whose calendar writes fail -------------------------------------------------


def test_a_whole_loop_move_that_fails_midway_goes_back_to_its_previous_times(
    app, client, auth, session, sandbox, recruiter, panel
):
    """The third session's event write is refused (sandbox fault): the two sessions already
    moved are written back, the third (perhaps half written) too, the fourth never moved; every
    session is at its previous time, claims hold the previous times, and the loop page says the
    move did not happen."""
    from models import SlotClaim

    loop, first = booked_loop(app, session, recruiter, panel)
    before = starts(app, session, recruiter, loop)
    offered = times(app, session, recruiter, loop, ignore_loop_claims=True)
    target = next(o for o in offered.options if o.start >= first.end + dt.timedelta(hours=20))
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
    [(name, args)] = held.queued
    assert name == "scheduling.move_loop"
    # The first two event writes pass (a 1 ms delay), every later one is refused.
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", latency_ms=1, count=2)
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", status=500)
    back = HeldJobs()
    try:
        assert moving.run_loop_move(session, broker, cipher, sealer, *args, jobs=back) == (
            "went back"
        )
    finally:
        sandbox.clear_faults()
    ids = [i.id for i in session_interviews(session, loop)]
    # Sessions 1-3 (the third perhaps half written) are written back; the fourth never moved.
    assert [(n, a[0]) for n, a in back.queued] == [
        ("scheduling.write_interview", i) for i in ids[:3]
    ]
    for name, a in back.queued:  # the calendar answers again: the writes back go through
        jobs.enqueue(name, *a)
    assert starts(app, session, recruiter, loop) == before
    assert {i.status for i in session_interviews(session, loop)} == {InterviewStatus.SCHEDULED}
    assert state(session, loop) is LoopState.BOOKED
    claimed = {(c.interview_id, c.starts_at) for c in session.scalars(select(SlotClaim))}
    assert {s for _i, s in claimed} <= set(before)
    assert {i for i, _s in claimed} == set(ids)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "loop.move_failed"))
    assert entry.detail == {"failed_session": 3, "went_back": True}
    auth.login(recruiter.email)
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    assert "every session went back to its previous time" in page
    # A later move that succeeds clears the notice.
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
    assert starts(app, session, recruiter, loop) == [s.start for s in target.stops]
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    assert "went back to its previous time" not in page
