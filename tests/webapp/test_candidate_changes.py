"""The candidate's booking page (organisation, title, length, first names, a date picker of the
days with free time, times in their zone, without JavaScript) and their own reschedule/cancel
through the link: only when the recruiter allowed it, only up to the cut-off, only their own
interview, through the same move and cancel paths as every other change."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Interview, InterviewStatus, SchedulingLink, SlotClaim
from tests.held_jobs import HeldJobs
from tests.tenants import seed_neighbour
from tests.webapp.scheduling_support import managed
from tests.webapp.test_candidate_links import NAME, csrf, new_link, slots_on_page
from tests.webapp.test_scheduling import sealer_of
from webapp import deps
from webapp.services import candidate_changes
from webapp.services.availability import model
from webapp.services.errors import ChangeRefused, Invalid

DAY_LINK = re.compile(r'<a class="cal-day available" href="([^"]+)" data-day="([0-9-]+)"')


def friday_ahead(sandbox, weeks: int = 1) -> dt.date:
    """A Friday at least a few days after the sandbox clock's today (a window over a weekend)."""
    day = sandbox.clock().today + dt.timedelta(days=3 + 7 * (weeks - 1))
    while day.isoweekday() != 5:
        day += dt.timedelta(days=1)
    return day


def book(client, token, slot_index: int = 0):
    html = client.get(f"/c/{token}").get_data(as_text=True)
    slots = slots_on_page(html)
    done = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots[slot_index]})
    assert done.status_code == 200, done.get_data(as_text=True)
    return dt.datetime.fromisoformat(slots[slot_index]), done.get_data(as_text=True)


def changeable_link(app, session, sandbox, recruiter, panel, **kw):
    values = dict(
        start_date=friday_ahead(sandbox),
        days=4,
        candidate_may_change=True,
        change_cutoff_hours=24,
    )
    values.update(kw)
    return new_link(app, session, recruiter, panel, **values)


def host_event(app, session, interview):
    session.refresh(interview)
    return next(
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    )


# -- the booking page -------------------------------------------------------------------------


def test_the_booking_page_shows_who_what_how_long_and_a_date_picker(
    app, client, session, sandbox, org, recruiter, panel
):
    org.name = "Northwind Traders"
    session.commit()
    friday = friday_ahead(sandbox)
    _link, token = new_link(app, session, recruiter, panel, start_date=friday, days=4)
    html = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Northwind Traders" in html and "cand-title-4411" in html and "60 minutes" in html
    firsts = [user.name.split()[0] for user, _l in panel]
    assert ", ".join(firsts) in html
    assert all(user.name not in html for user, _l in panel)  # first names only
    # Friday and Monday have free time; the weekend is in the window but disabled.
    days = dict((day, href) for href, day in DAY_LINK.findall(html))
    assert set(days) == {friday.isoformat(), (friday + dt.timedelta(days=3)).isoformat()}
    for weekend in (friday + dt.timedelta(days=1), friday + dt.timedelta(days=2)):
        assert re.search(
            rf'<span class="cal-day" aria-label="{weekend.strftime("%A %d %B")}: no free time" '
            r'aria-disabled="true">',
            html,
        )
    # Without JavaScript: the first day's times are shown, the other day's are hidden until
    # its link (?day=) is followed.
    assert re.search(rf'id="times-{friday.isoformat()}" data-day="[^"]+">', html)
    monday = (friday + dt.timedelta(days=3)).isoformat()
    assert f'id="times-{monday}" data-day="{monday}" hidden>' in html
    other = client.get(days[monday].replace("&amp;", "&").split("#")[0]).get_data(as_text=True)
    assert f'id="times-{monday}" data-day="{monday}">' in other
    assert days[monday].endswith("#pick-heading") and f"day={monday}" in days[monday]
    assert re.search(rf'data-day="{monday}" aria-label="[^"]+" aria-current="date"', other)
    # The zone changes by query parameter; the chosen day is kept through the zone form.
    assert 'name="day" value="' + monday + '"' in other
    tokyo = client.get(f"/c/{token}?tz=Asia/Tokyo").get_data(as_text=True)
    assert "<option selected>Asia/Tokyo</option>" in tokyo
    first = dt.datetime.fromisoformat(slots_on_page(tokyo)[0])
    assert f">{first.astimezone(model.zone('Asia/Tokyo')):%H:%M}<span" in tokyo
    # The time buttons are one radio group, booked by one submit, without any inline script.
    assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_a_strange_day_or_zone_falls_back_to_the_first_day(
    app, client, session, sandbox, recruiter, panel
):
    friday = friday_ahead(sandbox)
    _link, token = new_link(app, session, recruiter, panel, start_date=friday, days=4)
    for query in ("day=2026-02-31", "day=nonsense", "day=1999-01-01", "tz=Mars/Olympus"):
        page = client.get(f"/c/{token}?{query}")
        assert page.status_code == 200
        assert re.search(
            rf'data-day="{friday.isoformat()}" aria-label="[^"]+" aria-current', page.text
        )


