"""Busy blocks have no titles unless the viewer owns the calendar (issue 18): on the schedule
grid, the viewer's own lane shows their own events' titles, read from the aggregator through
the broker when asked (``read_events``), never stored and never logged; every other lane, every
other viewer (a colleague, a coordinator, a second organisation with the same addresses) and
the API see free/busy only."""

from __future__ import annotations

import datetime as dt
import logging
import re
from html import unescape

import pytest
from sqlalchemy import select

from models import Base, Role
from tests.factories import assign, make_org, make_user
from tests.webapp.scheduling_support import PANEL_EMAILS, link_calendar
from tests.webapp.test_week_grid import LONDON, weeks_ahead
from webapp import deps
from webapp.services import Actor
from webapp.services.availability import free_slots, model

RILEY_TITLE = "Reorg talk with Sam (title-5521)"
MORGAN_TITLE = "Morgan's dentist (title-8830)"


def at(day: dt.date, hour: int) -> str:
    moment = dt.datetime.combine(day, dt.time(hour), LONDON).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def week(sandbox, recruiter, panel):
    """A Monday two weeks ahead, with one titled event in Riley's calendar and one in
    Morgan's (the first of ``panel``)."""
    monday = weeks_ahead(2)
    for email, title, hour in [
        (recruiter.email, RILEY_TITLE, 10),
        (panel[0][0].email, MORGAN_TITLE, 11),
    ]:
        sandbox.call(
            "POST",
            "/external-change",
            json={
                "email": email,
                "action": "create",
                "summary": title,
                "start": at(monday, hour),
                "end": at(monday, hour + 1),
            },
        )
    return monday


def own_link(session, user):
    from models import ProfileLink

    return session.scalars(select(ProfileLink).where(ProfileLink.user_id == user.id)).first()


def urls(links, monday: dt.date, **extra) -> tuple[str, str]:
    """The slots page with the busy time inline, and the overlay fragment, for ``links``."""
    args = "&".join(f"panel={link.id}" for link in links)
    args += f"&start_date={monday}&days=5&tzid=Europe/London"
    args += "".join(f"&{k}={v}" for k, v in extra.items())
    return f"/schedule/?{args}&busy=1", f"/schedule/busy?{args}&axis=480-1080"


def pages(client, links, monday, **extra) -> list[str]:
    found = []
    for url in urls(links, monday, **extra):
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        found.append(unescape(response.get_data(as_text=True)))
    return found


def stored_text(session) -> str:
    """Every row of every table, as text."""
    out = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            out.append(repr(tuple(row)))
    return "\n".join(out)


def test_the_owner_sees_their_own_titles_on_their_own_lane_only(
    app, session, client, auth, recruiter, panel, week, caplog
):
    riley = own_link(session, recruiter)
    links = [riley, panel[0][1], panel[1][1]]
    auth.login(recruiter.email)
    caplog.set_level(logging.DEBUG)
    for page in pages(client, links, week):
        assert RILEY_TITLE in page  # on the block (its title) and in the busy times as text
        assert MORGAN_TITLE not in page  # a colleague's calendar: free/busy only
        block = re.search(r'<span class="block [^"]*" aria-hidden="true" title="([^"]+)"', page)
        assert block
        titled = re.findall(r'title="Riley Chen: [^"]*' + re.escape(RILEY_TITLE), page)
        assert titled, "the owner's own block carries the title"
        assert f"10:00–11:00: {RILEY_TITLE}" in page  # the text alternative
    # The slots page (before the overlay) has no calendar content at all.
    slots_page = client.get(urls(links, week)[0].replace("&busy=1", "")).get_data(as_text=True)
    assert RILEY_TITLE not in unescape(slots_page)
    # Never logged, never stored.
    assert RILEY_TITLE not in caplog.text and MORGAN_TITLE not in caplog.text
    session.expire_all()
    everything = stored_text(session)
    assert RILEY_TITLE not in everything and MORGAN_TITLE not in everything


def test_another_viewer_a_coordinator_and_the_api_never_see_the_titles(
    app, session, client, auth, recruiter, panel, week
):
    riley = own_link(session, recruiter)
    morgan, morgan_link = panel[0]
    links = [riley, morgan_link, panel[1][1]]
    # A colleague sees their own title, never Riley's.
    auth.login(morgan.email)
    for page in pages(client, links, week):
        assert RILEY_TITLE not in page and MORGAN_TITLE in page
    auth.logout()
    # A coordinator scheduling for Riley: free/busy only for everyone.
    coordinator = make_user(session, recruiter.organisation, Role.COORDINATOR)
    assign(session, coordinator, recruiter)
    auth.login(coordinator.email)
    for page in pages(client, links, week, on_behalf_of=recruiter.id):
        assert "block-busy" in page
        assert RILEY_TITLE not in page and MORGAN_TITLE not in page
    # The availability API (and the service it uses) carries no titles, even for the owner.
    me = Actor(recruiter.id, recruiter.email, recruiter.organisation_id, Role.RECRUITER)
    query = model.Query(tuple(link.id for link in links), start_date=week, days=5)
    grid = free_slots.grid(session, deps.broker.of(app), deps.cipher.of(app), me, query)
    assert grid.busy[riley.id] and all(not b.titles for bs in grid.busy.values() for b in bs)


