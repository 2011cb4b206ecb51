"""The schedule page's week grid: the layout (merging, shading, weekends, positions) on fixed
dates, and the page around it (week navigation, the form keeping what was entered, an empty
panel). The browser side is tests/browser/test_schedule_grid.py."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from broker.types import Period, Slot
from models import utcnow
from webapp.services.availability import layout, model

LONDON = ZoneInfo("Europe/London")
#: A fixed Monday: the layout never asks what today is.
MONDAY = dt.date(2030, 3, 4)
CSS = Path(__file__).resolve().parents[2] / "webapp/static/schedule_grid.css"


def at(day: dt.date, hh: int, mm: int = 0, tz=LONDON) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tz).astimezone(dt.UTC)


def member(link_id: int, name: str, tzid="Europe/London", start=9 * 60, end=17 * 60 + 30):
    return model.PanelMember(
        SimpleNamespace(id=link_id, sub=f"sub_{link_id}"),
        SimpleNamespace(name=name),
        model.Hours(start, end, "12345", tzid),
    )


def grid_of(members, *, days=5, first=MONDAY, busy=None, slots=(), problems=None):
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    window = Period(at(dates[0], 0), at(dates[-1] + dt.timedelta(days=1), 0))
    return model.Grid(
        model.Query(tuple(m.link.id for m in members), start_date=first, days=days),
        list(members),
        window,
        tuple(slots),
        busy or {m.link.id: [] for m in members},
        problems or {},
        dates,
    )


def block(day, a, b, status="busy"):
    return model.Block(at(day, *a), at(day, *b), status)


def test_overlapping_and_touching_busy_periods_merge_into_the_strongest_status():
    blocks = [
        block(MONDAY, (9, 0), (10, 0), "tentative"),
        block(MONDAY, (9, 30), (11, 0)),
        block(MONDAY, (11, 0), (11, 30), "tentative"),  # touching: one block
        block(MONDAY, (13, 0), (14, 0), "tentative"),
        block(MONDAY, (13, 15), (13, 45), "tentative"),  # inside another
        block(MONDAY, (15, 0), (16, 0), "free"),  # marked free: not busy
    ]
    assert layout.merge(blocks) == [
        block(MONDAY, (9, 0), (11, 30)),
        block(MONDAY, (13, 0), (14, 0), "tentative"),
    ]


def test_blocks_are_placed_on_15_minute_rows_and_cut_to_the_axis_with_the_whole_time_in_text():
    m = member(1, "Riley Chen")
    busy = {
        1: [
            block(MONDAY, (7, 0), (9, 30)),  # starts before the axis
            block(MONDAY, (10, 10), (10, 50)),  # off the 15-minute steps: widened
            block(MONDAY, (10, 30), (11, 0)),
        ]
    }
    view = layout.week_view(grid_of([m], busy=busy), "Europe/London")
    assert (view.first_minute, view.last_minute) == (9 * 60, 18 * 60)
    lane = view.days[0].lanes[0]
    rows = [(s.row, s.rows, s.times) for s in lane.busy]
    # Row 1 holds the headings; 09:00 is row 2, each row 15 minutes.
    assert rows == [(2, 2, "09:00–09:30"), (6, 4, "10:10–11:00")]
    assert lane.busy_text == ["07:00–09:30", "10:10–11:00"]
    assert [(s.row, s.rows) for s in lane.work] == [(2, 34)]  # 09:00–17:30
    assert view.ticks[0] == (2, "09:00") and view.ticks[-1] == (34, "17:00")
    assert view.last_row == 38


def test_working_hours_are_shaded_in_the_viewers_zone_and_widen_the_axis():
    london = member(1, "Riley Chen")
    new_york = member(2, "Sam Patel", "America/New_York", 8 * 60, 17 * 60)
    view = layout.week_view(grid_of([london, new_york]), "Europe/London")
    # New York's 08:00–17:00 is 13:00–22:00 in London (both on standard time in early March).
    assert (view.first_minute, view.last_minute) == (9 * 60, 22 * 60)
    ny = view.days[0].lanes[1]
    assert [s.times for s in ny.work] == ["13:00–22:00"]
    assert ny.work[0].row == 2 + (13 - 9) * 4
    assert [legend.initials for legend in view.legend] == ["RC", "SP"]
    assert "08:00–17:00 New York" in view.legend[1].hours


def test_hours_across_midnight_in_the_viewers_zone_fit_every_generated_class():
    tokyo = member(1, "Kenji Sato", "Asia/Tokyo", 9 * 60, 18 * 60)
    los_angeles = member(2, "Ana Ruiz", "America/Los_Angeles")  # 17:00–01:30 in London
    busy = {1: [model.Block(at(MONDAY, 0), at(MONDAY + dt.timedelta(days=1), 0), "busy")], 2: []}
    view = layout.week_view(grid_of([tokyo, los_angeles], busy=busy), "Europe/London")
    assert (view.first_minute, view.last_minute) == (0, 24 * 60)
    css = CSS.read_text()
    defined = set(re.findall(r"\.((?:gr|gs|gc|lanes)-\d+)\{", css))
    used = {f"lanes-{view.lanes}", f"gc-{view.panel_column}", f"gs-{view.last_row - 1}"}
    for day in view.days:
        for lane in day.lanes:
            used.add(f"gc-{lane.column}")
            for s in lane.busy + lane.work:
                used |= {f"gr-{s.row}", f"gs-{s.rows}"}
    for row, _label in view.ticks:
        used.add(f"gr-{row}")
    assert used <= defined
    # and whatever the panel: every line and span of a whole day, every lane count
    assert {f"gr-{n}" for n in range(1, layout.MAX_ROW + 1)} <= defined
    assert {f"gs-{n}" for n in range(1, layout.MAX_ROW)} <= defined
    assert {f"lanes-{k}" for k in range(1, model.MAX_PANEL + 1)} <= defined
    assert {f"gc-{n}" for n in range(1, model.MAX_PANEL + 3)} <= defined


def grid_css() -> str:
    """schedule_grid.css: every position the layout can produce, and per lane count the
    columns of a day and the width a day needs (narrower lanes on a phone)."""
    lines = [
        "/* The schedule page's week grid: gr-N starts on grid line N, gs-N is N rows high, gc-N",
        " * is column N, lanes-K lays out K member lanes, days-K the days of K lanes. Class names,",
        " * never inline style, so the strict content security policy holds. Generated by",
        " * `python -m tests.webapp.test_week_grid`; tests/webapp/test_week_grid.py checks it. */",
        " ".join(f".gr-{n}{{grid-row-start:{n}}}" for n in range(1, layout.MAX_ROW + 1)),
        " ".join(f".gs-{n}{{grid-row-end:span {n}}}" for n in range(1, layout.MAX_ROW)),
        " ".join(f".gc-{n}{{grid-column:{n}}}" for n in range(1, model.MAX_PANEL + 3)),
    ]
    axis, lane, free, gap = 2.6, 1.1, 5.4, 0.15
    for k in range(1, model.MAX_PANEL + 1):
        cols = f"2.6rem repeat({k},minmax({lane}rem,1fr)) minmax({free}rem,{max(2, k * 0.6):.1f}fr)"
        width = max(11.0, axis + k * (lane + gap) + free + 0.5)
        lines.append(f".lanes-{k}{{grid-template-columns:{cols}}}")
        lines.append(
            f".days-{k}{{grid-template-columns:repeat(auto-fill,minmax(min(100%,{width:.2f}rem),1fr))}}"
        )
    lines.append("@media (max-width: 40rem) {")
    for k in range(1, model.MAX_PANEL + 1):
        cols = f"2.4rem repeat({k},minmax(.8rem,1fr)) minmax(4.6rem,{max(2, k * 0.6):.1f}fr)"
        lines.append(f"  .lanes-{k}{{grid-template-columns:{cols}}}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def test_the_grid_stylesheet_is_the_generated_one():
    assert CSS.read_text() == grid_css(), "run: python -m tests.webapp.test_week_grid"


def test_free_windows_merge_the_slots_and_each_start_is_a_pick():
    m = member(1, "Riley Chen")
    slots = [Slot(at(MONDAY, 10, q), at(MONDAY, 11, q), ("sub_1",)) for q in (0, 15, 30)]
    slots.append(Slot(at(MONDAY, 14), at(MONDAY, 15), ("sub_1",)))
    day = layout.week_view(grid_of([m], slots=slots), "Europe/London").days[0]
    assert [s.times for s in day.free] == ["10:00–11:30", "14:00–15:00"]
    assert [(p.times, p.lead) for p in day.picks] == [
        ("10:00–11:00", True),
        ("10:15–11:15", False),
        ("10:30–11:30", False),
        ("14:00–15:00", True),
    ]
    assert day.picks[0].value == slots[0].start.isoformat()


def test_weekends_are_hidden_unless_asked_and_their_slots_counted():
    m = member(1, "Riley Chen")
    saturday = MONDAY + dt.timedelta(days=5)
    slots = [
        Slot(at(MONDAY, 10), at(MONDAY, 11), ("sub_1",)),
        Slot(at(saturday, 10), at(saturday, 11), ("sub_1",)),
    ]
    grid = grid_of([m], days=7, slots=slots)
    hidden = layout.week_view(grid, "Europe/London")
    assert [d.date.isoweekday() for d in hidden.days] == [1, 2, 3, 4, 5]
    assert hidden.hidden_weekend_slots == 1
    shown = layout.week_view(grid, "Europe/London", weekends=True)
    assert [d.date.isoweekday() for d in shown.days] == [1, 2, 3, 4, 5, 6, 7]
    assert shown.hidden_weekend_slots == 0
    assert [p.times for p in shown.days[5].picks] == ["10:00–11:00"]
    # A range of weekend days only is shown as it is.
    only = layout.week_view(grid_of([m], days=2, first=saturday), "Europe/London")
    assert [d.date for d in only.days] == [saturday, saturday + dt.timedelta(days=1)]


def test_the_day_asked_for_is_the_current_one_on_a_phone():
    grid = grid_of([member(1, "Riley Chen")])
    wednesday = MONDAY + dt.timedelta(days=2)
    view = layout.week_view(grid, "Europe/London", current=wednesday)
    assert [d.current for d in view.days] == [False, False, True, False, False]
    first = layout.week_view(grid, "Europe/London", current=dt.date(2030, 1, 1))
    assert [d.current for d in first.days] == [True, False, False, False, False]


def test_a_member_whose_calendar_cannot_be_read_says_so():
    m = member(1, "Riley Chen")
    view = layout.week_view(
        grid_of([m], busy={}, problems={1: "The calendar could not be read."}), "Europe/London"
    )
    assert view.legend[0].problem == "The calendar could not be read."
    assert view.days[0].lanes[0].problem == "The calendar could not be read."


# -- the page ----------------------------------------------------------------------------------


def weeks_ahead(n: int) -> dt.date:
    """A Monday ``n`` weeks ahead: the page's week starts there whatever today is."""
    day = utcnow().astimezone(LONDON).date() + dt.timedelta(days=7 * n)
    return day - dt.timedelta(days=day.weekday())


