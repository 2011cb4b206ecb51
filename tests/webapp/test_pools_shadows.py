"""Shadows join single interviews too: a panel that asks "any 1 from pool X" may also bring one
of the pool's shadows (the schedule page's "and bring a shadow"). At booking, the least loaded
shadow free at that time under their own limits is invited as an extra attendee, never counted
in the N and never on the panel; with none free the interview is booked without one and the
page says so. Another organisation's namesakes and pools stay apart; bad asks are clear 400s."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Interview, InterviewLoad, ProfileLink, SlotClaim
from tests.tenants import seed_neighbour, snapshot
from tests.webapp.scheduling_support import make_panel, managed, next_weekday
from tests.webapp.test_loops import recruiter_link
from tests.webapp.test_pools_scheduling import actor_of
from tests.webapp.test_pools_views import login
from tests.webapp.test_scheduling import broker_cipher, query_for, schedule
from webapp import deps
from webapp.services.availability import free_slots
from webapp.services.pools import manage


def quiet_day():
    return next_weekday(29)  # weeks ahead: the seeded calendars are quiet


SLOT_RE = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')


def setup_pool(app, session, sandbox, org, recruiter, *, limit=None):
    """Interviewer u1; shadows u2 and u3 (u3 at most ``limit`` interviews a day)."""
    people = make_panel(app, session, sandbox, org, 3)
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend")
    manage.add_member(session, me, pool.id, people[0][0].id)
    manage.add_member(session, me, pool.id, people[1][0].id, is_shadow=True)
    manage.add_member(session, me, pool.id, people[2][0].id, is_shadow=True, max_per_day=limit)
    riley = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    return people, pool, riley


def args_of(riley, pool, **kw):
    return {
        **({"panel": riley.id} if riley is not None else {}),
        "pools": f"{pool.id}:1",
        "shadow_pools": pool.id,
        "start_date": quiet_day().isoformat(),
        "days": 1,
        "duration": 60,
        **kw,
    }


def book_from_page(client, auth, args):
    page = client.get("/schedule/", query_string=args)
    body = page.get_data(as_text=True)
    assert page.status_code == 200, body
    slot = SLOT_RE.findall(body)[0]
    booked = auth.post(
        "/schedule/",
        {
            **args,
            "slot": slot,
            "title": "Backend interview",
            "candidate_name": "Casey Candidate",
            "candidate_email": "casey@gmail.example",
            "required": "all",
        },
        form_page="/schedule/?" + "&".join(f"{k}={v}" for k, v in args.items()),
    )
    assert booked.status_code == 303, booked.get_data(as_text=True)[:500]
    return body, slot, client.get(booked.location).get_data(as_text=True)


def shadows_on(session, interview_id):
    session.expire_all()
    return session.execute(
        select(InterviewLoad.user_id, InterviewLoad.pool_id).where(
            InterviewLoad.interview_id == interview_id, InterviewLoad.is_shadow.is_(True)
        )
    ).all()


def attendees_of(app, session, recruiter, interview):
    events = {e.event_id: e for e in managed(app, session, recruiter_link(session, recruiter))}
    return {a.email.lower() for a in events[interview.events[0].event_id].attendees}


def test_the_least_loaded_free_shadow_sits_in_never_counted(app, session, sandbox, org, recruiter):
    (u1, l1), (u2, l2), (u3, l3) = setup_pool(app, session, sandbox, org, recruiter)[0]
    pool = manage.pools(session, actor_of(recruiter))[0]
    riley = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    # u2 already sits on one of our interviews that week: u3 is the least loaded shadow.
    q = query_for([(u2, l2)], start_date=quiet_day(), days=1, duration=30)
    first = free_slots.grid(session, *broker_cipher(app), actor_of(recruiter), q).slots[-1]
    schedule(app, session, recruiter, q, first.start)
    neighbour = seed_neighbour(session, deps.cipher.of(app), [u2, u3])
    theirs = snapshot(session, neighbour.org.id)
    client, auth = login(app, recruiter)
    body, slot, followed = book_from_page(client, auth, args_of(riley, pool))
    assert 'id="shadow-note"' in body and "Also a shadow of Backend sits in" in body
    assert f"{u3.name} sits in as a shadow" in followed, re.findall(r"flash[^>]*>([^<]*)", followed)
    interview = session.scalars(select(Interview).order_by(Interview.id.desc())).first()
    assert set(interview.panel_link_ids) == {riley.id, l1.id}  # the N: u1, not a shadow
    assert shadows_on(session, interview.id) == [(u3.id, pool.id)]
    assert u3.email.lower() in attendees_of(app, session, recruiter, interview)
    subs = set(session.scalars(select(SlotClaim.sub).where(SlotClaim.interview_id == interview.id)))
    assert l3.sub in subs
    assert f"with {u1.name} (Backend) picked from the pool" in followed
    assert snapshot(session, neighbour.org.id) == theirs


def test_no_shadow_free_under_their_limits_books_without_one(app, session, sandbox, org, recruiter):
    people, pool, riley = setup_pool(app, session, sandbox, org, recruiter, limit=1)
    (u1, l1), (u2, l2), (u3, l3) = people
    # u3 is at their daily limit; u2 is booked (by us) at the very time the page offers first.
    q3 = query_for([(u3, l3)], start_date=quiet_day(), days=1, duration=30)
    schedule(
        app,
        session,
        recruiter,
        q3,
        free_slots.grid(session, *broker_cipher(app), actor_of(recruiter), q3).slots[-1].start,
    )
    client, auth = login(app, recruiter)
    # The panel is the pool's alone (the recruiter's own calendar holds the bookings below).
    page = client.get("/schedule/", query_string=args_of(None, pool)).get_data(as_text=True)
    first = SLOT_RE.findall(page)[0]
    import datetime as dt

    q2 = query_for([(u2, l2)], start_date=quiet_day(), days=1, duration=60)
    schedule(app, session, recruiter, q2, dt.datetime.fromisoformat(first))
    _body, slot, followed = book_from_page(client, auth, args_of(None, pool))
    assert slot == first
    assert "no shadow of the pool was free at that time, so it goes ahead without one" in followed
    interview = session.scalars(select(Interview).order_by(Interview.id.desc())).first()
    assert shadows_on(session, interview.id) == []
    assert interview.panel_link_ids == [l1.id]
    assert not {u2.email.lower(), u3.email.lower()} & attendees_of(
        app, session, recruiter, interview
    )


def test_a_shadow_must_come_from_an_asked_pool_of_ours(app, session, sandbox, org, recruiter):
    people, pool, riley = setup_pool(app, session, sandbox, org, recruiter)
    client, _auth = login(app, recruiter)
    for bad in ({"shadow_pools": "x"}, {"shadow_pools": pool.id + 999}, {"pools": ""}):
        page = client.get("/schedule/", query_string=args_of(riley, pool, **bad))
        assert page.status_code == 400, bad
        assert 'role="alert"' in page.get_data(as_text=True)
    assert session.scalar(select(InterviewLoad)) is None
