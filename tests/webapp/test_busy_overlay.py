"""The schedule page's free slots first, the members' busy overlay on its own (issue 18: "the
slots can appear before the members' busy overlay if that is faster"): the slots page makes
the availability call only; the overlay fragment (``/schedule/busy``) and the page's own
``busy=1`` (no script) draw the busy blocks on the same axis. The overlay keeps every rule of
the page: logged-in schedulers only, the panel from the actor's organisation, a coordinator for
an assigned manager only, free/busy only, bad input a clear 4xx. The browser side is
tests/browser/test_schedule_grid.py."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from models import Role
from tests.factories import assign, make_org, make_user
from tests.held_jobs import HeldJobs
from tests.perf.scheduling_bench import api_calls
from tests.webapp.scheduling_support import PANEL_EMAILS, link_calendar, make_panel
from tests.webapp.test_week_grid import weeks_ahead
from webapp import deps
from webapp.services import Actor
from webapp.services.availability import free_slots, model, overlay
from webapp.services.scheduling import booking

BUSY_URL = re.compile(r'data-busy-url="([^"]+)"')
BLOCK = re.compile(r'<span class="block block-(\w+) gc-(\d+) gr-(\d+) gs-(\d+)"')


@pytest.fixture
def two(app, session, sandbox, org):
    return make_panel(app, session, sandbox, org, 2)


def ask(panel, start: dt.date, **extra) -> str:
    args = [f"panel={link.id}" for _u, link in panel]
    args += [f"start_date={start}", "days=5", "tzid=Europe/London"]
    args += [f"{k}={v}" for k, v in extra.items()]
    return "/schedule/?" + "&".join(args)


def overlay_url(page: str) -> str:
    found = BUSY_URL.search(page)
    assert found, "the slots page names its busy overlay"
    return unescape(found.group(1))


def test_the_slots_page_makes_one_call_and_the_overlay_draws_on_its_axis(
    client, auth, recruiter, two, sandbox
):
    auth.login(recruiter.email)
    start = weeks_ahead(2)
    sandbox.call("DELETE", "/stats")
    page = client.get(ask(two, start)).get_data(as_text=True)
    assert api_calls(sandbox) == 1  # the availability call: no member's free/busy yet
    assert "Free start times on" in page and "block-" not in page
    assert "Busy times as text" not in page
    inline_link = re.search(r'<a href="([^"]+)" data-busy-inline>Show everyone', page)
    assert inline_link, "without the script, a link shows the busy time"

    url = overlay_url(page)
    assert urlsplit(url).path == "/schedule/busy"
    axis = parse_qs(urlsplit(url).query)["axis"][0]
    first, last = (int(x) for x in axis.split("-"))
    sandbox.call("DELETE", "/stats")
    response = client.get(url)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert api_calls(sandbox) == 2  # one free/busy read per member, no availability call
    assert "<html" not in fragment and "data-busy-overlay" in fragment
    # One part per day on the page, each for a day section the page has.
    days = re.findall(r'data-busy-day="(day-[\d-]+)"', fragment)
    assert days == re.findall(r'<section class="day[^"]*" id="(day-[\d-]+)"', page)
    blocks = BLOCK.findall(fragment)
    assert blocks, "the seeded calendars have busy time this week"
    last_line = 1 + (last - first) // 15 + 1
    lanes = {str(n) for n in range(2, 2 + len(two))}
    for _status, column, row, rows in blocks:
        assert column in lanes
        assert 2 <= int(row) and int(row) + int(rows) <= last_line + 1
    assert "Busy times as text" in fragment and "Who is in which column" in fragment

    # The page with the busy time inline (no script): the same blocks, the slots still there,
    # and the week links keep it inline.
    inline = client.get(unescape(inline_link.group(1))).get_data(as_text=True)
    assert "data-busy-url" not in inline and "Free start times on" in inline
    assert sorted(BLOCK.findall(inline)) == sorted(blocks)
    following = re.search(r'<a href="([^"]+)">Next week', inline).group(1)
    assert parse_qs(urlsplit(unescape(following)).query)["busy"] == ["1"]


def test_our_own_bookings_are_busy_in_the_overlay_of_their_organisation_only(
    app, session, client, auth, recruiter, two, sandbox
):
    """A booking not yet in the calendars is busy in its organisation's overlay; a neighbouring
    organisation whose people share the panel's addresses never sees it, nor the panel."""
    start = weeks_ahead(2)
    links = tuple(link.id for _u, link in two)
    query = model.Query(links, duration=60, start_date=start, days=5, tzid="Europe/London")
    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    me = Actor(recruiter.id, recruiter.email, recruiter.organisation_id, Role.RECRUITER)
    slot = free_slots.grid(session, broker, cipher, me, query).slots[0]
    booking.create_interview(
        session,
        broker,
        cipher,
        deps.sealer.of(app),
        me,
        booking.NewInterview(
            query=query,
            start=slot.start,
            candidate_name="Casey Candidate",
            candidate_email="casey.candidate@gmail.example",
            title="Held only",
        ),
        jobs=HeldJobs(),  # the calendar write never runs: only our claim says it is busy
    )
    ours = overlay.busy_overlay(session, broker, cipher, me, query)
    for _user, link in two:
        assert (slot.start, slot.end) in {(b.start, b.end) for b in ours.busy[link.id]}

    # The neighbour: namesakes of the panel (same addresses), their own calendars linked.
    neighbour = make_org(session, "Neighbour with the same addresses")
    theirs = []
    for (user, _link), other in zip(two, PANEL_EMAILS[5:7], strict=True):
        twin = make_user(
            session, neighbour, Role.RECRUITER, email=user.email, name=f"Twin {user.id}"
        )
        theirs.append((twin, link_calendar(app, session, sandbox, twin, other)))
    their_recruiter = make_user(session, neighbour, Role.RECRUITER, email="r@neighbour.example")
    them = Actor(their_recruiter.id, their_recruiter.email, neighbour.id, Role.RECRUITER)
    their_query = model.Query(
        tuple(link.id for _u, link in theirs), duration=60, start_date=start, days=5
    )
    their_grid = overlay.busy_overlay(session, broker, cipher, them, their_query)
    for _twin, link in theirs:
        assert (slot.start, slot.end) not in {(b.start, b.end) for b in their_grid.busy[link.id]}

    auth.login(their_recruiter.email)
    their_page = client.get(ask(theirs, start, duration=60)).get_data(as_text=True)
    their_overlay = client.get(overlay_url(their_page)).get_data(as_text=True)
    assert "Twin" in their_overlay
    for user, _link in two:
        assert user.name not in their_overlay
    # Our link ids asked by the neighbour: refused, nothing of ours shown.
    for response in (
        client.get(ask(two, start)),
        client.get("/schedule/busy?" + ask(two, start).split("?", 1)[1] + "&axis=540-1080"),
    ):
        text = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "Choose the panel from the people listed." in text
        assert "block-" not in text
        for user, _link in two:
            assert user.name not in text


