"""The ordinary reschedule page of an interview holding a loop's session offers only the times
the loop accepts (between its neighbours with the loop's gaps, on its day, within its longest
break, free for its people): every time offered is accepted on submit, none outside that frame
is offered, and when nothing fits the page says why and points to moving the whole loop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from tests.api.conftest import ApiClient, assert_error, issue_token
from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour, snapshot
from tests.webapp.loop_support import compose_loop, plan_for, session_interviews
from tests.webapp.scheduling_support import managed, next_weekday
from tests.webapp.test_loops import book, recruiter_link, times
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services.loops import changes

SLOT_RE = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')
GAP = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)


def three_sessions(app, session, recruiter, panel):
    """Intro (A), Coding (B, 15 minutes' gap on both sides), Values (A), one day, booked back
    to back as offered."""
    (_a, la), (_b, lb) = panel
    plan = plan_for(
        [[la], [lb], [la]],
        titles=["Intro", "Coding", "Values"],
        start_date=next_weekday(29),
        max_break=240,
    )
    middle = dataclasses.replace(plan.sessions[1], buffer_before=15, buffer_after=15)
    plan = dataclasses.replace(plan, sessions=(plan.sessions[0], middle, plan.sessions[2]))
    loop = compose_loop(app, session, recruiter, plan)
    option = times(app, session, recruiter, loop).options[0]
    return book(app, session, recruiter, loop, option), option


def starts(app, session, recruiter, loop):
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    return [events[i.events[0].event_id].start for i in session_interviews(session, loop)]


def offered(client, uid) -> tuple[int, str, list[dt.datetime]]:
    response = client.get(f"/interviews/{uid}/reschedule")
    page = response.get_data(as_text=True)
    return response.status_code, page, [dt.datetime.fromisoformat(v) for v in SLOT_RE.findall(page)]


def move(app, session, recruiter, loop, ordinal, start):
    broker, cipher = broker_cipher(app)
    changes.move_session(
        session,
        broker,
        cipher,
        deps.sealer.of(app),
        actor_of(recruiter),
        loop.uid,
        ordinal,
        start,
        jobs=deps.jobs.of(app),
    )


def test_the_middle_session_is_offered_only_times_between_its_neighbours_and_each_is_accepted(
    app, client, auth, session, sandbox, recruiter, panel
):
    loop, option = three_sessions(app, session, recruiter, panel)
    first, middle, last = session_interviews(session, loop)
    auth.login(recruiter.email)
    # The loop page's "Change session" leads to the times each session may move to.
    loop_page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    for interview in (first, middle, last):
        assert f'href="/interviews/{interview.uid}/reschedule"' in loop_page
    # Booked back to back (with the gaps): no other time fits between the neighbours, although
    # B is free all day. The page says so and points to moving the whole loop.
    status, page, slots = offered(client, middle.uid)
    assert status == 200, page
    assert slots == []
    assert 'id="loop-reason"' in page and "move the whole loop" in page
    assert f'href="/schedule/loops/{loop.uid}/reschedule"' in page
    assert "Move the interview</button>" not in page
    # The last session two hours later: room opens between the neighbours.
    move(app, session, recruiter, loop, 3, option.stops[2].start + 2 * HOUR)
    now = starts(app, session, recruiter, loop)
    lower, upper = now[0] + HOUR + GAP, now[2] - GAP
    status, page, slots = offered(client, middle.uid)
    assert status == 200, page
    assert slots, page
    assert "Week from" not in page  # no week or length to choose: the loop sets both
    for start in slots:
        assert lower <= start and start + HOUR <= upper, start
        assert start != now[1]
    # Every time offered is accepted on submit (and keeps the loop's rules), one after another.
    for start in slots:
        response = auth.post(
            f"/interviews/{middle.uid}/reschedule",
            {"slot": start.isoformat(), "duration": "60"},
            form_page=f"/interviews/{middle.uid}/reschedule",
        )
        assert response.status_code == 303, (start, response.get_data(as_text=True))
        moved = starts(app, session, recruiter, loop)
        assert moved == [now[0], start, now[2]]
        move(app, session, recruiter, loop, 2, now[1])  # back, for the next time offered
        assert starts(app, session, recruiter, loop) == now
    # A time B is free at but the loop refuses (before the first session ends) is not offered,
    # and submitted anyway it is refused with the reason; nothing moves.
    early = now[0]
    assert early not in slots
    response = auth.post(
        f"/interviews/{middle.uid}/reschedule",
        {"slot": early.isoformat(), "duration": "60"},
        follow_redirects=True,
    )
    assert "overlap another session" in response.get_data(as_text=True)
    assert starts(app, session, recruiter, loop) == now
    # The first and last sessions are offered only times on their side of the middle one.
    for interview, ok in ((first, lambda s: s + HOUR + GAP <= now[1]), (last, None)):
        status, page, found = offered(client, interview.uid)
        assert status == 200
        for start in found:
            day = now[1].date()
            assert start.date() == day
            if ok is not None:
                assert ok(start), start
            else:
                assert start >= now[1] + HOUR + GAP
                assert start - (now[1] + HOUR) <= dt.timedelta(minutes=240)


def test_bad_input_and_a_neighbour_change_nothing(
    app, client, auth, session, sandbox, recruiter, panel
):
    loop, option = three_sessions(app, session, recruiter, panel)
    move(app, session, recruiter, loop, 3, option.stops[2].start + 2 * HOUR)
    middle = session_interviews(session, loop)[1]
    before = starts(app, session, recruiter, loop)
    # A second organisation holding the same addresses sees none of it, by page or API.
    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    ours = snapshot(session, recruiter.organisation_id)
    twin = neighbour.twins[recruiter.email]
    auth.login(recruiter.email, NEIGHBOUR_PASSWORD)
    page = client.get(f"/interviews/{middle.uid}/reschedule")
    assert page.status_code == 404
    assert "Coding" not in page.get_data(as_text=True)
    stranger = ApiClient(client, issue_token(session, twin))
    body = {"start": (before[0] + HOUR + GAP).isoformat()}
    assert_error(stranger.post(f"/interviews/{middle.uid}/reschedule", json=body), 404)
    auth.logout()
    assert snapshot(session, recruiter.organisation_id) == ours
    theirs = snapshot(session, neighbour.org.id)  # (its own sign-in and token, taken above)
    auth.login(recruiter.email)
    # Bad input: a clear error, never a 500, and nothing changes.
    bad = client.get(f"/interviews/{middle.uid}/reschedule?start_date=nonsense")
    assert bad.status_code == 400
    for slot in ("nonsense", "2020-01-01T09:00:00+00:00", ""):
        response = auth.post(
            f"/interviews/{middle.uid}/reschedule",
            {"slot": slot, "duration": "60"},
            follow_redirects=True,
        )
        assert response.status_code == 200
        assert "flash-error" in response.get_data(as_text=True)
    api = ApiClient(client, issue_token(session, recruiter))
    error = assert_error(
        api.post(f"/interviews/{middle.uid}/reschedule", json={"start": before[0].isoformat()}),
        422,
    )
    assert "overlap another session" in error["message"]
    assert starts(app, session, recruiter, loop) == before
    assert snapshot(session, neighbour.org.id) == theirs
