"""No double booking: every booking claims its time for each panel member and the room in the
transaction that commits it; our own bookings count as busy until the calendar shows them; the
claims go once the calendar does, or the booking goes away.

Several of these book with ``check_slot=False``: that is the aggregator not seeing the first
booking yet (its event is written by a job, an attendee's calendar shows the invitation late or
never), so what refuses the second booking there is the claim alone.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from models import AuditEntry, Interview, InterviewStatus, Role, SlotClaim, utcnow
from tests.conftest import CSRF_RE
from tests.factories import PASSWORD, make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, make_panel, next_weekday
from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for, requests_of, sealer_of
from webapp import deps
from webapp.services import candidate_booking, candidate_links, claims
from webapp.services.availability import free_slots, model
from webapp.services.errors import SlotTaken, WriteFailed
from webapp.services.scheduling import access, booking, rescheduling, sync, writes

UTC = dt.UTC


@pytest.fixture
def panel_links(app, session, sandbox, org, recruiter):
    """Three panel members with linked calendars (besides Riley, the recruiter)."""
    return [link for _user, link in make_panel(app, session, sandbox, org, 3)]


def at(hour: int, minute: int = 0, days_ahead: int = 2) -> dt.datetime:
    return dt.datetime.combine(next_weekday(days_ahead), dt.time(hour, minute), UTC)


def clear(sandbox, email: str, start: dt.datetime, end: dt.datetime) -> None:
    """The owner deletes whatever the seed put in their calendar over [start, end)."""

    def moment(value) -> dt.datetime:
        value = value["time"] if isinstance(value, dict) else value
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0), UTC)
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    for event in sandbox.call("GET", "/events", params={"email": email})["events"]:
        if moment(event["start"]) < end and start < moment(event["end"]):
            sandbox.call(
                "POST",
                "/external-change",
                json={"email": email, "action": "delete", "event_uid": event["event_uid"]},
            )


def book(app, session, user, links, start, *, duration=60, check=False, run=True, **kw):
    """Create an interview for ``links`` at ``start`` (by default without the aggregator check)."""
    broker, cipher = broker_cipher(app)
    query = model.Query(
        panel_link_ids=tuple(link.id for link in links),
        duration=duration,
        start_date=start.date(),
        **kw,
    )
    interview, payload = booking.create_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(user),
        booking.NewInterview(
            query=query,
            start=start,
            candidate_name="Cand",
            candidate_email="cand@gmail.example",
            title="Claimed",
        ),
        check_slot=check,
        jobs=deps.jobs.of(app) if run else HeldJobs(),  # run: the write job runs at once
    )
    session.expire_all()
    return session.get(Interview, interview.id)


def counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(t))
        for t in (Interview, SlotClaim, AuditEntry)
    )


def test_overlapping_bookings_sharing_a_member_cannot_both_succeed(
    app, session, recruiter, panel_links
):
    a, b, c = panel_links
    first = book(app, session, recruiter, [a, b], at(10))
    assert first.status is InterviewStatus.SCHEDULED
    before = counts(session)
    # B is on both panels and 10:30 overlaps 10:00–11:00: refused, nothing written.
    with pytest.raises(SlotTaken, match="just taken"):
        book(app, session, recruiter, [b, c], at(10, 30))
    assert counts(session) == before
    # Nobody shared, or no overlap (back to back), or a room-free panel elsewhere: all fine.
    book(app, session, recruiter, [c], at(10, 30))
    book(app, session, recruiter, [a], at(11))
    book(app, session, recruiter, [b], at(9), duration=60)
    # Buffers count: C holds 10:30–11:30, so 09:15–10:00 with 31 minutes after reaches into it,
    # and with 30 minutes after it just fits.
    with pytest.raises(SlotTaken):
        book(app, session, recruiter, [c], at(9, 15), duration=45, buffer_after=31)
    book(app, session, recruiter, [c], at(9, 15), duration=45, buffer_after=30)


def test_a_pending_interview_is_busy_for_every_panel_member_until_the_calendar_shows_it(
    app, client, session, sandbox, recruiter, panel_links
):
    from tests.api.conftest import ApiClient, issue_token

    a, b, _c = panel_links
    broker, cipher = broker_cipher(app)
    own = access.host_link_for(session, actor_of(recruiter), None)[0]
    everyone = query_for([(None, own), (None, a), (None, b)], duration=60, days=2)
    slot = free_slots.grid(session, broker, cipher, actor_of(recruiter), everyone).slots[0]
    query = query_for([(None, b)], duration=60, days=2)
    # Booked with A and B; its write has not reached any calendar yet.
    pending = book(app, session, recruiter, [a, b], slot.start, check=True, run=False)
    assert pending.status is InterviewStatus.PENDING
    assert not [
        e
        for e in sandbox.call("GET", "/events", params={"email": b.account_email})["events"]
        if (e.get("event_id") or "").startswith("rdv-")
    ]
    # B alone: the aggregator would offer the time, Rendezvous does not, and lists it as busy.
    found = free_slots.grid(session, broker, cipher, actor_of(recruiter), query)
    assert slot.start not in {s.start for s in found.slots}
    assert slot.start in {
        s.start for s in free_slots.common_slots(broker, found.members, query, found.window)
    }
    assert (slot.start, slot.end, "busy") in {(x.start, x.end, x.status) for x in found.busy[b.id]}
    # The same through the API and on a candidate's link for B.
    api = ApiClient(client, issue_token(session, recruiter))
    listed = api.get(
        "/availability",
        query_string={
            "panel": b.id,
            "duration": 60,
            "start_date": query.start_date.isoformat(),
            "days": 2,
        },
    ).get_json()
    assert slot.start.isoformat() not in {s["start"] for s in listed["slots"]}
    assert {
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
        "status": "busy",
    } in listed["members"][0]["busy"]
    link, token = candidate_links.create_link(
        session,
        sealer_of(app),
        actor_of(recruiter),
        panel_link_ids=[b.id],
        duration=60,
        start_date=query.start_date,
        days=2,
        expires_days=3,
        candidate_name="Jo",
        candidate_email="jo@gmail.example",
        candidate_tzid="Europe/London",
        title="T",
    )
    opened = candidate_booking.open_link(session, sealer_of(app), token)
    assert slot.start not in {s.start for s in candidate_booking.slots(session, broker, opened)}
    with pytest.raises(SlotTaken):
        candidate_booking.book(
            session, broker, cipher, sealer_of(app), token, slot.start, jobs=HeldJobs()
        )
    assert session.get(type(link), link.id).used_at is None  # the link still works


def test_rescheduling_claims_the_new_time_and_gives_up_the_old(
    app, session, sandbox, recruiter, panel_links
):
    a, b, c = panel_links
    broker, cipher = broker_cipher(app)
    mover = book(app, session, recruiter, [a, b], at(10))
    book(app, session, recruiter, [b, c], at(14))
    with pytest.raises(SlotTaken):
        rescheduling.reschedule_interview(
            session,
            broker,
            cipher,
            sealer_of(app),
            actor_of(recruiter),
            mover.uid,
            at(14, 30),
            check_slot=False,
            jobs=HeldJobs(),
        )
    session.expire_all()
    assert session.get(Interview, mover.id).status is InterviewStatus.SCHEDULED
    assert {
        r.starts_at
        for r in session.scalars(select(SlotClaim).where(SlotClaim.interview_id == mover.id))
    } == {at(10)}
    moved, payload = rescheduling.reschedule_interview(
        session,
        broker,
        cipher,
        sealer_of(app),
        actor_of(recruiter),
        mover.uid,
        at(10, 30),
        check_slot=False,
        jobs=deps.jobs.of(app),  # the write job runs at once
    )  # overlapping its own old time is fine
    with pytest.raises(SlotTaken):
        book(app, session, recruiter, [b], at(11))  # the new time is held
    book(app, session, recruiter, [a], at(9, 30), duration=60)  # the old time is free again


def test_cancelled_and_failed_bookings_give_their_time_back(
    app, session, sandbox, recruiter, panel_links
):
    a, b, _c = panel_links
    first = book(app, session, recruiter, [a, b], at(10))
    booking.cancel_interview(session, actor_of(recruiter), first.uid, jobs=HeldJobs())
    assert not session.scalars(select(SlotClaim).where(SlotClaim.interview_id == first.id)).all()
    # A write that never gets through: reconciliation marks it failed and frees its time.
    sandbox.add_fault(method="POST", path="/v1/calendars/*/events", status=503)
    failing = book(app, session, recruiter, [a, b], at(10), run=False)
    with app.app_context():
        try:
            writes.run_write(session, *broker_cipher(app), sealer_of(app), failing.id, "x")
        except WriteFailed:
            pass
    sandbox.call("DELETE", "/faults")
    failing.updated_at = utcnow() - 2 * sync.PENDING_GIVE_UP
    session.commit()
    sync.reconcile(session, *broker_cipher(app))
    session.expire_all()
    assert session.get(Interview, failing.id).status is InterviewStatus.FAILED
    assert session.scalar(select(func.count()).select_from(SlotClaim)) == 0
    book(app, session, recruiter, [b], at(10))


def test_claims_settle_once_the_calendar_shows_the_interview(
    app, session, sandbox, recruiter, panel_links
):
    broker, _cipher = broker_cipher(app)
    own = access.host_link_for(session, actor_of(recruiter), None)[0]
    attendee = panel_links[0]
    # Riley hosts and sits on the panel: the event written to her calendar shows it at once.
    # The attendee declines, so their calendar never shows it.
    clear(sandbox, own.account_email, at(9), at(12))
    clear(sandbox, attendee.account_email, at(9), at(12))
    interview = book(app, session, recruiter, [own, attendee], at(10))
    assert interview.status is InterviewStatus.SCHEDULED
    sandbox.attendee_response(
        own.account_email, attendee.account_email, "declined", event_id=interview.events[0].event_id
    )
    sandbox.call("DELETE", "/stats")
    report = claims.settle(session, broker)
    assert requests_of(sandbox, "POST /v1/availability") == 1  # one call per interview
    assert report["checked"] == 1
    rows = session.scalars(select(SlotClaim).where(SlotClaim.interview_id == interview.id)).all()
    assert {r.sub for r in rows if r.confirmed_at} == {own.sub}
    assert {r.sub for r in rows if not r.confirmed_at} == {attendee.sub}
    # Within the grace period the confirmed claim still stands; after it, it goes.
    claims.settle(session, broker, now=utcnow() + claims.GRACE / 2)
    assert {r.sub for r in session.scalars(select(SlotClaim))} == {own.sub, attendee.sub}
    claims.settle(session, broker, now=utcnow() + claims.GRACE + dt.timedelta(seconds=1))
    session.expire_all()
    assert {r.sub for r in session.scalars(select(SlotClaim))} == {attendee.sub}
    # Riley's calendar protects her now: a second booking of her is refused by the aggregator...
    with pytest.raises(SlotTaken):
        book(app, session, recruiter, [own], at(10, 30), check=True)
    # ... and the attendee, whose calendar does not show it, is still held by the claim.
    with pytest.raises(SlotTaken):
        book(app, session, recruiter, [panel_links[1], attendee], at(10, 30))
    # Once the time has passed, nothing is kept.
    claims.settle(session, None, now=at(11) + claims.BUCKET)
    assert session.scalar(select(func.count()).select_from(SlotClaim)) == 0


def test_the_periodic_settle_defers_instead_of_waiting_when_no_budget_is_left(
    app, session, sandbox, recruiter, panel_links, monkeypatch
):
    """The job is periodic work with a one-second patience: when the background lane has no
    room it checks nothing, sleeps not, sends nothing (so no 429), and the next run goes on."""
    own = access.host_link_for(session, actor_of(recruiter), None)[0]
    clear(sandbox, own.account_email, at(9), at(12))
    interview = book(app, session, recruiter, [own], at(10))
    assert interview.status is InterviewStatus.SCHEDULED
    limiter = deps.broker.of(app).rate_limiter
    spent = monkeypatch.context()
    with spent as m:
        m.setattr(limiter, "try_acquire", lambda *a, **k: 30.0)  # the lane is full for 30 s
        m.setattr(limiter, "_sleep", lambda s: pytest.fail(f"slept {s} s for budget"))
        sandbox.call("DELETE", "/stats")
        report = deps.jobs.of(app)._tasks["scheduling.settle_claims"].call_local()
        assert report.get("deferred") == 1 and not report.get("checked")
        assert requests_of(sandbox, "POST /v1/availability") == 0
    report = deps.jobs.of(app)._tasks["scheduling.settle_claims"].call_local()
    assert report["checked"] == 1 and requests_of(sandbox, "POST /v1/availability") == 1


def test_settling_costs_one_call_per_interview_whatever_the_panel_size(
    app, session, sandbox, org, recruiter
):
    links = [link for _u, link in make_panel(app, session, sandbox, org, 6)]
    book(app, session, recruiter, links[:1], at(10))
    book(app, session, recruiter, links[1:], at(10))
    sandbox.call("DELETE", "/stats")
    claims.settle(session, broker_cipher(app)[0])
    assert requests_of(sandbox, "POST /v1/availability") == 2


def test_claims_are_per_organisation(app, session, sandbox, org, recruiter, panel_links):
    """Claims are keyed by organisation: another organisation's bookings neither block nor show."""
    other = make_org(session)
    other.business_connect_enabled = True
    session.commit()
    outsider = make_user(session, other, Role.RECRUITER, email="noah.fischer@contoso.example")
    theirs = link_calendar(app, session, sandbox, outsider)
    book(app, session, outsider, [theirs], at(10))
    held = claims.held(session, org.id, [theirs.sub, panel_links[0].sub], at(0), at(23))
    assert not held.buckets and not held.times
    assert claims.held(session, other.id, [theirs.sub], at(0), at(23)).times[theirs.sub] == {
        (at(10), at(11))
    }