AXIS = "The grid's time axis looks like 540-1320."


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"axis": "nine-five"}, AXIS),
        ({"axis": "1320-540"}, AXIS),
        ({"axis": "545-1320"}, AXIS),
        ({"axis": "0-1500"}, AXIS),
        ({"start_date": "2030-02-30"}, "Dates look like 2026-11-23."),
        ({"start_date": "2001-01-01"}, "The date range cannot start in the past."),
        ({"days": "40"}, "Show between 1 and 14 days."),
        ({"days": "many"}, "Enter a whole number."),
        ({"tzid": "Mars/Olympus"}, "Choose a valid time zone."),
        ({"duration": "7"}, "Choose one of the listed durations."),
        ({"panel": "abc"}, "Choose the panel from the people listed."),
        ({"panel": "999999"}, "Choose the panel from the people listed."),
    ],
)
def test_bad_input_to_the_overlay_is_a_clear_400(client, auth, recruiter, two, changes, message):
    auth.login(recruiter.email)
    args = {
        "panel": [str(link.id) for _u, link in two],
        "start_date": weeks_ahead(1).isoformat(),
        "days": "5",
        "tzid": "Europe/London",
        "axis": "540-1080",
    }
    args.update(changes)
    response = client.get("/schedule/busy", query_string=args)
    text = unescape(response.get_data(as_text=True))
    assert response.status_code == 400, text
    assert message in text and "block-" not in text
    assert response.headers["Cache-Control"] == "no-store"


def test_choosing_nobody_is_a_clear_400(client, auth, recruiter, two):
    auth.login(recruiter.email)
    response = client.get(f"/schedule/busy?start_date={weeks_ahead(1)}&days=5")
    assert response.status_code == 400
    assert "Choose at least one person for the panel." in response.get_data(as_text=True)


def test_the_overlay_is_for_logged_in_schedulers_only(app, session, client, auth, org, two):
    url = "/schedule/busy?" + ask(two, weeks_ahead(1)).split("?", 1)[1]
    response = client.get(url)
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
    for role in (Role.ADMIN, Role.COMPLIANCE):
        user = make_user(session, org, role)
        auth.login(user.email)
        response = client.get(url)
        assert response.status_code == 403, role
        assert "block-" not in response.get_data(as_text=True)
        auth.logout()


def test_a_coordinator_sees_an_assigned_managers_panel_only(
    app, session, client, auth, org, sandbox, two
):
    coordinator = make_user(session, org, Role.COORDINATOR)
    manager, manager_link = two[0]
    other, other_link = two[1]
    assign(session, coordinator, manager)
    auth.login(coordinator.email)
    start = weeks_ahead(1)
    base = f"/schedule/busy?panel={manager_link.id}&panel={other_link.id}&start_date={start}"
    missing = client.get(base)
    assert missing.status_code == 400
    assert "Choose the hiring manager you are scheduling for." in missing.get_data(as_text=True)
    refused = client.get(f"{base}&on_behalf_of={other.id}")
    assert refused.status_code == 403
    assert "You can only schedule for hiring managers assigned to you." in refused.get_data(
        as_text=True
    )
    fine = client.get(f"{base}&on_behalf_of={manager.id}")
    assert fine.status_code == 200 and "block-busy" in fine.get_data(as_text=True)


def test_checking_a_panel_reads_the_same_choices_as_the_whole_list(app, session, org, two):
    """The page checks the panel against its own people only (``among``): the same answer as
    the organisation's whole list, a second calendar of one person included (never offered)."""
    from models import LinkMode, LinkStatus, ProfileLink
    from webapp.services.availability import roster

    user, first = two[0]
    second = ProfileLink(
        organisation_id=org.id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub="acc_second_calendar_of_one_person",
        account_id="acc_second_calendar_of_one_person",
        profile_id="pro_second",
        provider="google",
        account_email="second@northwind.example",
        status=LinkStatus.ACTIVE,
    )
    session.add(second)
    session.commit()
    me = Actor(user.id, user.email, org.id, Role.RECRUITER)
    everyone = roster.panel_choices(session, me)
    assert second.id not in {link.id for link, _u in everyone}
    for ids in [(first.id,), (second.id,), (first.id, second.id, two[1][1].id), (999999,), ()]:
        among = roster.panel_choices(session, me, among=ids)
        assert [(link.id, u.id) for link, u in among] == [
            (link.id, u.id) for link, u in everyone if link.id in ids
        ]