@pytest.fixture
def two(app, session, sandbox, org):
    from tests.webapp.scheduling_support import make_panel

    return make_panel(app, session, sandbox, org, 2)


def qs(panel, **extra) -> str:
    args = [f"panel={link.id}" for _u, link in panel]
    args += [f"{k}={v}" for k, v in extra.items()]
    return "&".join(args)


def links_of(page: str, name: str) -> str:
    found = re.search(r'<a href="([^"]+)">' + re.escape(name), page)
    assert found, name
    return unescape(found.group(1))


def test_week_links_move_by_seven_days_keep_the_question_and_never_go_before_today(
    client, auth, recruiter, two
):
    auth.login(recruiter.email)
    start = weeks_ahead(2)
    page = client.get(
        f"/schedule/?{qs(two, start_date=start, days=5, duration=30, tzid='Europe/London')}"
    ).get_data(as_text=True)
    following = parse_qs(urlsplit(links_of(page, "Next week")).query)
    assert following["start_date"] == [(start + dt.timedelta(days=7)).isoformat()]
    assert following["panel"] == [str(link.id) for _u, link in two]
    assert following["duration"] == ["30"] and following["days"] == ["5"]
    previous = parse_qs(urlsplit(links_of(page, "← Previous week")).query)
    assert previous["start_date"] == [(start - dt.timedelta(days=7)).isoformat()]
    assert page.count('class="day') >= 5
    # Positions are classes: nothing inline for the strict content security policy to refuse.
    assert " style=" not in page and "<style" not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/schedule_grid.js" defer>']

    today = utcnow().astimezone(LONDON).date()
    page = client.get(f"/schedule/?{qs(two, start_date=today, tzid='Europe/London')}").get_data(
        as_text=True
    )
    assert "Previous week" not in page  # nothing to show before today
    soon = today + dt.timedelta(days=3)
    page = client.get(f"/schedule/?{qs(two, start_date=soon, tzid='Europe/London')}").get_data(
        as_text=True
    )
    previous = parse_qs(urlsplit(links_of(page, "← Previous week")).query)
    assert previous["start_date"] == [today.isoformat()]  # not into the past


