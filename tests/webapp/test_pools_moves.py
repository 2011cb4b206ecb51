"""A moved interview keeps the people picked for it from a pool, and their limits hold at the new
time: a move onto a day where a picked person is at their limit is refused and changes nothing
(ledger, claims, calendar); the reschedule page does not offer such times; other organisations'
bookings never count; and two moves racing onto one person's last free place: one wins."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from sqlalchemy import select

from models import (
    Interview,
    InterviewLoad,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    ProfileLink,
    Role,
    SlotClaim,
)
from tests.api.conftest import ApiClient, issue_token
from tests.factories import make_org, make_user
from tests.webapp.scheduling_support import make_panel, managed
from tests.webapp.test_booking_claims import CSRF_RE, run_together, web_login
from tests.webapp.test_multiworker import gunicorn, postgres_only  # noqa: F401 (fixture)
from tests.webapp.test_pools_scheduling import actor_of, grid_of, week_ahead
from tests.webapp.test_reschedule import SLOT_RE
from webapp import deps
from webapp.services.availability import model
from webapp.services.errors import Invalid
from webapp.services.pools import ledger, limits, manage
from webapp.services.scheduling import booking, rescheduling

LIMIT = "Sam Pool has reached the limit of 1 interview a day on that day for pool Backend."


@pytest.fixture
def world(app, session, sandbox, org, recruiter):
    """Sam, the only member of pool Backend (one interview a day), and four free 15-minute
    starts on each of three weekdays (Sam picked for every booking)."""
    admin = make_user(session, org, Role.ADMIN)
    [(sam, link)] = make_panel(app, session, sandbox, org, 1)
    sam.name = "Sam Pool"
    session.commit()
    pool = manage.create_pool(session, actor_of(admin), "Backend")
    manage.add_member(session, actor_of(admin), pool.id, sam.id, max_per_day=1)
    days: dict[dt.date, list[dt.datetime]] = {}
    day = week_ahead()
    day += dt.timedelta(days=7 - day.weekday())  # a Monday: the three days are one week
    while len(days) < 3:
        assert day.isoweekday() <= 5, "no three days of one week with free time in the seed"
        query = model.Query(
            panel_link_ids=(), start_date=day, days=1, duration=15, pools=((pool.id, 1),)
        )
        starts, last = [], None
        for slot in grid_of(app, session, recruiter, query).slots:
            if link.sub in slot.participants and (last is None or slot.start >= last):
                starts.append(slot.start)
                last = slot.end
        if len(starts) >= 4:
            days[day] = starts
        day += dt.timedelta(days=1)
    return pool, sam, link, list(days.values())


def book(app, session, recruiter, pool, start):
    interview, _payload = booking.create_interview(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        deps.sealer.of(app),
        actor_of(recruiter),
        booking.NewInterview(
            query=model.Query(
                panel_link_ids=(),
                start_date=start.date(),
                days=1,
                duration=15,
                pools=((pool.id, 1),),
            ),
            start=start,
            candidate_name="Casey Candidate",
            candidate_email="casey@gmail.example",
            title="Backend interview",
        ),
        jobs=deps.jobs.of(app),  # the write job runs at once
    )
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.status is InterviewStatus.SCHEDULED
    return interview


def move(app, session, recruiter, interview, start):
    return rescheduling.reschedule_interview(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        deps.sealer.of(app),
        actor_of(recruiter),
        interview.uid,
        start,
        jobs=deps.jobs.of(app),
    )


def state(app, session, interview, link):
    """Everything a move changes: the ledger, our claims, the interview and its event."""
    session.expire_all()
    rows = session.execute(
        select(InterviewLoad.user_id, InterviewLoad.pool_id, InterviewLoad.starts_at).where(
            InterviewLoad.interview_id == interview.id
        )
    ).all()
    held = sorted(
        session.execute(
            select(SlotClaim.sub, SlotClaim.bucket_start).where(
                SlotClaim.interview_id == interview.id
            )
        ).all()
    )
    fresh = session.get(Interview, interview.id)
    event_id = fresh.events[0].event_id
    [event] = [e for e in managed(app, session, fresh.host_link) if e.event_id == event_id]
    return rows, held, session.get(Interview, interview.id).status, (event.start, event.end)


def test_a_move_onto_a_full_day_is_refused_and_changes_nothing(
    app, client, session, sandbox, recruiter, world
):
    pool, _sam, link, (first, second, _third) = world
    on_first = book(app, session, recruiter, pool, first[0])
    on_second = book(app, session, recruiter, pool, second[0])
    assert {r.pool_id for r in session.scalars(select(InterviewLoad))} == {pool.id}
    before = state(app, session, on_second, link)
    sandbox.call("DELETE", "/stats")
    with pytest.raises(Invalid) as refused:
        move(app, session, recruiter, on_second, first[2])
    assert str(refused.value.message).startswith(LIMIT)
    session.rollback()
    assert state(app, session, on_second, link) == before
    # The API says the same, as a 422, and nothing changes either.
    api = ApiClient(client, issue_token(session, recruiter))
    answer = api.post(
        f"/interviews/{on_second.uid}/reschedule", json={"start": first[2].isoformat()}
    )
    assert answer.status_code == 422 and LIMIT in str(answer.get_json()), answer.get_json()
    assert state(app, session, on_second, link) == before
    writes = {k: v for k, v in sandbox.stats()["requests"].items() if not k.startswith("GET")}
    assert set(writes) <= {"POST /v1/availability"}  # nothing written to the calendar
    # Within limits: another time of its own day (it does not count against itself).
    move(app, session, recruiter, on_second, second[2])
    move(app, session, recruiter, on_first, first[3])
    session.expire_all()
    starts = dict(
        session.execute(select(InterviewLoad.interview_id, InterviewLoad.starts_at)).all()
    )
    assert starts == {on_first.id: first[3], on_second.id: second[2]}


def test_the_weekly_limit_holds_and_a_cancelled_interview_stops_counting(
    app, session, sandbox, org, recruiter, world
):
    pool, sam, link, (first, second, third) = world
    admin = make_user(session, org, Role.ADMIN, email="second.admin@northwind.example")
    [member] = manage.pool_for(session, actor_of(admin), pool.id).members
    manage.update_member(
        session,
        actor_of(admin),
        pool.id,
        member.id,
        max_per_day=None,
        max_per_week=None,
        is_shadow=False,
    )
    a = book(app, session, recruiter, pool, first[0])
    book(app, session, recruiter, pool, first[1])
    c = book(app, session, recruiter, pool, second[0])
    manage.update_member(
        session,
        actor_of(admin),
        pool.id,
        member.id,
        max_per_day=None,
        max_per_week=2,
        is_shadow=False,
    )
    before = state(app, session, c, link)
    with pytest.raises(Invalid) as refused:  # the three days are one week (see ``world``)
        move(app, session, recruiter, c, third[0])
    assert refused.value.message.startswith(
        "Sam Pool has reached the limit of 2 interviews a week in that week for pool Backend."
    )
    session.rollback()
    assert state(app, session, c, link) == before
    # A cancelled interview stops counting: the week has room again.
    booking.cancel_interview(session, actor_of(recruiter), a.uid, jobs=deps.jobs.of(app))
    move(app, session, recruiter, c, third[0])
    session.expire_all()
    assert (
        session.scalar(select(InterviewLoad.starts_at).where(InterviewLoad.interview_id == c.id))
        == third[0]
    )
    del sam


def test_interviews_moving_together_count_where_each_will_be(
    app, session, sandbox, recruiter, world
):
    """``check_moves`` (a whole loop's move): two of Sam's interviews onto one day is over the
    limit; swapping their days is not (each leaves the day the other takes)."""
    pool, _sam, _link, (first, second, third) = world
    a = book(app, session, recruiter, pool, first[0])
    b = book(app, session, recruiter, pool, second[0])
    with pytest.raises(Invalid, match="limit of 1 interview a day on that day for pool Backend"):
        limits.check_moves(session, a.organisation_id, [(a.id, third[0]), (b.id, third[2])])
    session.rollback()
    with pytest.raises(Invalid, match="limit of 1 interview a day"):  # b stays on a's new day
        limits.check_moves(session, a.organisation_id, [(a.id, second[2])])
    session.rollback()
    limits.check_moves(session, a.organisation_id, [(a.id, second[2]), (b.id, first[2])])
    limits.check_moves(session, a.organisation_id, [(a.id, third[0]), (b.id, second[2])])
    session.rollback()
    assert limits.full_starts(
        session, a.organisation_id, b.id, [first[2], second[2], third[0]]
    ) == {first[2]}


def test_the_reschedule_page_leaves_out_the_days_a_move_would_be_refused(
    app, client, auth, session, sandbox, recruiter, world
):
    pool, _sam, _link, (first, second, _third) = world
    book(app, session, recruiter, pool, first[0])
    on_second = book(app, session, recruiter, pool, second[0])
    auth.login(recruiter.email)
    tz = model.zone("Europe/London")
    offered = set()
    for day in (first[0], second[0]):
        page = client.get(
            f"/interviews/{on_second.uid}/reschedule?start_date={day.astimezone(tz).date()}"
            "&duration=15"
        ).get_data(as_text=True)
        offered |= {dt.datetime.fromisoformat(s) for s in SLOT_RE.findall(page)}
    days = {s.astimezone(tz).date() for s in offered}
    assert second[0].astimezone(tz).date() in days  # its own day: still offered
    assert first[0].astimezone(tz).date() not in days  # Sam's full day: not offered
    # Submitted all the same (an old page): refused with the reason, nothing moved.
    response = auth.post(
        f"/interviews/{on_second.uid}/reschedule",
        {"slot": first[2].isoformat(), "duration": "15"},
        form_page=f"/interviews/{on_second.uid}/reschedule",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Sam Pool has reached the limit of 1 interview a day" in page
    session.expire_all()
    assert (
        session.scalar(
            select(InterviewLoad.starts_at).where(InterviewLoad.interview_id == on_second.id)
        )
        == second[0]
    )


def test_another_organisations_bookings_never_count(app, session, sandbox, recruiter, world):
    """A second organisation with a namesake of Sam (same address), in its own pool Backend at
    one a day, booked on the day ours moves to: our move is allowed, and their ledger stays."""
    pool, sam, _link, (first, second, third) = world
    on_second = book(app, session, recruiter, pool, second[0])
    other = make_org(session, "Contoso")
    their_admin = make_user(session, other, Role.ADMIN, email="admin@contoso.example")
    twin = make_user(session, other, Role.RECRUITER, email=sam.email, password=False)
    theirs = manage.create_pool(session, actor_of(their_admin), "Backend")
    manage.add_member(session, actor_of(their_admin), theirs.id, twin.id, max_per_day=1)
    host = ProfileLink(
        organisation_id=other.id,
        user_id=twin.id,
        mode=LinkMode.BUSINESS,
        sub="acc_contoso_twin",
        account_id="acc_contoso_twin",
        profile_id="pro_contoso_twin",
        provider="google",
        account_email=sam.email,
        status=LinkStatus.ACTIVE,
    )
    session.add(host)
    session.flush()
    theirs_booked = Interview(
        uid="contoso-twin-interview",
        organisation_id=other.id,
        host_link_id=host.id,
        panel_link_ids=[host.id],
        status=InterviewStatus.SCHEDULED,
    )
    session.add(theirs_booked)
    session.flush()
    ledger.write(session, other.id, theirs_booked.id, [twin.id], third[0], {twin.id: theirs.id})
    session.commit()
    move(app, session, recruiter, on_second, third[1])
    session.expire_all()
    assert (
        session.scalar(
            select(InterviewLoad.starts_at).where(InterviewLoad.interview_id == on_second.id)
        )
        == third[1]
    )
    assert (
        session.scalar(
            select(InterviewLoad.starts_at).where(InterviewLoad.interview_id == theirs_booked.id)
        )
        == third[0]
    )
    del first


def mover(base: str, browser: requests.Session, uid: str, start: dt.datetime):
    def go() -> str:
        with requests.Session() as own:
            own.cookies.update(browser.cookies)
            form = base + f"/interviews/{uid}/reschedule"
            page = own.get(form, timeout=60)
            response = own.post(
                form,
                timeout=60,
                allow_redirects=False,
                data={
                    "csrf_token": CSRF_RE.search(page.text).group(1),
                    "slot": start.isoformat(),
                    "duration": "15",
                },
            )
        assert response.status_code in (302, 303), response.text[:300]
        return "won" if response.status_code == 303 else "lost"

    return go


def race(app, session, recruiter, pool, days, base):
    """Two interviews on two days, both moved at once onto a third day, where Sam (picked for
    both, one a day) has nothing yet: one move wins, the other is refused."""
    first, second, third = days
    a = book(app, session, recruiter, pool, first[0])
    b = book(app, session, recruiter, pool, second[0])
    browser = web_login(base, recruiter.email)
    outcomes = run_together(
        [mover(base, browser, a.uid, third[0]), mover(base, browser, b.uid, third[2])]
    )
    assert sorted(outcomes) == ["lost", "won"], outcomes
    session.expire_all()
    starts = sorted(
        session.execute(select(InterviewLoad.starts_at)).scalars(), key=lambda s: s.isoformat()
    )
    on_third = [s for s in starts if s in (third[0], third[2])]
    assert len(on_third) == 1  # Sam has one interview that day: at the limit, not over it
    assert len(starts) == 2


def test_two_moves_racing_onto_one_free_place_one_wins(
    app, session, sandbox, recruiter, world, live_server
):
    pool, _sam, _link, days = world
    race(app, session, recruiter, pool, days, live_server.url)


def test_two_moves_racing_across_gunicorn_workers_one_wins(
    postgres_only,  # noqa: F811
    app,
    session,
    sandbox,
    recruiter,
    world,
    database_url,
    redis_url,
    tmp_path,
):
    pool, _sam, _link, days = world
    with gunicorn(sandbox, database_url, redis_url, tmp_path) as (base, _output):
        race(app, session, recruiter, pool, days, base)