# -- the link form ----------------------------------------------------------------------------


def test_the_link_form_stores_the_candidates_permission_and_cut_off(
    app, client, auth, session, sandbox, recruiter, panel
):
    auth.login(recruiter.email)
    page = client.get("/schedule/links/").get_data(as_text=True)
    assert 'name="candidate_may_change"' in page and 'name="change_cutoff_hours"' in page
    form = {
        "csrf_token": csrf(page),
        "panel": [str(link.id) for _u, link in panel],
        "candidate_name": NAME,
        "candidate_email": "jamie@gmail.example",
        "candidate_tzid": "Europe/London",
        "title": "Northwind",
        "start_date": friday_ahead(sandbox).isoformat(),
        "candidate_may_change": "on",
        "change_cutoff_hours": "48",
    }
    assert client.post("/schedule/links/", data=form).status_code == 201
    link = session.scalar(select(SchedulingLink))
    assert link.candidate_may_change and link.change_cutoff_hours == 48
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "scheduling_link.created"))
    assert audit.detail["candidate_may_change"] is True
    for bad in ("-1", "169", "twelve"):
        response = client.post("/schedule/links/", data={**form, "change_cutoff_hours": bad})
        assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(SchedulingLink)) == 1
    # Left unticked (the default), the candidate may not change anything.
    del form["candidate_may_change"]
    assert client.post("/schedule/links/", data=form).status_code == 201
    newest = session.scalar(select(SchedulingLink).order_by(SchedulingLink.id.desc()))
    assert newest.candidate_may_change is False


# -- rescheduling and cancelling --------------------------------------------------------------


def test_the_candidate_reschedules_through_the_one_move_path(
    app, client, session, sandbox, recruiter, panel
):
    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    start, confirmation = book(client, token)
    assert "Need to change it?" in confirmation and f"/c/{token}/reschedule" in confirmation
    interview = session.scalar(select(Interview))
    before = host_event(app, session, interview)

    page = client.get(f"/c/{token}/reschedule")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Choose a new time" in html and "Move to this time" in html
    offered = slots_on_page(html)
    assert offered and start.isoformat() not in offered
    target = dt.datetime.fromisoformat(offered[-1])
    moved = client.post(
        f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "slot": offered[-1]}
    )
    assert moved.status_code == 302 and "done=moved" in moved.headers["Location"]
    shown = client.get(moved.headers["Location"]).get_data(as_text=True)
    assert "Your interview was moved" in shown
    assert target.astimezone(model.zone("America/New_York")).strftime("%H:%M") in shown

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Interview)) == 1
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED and interview.needs_notice
    after = host_event(app, session, interview)
    assert after.event_id == before.event_id and after.start == target  # the same event moved
    assert after.description == before.description and after.summary == before.summary
    held = session.scalars(
        select(SlotClaim.starts_at).where(SlotClaim.interview_id == interview.id)
    )
    assert set(held) <= {target}
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "interview.rescheduled"))
    assert entry.actor_label == "candidate" and entry.target_id == str(interview.id)


