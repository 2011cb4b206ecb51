"""The loop's start-times page as a recruiter sees it: every option the service finds, each with
its whole itinerary (built in Python, webapp/views/loop_options.py, while the rest of the page is
rendered as the aggregator answers), escaped; and the reason shown when no start time can be
asked for or the aggregator fails, with nothing offered."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from zoneinfo import ZoneInfo

from sqlalchemy import select

from models import InterviewLoop, LoopState, ProfileLink
from tests.webapp.loop_support import compose_loop, plan_for
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services.loops import availability
from webapp.services.loops import plan as loop_plan

OPTION_RE = re.compile(
    r'<div class="loop-option">\s*<input type="radio" name="option" id="option-(\d+)" '
    r'value="([^"]+)"( checked)?>\s*<label for="option-\1"><span class="loop-option-start">'
    r'([^<]+)</span> <span class="muted">until ([^<]+)</span></label>\s*'
    r'<ol class="itinerary">(.*?)</ol>\s*</div>',
    re.S,
)
STOP_RE = re.compile(
    r'<li><span class="itinerary-time">(\d\d:\d\d)–(\d\d:\d\d)(?: <span class="muted">([^<]+)'
    r'</span>)?</span>\s*<span class="itinerary-what"><strong>([^<]*)</strong> — ([^<]*?)'
    r'(?: · <span class="itinerary-room">([^<]*)</span>)?( · video)?</span>',
)


def options_on(page: str) -> list[tuple]:
    return OPTION_RE.findall(page)


def page_zone(page: str) -> ZoneInfo:
    return ZoneInfo(re.search(r"Times in your time zone, ([^.]+)\.", page).group(1))


def test_the_page_lists_every_option_with_its_itinerary(
    app, client, auth, session, sandbox, recruiter, panel
):
    """Each option the service finds is on the page, in order, the first checked, with every
    session's times (in the viewer's zone), title, people and video; names are escaped."""
    (a, la), (b, lb) = panel
    a.name = 'Ann <b>"Bold"</b> & Co'
    session.commit()
    plan = plan_for([[la], [lb], [la, lb]], titles=["Intro <i>", "Coding", "Values"])
    loop = compose_loop(app, session, recruiter, plan)
    broker, _cipher = broker_cipher(app)
    expected = availability.loop_times(
        session, broker, deps.sealer.of(app), actor_of(recruiter), loop
    ).options
    assert expected, "the seeded panel has free mornings"

    auth.login(recruiter.email)
    sandbox.call("DELETE", "/stats")
    response = client.get(f"/schedule/loops/{loop.uid}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert sandbox.stats()["requests"].get("POST /v1/sequenced_availability") == 1
    assert "<b>" not in page and "<i>" not in page  # every text escaped
    tz = page_zone(page)
    shown = options_on(page)
    assert [int(o[0]) for o in shown] == list(range(1, len(expected) + 1))
    assert [unescape(o[1]) for o in shown] == [o.value for o in expected]
    assert [bool(o[2]) for o in shown] == [True] + [False] * (len(expected) - 1)
    for (_i, _v, _c, start, until, stops_html), option in zip(shown, expected, strict=True):
        assert start == option.start.astimezone(tz).strftime("%A %d %B, %H:%M")
        assert until == option.end.astimezone(tz).strftime("%H:%M")
        stops = STOP_RE.findall(stops_html)
        assert len(stops) == 3
        first_day = option.stops[0].start.astimezone(tz).date()
        for (begin, end, other_day, title, people, room, video), stop in zip(
            stops, option.stops, strict=True
        ):
            assert begin == stop.start.astimezone(tz).strftime("%H:%M")
            assert end == stop.end.astimezone(tz).strftime("%H:%M")
            day = stop.start.astimezone(tz).date()
            assert other_day == ("" if day == first_day else day.strftime("%a %d %b"))
            assert unescape(title) == stop.title
            assert unescape(people) == ", ".join(stop.people)
            assert room == "" and video == " · video"
    assert unescape(shown[0][5]).count('Ann <b>"Bold"</b> & Co') == 2
    assert "Intro &lt;i&gt;" in page


def test_a_pool_pick_says_why_on_the_page(app, client, auth, session, sandbox, org, recruiter):
    """A session picking "any 1" from a pool names who is picked and every member's reason."""
    from tests.webapp.scheduling_support import make_panel
    from webapp.services.pools import manage

    people = make_panel(app, session, sandbox, org, 4)
    (u1, l1), (u2, _l2), (u3, _l3), (u4, _l4) = people
    me = actor_of(recruiter)
    pool = manage.create_pool(session, me, "Backend <x>")
    for user in (u2, u3, u4):
        manage.add_member(session, me, pool.id, user.id)
    plan = loop_plan.LoopPlan(
        title="Onsite",
        candidate_name="Ada Loop",
        candidate_email="ada.loop@gmail.example",
        sessions=(
            loop_plan.SessionPlan("Intro", 45, (l1.id,)),
            loop_plan.SessionPlan("Coding", 60, (), pool_id=pool.id, pool_count=1),
        ),
        start_date=next_weekday(29),
        days=1,
    )
    loop = compose_loop(app, session, recruiter, plan)
    broker, _cipher = broker_cipher(app)
    first = availability.loop_times(session, broker, deps.sealer.of(app), me, loop).options[0]
    coding = first.stops[1]
    assert coding.picked and coding.why

    auth.login(recruiter.email)
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    option = options_on(page)[0]
    assert unescape(option[1]) == first.value
    why = re.search(
        r'<details class="itinerary-why"><summary>Why ([^<]+)\?</summary>Picked from the pool by '
        r"load, under each person's limits: ([^<]+)</details>",
        option[5],
    )
    assert why is not None
    assert unescape(why.group(1)) == ", ".join(coding.picked)
    assert unescape(why.group(2)) == coding.why
    stops = STOP_RE.findall(option[5])
    assert unescape(stops[1][4]) == ", ".join(coding.people)