def test_the_inventory_states_what_a_claim_keeps_and_for_how_long(app, session, org):
    from webapp.services.compliance import inventory

    reviewer = make_user(session, org, Role.COMPLIANCE)
    tables = {t.name: t for t in inventory.inventory(session, actor_of(reviewer))}
    columns = {c.name: c for c in tables["slot_claim"].columns}
    assert set(columns) == {
        "id",
        "organisation_id",
        "interview_id",
        "sub",
        "bucket_start",
        "starts_at",
        "ends_at",
        "checked_at",
        "confirmed_at",
    }
    assert all("calendar shows the interview" in c.retention for c in columns.values())


# ---------------------------------------------------------------------------------------------
# Racing over real HTTP (one process here; several gunicorn workers on PostgreSQL in
# tests/webapp/test_multiworker.py)


def race_world(app, session, sandbox, org, recruiter, people, *, seal=None):
    """A slot free for Riley and A (the aggregator's answer slowed down, so every racer's check
    passes before anyone's claim commits), an API token and candidate links for A (sealed with
    ``seal``, the serving app's sealer, by default this app's)."""
    from tests.api.conftest import issue_token

    own = access.host_link_for(session, actor_of(recruiter), None)[0]
    panel = [own, people[0]]
    query = query_for([(None, link) for link in panel], duration=60, days=2)
    slot = free_slots.grid(session, *broker_cipher(app), actor_of(recruiter), query).slots[0]
    tokens = [
        candidate_links.create_link(
            session,
            seal or sealer_of(app),
            actor_of(recruiter),
            panel_link_ids=[people[0].id],
            duration=60,
            start_date=query.start_date,
            days=2,
            expires_days=3,
            candidate_name=f"C{n}",
            candidate_email=f"c{n}@gmail.example",
            candidate_tzid="Europe/London",
            title="T",
        )[1]
        for n in range(3)
    ]
    sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=400)
    return panel, slot, issue_token(session, recruiter), tokens