def test_the_candidate_cancels_after_confirming(app, client, session, sandbox, recruiter, panel):
    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    book(client, token)
    interview = session.scalar(select(Interview))
    event_id = interview.events[0].event_id

    ask = client.get(f"/c/{token}/cancel")
    assert ask.status_code == 200 and "Yes, cancel the interview" in ask.text
    session.expire_all()
    assert session.scalar(select(Interview)).status is InterviewStatus.SCHEDULED  # asked only

    done = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(ask.text)})
    assert done.status_code == 302 and "done=cancelled" in done.headers["Location"]
    assert "Your interview is cancelled" in client.get(done.headers["Location"]).text
    session.expire_all()
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.CANCELLED and interview.needs_notice
    assert event_id not in {e.event_id for e in managed(app, session, interview.host_link)}
    assert session.scalar(select(func.count()).select_from(SlotClaim)) == 0
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "interview.cancelled"))
    assert entry.actor_label == "candidate"
    # Nothing left to change: both pages say so, and a second cancel changes nothing.
    again = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(ask.text)})
    assert again.status_code == 403 and "nothing left to change" in again.text


def test_a_link_that_does_not_allow_changes_changes_nothing(
    app, client, session, sandbox, recruiter, panel
):
    _link, token = new_link(app, session, recruiter, panel, start_date=friday_ahead(sandbox))
    html = client.get(f"/c/{token}").get_data(as_text=True)  # the candidate's CSRF token
    start, confirmation = book(client, token)
    assert "Changes through this link are not possible" in confirmation
    assert f"/c/{token}/reschedule" not in confirmation
    interview = session.scalar(select(Interview))
    before = host_event(app, session, interview)

    page = client.get(f"/c/{token}/reschedule")
    assert page.status_code == 403 and "please contact the recruiter" in page.text
    assert 'name="slot"' not in page.text
    later = (start + dt.timedelta(days=3)).isoformat()
    moved = client.post(f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "slot": later})
    assert moved.status_code == 403 and "Changes through this link are not possible" in moved.text
    assert client.get(f"/c/{token}/cancel").status_code == 403
    cancelled = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(html)})
    assert cancelled.status_code == 403

    session.expire_all()
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED and not interview.needs_notice
    assert host_event(app, session, interview).start == before.start == start
    refused = session.scalars(select(AuditEntry.detail).where(AuditEntry.outcome == "denied")).all()
    assert [d["reason"] for d in refused] == ["not allowed on the link"] * 2


def test_the_cut_off_boundary(app, session, sandbox, recruiter, panel):
    _link, token = changeable_link(app, session, sandbox, recruiter, panel, change_cutoff_hours=30)
    seal, broker, cipher = sealer_of(app), deps.broker.of(app), deps.cipher.of(app)
    from webapp.services import candidate_booking

    opened = candidate_booking.open_link(session, seal, token)
    slots = candidate_booking.slots(session, broker, opened)
    jobs = deps.jobs.of(app)
    candidate_booking.book(session, broker, cipher, seal, token, slots[0].start, jobs=jobs)
    session.expire_all()
    deadline = slots[0].start - dt.timedelta(hours=30)

    at = candidate_changes.change_of(session, broker, cipher, seal, token, now=deadline)
    assert at.allowed and at.deadline == deadline
    late = deadline + dt.timedelta(microseconds=1)
    after = candidate_changes.change_of(session, broker, cipher, seal, token, now=late)
    assert not after.allowed and "30 hours before" in after.refused
    with pytest.raises(ChangeRefused):
        candidate_changes.cancel(session, broker, cipher, seal, token, jobs=jobs, now=late)
    with pytest.raises(ChangeRefused):
        candidate_changes.reschedule(
            session, broker, cipher, seal, token, slots[-1].start, jobs=jobs, now=late
        )
    session.expire_all()
    assert session.scalar(select(Interview)).status is InterviewStatus.SCHEDULED
    # Exactly at the deadline the move is still accepted.
    interview, new_start, _end = candidate_changes.reschedule(
        session, broker, cipher, seal, token, slots[-1].start, jobs=jobs, now=deadline
    )
    assert new_start == slots[-1].start
    session.expire_all()
    assert host_event(app, session, session.scalar(select(Interview))).start == slots[-1].start
    denied = session.scalars(select(AuditEntry.detail).where(AuditEntry.outcome == "denied")).all()
    assert [d["reason"] for d in denied] == ["after the cut-off"] * 2