def test_a_second_organisation_with_the_same_addresses_never_sees_them(
    app, session, client, auth, sandbox, recruiter, panel, week
):
    riley = own_link(session, recruiter)
    neighbour = make_org(session, "Neighbour sharing addresses")
    # Riley's namesake there: the same address, their own (other) calendar linked.
    twin = make_user(session, neighbour, Role.RECRUITER, email=recruiter.email, name="Riley Twin")
    twin_link = link_calendar(app, session, sandbox, twin, PANEL_EMAILS[6])
    # Logging in with the shared address picks one account; act as the namesake directly.
    them = Actor(twin.id, twin.email, neighbour.id, Role.RECRUITER)
    from webapp.services.availability import overlay
    from webapp.services.errors import Invalid

    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    own = overlay.busy_overlay(
        session, broker, cipher, them, model.Query((twin_link.id,), start_date=week, days=5)
    )
    titles = {t for b in own.busy[twin_link.id] for t in b.titles}
    assert RILEY_TITLE not in titles and MORGAN_TITLE not in titles
    with pytest.raises(Invalid):  # Riley's calendar is not theirs to ask about
        overlay.busy_overlay(
            session, broker, cipher, them, model.Query((riley.id,), start_date=week, days=5)
        )
    # And over HTTP, a neighbour's recruiter asking for Riley's link is refused.
    other = make_user(session, neighbour, Role.RECRUITER, email="r2@neighbour.example")
    auth.login(other.email)
    for url in urls([riley], week):
        response = client.get(url)
        assert response.status_code == 400
        assert RILEY_TITLE not in unescape(response.get_data(as_text=True))


def test_when_the_titles_cannot_be_read_the_busy_blocks_stand_without_them(
    session, client, auth, sandbox, recruiter, panel, week
):
    riley = own_link(session, recruiter)
    auth.login(recruiter.email)
    sandbox.add_fault(method="GET", path="/v1/events", status=500)
    try:
        for page in pages(client, [riley, panel[0][1]], week):
            assert "block-busy" in page and RILEY_TITLE not in page
    finally:
        sandbox.clear_faults()


def test_the_broker_reads_titles_with_read_events_and_marks_what_makes_one_busy(
    app, session, sandbox, recruiter, week
):
    """``event_summaries`` against the sandbox, as against Cronofy: ``GET /v1/events`` with the
    owner's token (scope ``read_events``), every page, our own events included, deleted ones
    not; an event marked transparent does not make its owner busy."""
    from broker import errors as broker_errors
    from broker.types import Credentials
    from tests.webapp.scheduling_support import creds_of

    riley = own_link(session, recruiter)
    focus = sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": recruiter.email,
            "action": "create",
            "summary": "Focus block (title-3303)",
            "transparency": "transparent",
            "start": at(week, 14),
            "end": at(week, 15),
        },
    )["event"]
    gone = sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": recruiter.email,
            "action": "create",
            "summary": "Cancelled lunch (title-4404)",
            "start": at(week, 12),
            "end": at(week, 13),
        },
    )["event"]
    sandbox.call(
        "POST",
        "/external-change",
        json={"email": recruiter.email, "action": "delete", "event_uid": gone["event_uid"]},
    )
    broker = deps.broker.of(app)
    found = broker.event_summaries(
        creds_of(app, riley), start=week, end=week + dt.timedelta(days=5), tzid="Europe/London"
    )
    by_title = {e.summary: e for e in found}
    assert by_title[RILEY_TITLE].busy is True
    assert by_title["Focus block (title-3303)"].busy is False
    assert "Cancelled lunch (title-4404)" not in by_title
    assert focus["summary"] not in repr(found)  # a title never shows in a repr (logs, traces)
    # A token without read_events cannot read titles (free/busy still can).
    body = sandbox.call(
        "POST", "/tokens", json={"email": recruiter.email, "scope": "read_free_busy"}
    )
    narrow = Credentials(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=body["expires_in"]),
        scope=body["scope"],
        sub=body["sub"],
        account_id=body["account_id"],
    )
    with pytest.raises(broker_errors.BrokerError):
        broker.event_summaries(narrow, start=week, end=week + dt.timedelta(days=5))
    assert broker.free_busy(narrow, start=week, end=week + dt.timedelta(days=5))