def web_login(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(base + "/login", timeout=10).text
    token = CSRF_RE.search(form).group(1)
    response = browser.post(
        base + "/login",
        timeout=10,
        allow_redirects=False,
        data={"csrf_token": token, "email": email, "password": PASSWORD},
    )
    assert response.status_code == 302
    return browser


def racers(base: str, panel, slot, api_token: str, candidate_tokens, browser):
    """Callables, each booking ``slot`` for ``panel`` one way; each returns 'won' or 'lost'."""
    start = slot.start.isoformat()

    def api():
        response = requests.post(
            base + "/api/v1/interviews",
            timeout=60,
            json={
                "panel": [link.id for link in panel],
                "start": start,
                "title": "Race",
                "candidate_name": "R",
                "candidate_email": "r@gmail.example",
            },
            headers={"Authorization": f"Bearer {api_token}"},
        )
        assert response.status_code in (201, 409), response.text
        return "won" if response.status_code == 201 else "lost"

    def web():
        with requests.Session() as own:
            own.cookies.update(browser.cookies)
            response = post_schedule_form(own, base, panel, slot, title="Race")
        assert response.status_code in (303, 409), response.text[:300]
        return "won" if response.status_code == 303 else "lost"

    def candidate(token):
        def go():
            with requests.Session() as own:
                page = own.get(f"{base}/c/{token}", timeout=60)
                assert page.status_code == 200, page.text[:300]
                response = own.post(
                    f"{base}/c/{token}",
                    timeout=60,
                    data={"csrf_token": CSRF_RE.search(page.text).group(1), "slot": start},
                )
            assert response.status_code in (200, 409), response.text[:300]
            return "won" if response.status_code == 200 else "lost"

        return go

    return api, web, [candidate(t) for t in candidate_tokens]


def run_together(calls) -> list[str]:
    barrier = threading.Barrier(len(calls))

    def go(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(go, calls))


def test_web_api_and_candidate_links_racing_for_one_slot_give_one_interview(
    app, session, sandbox, org, recruiter, panel_links, live_server
):
    panel, slot, api_token, tokens = race_world(app, session, sandbox, org, recruiter, panel_links)
    browser = web_login(live_server.url, recruiter.email)
    api, web, candidates = racers(live_server.url, panel, slot, api_token, tokens, browser)
    outcomes = run_together([api, api, web, web, *candidates])
    assert sorted(outcomes) == ["lost"] * 6 + ["won"], outcomes
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Interview)) == 1
    events = sandbox.call("GET", "/events", params={"email": recruiter.email})["events"]
    assert len([e for e in events if (e.get("event_id") or "").startswith("rdv-")]) == 1
    # One more try, once it is all over: the existing answer, with fresh slots not offering it.
    sandbox.call("DELETE", "/faults")
    late = web_page_after_losing(live_server.url, browser, panel, slot)
    assert "That time was just taken" in late
    offered = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', late)
    assert offered and slot.start.isoformat() not in offered


def post_schedule_form(session, base: str, panel, slot, *, title: str):
    """Book ``slot`` for ``panel`` through the schedule page's form, as a recruiter would."""
    qs = "&".join(f"panel={link.id}" for link in panel)
    page = session.get(f"{base}/schedule/?{qs}&start_date={slot.start.date()}", timeout=60)
    return session.post(
        base + "/schedule/",
        timeout=60,
        allow_redirects=False,
        data={
            "csrf_token": CSRF_RE.search(page.text).group(1),
            "panel": [str(link.id) for link in panel],
            "duration": "60",
            "days": "5",
            "start_date": slot.start.date().isoformat(),
            "required": "all",
            "buffer_before": "0",
            "buffer_after": "0",
            "tzid": "Europe/London",
            "slot": slot.start.isoformat(),
            "candidate_name": "W",
            "candidate_email": "w@gmail.example",
            "title": title,
            "notes": "",
        },
    )


def web_page_after_losing(base: str, browser, panel, slot) -> str:
    response = post_schedule_form(browser, base, panel, slot, title="Late")
    assert response.status_code == 409
    return response.text