def test_the_weekend_link_and_checkbox_show_saturdays_and_sundays(client, auth, recruiter, two):
    auth.login(recruiter.email)
    start = weeks_ahead(2)
    base = qs(two, start_date=start, days=7, tzid="Europe/London")
    page = client.get(f"/schedule/?{base}").get_data(as_text=True)
    saturday = (start + dt.timedelta(days=5)).isoformat()
    assert f'id="day-{saturday}"' not in page
    link = links_of(page, "Show Saturdays and Sundays")
    assert parse_qs(urlsplit(link).query)["weekends"] == ["1"]
    page = client.get(link).get_data(as_text=True)
    assert f'id="day-{saturday}"' in page
    assert '<input type="hidden" name="weekends" value="1">' in page  # kept when scheduling
    assert re.search(r'name="weekends" value="1" checked', page)
    assert "weekends" not in parse_qs(urlsplit(links_of(page, "Hide Saturdays")).query)


def test_a_bad_date_keeps_the_panel_and_everything_entered(client, auth, recruiter, two):
    auth.login(recruiter.email)
    entered = qs(
        two,
        start_date="2030-02-30",
        days=3,
        duration=45,
        tzid="America/New_York",
        required="some",
        required_n=2,
        buffer_before=10,
    )
    response = client.get(f"/schedule/?{entered}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Dates look like 2026-11-23." in page
    for _user, link in two:
        assert f'name="panel" value="{link.id}" checked' in page
    assert 'value="2030-02-30" aria-invalid="true"' in page
    assert 'id="days" name="days" min="1" max="14" value="3"' in page
    assert '<option value="45" selected>' in page
    assert "<option selected>America/New_York</option>" in page
    assert 'name="required" value="some" checked' in page
    assert 'id="required_n" name="required_n" min="1" max="10" class="short" value="2"' in page
    assert 'id="buffer_before" name="buffer_before" min="0" max="120" value="10"' in page
    assert "Pick a slot" not in page


def test_choosing_nobody_says_so_and_keeps_the_rest(client, auth, recruiter, two):
    auth.login(recruiter.email)
    start = weeks_ahead(1)
    response = client.get(f"/schedule/?duration=90&start_date={start}&days=4&tzid=Europe/London")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Choose at least one person for the panel." in page
    assert 'class="panel-choices" aria-invalid="true"' in page
    assert f'value="{start}"' in page and '<option value="90" selected>' in page
    # The first visit (no question asked) is no error.
    first = client.get("/schedule/")
    assert first.status_code == 200
    assert "Choose at least one person" not in first.get_data(as_text=True)


def test_a_refused_booking_keeps_the_grid_and_the_details(client, auth, recruiter, two):
    auth.login(recruiter.email)
    start = weeks_ahead(1)
    page = client.get(f"/schedule/?{qs(two, start_date=start, tzid='Europe/London')}").get_data(
        as_text=True
    )
    slot = re.search(r'name="slot" id="[^"]+" value="([^"]+)"', page).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/schedule/",
        data={
            "csrf_token": token,
            "panel": [str(link.id) for _u, link in two],
            "duration": "60",
            "days": "5",
            "start_date": start.isoformat(),
            "tzid": "Europe/London",
            "weekends": "1",
            "slot": slot,
            "candidate_name": "Casey Candidate",
            "candidate_email": "not an address",
            "title": "Kept title",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'value="{slot}" checked' in page
    assert 'value="Kept title"' in page and 'value="Casey Candidate"' in page
    assert re.search(r'name="weekends" value="1" checked', page)
    for _user, link in two:
        assert f'name="panel" value="{link.id}" checked' in page


if __name__ == "__main__":
    CSS.write_text(grid_css())


def test_the_lanes_built_in_python_carry_the_overlays_blocks_escaped(app):
    """The page's lanes (``lane_marks``) and the busy overlay (the ``blocks`` macro) draw the
    same blocks; a name or an event title with markup in it stays text."""
    from markupsafe import Markup

    from webapp.views.schedule_grid import lane_marks

    me, other = member(1, 'Riley <b>"Chen"</b>'), member(2, "Sam & Co")
    busy = {
        1: [model.Block(at(MONDAY, 10), at(MONDAY, 11), "busy", ("<script>x</script>", "1:1"))],
        2: [block(MONDAY, (13, 0), (14, 0), "tentative")],
    }
    view = layout.week_view(
        grid_of([me, other], busy=busy, problems={2: "Could not be read."}), "Europe/London"
    )
    day = view.days[0]
    with app.app_context():
        macro = app.jinja_env.from_string(
            '{% from "schedule/_grid.html" import blocks %}{{ blocks(lane, who) }}'
        )
        overlay = [macro.render(lane=lane, who=lane.member.label) for lane in day.lanes]
    page = lane_marks(day, view)
    assert isinstance(page, Markup)
    assert len(overlay) == 2
    for blocks in overlay:
        assert blocks and blocks in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;; 1:1" in page
    assert 'title="Riley &lt;b&gt;&#34;Chen&#34;&lt;/b&gt;"' in page
    assert "lane gc-3 gr-2" in page and "lane-unknown" in page.split("gc-3 gr-2")[1][:20]
    assert "lane-unknown" not in page.split("gc-2 gr-2")[1][:20]
