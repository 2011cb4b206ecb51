"""A colleague withdrawing the calendar they shared with a Business Connect account is noticed
where the app reads from the aggregator anyway, not only on the owner's calendar page: a panel's
availability or free/busy read that the aggregator refuses, a push notification for the owner's
profile, and the periodic check. The colleague's link then needs attention (audited once), no
panel offers them as free, and the scheduler is told who and why.

The sandbox is as strict as Cronofy reads: a withdrawn calendar disappears from the account's
calendar list, and any read naming its id is refused (422 ``invalid_calendar_ids``). Every test
has a neighbouring organisation holding the same addresses, which nothing touches."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from models import AuditEntry, LinkStatus, ProfileLink
from tests.tenants import seed_neighbour, snapshot
from tests.webapp.scheduling_support import link_calendar
from tests.webapp.test_delegated_calendars import (  # noqa: F401 (fixtures)
    ASSISTANT,
    add,
    owner,
    week,
)
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services import delegation
from webapp.services.availability import free_slots, overlay, roster
from webapp.services.delegation_watch import Withdrawn
from webapp.services.errors import Invalid

TAYLOR = "taylor.nguyen@northwind.example"


@pytest.fixture
def shared(app, session, sandbox, owner, riley):  # noqa: F811
    """Pat (the assistant) added Taylor's and Dana's shared calendars as colleagues; Riley, a
    recruiter with a calendar of their own, schedules; a neighbour organisation holds
    namesakes of all of them."""
    user, owner_link = owner
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": TAYLOR, "writable": False}]})
    taylor = add(app, session, user, owner_link, "Taylor", TAYLOR)
    dana = add(app, session, user, owner_link, "Dana", "dana.wright@contoso.example")
    riley_link = link_calendar(app, session, sandbox, riley)
    people = [user, riley, taylor.user, dana.user]
    neighbour = seed_neighbour(session, deps.cipher.of(app), people)
    return {
        "owner": owner_link,
        "taylor": taylor,
        "dana": dana,
        "riley": riley_link,
        "neighbour": neighbour.org.id,
        "before": snapshot(session, neighbour.org.id),
    }


def withdraw(sandbox):
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": TAYLOR, "withdraw": True}]})


def flagged(session, link_id):
    session.expire_all()
    return [
        e
        for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "calendar.needs_attention")
        )
        if e.target_id == str(link_id)
    ]


def untouched(session, shared):
    assert snapshot(session, shared["neighbour"]) == shared["before"]


def status(session, link):
    session.expire_all()
    return session.get(ProfileLink, link.id).status


def test_a_panel_read_refused_for_a_withdrawn_colleague_offers_no_time_and_names_them(
    app, session, sandbox, shared, riley
):
    withdraw(sandbox)
    broker, cipher = broker_cipher(app)
    query = week([shared["riley"].id, shared["taylor"].id])
    with pytest.raises(Withdrawn) as refused:
        free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert "Taylor" in refused.value.message and "Pat Office" in refused.value.message
    assert refused.value.link_ids == (shared["taylor"].id,)
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION
    assert status(session, shared["dana"]) is LinkStatus.ACTIVE  # still shared: left alone
    [entry] = flagged(session, shared["taylor"].id)
    assert entry.detail["reason"] == "delegated calendar no longer listed"
    assert entry.organisation_id == shared["owner"].organisation_id
    # Choosing the panel again names who cannot be on it, and why (no aggregator call needed).
    with pytest.raises(Invalid) as again:
        free_slots.grid(session, broker, cipher, actor_of(riley), query)
    assert "Taylor" in again.value.message and "needs attention" in again.value.message
    choices = roster.panel_choices(session, actor_of(riley))
    assert shared["taylor"].id not in {link.id for link, _u in choices}
    assert len(flagged(session, shared["taylor"].id)) == 1
    # The owner sees it on their calendar page's list too.
    (listed,) = [
        d
        for d in delegation.delegated_from(session, session.get(ProfileLink, shared["owner"].id))
        if d.link.id == shared["taylor"].id
    ]
    assert not listed.usable
    untouched(session, shared)


def test_the_busy_overlay_says_the_colleague_withdrew_their_calendar(
    app, session, sandbox, shared, riley
):
    withdraw(sandbox)
    broker, cipher = broker_cipher(app)
    query = week([shared["riley"].id, shared["taylor"].id, shared["dana"].id])
    grid = overlay.busy_overlay(session, broker, cipher, actor_of(riley), query)
    assert set(grid.busy_problems) == {shared["taylor"].id}
    assert "no longer shared" in grid.busy_problems[shared["taylor"].id]
    assert shared["dana"].id in grid.busy and shared["riley"].id in grid.busy
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION
    assert len(flagged(session, shared["taylor"].id)) == 1
    untouched(session, shared)


def test_a_change_pushed_for_the_owners_profile_notices_the_withdrawal(
    app, session, sandbox, shared
):
    owner_link = session.get(ProfileLink, shared["owner"].id)
    owner_link.channel_id = "chn_pat_office"  # the channel the push arrives from is its own
    session.commit()
    withdraw(sandbox)
    with app.app_context():
        result = deps.jobs.of(app).enqueue(
            "scheduling.apply_changes", owner_link.id, None, owner_link.channel_id
        )
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION, result
    assert status(session, shared["dana"]) is LinkStatus.ACTIVE
    assert len(flagged(session, shared["taylor"].id)) == 1
    untouched(session, shared)


def test_the_periodic_check_notices_the_withdrawal_once(app, session, sandbox, shared):
    with app.app_context():
        deps.jobs.of(app).enqueue("calendar.recover_links")
    assert status(session, shared["taylor"]) is LinkStatus.ACTIVE  # nothing withdrawn yet
    assert not flagged(session, shared["taylor"].id)
    withdraw(sandbox)
    for _ in range(2):
        with app.app_context():
            deps.jobs.of(app).enqueue("calendar.recover_links")
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION
    assert status(session, shared["dana"]) is LinkStatus.ACTIVE
    assert len(flagged(session, shared["taylor"].id)) == 1
    untouched(session, shared)


def test_adding_the_calendar_again_brings_the_colleague_back_on_panels(
    app,
    session,
    sandbox,
    shared,
    owner,  # noqa: F811
    riley,
):
    withdraw(sandbox)
    with app.app_context():
        deps.jobs.of(app).enqueue("calendar.recover_links")
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION
    sandbox.seed({"delegations": [{"to": ASSISTANT, "owner": TAYLOR, "name": "Taylor (again)"}]})
    user, owner_link = owner
    again = add(app, session, user, owner_link, "Taylor", TAYLOR)
    assert again.id == shared["taylor"].id and again.status is LinkStatus.ACTIVE
    broker, cipher = broker_cipher(app)
    grid = free_slots.grid(
        session, broker, cipher, actor_of(riley), week([shared["riley"].id, again.id])
    )
    assert grid.slots and not grid.busy_problems
    untouched(session, shared)


def test_the_schedule_page_tells_the_scheduler_who_withdrew_and_changes_nothing_else(
    app, client, auth, session, sandbox, shared, riley
):
    withdraw(sandbox)
    auth.login(riley.email)
    ask = {
        "panel": [shared["riley"].id, shared["taylor"].id],
        "start_date": week([]).start_date.isoformat(),
        "days": 5,
        "duration": 60,
        "tzid": "Europe/London",
    }
    page = client.get("/schedule/", query_string=ask)
    body = page.get_data(as_text=True)
    assert page.status_code == 409, body[:800]
    assert "calendar is no longer shared with Pat Office" in html.unescape(body)
    assert 'name="slot"' not in body  # no time offered
    again = client.get("/schedule/", query_string=ask)
    assert again.status_code == 400
    assert "needs attention" in html.unescape(again.get_data(as_text=True))
    # Choosing a panel afresh: the form says who is held back and why, and offers the rest.
    form = html.unescape(client.get("/schedule/").get_data(as_text=True))
    held_back = form.split('id="held-back"', 1)[1].split("</p>", 1)[0]
    assert "Taylor" in held_back and "Dana" not in held_back and "Namesake" not in held_back
    assert f'name="panel" value="{shared["taylor"].id}"' not in form
    assert f'name="panel" value="{shared["dana"].id}"' in form
    assert len(flagged(session, shared["taylor"].id)) == 1
    untouched(session, shared)


def test_many_reads_noticing_it_at_once_mark_it_once(app, session, sandbox, shared):
    """Each on its own database connection, as several workers' reads would be: one audit
    entry, every one of them told the colleague is withdrawn."""
    from concurrent.futures import ThreadPoolExecutor

    from webapp.services import delegation_watch

    withdraw(sandbox)
    broker, cipher = broker_cipher(app)

    def notice(_):
        with deps.database.of(app).sessions() as db:
            link = db.get(ProfileLink, shared["taylor"].id)
            return [x.id for x in delegation_watch.recheck_owners(db, broker, cipher, [link])]

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(notice, range(4)))
    assert found == [[shared["taylor"].id]] * 4
    assert status(session, shared["taylor"]) is LinkStatus.NEEDS_ATTENTION
    assert len(flagged(session, shared["taylor"].id)) == 1
    untouched(session, shared)
