"""The pools pages and pool picks on the schedule page, through HTTP: PRG, CSRF, clear errors,
two organisations sharing an address."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import Interview, InterviewLoad, Pool, PoolMember, ProfileLink, Role
from tests.conftest import AuthActions
from tests.factories import make_org, make_user
from tests.webapp.scheduling_support import make_panel
from tests.webapp.test_pools_scheduling import week_ahead

SHARED = "sam.shared@northwind.example"


def login(app, user):
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login(user.email).status_code in (302, 303)
    return client, auth


def counts(session):
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Pool, PoolMember))


@pytest.fixture
def people(session, org):
    """Our recruiter, our directory person Sam, and another organisation's Sam at the same
    address."""
    recruiter = make_user(session, org, Role.RECRUITER, email="rec@northwind.example")
    sam = make_user(session, org, Role.INTERVIEWER, email=SHARED, name="Sam Ours", password=False)
    other = make_org(session, "Contoso")
    their_sam = make_user(
        session, other, Role.INTERVIEWER, email=SHARED, name="Sam Theirs", password=False
    )
    their_admin = make_user(session, other, Role.ADMIN, email="admin@contoso.example")
    return recruiter, sam, their_sam, their_admin


def test_a_recruiter_defines_a_pool_with_prg_and_limits(app, session, people):
    recruiter, sam, their_sam, _ = people
    client, auth = login(app, recruiter)
    created = auth.post("/pools/", {"name": "Bar raisers", "about": "Senior only"})
    assert created.status_code == 303
    pool_url = created.location
    pool = session.scalar(select(Pool))
    assert pool_url.endswith(f"/pools/{pool.id}")
    page = client.get(pool_url).get_data(as_text=True)
    assert "Sam Ours" in page and "Sam Theirs" not in page  # only our organisation's people
    added = auth.post(
        f"/pools/{pool.id}/members",
        {"user_id": sam.id, "max_per_day": "2", "max_per_week": "4", "is_shadow": "on"},
        form_page=pool_url,
    )
    assert added.status_code == 303 and added.location.endswith(f"/pools/{pool.id}")
    session.expire_all()
    [member] = session.get(Pool, pool.id).members
    assert (member.user_id, member.max_per_day, member.max_per_week, member.is_shadow) == (
        sam.id,
        2,
        4,
        True,
    )
    page = client.get(pool_url).get_data(as_text=True)
    assert "Sam Ours" in page and "No calendar linked" in page
    changed = auth.post(
        f"/pools/{pool.id}/members/{member.id}",
        {"max_per_day": "", "max_per_week": "3"},
        form_page=pool_url,
    )
    assert changed.status_code == 303
    session.expire_all()
    member = session.get(PoolMember, member.id)
    assert (member.max_per_day, member.max_per_week, member.is_shadow) == (None, 3, False)


def test_bad_input_gets_a_clear_400_and_changes_nothing(app, session, people):
    recruiter, sam, their_sam, _ = people
    client, auth = login(app, recruiter)
    assert auth.post("/pools/", {"name": "Backend"}).status_code == 303
    pool = session.scalar(select(Pool))
    before = counts(session)
    response = auth.post("/pools/", {"name": "backend"})
    assert response.status_code == 400 and "already has a pool" in response.get_data(as_text=True)
    url = f"/pools/{pool.id}"
    for data, message in (
        ({"user_id": their_sam.id}, "Choose someone of your organisation"),
        ({"user_id": "abc"}, "Choose someone of your organisation"),
        ({"user_id": sam.id, "max_per_day": "0"}, "A limit is a whole number from 1 to 12"),
        ({"user_id": sam.id, "max_per_week": "x"}, "A limit is a whole number"),
        ({"user_id": sam.id, "max_per_day": "5", "max_per_week": "2"}, "above the weekly limit"),
    ):
        response = auth.post(f"{url}/members", data, form_page=url)
        body = response.get_data(as_text=True)
        assert response.status_code == 400, data
        assert message in body and 'role="alert"' in body, data
    assert counts(session) == before
    # No CSRF token: refused, nothing changed.
    assert client.post("/pools/", data={"name": "No token"}).status_code == 400
    assert counts(session) == before


def test_another_organisation_cannot_see_or_touch_our_pool(app, session, people):
    recruiter, sam, their_sam, their_admin = people
    _c, auth = login(app, recruiter)
    auth.post("/pools/", {"name": "Platform team"})
    pool = session.scalar(select(Pool))
    auth.post(f"/pools/{pool.id}/members", {"user_id": sam.id}, form_page=f"/pools/{pool.id}")
    member = session.scalar(select(PoolMember))
    client, their = login(app, their_admin)
    assert "Platform team" not in client.get("/pools/").get_data(as_text=True)
    assert client.get(f"/pools/{pool.id}").status_code == 404
    before = counts(session)
    for path, data in (
        (f"/pools/{pool.id}", {"name": "Taken over"}),
        (f"/pools/{pool.id}/delete", {}),
        (f"/pools/{pool.id}/members", {"user_id": their_sam.id}),
        (f"/pools/{pool.id}/members/{member.id}", {"max_per_day": "1"}),
        (f"/pools/{pool.id}/members/{member.id}/remove", {}),
    ):
        assert their.post(path, data, form_page="/pools/").status_code == 404, path
    assert counts(session) == before
    session.expire_all()
    assert session.get(Pool, pool.id).name == "Platform team"


def test_coordinators_and_reviewers_cannot_manage_pools(app, session, org, people):
    for role in (Role.COORDINATOR, Role.COMPLIANCE):
        client, _auth = login(app, make_user(session, org, role))
        assert client.get("/pools/").status_code == 403


def test_the_schedule_page_asks_a_pool_shows_who_and_why_and_books(
    app, session, sandbox, org, recruiter
):
    people = make_panel(app, session, sandbox, org, 3)
    admin = make_user(session, org, Role.ADMIN)
    client, auth = login(app, recruiter)
    assert auth.post("/pools/", {"name": "Backend"}).status_code == 303
    pool = session.scalar(select(Pool))
    for user, _link in people:
        auth.post(f"/pools/{pool.id}/members", {"user_id": user.id}, form_page=f"/pools/{pool.id}")
    riley_link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == recruiter.id))
    form = client.get("/schedule/").get_data(as_text=True)
    assert f'value="{pool.id}:1"' in form and "Any 3 from Backend" in form
    args = {
        "panel": riley_link.id,
        "pools": f"{pool.id}:1",
        "start_date": week_ahead().isoformat(),
        "days": 1,
        "duration": 60,
    }
    page = client.get("/schedule/", query_string=args)
    body = page.get_data(as_text=True)
    assert page.status_code == 200, re.findall(r'role="alert"[^>]*>([^<]+)', body)
    assert "Who the pools would pick, and why" in body
    assert re.search(r"Backend: [A-Z][a-z]+ [A-Z][a-z]+", body)
    assert "0 interviews within 7 days (0 that week, 0 that day), picked" in body
    assert 'data-picks="Backend: ' in body and "pool_picks.js" in body
    slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', body).group(1)
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
    assert booked.status_code == 303
    interview = session.scalar(select(Interview))
    [(picked, from_pool)] = session.execute(
        select(InterviewLoad.user_id, InterviewLoad.pool_id).where(
            InterviewLoad.pool_id.is_not(None)
        )
    ).all()
    assert from_pool == pool.id and picked in {u.id for u, _l in people}
    followed = client.get(booked.location).get_data(as_text=True)
    picked_name = next(u.name for u, _l in people if u.id == picked)
    assert f"with {picked_name} (Backend) picked from the pool" in followed
    assert len(interview.panel_link_ids) == 2
    # A malformed ask is a clear 400, not a 500.
    bad = client.get("/schedule/", query_string={**args, "pools": "x:y"})
    assert bad.status_code == 400 and "Choose how many people each pool gives" in bad.get_data(
        as_text=True
    )
    assert admin.id  # (an IT admin of the organisation exists; pools are theirs to manage too)