def test_a_move_is_only_to_a_time_the_link_offers(app, session, sandbox, recruiter, panel):
    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    seal, broker, cipher = sealer_of(app), deps.broker.of(app), deps.cipher.of(app)
    from webapp.services import candidate_booking

    opened = candidate_booking.open_link(session, seal, token)
    first = candidate_booking.slots(session, broker, opened)[0].start
    jobs = HeldJobs()
    candidate_booking.book(session, broker, cipher, seal, token, first, jobs=jobs)
    session.expire_all()
    link = session.scalar(select(SchedulingLink))
    for bad in (
        first,  # its own time
        link.window_end,  # outside the window
        link.window_start - dt.timedelta(days=1),
        first.replace(tzinfo=None),
    ):
        with pytest.raises(Invalid):
            candidate_changes.reschedule(session, broker, cipher, seal, token, bad, jobs=jobs)
    session.expire_all()
    assert session.scalar(select(Interview)).status is InterviewStatus.SCHEDULED


def test_a_token_touches_only_its_own_interview_in_its_own_organisation(
    app, client, session, sandbox, recruiter, panel
):
    neighbour = seed_neighbour(
        session, deps.cipher.of(app), [recruiter, *(user for user, _l in panel)]
    )
    _a, token_a = changeable_link(app, session, sandbox, recruiter, panel)
    _b, token_b = changeable_link(
        app, session, sandbox, recruiter, panel, candidate_email="other@gmail.example"
    )
    book(client, token_a, 0)
    book(client, token_b, 1)
    session.expire_all()
    mine, other = session.scalars(
        select(Interview)
        .where(Interview.organisation_id == recruiter.organisation_id)
        .order_by(Interview.id)
    ).all()
    before_other = host_event(app, session, other).start
    neighbours = {
        i.id: i.status
        for i in session.scalars(
            select(Interview).where(Interview.organisation_id == neighbour.org.id)
        )
    }
    # Token A cancels A; B and the neighbour's interviews are untouched.
    ask = client.get(f"/c/{token_a}/cancel")
    client.post(f"/c/{token_a}/cancel", data={"csrf_token": csrf(ask.text)})
    session.expire_all()
    assert session.get(Interview, mine.id).status is InterviewStatus.CANCELLED
    assert session.get(Interview, other.id).status is InterviewStatus.SCHEDULED
    assert host_event(app, session, session.get(Interview, other.id)).start == before_other
    assert {
        i.id: i.status
        for i in session.scalars(
            select(Interview).where(Interview.organisation_id == neighbour.org.id)
        )
    } == neighbours
    # An altered or unknown token opens nothing.
    forged = token_b[:-4] + ("AAAA" if not token_b.endswith("AAAA") else "BBBB")
    for path in (f"/c/{forged}/reschedule", f"/c/{forged}/cancel", "/c/x/cancel"):
        assert client.get(path).status_code == 404
        assert client.post(path, data={"csrf_token": csrf(ask.text)}).status_code == 404
    assert session.get(Interview, other.id).status is InterviewStatus.SCHEDULED


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_candidate_is_emailed_after_their_own_move_and_cancellation(
    smtp, app, client, session, sandbox, recruiter, panel
):
    from tests.webapp.test_candidate_notices import messages, parts, vevent

    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    start, _page = book(client, token)
    html = client.get(f"/c/{token}/reschedule").get_data(as_text=True)
    target = slots_on_page(html)[-1]
    client.post(f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "slot": target})
    ask = client.get(f"/c/{token}/cancel")
    client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(ask.text)})

    confirmation, moved, cancelled = messages(smtp)
    assert [m["Subject"].split(":")[0] for m in (confirmation, moved, cancelled)] == [
        "Interview booked",
        "Interview moved",
        "Interview cancelled",
    ]
    _c, booked = vevent(parts(confirmation)[2])
    calendar, event = vevent(parts(moved)[2])
    assert event.decoded("DTSTART") == dt.datetime.fromisoformat(target)
    assert str(event["UID"]) == str(booked["UID"])
    calendar, event = vevent(parts(cancelled)[2])
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["UID"]) == str(booked["UID"])
    assert all(e.rcpt_tos == ["jamie.candidate@gmail.example"] for e in smtp.envelopes)


