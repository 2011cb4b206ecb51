"""Pool picks on the schedule flow, against the sandbox aggregator: one availability call, who is
picked and why, the pick re-checked at booking, limits, and our own claims."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from models import Interview, InterviewLoad, PoolMember, ProfileLink, Role, utcnow
from tests.factories import make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import make_panel
from webapp import deps
from webapp.services import Actor
from webapp.services.availability import free_slots, model
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.pools import manage
from webapp.services.scheduling import booking


def actor_of(user) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role)


def week_ahead() -> dt.date:
    """A weekday at least a week ahead (in London), so no run of the suite sees it as past."""
    day = utcnow().astimezone(model.zone("Europe/London")).date() + dt.timedelta(days=7)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    return day


@pytest.fixture
def pool_setup(app, session, sandbox, org, recruiter):
    """Riley (the recruiter, linked) and a pool of three linked colleagues."""
    admin = make_user(session, org, Role.ADMIN)
    people = make_panel(app, session, sandbox, org, 3)
    pool = manage.create_pool(session, actor_of(admin), "Backend")
    for user, _link in people:
        manage.add_member(session, actor_of(admin), pool.id, user.id)
    riley_link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    return pool, people, riley_link, admin


def query_of(riley_link, pool, n=1, **kw) -> model.Query:
    return model.Query(
        panel_link_ids=(riley_link.id,) if riley_link is not None else (),
        start_date=kw.pop("start_date", week_ahead()),
        days=kw.pop("days", 1),
        pools=((pool.id, n),),
        **kw,
    )


def grid_of(app, session, user, query):
    return free_slots.grid(session, deps.broker.of(app), deps.cipher.of(app), actor_of(user), query)


def book(app, session, user, query, start):
    interview, _payload = booking.create_interview(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        deps.sealer.of(app),
        actor_of(user),
        booking.NewInterview(
            query=query,
            start=start,
            candidate_name="Casey Candidate",
            candidate_email="casey@gmail.example",
            title="Backend interview",
        ),
        jobs=HeldJobs(),
    )
    session.expire_all()
    return session.get(Interview, interview.id)


def picked_user(session, interview) -> tuple[int, int | None]:
    [(user_id, pool_id)] = session.execute(
        select(InterviewLoad.user_id, InterviewLoad.pool_id).where(
            InterviewLoad.interview_id == interview.id, InterviewLoad.pool_id.is_not(None)
        )
    ).all()
    return user_id, pool_id


def test_the_grid_is_one_availability_call_and_explains_every_slot(
    app, session, sandbox, recruiter, pool_setup
):
    pool, people, riley_link, _admin = pool_setup
    sandbox.call("DELETE", "/stats")
    grid = grid_of(app, session, recruiter, query_of(riley_link, pool))
    stats = sandbox.stats()["requests"]
    assert stats.get("POST /v1/availability") == 1  # named panel, the pool and all: one call
    assert stats.get("GET /v1/free_busy") == 1  # the busy overlay of the named person only
    assert grid.slots and set(grid.pool_picks) == {s.start.isoformat() for s in grid.slots}
    subs = {u.id: link.sub for u, link in people}
    for slot in grid.slots:
        [asked] = grid.pool_picks[slot.start.isoformat()]
        [chosen] = asked.chosen
        assert subs[chosen.user_id] in slot.participants  # the aggregator said they are free
        assert asked.summary == f"Backend: {chosen.name}"
        assert chosen.reason.endswith("picked") and "0 interviews within 7 days" in chosen.reason
        assert len(asked.picks) == 3 and recruiter.id not in {p.user_id for p in asked.picks}


def test_booking_repicks_by_load_and_records_the_pick(app, session, sandbox, recruiter, pool_setup):
    pool, people, riley_link, _admin = pool_setup
    query = query_of(riley_link, pool)
    slots = grid_of(app, session, recruiter, query).slots
    starts = [s.start for s in slots if s.start.minute == 0][:3]
    picked = []
    for start in starts:
        interview = book(app, session, recruiter, query, start)
        user_id, pool_id = picked_user(session, interview)
        assert pool_id == pool.id
        link_of = {u.id: link.id for u, link in people}
        assert set(interview.panel_link_ids) == {riley_link.id, link_of[user_id]}
        picked.append(user_id)
    # Each booking counted the ones before it: three bookings, three different people.
    assert sorted(picked) == sorted(u.id for u, _l in people)
    riley_rows = session.scalars(
        select(InterviewLoad.pool_id).where(InterviewLoad.user_id == recruiter.id)
    ).all()
    assert riley_rows == [None, None, None]  # named, not picked: counted as load all the same
    assert booking.picked_names(session, interview).endswith("(Backend)")


def test_nobody_at_a_limit_is_picked_and_a_slot_nobody_can_fill_is_not_offered(
    app, session, sandbox, recruiter, pool_setup
):
    pool, people, riley_link, admin = pool_setup
    for member in session.scalars(select(PoolMember).where(PoolMember.pool_id == pool.id)):
        manage.update_member(
            session,
            actor_of(admin),
            pool.id,
            member.id,
            max_per_day=1,
            max_per_week=None,
            is_shadow=False,
        )
    query = query_of(None, pool)  # nobody named: the whole panel comes from the pool
    slots = grid_of(app, session, recruiter, query).slots
    starts = [s.start for s in slots]
    assert len(starts) >= 4
    for start in starts[:3]:
        book(app, session, recruiter, query, start)
    grid = grid_of(app, session, recruiter, query)
    assert grid.slots == ()  # everyone has had their one interview that day
    with pytest.raises(SlotTaken, match="Nobody from the pool"):
        book(app, session, recruiter, query, starts[3])
    # The next day is another day.
    later = query_of(None, pool, start_date=query.start_date + dt.timedelta(days=1))
    assert grid_of(app, session, recruiter, later).slots or later.start_date.isoweekday() > 5


def test_someone_our_booking_holds_is_not_picked_again_at_that_time(
    app, session, sandbox, recruiter, pool_setup
):
    pool, people, _riley_link, _admin = pool_setup
    query = query_of(None, pool)
    slots = grid_of(app, session, recruiter, query).slots
    start = next(s.start for s in slots if len(s.participants) >= 2)  # two of them free then
    first = picked_user(session, book(app, session, recruiter, query, start))[0]
    # The calendar does not show the first interview yet (its write job is held): our claim does.
    [asked] = grid_of(app, session, recruiter, query).pool_picks[start.isoformat()]
    assert first not in {p.user_id for p in asked.chosen}
    assert [p.reason for p in asked.picks if p.user_id == first] == [
        f"{session.get(type(recruiter), first).name}: not free at this time"
    ]
    second = picked_user(session, book(app, session, recruiter, query, start))[0]
    assert second != first


def test_shadows_are_never_picked_and_bad_asks_are_refused(
    app, session, sandbox, recruiter, pool_setup
):
    pool, people, riley_link, admin = pool_setup
    members = list(session.scalars(select(PoolMember).where(PoolMember.pool_id == pool.id)))
    for member in members[:2]:
        manage.update_member(
            session,
            actor_of(admin),
            pool.id,
            member.id,
            max_per_day=None,
            max_per_week=None,
            is_shadow=True,
        )
    grid = grid_of(app, session, recruiter, query_of(riley_link, pool))
    for asked in grid.pool_picks.values():
        assert [p.user_id for p in asked[0].chosen] == [members[2].user_id]
    with pytest.raises(Invalid, match="ask for fewer"):
        grid_of(app, session, recruiter, query_of(riley_link, pool, n=2))
    with pytest.raises(Invalid, match="a pool from the list"):
        grid_of(
            app,
            session,
            recruiter,
            model.Query(panel_link_ids=(riley_link.id,), pools=((pool.id + 999, 1),)),
        )
    with pytest.raises(Invalid):
        grid_of(
            app,
            session,
            recruiter,
            model.Query(panel_link_ids=(riley_link.id,), pools=((pool.id, 1), (pool.id, 1))),
        )


def test_another_organisations_pool_cannot_be_asked_even_sharing_addresses(
    app, session, sandbox, org, recruiter, pool_setup
):
    from tests.factories import make_org

    _pool, people, riley_link, _admin = pool_setup
    other = make_org(session, "Contoso")
    their_admin = make_user(session, other, Role.ADMIN, email="admin@contoso.example")
    theirs = manage.create_pool(session, actor_of(their_admin), "Backend")
    for user, _link in people:  # their namesakes, at our people's addresses
        twin = make_user(session, other, Role.INTERVIEWER, email=user.email, password=False)
        manage.add_member(session, actor_of(their_admin), theirs.id, twin.id)
    sandbox.call("DELETE", "/stats")
    with pytest.raises(Invalid, match="a pool from the list"):
        grid_of(app, session, recruiter, query_of(riley_link, theirs))
    with pytest.raises(Invalid, match="a pool from the list"):
        book(app, session, recruiter, query_of(riley_link, theirs), utcnow() + dt.timedelta(days=8))
    assert sandbox.stats()["requests"].get("POST /v1/availability", 0) == 0
    assert session.scalar(select(Interview.id)) is None
