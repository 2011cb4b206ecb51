"""Interviewer pools as services: defining them (isolation, limits) and picking by load."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

from models import (
    AuditEntry,
    Interview,
    InterviewLoad,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    Pool,
    PoolMember,
    ProfileLink,
    Role,
)
from tests.factories import make_org, make_user
from webapp.services import Actor
from webapp.services.errors import Forbidden, Invalid, NotFound
from webapp.services.pools import ledger, manage, picking

#: A Wednesday noon, far from any real date the suite runs on: layout never depends on today.
WED = dt.datetime(2031, 3, 12, 12, 0, tzinfo=dt.UTC)
_n = itertools.count(1)


def actor_of(user) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role)


@pytest.fixture
def admin(session, org):
    return make_user(session, org, Role.ADMIN, email="alex@northwind.example", name="Alex Kim")


def person(session, org, name, role=Role.INTERVIEWER, email=None):
    return make_user(
        session,
        org,
        role,
        name=name,
        email=email or f"{name.split()[0].lower()}{next(_n)}@northwind.example",
        password=role.can_log_in,
    )


def host_link(session, user) -> ProfileLink:
    link = ProfileLink(
        organisation_id=user.organisation_id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub=f"acc_test{next(_n)}",
        status=LinkStatus.ACTIVE,
    )
    session.add(link)
    session.commit()
    return link


def booked(session, link, users, start, *, pool=None, status=InterviewStatus.SCHEDULED):
    """An interview we booked, with its ledger rows (as commit_interview writes them)."""
    interview = Interview(
        uid=f"u{next(_n)}",
        organisation_id=link.organisation_id,
        host_link_id=link.id,
        panel_link_ids=[],
        status=status,
    )
    session.add(interview)
    session.flush()
    ledger.write(
        session,
        link.organisation_id,
        interview.id,
        [u.id for u in users],
        start,
        {u.id: pool.id for u in users} if pool is not None else None,
    )
    session.commit()
    return interview


def test_a_pool_is_created_with_members_and_limits_and_audited(session, org, admin):
    me = actor_of(admin)
    sam, anna = person(session, org, "Sam Patel"), person(session, org, "Anna Becker")
    pool = manage.create_pool(session, me, "  Backend interviewers ", "Python and SQL")
    manage.add_member(session, me, pool.id, sam.id, max_per_day=2, max_per_week=5)
    manage.add_member(session, me, pool.id, anna.id, is_shadow=True)
    session.expire_all()
    pool = session.get(Pool, pool.id)
    assert pool.name == "Backend interviewers" and pool.about == "Python and SQL"
    by_user = {m.user_id: m for m in pool.members}
    assert (by_user[sam.id].max_per_day, by_user[sam.id].max_per_week) == (2, 5)
    assert by_user[anna.id].is_shadow and by_user[anna.id].max_per_week is None
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_type == "pool").order_by(AuditEntry.id)
    ).all()
    assert actions == ["pool.created", "pool.member_added", "pool.member_added"]


def test_bad_input_is_refused_and_changes_nothing(session, org, admin):
    me = actor_of(admin)
    sam = person(session, org, "Sam Patel")
    pool = manage.create_pool(session, me, "Bar raisers")
    for name in ("", " ", "x" * 81, "two\nlines"):
        with pytest.raises(Invalid):
            manage.create_pool(session, me, name)
    with pytest.raises(Invalid, match="already has a pool"):
        manage.create_pool(session, me, "bar RAISERS")
    for raw in ("0", "-1", "abc", "13", "1.5"):
        with pytest.raises(Invalid):
            manage.parse_limit(raw, "max_per_day", manage.MAX_PER_DAY)
    assert manage.parse_limit("", "max_per_day", 12) is None
    with pytest.raises(Invalid, match="above the weekly"):
        manage.add_member(session, me, pool.id, sam.id, max_per_day=3, max_per_week=2)
    manage.add_member(session, me, pool.id, sam.id)
    with pytest.raises(Invalid, match="already in this pool"):
        manage.add_member(session, me, pool.id, sam.id)
    assert session.scalar(select(func.count()).select_from(Pool)) == 1
    assert session.scalar(select(func.count()).select_from(PoolMember)) == 1


def test_only_admins_and_recruiters_manage_pools(session, org, admin):
    pool = manage.create_pool(session, actor_of(admin), "Bar raisers")
    for role in (Role.COORDINATOR, Role.COMPLIANCE):
        someone = actor_of(make_user(session, org, role))
        with pytest.raises(Forbidden):
            manage.create_pool(session, someone, "Mine")
        with pytest.raises(Forbidden):
            manage.delete_pool(session, someone, pool.id)
    recruiter = actor_of(make_user(session, org, Role.RECRUITER))
    manage.update_pool(session, recruiter, pool.id, "Bar raisers (EU)")
    assert session.get(Pool, pool.id).name == "Bar raisers (EU)"


def test_another_organisations_person_is_never_added_even_with_the_same_email(session, org, admin):
    other = make_org(session, "Contoso")
    shared = "sam.patel@shared.example"
    ours = person(session, org, "Sam Patel", email=shared)
    theirs = person(session, other, "Sam Patel", email=shared)
    their_admin = make_user(session, other, Role.ADMIN)
    me = actor_of(admin)
    pool = manage.create_pool(session, me, "Backend")
    with pytest.raises(Invalid, match="your organisation"):
        manage.add_member(session, me, pool.id, theirs.id)
    manage.add_member(session, me, pool.id, ours.id)
    assert [p.user.id for p in manage.people(session, me) if p.user.email == shared] == [ours.id]
    # Their admin sees neither our pool nor can touch it, whatever its id.
    them = actor_of(their_admin)
    assert manage.pools(session, them) == []
    with pytest.raises(NotFound):
        manage.add_member(session, them, pool.id, theirs.id)
    with pytest.raises(NotFound):
        manage.delete_pool(session, them, pool.id)
    assert [m.user_id for m in session.get(Pool, pool.id).members] == [ours.id]


def test_members_are_changed_and_removed_within_the_pool_only(session, org, admin):
    me = actor_of(admin)
    sam = person(session, org, "Sam Patel")
    a, b = manage.create_pool(session, me, "A"), manage.create_pool(session, me, "B")
    member = manage.add_member(session, me, a.id, sam.id)
    with pytest.raises(NotFound):
        manage.update_member(
            session, me, b.id, member.id, max_per_day=1, max_per_week=None, is_shadow=False
        )
    manage.update_member(
        session, me, a.id, member.id, max_per_day=1, max_per_week=3, is_shadow=True
    )
    session.expire_all()
    m = session.get(PoolMember, member.id)
    assert (m.max_per_day, m.max_per_week, m.is_shadow) == (1, 3, True)
    manage.remove_member(session, me, a.id, member.id)
    assert session.get(PoolMember, member.id) is None
    manage.add_member(session, me, b.id, sam.id)
    manage.delete_pool(session, me, b.id)
    assert session.scalar(select(func.count()).select_from(PoolMember)) == 0


@pytest.fixture
def five(session, org, admin):
    """A pool of five interviewers (plus a shadow) and a host link to book with."""
    me = actor_of(admin)
    pool = manage.create_pool(session, me, "Backend")
    people = [person(session, org, n) for n in ("Anna A", "Ben B", "Cara C", "Dev D", "Eli E")]
    for p in people:
        manage.add_member(session, me, pool.id, p.id)
    shadow = person(session, org, "Sky Shadow")
    manage.add_member(session, me, pool.id, shadow.id, is_shadow=True)
    session.expire_all()
    return session.get(Pool, pool.id), people, shadow, host_link(session, admin)


def test_the_least_loaded_free_member_is_picked_with_reasons(session, five):
    pool, (anna, ben, cara, dev, eli), shadow, link = five
    booked(session, link, [anna], WED - dt.timedelta(days=1))
    booked(session, link, [anna, ben], WED + dt.timedelta(days=2))
    booked(session, link, [cara], WED - dt.timedelta(days=30))  # outside the window: no load
    free = {anna.id, ben.id, cara.id, shadow.id}  # Dev and Eli are busy
    picks = picking.pick_from_pool(session, pool, free, 1, WED)
    assert [p.name for p in picking.picked(picks)] == ["Cara C"]
    reasons = {p.name: p.reason for p in picks}
    assert (
        reasons["Cara C"] == "Cara C: 0 interviews within 7 days (0 that week, 0 that day), picked"
    )
    assert reasons["Anna A"].startswith("Anna A: 2 interviews within 7 days (2 that week")
    assert reasons["Dev D"] == "Dev D: not free at this time"
    assert "shadow" in reasons["Sky Shadow"]
    assert not any(p.picked for p in picks if p.user_id == shadow.id)
    two = picking.picked(picking.pick_from_pool(session, pool, free, 2, WED))
    assert [p.name for p in two] == ["Cara C", "Ben B"]


def test_nobody_is_picked_above_a_daily_or_weekly_limit(session, org, admin, five):
    pool, (anna, ben, *_rest), _shadow, link = five
    me = actor_of(admin)
    by_user = {m.user_id: m for m in pool.members}
    manage.update_member(
        session, me, pool.id, by_user[anna.id].id, max_per_day=1, max_per_week=None, is_shadow=False
    )
    manage.update_member(
        session, me, pool.id, by_user[ben.id].id, max_per_day=None, max_per_week=2, is_shadow=False
    )
    booked(session, link, [anna], WED.replace(hour=8))  # same day
    booked(session, link, [ben], WED - dt.timedelta(days=2))  # Monday, same week
    booked(session, link, [ben], WED + dt.timedelta(days=3))  # Saturday, same week
    session.expire_all()
    pool = session.get(Pool, pool.id)
    picks = picking.pick_from_pool(session, pool, {anna.id, ben.id}, 1, WED)
    assert picking.picked(picks) == []
    reasons = picking.explain(picks)
    assert "Anna A: 1 interview that day (daily limit 1 reached)" in reasons
    assert "Ben B: 2 interviews that week (weekly limit 2 reached)" in reasons
    # Next Monday is another week and another day: both may be picked again.
    monday = WED + dt.timedelta(days=5)
    assert (
        len(picking.picked(picking.pick_from_pool(session, pool, {anna.id, ben.id}, 2, monday)))
        == 2
    )


def test_cancelled_interviews_do_not_count_and_moves_and_purges_follow(session, five):
    pool, (anna, ben, *_rest), _shadow, link = five
    gone = booked(session, link, [anna], WED, status=InterviewStatus.CANCELLED)
    moved = booked(session, link, [ben], WED)
    ledger.move(session, moved.id, WED + dt.timedelta(days=20))
    session.commit()
    picks = {p.user_id: p for p in picking.pick_from_pool(session, pool, {anna.id, ben.id}, 1, WED)}
    assert picks[anna.id].load == 0 and picks[ben.id].load == 0
    assert ledger.purge(session, now=WED + dt.timedelta(days=30)) == 1  # the cancelled one
    assert session.scalars(select(InterviewLoad.interview_id)).all() == [moved.id]
    assert gone.id != moved.id


def test_ties_go_to_whoever_was_picked_least_recently(session, five):
    pool, (anna, ben, cara, dev, eli), _shadow, link = five
    free = {anna.id, ben.id, cara.id}
    # Each booked once this week from this pool, Cara longest ago, then Anna.
    booked(session, link, [cara], WED - dt.timedelta(hours=3), pool=pool)
    booked(session, link, [anna], WED - dt.timedelta(hours=2), pool=pool)
    booked(session, link, [ben], WED - dt.timedelta(hours=1), pool=pool)
    order = [p.name for p in picking.pick_from_pool(session, pool, free, 3, WED) if p.picked]
    assert order == ["Cara C", "Anna A", "Ben B"]


def test_never_picked_ties_are_stable_per_slot_and_take_turns(session, five):
    pool, people, _shadow, _link = five
    free = {p.id for p in people}
    first = [picking.picked(picking.pick_from_pool(session, pool, free, 1, WED))[0].user_id]
    again = picking.picked(picking.pick_from_pool(session, pool, free, 1, WED))[0].user_id
    assert first == [again]  # the same question, the same answer
    winners = {
        picking.picked(
            picking.pick_from_pool(session, pool, free, 1, WED + dt.timedelta(minutes=15 * i))
        )[0].user_id
        for i in range(40)
    }
    assert len(winners) >= 4  # not the first by name every time


def test_people_already_on_the_panel_are_not_picked_again(session, five):
    pool, (anna, ben, *_rest), _shadow, _link = five
    picks = picking.pick_from_pool(
        session, pool, {anna.id, ben.id}, 1, WED, exclude_user_ids={anna.id}
    )
    assert [p.name for p in picking.picked(picks)] == ["Ben B"]
    assert anna.id not in {p.user_id for p in picks}


def test_limits_count_in_the_persons_own_time_zone(session, org, admin, five):
    pool, (anna, *_rest), _shadow, link = five
    anna.timezone = "America/New_York"
    session.commit()
    by_user = {m.user_id: m for m in pool.members}
    manage.update_member(
        session,
        actor_of(admin),
        pool.id,
        by_user[anna.id].id,
        max_per_day=1,
        max_per_week=None,
        is_shadow=False,
    )
    # 02:00 UTC Thursday is still Wednesday evening in New York.
    booked(session, link, [anna], WED.replace(hour=23) + dt.timedelta(hours=3))
    session.expire_all()
    pool = session.get(Pool, pool.id)
    [pick] = [
        p for p in picking.pick_from_pool(session, pool, {anna.id}, 1, WED) if p.user_id == anna.id
    ]
    assert not pick.picked and "daily limit 1 reached" in pick.reason


def test_export_lists_and_erasure_removes_a_persons_memberships_and_load(
    app, session, org, admin, five
):
    from webapp import deps
    from webapp.services.compliance import erasure, inventory, subjects

    pool, (anna, ben, *_rest), _shadow, link = five
    booked(session, link, [anna, ben], WED, pool=pool)
    reviewer = actor_of(make_user(session, org, Role.COMPLIANCE))
    records = subjects.person_records(session, reviewer, anna.id)
    assert [r["pool_id"] for r in records["pool_member"]] == [pool.id]
    assert [r["user_id"] for r in records["interview_load"]] == [anna.id]
    request = erasure.propose_erasure(session, reviewer, anna.id, "keep")
    erasure.decide_erasure(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        actor_of(admin),
        request.id,
        approve=True,
        confirm_role=Role.ADMIN,
        jobs=deps.jobs.of(app),
        typed_confirmation=anna.email,
    )
    session.expire_all()
    assert (
        session.scalars(select(PoolMember.user_id).where(PoolMember.user_id == anna.id)).all() == []
    )
    assert session.scalars(select(InterviewLoad.user_id)).all() == [ben.id]
    assert ben.id in {m.user_id for m in session.get(Pool, pool.id).members}
    listed = {t.name: t for t in inventory.inventory(session, reviewer)}
    assert listed["pool_member"].rows == len(session.get(Pool, pool.id).members)
    assert listed["interview_load"].rows == 1
    retention = {c.name: c.retention for c in listed["interview_load"].columns}
    assert "29 days after the interview" in retention["starts_at"]