def test_the_aggregator_failing_shows_the_reason_and_offers_nothing(
    app, client, auth, session, sandbox, recruiter, panel
):
    (a, la), (b, lb) = panel
    loop = compose_loop(app, session, recruiter, plan_for([[la], [lb]]))
    auth.login(recruiter.email)
    sandbox.add_fault(method="POST", path="/v1/sequenced_availability", status=500, count=5)
    try:
        response = client.get(f"/schedule/loops/{loop.uid}")
    finally:
        sandbox.clear_faults()
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<p class="flash flash-error" role="alert">[^<]+</p>', page)
    assert "Book every session" not in page and 'name="option"' not in page
    assert session.get(InterviewLoop, loop.id).state is LoopState.DRAFT


def test_a_person_no_longer_linked_is_the_reason_and_nothing_is_asked(
    app, client, auth, session, sandbox, recruiter, panel
):
    """The loop is checked against today's roster before the call: someone whose calendar is
    gone is refused with the reason on the page, and the aggregator is not asked."""
    (a, la), (b, lb) = panel
    loop = compose_loop(app, session, recruiter, plan_for([[la], [lb]]))
    link = session.scalar(select(ProfileLink).where(ProfileLink.id == lb.id))
    session.delete(link)
    session.commit()
    auth.login(recruiter.email)
    sandbox.call("DELETE", "/stats")
    response = client.get(f"/schedule/loops/{loop.uid}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert not sandbox.stats()["requests"].get("POST /v1/sequenced_availability")
    assert "Session 2: choose the people from those listed." in unescape(page)
    assert "Book every session" not in page


def test_the_option_markup_keeps_the_day_of_a_session_after_midnight():
    """A stop on another date than the first says which day (a loop split over two days)."""
    from webapp.services.availability import model
    from webapp.views.loop_options import OptionMarkup

    tz = ZoneInfo("Europe/London")
    day = dt.datetime(2031, 3, 7, 16, 0, tzinfo=tz)  # a Friday
    room = model.Room("room@ex.example", "Room <1>", "sub")
    stops = (
        availability.Stop(1, "A", day, day + dt.timedelta(hours=1), ("P",), None, True),
        availability.Stop(
            2,
            "B",
            day + dt.timedelta(days=3),
            day + dt.timedelta(days=3, hours=1),
            ("Q", "R"),
            room,
            False,
        ),
    )
    html = str(OptionMarkup(tz).options([availability.Itinerary(stops)]))
    found = STOP_RE.findall(options_on(html)[0][5])
    assert found[0] == ("16:00", "17:00", "", "A", "P", "", " · video")
    assert found[1] == ("16:00", "17:00", "Mon 10 Mar", "B", "Q, R", "Room &lt;1&gt;", "")


def test_a_failed_loop_shows_the_banner_its_sessions_and_new_start_times(
    app, client, auth, session, sandbox, recruiter, panel
):
    """A loop whose booking was taken back: the banner, its itinerary as it stands and the
    start times to pick again, read from the one call (the itinerary read while it is out)."""
    (a, la), (b, lb) = panel
    loop = compose_loop(app, session, recruiter, plan_for([[la], [lb]]))
    loop.state = LoopState.FAILED
    session.commit()
    auth.login(recruiter.email)
    sandbox.call("DELETE", "/stats")
    page = client.get(f"/schedule/loops/{loop.uid}").get_data(as_text=True)
    assert sandbox.stats()["requests"].get("POST /v1/sequenced_availability") == 1
    assert "every session was taken back" in page
    assert 'id="itinerary-heading"' in page and 'id="times-heading"' in page
    assert options_on(page) and "Book every session" in page