def test_a_used_link_that_allows_changes_outlives_the_purge_until_its_window_ends(
    app, client, session, sandbox, recruiter, panel
):
    from webapp.services import candidate_links

    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    _plain, plain_token = new_link(app, session, recruiter, panel, start_date=friday_ahead(sandbox))
    book(client, token)
    book(client, plain_token)
    session.expire_all()
    link = session.scalar(select(SchedulingLink).where(SchedulingLink.candidate_may_change))
    window_end = link.window_end
    # A month after use, the plain link goes; the one that is the candidate's key stays while
    # its interview may still come (the window's end), then goes too.
    later = link.used_at + candidate_links.PURGE_AFTER + dt.timedelta(days=1)
    assert later < window_end + candidate_links.PURGE_AFTER
    assert candidate_links.purge(session, now=later) == 1
    assert session.scalar(select(SchedulingLink.id)) == link.id
    after = window_end + candidate_links.PURGE_AFTER + dt.timedelta(seconds=1)
    assert candidate_links.purge(session, now=after) == 1
    assert session.scalar(select(SchedulingLink.id)) is None


def test_the_api_sets_and_shows_the_candidates_permission(
    app, client, session, sandbox, recruiter, panel
):
    from tests.api.conftest import ApiClient, assert_error, issue_token

    api = ApiClient(client, issue_token(session, recruiter))
    body = {
        "panel": [link.id for _u, link in panel],
        "start_date": friday_ahead(sandbox).isoformat(),
        "candidate_name": NAME,
        "candidate_email": "jamie@gmail.example",
        "candidate_tzid": "Europe/London",
        "title": "Northwind",
    }
    plain = api.post("/scheduling-links", json=body)
    assert plain.status_code == 201, plain.get_json()
    assert (plain.get_json()["candidate_may_change"], plain.get_json()["change_cutoff_hours"]) == (
        False,
        24,
    )
    allowed = api.post(
        "/scheduling-links", json={**body, "candidate_may_change": True, "change_cutoff_hours": 6}
    )
    assert allowed.status_code == 201, allowed.get_json()
    row = session.get(SchedulingLink, allowed.get_json()["id"])
    assert row.candidate_may_change and row.change_cutoff_hours == 6
    [listed, _plain] = api.get("/scheduling-links").get_json()["items"]
    assert listed["candidate_may_change"] is True and listed["change_cutoff_hours"] == 6
    error = assert_error(
        api.post("/scheduling-links", json={**body, "change_cutoff_hours": 169}), 422
    )
    assert "change_cutoff_hours" in error["fields"]
    assert session.scalar(select(func.count()).select_from(SchedulingLink)) == 2


def test_a_calendar_that_cannot_be_read_asks_for_another_try_and_changes_nothing(
    app, client, session, sandbox, recruiter, panel
):
    _link, token = changeable_link(app, session, sandbox, recruiter, panel)
    html = client.get(f"/c/{token}").get_data(as_text=True)
    book(client, token)
    sandbox.add_fault(method="GET", path="/v1/events", status=500, count=50)
    for response in (
        client.get(f"/c/{token}/reschedule"),
        client.get(f"/c/{token}/cancel"),
        client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(html)}),
    ):
        assert response.status_code == 503
        assert "could not be read from the calendar just now" in response.text
    session.expire_all()
    assert session.scalar(select(Interview)).status is InterviewStatus.SCHEDULED
