"""Each person's own time zone: how it is set (own profile, a proposal from the browser or the
calendar, the IT admin), and that availability, the grid and candidate links follow every panel
member's own working hours in their own zone, across daylight-saving changes."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from broker.types import Period
from models import AuditEntry, Interview, ProfileLink, Role, SchedulingLink
from tests.factories import make_org, make_user
from tests.webapp.scheduling_support import make_panel, next_weekday
from tests.webapp.timezone_support import (
    BERLIN,
    LONDON,
    NEW_YORK,
    dst_week,
    expected_starts,
    inside_own_hours,
)
from webapp import deps
from webapp.services import Actor, accounts, candidate_links
from webapp.services.availability import free_slots, model, roster, windows
from webapp.services.errors import Forbidden, Invalid, NotFound

CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
SLOT = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')


def actor_of(user) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role)


def broker_cipher(app):
    return deps.broker.of(app), deps.cipher.of(app)


def zone_audits(session, user_id: int) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "user.timezone_changed", AuditEntry.target_id == str(user_id)
            )
            .order_by(AuditEntry.id)
        )
    )


# --- the panel over a week that spans both daylight-saving changes ----------------------------


def test_a_three_zone_panel_over_a_dst_week_gets_only_slots_inside_everyones_own_hours(
    app, session, sandbox, zone_panel, monkeypatch
):
    week = dst_week(dt.date.today())
    london, new_york = ZoneInfo(LONDON), ZoneInfo(NEW_YORK)
    noon = lambda day: dt.datetime.combine(day, dt.time(12), dt.UTC)  # noqa: E731
    # The week really has three different London–New York gaps: 5 h, 4 h, 5 h.
    gaps = {
        (noon(d).astimezone(london).utcoffset() - noon(d).astimezone(new_york).utcoffset())
        for d in (week.first, week.eu_change + dt.timedelta(days=1), week.last)
    }
    assert gaps == {dt.timedelta(hours=5), dt.timedelta(hours=4)}
    for module in (free_slots, windows):  # the availability service's "now"
        monkeypatch.setattr(module, "utcnow", lambda: week.clock)
    sandbox.call("DELETE", "/stats")
    broker, cipher = broker_cipher(app)
    query = model.Query(
        panel_link_ids=zone_panel.link_ids,
        duration=60,
        start_date=week.first,
        days=week.days,
        tzid=LONDON,
    )

    grid = free_slots.grid(session, broker, cipher, actor_of(zone_panel.riley.user), query)

    assert sandbox.stats()["requests"].get("POST /v1/availability", 0) == 1  # one call per grid
    starts = [s.start for s in grid.slots]
    for slot in grid.slots:
        for person in zone_panel.people:
            assert inside_own_hours(slot.start, slot.end, person.tzid), (slot.start, person.tzid)
    # What the zone database says, day by day (the calendars are free that far ahead): common
    # time is 13:00–15:30 UTC on the Friday, 13:00–16:30 while Europe has changed and New York
    # not yet, 14:00–16:30 once New York has changed too. The aggregator's non-overlapping
    # slots start where the common time starts.
    possible = expected_starts([LONDON, NEW_YORK, BERLIN], week.first, week.days)
    assert set(starts) <= set(possible)
    by_day: dict[dt.date, list[dt.datetime]] = {}
    for start in starts:
        by_day.setdefault(start.date(), []).append(start)
    weekdays = [
        week.first + dt.timedelta(days=i)
        for i in range(week.days)
        if (week.first + dt.timedelta(days=i)).isoweekday() <= 5
    ]
    assert sorted(by_day) == weekdays
    for day in weekdays:
        assert by_day[day][0] == min(p for p in possible if p.date() == day)
    utc = dt.UTC
    at = lambda day, h, m=0: dt.datetime.combine(day, dt.time(h, m), utc)  # noqa: E731
    between = week.eu_change + dt.timedelta(days=1)
    assert by_day[week.first] == [at(week.first, 13), at(week.first, 14)]
    assert by_day[between] == [at(between, 13), at(between, 14), at(between, 15)]
    assert by_day[week.last] == [at(week.last, 14), at(week.last, 15)]
    # The members' own hours went to the aggregator in UTC, per day, in their own zone.
    sam = next(m for m in grid.members if m.user.id == zone_panel.sam.user.id)
    assert sam.hours.tzid == NEW_YORK and sam.hours.zone_set


def test_the_grid_says_each_members_hours_in_the_viewers_zone_and_their_own(
    app, client, auth, session, sandbox, zone_panel, monkeypatch
):
    week = dst_week(dt.date.today())
    for module in (free_slots, windows):
        monkeypatch.setattr(module, "utcnow", lambda: week.clock)
    auth.login(zone_panel.riley.user.email)
    params = [("panel", str(i)) for i in zone_panel.link_ids] + [
        ("start_date", week.first.isoformat()),
        ("days", str(week.days)),
        ("tzid", LONDON),
    ]
    html = client.get("/schedule/", query_string=params).get_data(as_text=True)
    between = week.eu_change + dt.timedelta(days=1)
    friday = f"{between + dt.timedelta(days=4):%a %d %b}"
    # Sam's day is 14:00–22:30 London, except the week Europe has changed and New York not yet.
    assert (
        f"works 09:00–17:30 New York = 14:00–22:30 London; 13:00–21:30 London on "
        f"{between:%a %d %b}–{friday}<"
    ) in html
    assert ("works 09:00–17:30 Berlin = 08:00–16:30 London") in html
    assert "works 09:00–17:30 London<" in html
    # Seen from New York, Riley's day moves instead.
    ny = client.get(
        "/schedule/", query_string=[p for p in params if p[0] != "tzid"] + [("tzid", NEW_YORK)]
    ).get_data(as_text=True)
    assert (
        f"works 09:00–17:30 London = 04:00–12:30 New York; 05:00–13:30 New York on "
        f"{between:%a %d %b}–{friday}"
    ) in ny
    for value in SLOT.findall(html):
        start = dt.datetime.fromisoformat(value)
        for person in zone_panel.people:
            assert inside_own_hours(start, start + dt.timedelta(hours=1), person.tzid)


def test_a_member_without_a_zone_is_shown_on_the_organisations(
    app, client, auth, session, sandbox, org, recruiter
):
    ((other, link),) = make_panel(app, session, sandbox, org, 1)
    auth.login(recruiter.email)
    html = client.get(
        "/schedule/",
        query_string=[("panel", str(link.id)), ("start_date", next_weekday(1).isoformat())],
    ).get_data(as_text=True)
    assert "09:00–17:30 London (own time zone not set: the organisation&#39;s is assumed)" in html


# --- candidates --------------------------------------------------------------------------------


def create_link(client, auth, panel_ids, *, tzid=NEW_YORK, hours=None, start=None, days=5):
    data = {
        "panel": [str(i) for i in panel_ids],
        "candidate_name": "Jamie Rivera",
        "candidate_email": "jamie.rivera@gmail.example",
        "candidate_tzid": tzid,
        "title": "Data Engineer",
        "duration": "60",
        "start_date": (start or next_weekday(1)).isoformat(),
        "days": str(days),
        "expires_days": "7",
    }
    if hours:
        data.update(candidate_hours="on", candidate_start=hours[0], candidate_end=hours[1])
    response = auth.post("/schedule/links/", data)
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    url = re.search(
        r'id="new-link-url" class="copy" readonly value="([^"]+)"', response.get_data(as_text=True)
    ).group(1)
    return url.split("/c/", 1)[1]


def page_slots(client, token, tz=None) -> tuple[list[dt.datetime], str]:
    html = client.get(f"/c/{token}" + (f"?tz={tz}" if tz else "")).get_data(as_text=True)
    values = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', html)
    return [dt.datetime.fromisoformat(v) for v in values], html


def test_a_new_york_candidate_never_sees_a_slot_before_nine_new_york_time(
    app, client, auth, session, sandbox, zone_panel
):
    auth.login(zone_panel.riley.user.email)
    token = create_link(client, auth, zone_panel.link_ids, days=10)
    slots, html = page_slots(client, token)
    assert slots, "the three-zone panel has common time on most weekdays"
    new_york = ZoneInfo(NEW_YORK)
    shown = re.findall(
        r'<label for="slot-[^"]+">(\d\d:\d\d)<span class="visually-hidden"> to (\d\d:\d\d)</span>',
        html,
    )
    assert len(shown) == len(slots)
    for start, (first, _last) in zip(slots, shown, strict=True):
        local = start.astimezone(new_york)
        assert local.hour * 60 + local.minute >= 9 * 60, local
        assert first == f"{local:%H:%M}"  # the candidate sees their own zone only
        for person in zone_panel.people:
            assert inside_own_hours(start, start + dt.timedelta(hours=1), person.tzid)
    assert "London" not in html.split("<h1 ", 1)[1].split("Change time zone")[1]


def test_candidate_hours_limit_a_london_panel_for_a_new_york_candidate(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    auth.post("/profile/timezone", {"timezone": LONDON}, form_page="/profile/")
    london_only = [
        session.scalar(select(ProfileLink.id).where(ProfileLink.user_id == recruiter.id))
    ]
    anyway = create_link(client, auth, london_only, days=5)
    limited = create_link(client, auth, london_only, days=5, hours=("09:00", "17:30"))
    new_york = ZoneInfo(NEW_YORK)

    unlimited_slots, _ = page_slots(client, anyway)
    assert any(s.astimezone(new_york).hour < 9 for s in unlimited_slots), (
        "without candidate hours a London panel reaches 04:00 in New York"
    )
    slots, html = page_slots(client, limited)
    assert slots
    assert all(inside_own_hours(s, s + dt.timedelta(hours=1), NEW_YORK) for s in slots), [
        f"{s.astimezone(new_york)}" for s in slots
    ]
    assert all(inside_own_hours(s, s + dt.timedelta(hours=1), LONDON) for s in slots)
    assert "all between 09:00 and 17:30 New York time" in html
    # The candidate may look at the times in another zone; the limit stays in theirs.
    berlin_slots, berlin = page_slots(client, limited, tz=BERLIN)
    assert berlin_slots == slots
    first = re.search(r'<label for="slot-[^"]+">(\d\d:\d\d)<span', berlin).group(1)
    assert first == f"{slots[0].astimezone(ZoneInfo(BERLIN)):%H:%M}"

    # Booking a time outside the candidate's hours (a hand-made request) is refused.
    early = next(s for s in unlimited_slots if s.astimezone(new_york).hour < 9)
    token = CSRF.search(html).group(1)
    refused = client.post(f"/c/{limited}", data={"csrf_token": token, "slot": early.isoformat()})
    assert refused.status_code == 400
    assert "Pick one of the times offered." in refused.get_data(as_text=True)
    assert session.scalar(select(Interview.id)) is None
    link = session.scalars(select(SchedulingLink).order_by(SchedulingLink.id.desc())).first()
    session.refresh(link)
    assert link.used_at is None


def test_candidate_hours_are_checked(app, session, sandbox, recruiter, org):
    ((_u, link),) = make_panel(app, session, sandbox, org, 1)
    with app.app_context():
        seal = deps.sealer()
    me = actor_of(recruiter)
    common = dict(
        panel_link_ids=[link.id],
        duration=60,
        start_date=next_weekday(1),
        days=3,
        expires_days=7,
        candidate_name="Jamie",
        candidate_email="jamie@gmail.example",
        candidate_tzid=NEW_YORK,
        title="Screen",
    )
    for bad in ((17 * 60, 9 * 60), (9 * 60, 9 * 60 + 30), (-1, 60), (0, 24 * 60 + 1)):
        with pytest.raises(Invalid) as caught:
            candidate_links.create_link(session, seal, me, candidate_hours=bad, **common)
        assert caught.value.field == "candidate_hours"
    assert session.scalar(select(SchedulingLink.id)) is None


# --- setting a zone -----------------------------------------------------------------------------


def test_the_browser_zone_is_proposed_at_first_login_and_kept_only_when_accepted(
    app, client, session, org
):
    user = make_user(session, org, Role.RECRUITER)
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    from tests.factories import PASSWORD

    client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": user.email,
            "password": PASSWORD,
            "browser_tz": NEW_YORK,
        },
    )
    home = client.get("/").get_data(as_text=True)
    assert "Your browser reports <strong>America/New_York</strong>" in home
    assert "Use America/New_York" in home
    session.refresh(user)
    assert user.timezone is None  # proposed, not applied
    token = CSRF.search(home).group(1)
    done = client.post(
        "/profile/timezone",
        data={"csrf_token": token, "timezone": NEW_YORK, "source": "browser", "next": "/"},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/")
    session.refresh(user)
    assert user.timezone == NEW_YORK
    assert "Your browser reports" not in client.get("/").get_data(as_text=True)
    [entry] = zone_audits(session, user.id)
    assert entry.detail == {"from": None, "to": NEW_YORK, "source": "browser"}


def test_the_browser_zone_survives_choosing_an_organisation_at_login(app, client, session, org):
    from tests.factories import PASSWORD

    mine = make_user(session, org, Role.RECRUITER)
    other = make_user(session, make_org(session), Role.RECRUITER, email=mine.email)
    other.timezone = BERLIN
    session.commit()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    first = client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": mine.email,
            "password": PASSWORD,
            "browser_tz": NEW_YORK,
        },
    )
    assert first.headers["Location"] == "/login/organisation"
    token = CSRF.search(client.get("/login/organisation").get_data(as_text=True)).group(1)
    client.post("/login/organisation", data={"csrf_token": token, "user_id": mine.id})
    assert "Your browser reports <strong>America/New_York</strong>" in client.get("/").get_data(
        as_text=True
    )
    session.refresh(mine)
    session.refresh(other)
    assert (mine.timezone, other.timezone) == (None, BERLIN)


def test_a_strange_browser_zone_is_not_proposed_and_utc_is_named_as_listed(
    app, client, session, org
):
    from tests.factories import PASSWORD

    for reported, shown in (("Mars/Olympus", None), ("x" * 500, None), ("UTC", "Etc/UTC")):
        user = make_user(session, org, Role.COMPLIANCE)
        client.get("/login")
        token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
        response = client.post(
            "/login",
            data={
                "csrf_token": token,
                "email": user.email,
                "password": PASSWORD,
                "browser_tz": reported,
            },
        )
        assert response.status_code == 302
        home = client.get("/").get_data(as_text=True)
        assert "Your time zone is not set" in home
        if shown:
            assert f"Your browser reports <strong>{shown}</strong>" in home
        else:
            assert "Your browser reports" not in home
        client.post("/logout", data={"csrf_token": CSRF.search(home).group(1)})


def test_invalid_zone_names_get_a_clear_error_and_change_nothing(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    auth.post("/profile/timezone", {"timezone": NEW_YORK}, form_page="/profile/")
    for bad in (
        "Mars/Olympus",
        "",
        "Europe/London " * 10,
        "../etc/passwd",
        "posix/Europe/Paris",
        "Europe/london",
    ):
        response = auth.post("/profile/timezone", {"timezone": bad}, form_page="/profile/")
        assert response.status_code == 400
        assert "Choose a time zone from the list" in response.get_data(as_text=True)
    session.refresh(recruiter)
    assert recruiter.timezone == NEW_YORK
    assert len(zone_audits(session, recruiter.id)) == 1


def test_an_it_admin_sets_anyones_zone_in_their_organisation_only(
    app, client, auth, session, sandbox, org
):
    admin = make_user(session, org, Role.ADMIN)
    mine = make_user(session, org, Role.RECRUITER, password=False)
    other_org = make_org(session)  # the same addresses in another organisation
    theirs = make_user(session, other_org, Role.RECRUITER, email=mine.email, password=False)
    other_admin = make_user(session, other_org, Role.ADMIN, email=admin.email, password=False)
    auth.login(admin.email)
    page = f"/admin/users/{mine.id}"
    assert (
        auth.post(
            f"/admin/users/{mine.id}/timezone", {"timezone": BERLIN}, form_page=page
        ).status_code
        == 303
    )
    bad = auth.post(f"/admin/users/{mine.id}/timezone", {"timezone": "Berlin"}, form_page=page)
    assert bad.status_code == 400 and "Choose a time zone from the list" in bad.get_data(
        as_text=True
    )
    assert (
        auth.post(
            f"/admin/users/{theirs.id}/timezone", {"timezone": BERLIN}, form_page=page
        ).status_code
        == 404
    )
    session.refresh(mine)
    session.refresh(theirs)
    assert (mine.timezone, theirs.timezone) == (BERLIN, None)
    [entry] = zone_audits(session, mine.id)
    assert entry.actor_id == admin.id and entry.detail["to"] == BERLIN
    # The services refuse the same, whoever calls them.
    with pytest.raises(NotFound):
        accounts.set_timezone(session, actor_of(other_admin), mine.id, NEW_YORK)
    with pytest.raises(Forbidden):
        accounts.set_timezone(session, actor_of(theirs), other_admin.id, NEW_YORK)
    session.refresh(mine)
    assert mine.timezone == BERLIN and zone_audits(session, other_admin.id) == []


def test_working_hours_are_entered_and_shown_in_the_persons_own_zone(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "not set yet, so your organisation's <strong>Europe/London</strong> is assumed" in page
    auth.post("/profile/timezone", {"timezone": NEW_YORK}, form_page="/profile/")
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "in your own time zone: <strong>America/New_York</strong>" in page
    assert "Day starts (America/New_York)" in page
    auth.post(
        "/schedule/preferences",
        {
            "start": "08:00",
            "end": "12:00",
            "weekdays": ["1", "2", "3", "4", "5"],
            "video_profile": "default",
        },
    )
    (member,) = roster.resolve_panel(
        session,
        actor_of(recruiter),
        [session.scalar(select(ProfileLink.id).where(ProfileLink.user_id == recruiter.id))],
    )
    assert (member.hours.start_minute, member.hours.end_minute, member.hours.tzid) == (
        8 * 60,
        12 * 60,
        NEW_YORK,
    )
    window = Period(
        dt.datetime(2030, 1, 7, tzinfo=dt.UTC),
        dt.datetime(2030, 1, 8, tzinfo=dt.UTC),
    )
    assert windows.working_periods(member.hours, window) == (
        Period(
            dt.datetime(2030, 1, 7, 13, tzinfo=dt.UTC),
            dt.datetime(2030, 1, 7, 17, tzinfo=dt.UTC),
        ),
    )


def test_hours_text_groups_the_days_that_read_differently():
    hours = model.Hours(9 * 60, 17 * 60 + 30, "12345", "Asia/Tokyo")
    days = [dt.date(2030, 1, 7) + dt.timedelta(days=i) for i in range(5)]
    assert windows.hours_text(hours, days, LONDON) == "09:00–17:30 Tokyo = 00:00–08:30 London"
    sydney = model.Hours(9 * 60, 17 * 60, "12345", "Australia/Sydney")
    assert (
        windows.hours_text(sydney, days, LONDON)
        == "09:00–17:00 Sydney = 22:00 (-1 day)–06:00 London"
    )
    assert windows.hours_text(sydney, days, "Australia/Sydney") == "09:00–17:00 Sydney"
