"""Candidate self-scheduling links: sealed, single-use, expiring, revocable, rate-limited,
no Referrer, never in logs; booking with a race for the last slot."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading

import pytest
from sqlalchemy import select

from models import Interview, InterviewStatus, Role, SchedulingLink, SchedulingPreference, utcnow
from tests.factories import make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, make_panel, managed, next_weekday
from tests.webapp.test_scheduling import actor_of, sealer_of
from webapp import deps
from webapp.services import candidate_booking, candidate_links
from webapp.services.availability import model
from webapp.services.errors import Forbidden, Invalid, LinkUnusable, SlotTaken
from webapp.services.scheduling import booking, rescheduling

NAME, EMAIL = "Jamie Candidate", "jamie.candidate@gmail.example"


def new_link(app, session, recruiter, panel, **kw):
    values = dict(
        panel_link_ids=[link.id for _u, link in panel],
        duration=60,
        start_date=next_weekday(1),
        days=3,
        expires_days=7,
        candidate_name=NAME,
        candidate_email=EMAIL,
        candidate_tzid="America/New_York",
        title="Interview with Northwind (cand-title-4411)",
    )
    values.update(kw)
    return candidate_links.create_link(session, sealer_of(app), actor_of(recruiter), **values)


def slots_on_page(html: str) -> list[str]:
    return re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', html)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_token_is_long_sealed_and_only_its_hash_is_stored(
    app, session, sandbox, recruiter, panel
):
    link, token = new_link(app, session, recruiter, panel)
    assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    row = session.get(SchedulingLink, link.id)
    import hashlib

    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    engine = deps.database.of(app).engine
    from models import Base

    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for r in conn.execute(select(table)):
                blob = repr(tuple(r))
                assert (
                    token not in blob
                    and EMAIL not in blob
                    and NAME not in blob
                    and "cand-title-4411" not in blob
                )
    opened = candidate_booking.open_link(session, sealer_of(app), token)
    assert (opened.candidate_name, opened.candidate_email) == (NAME, EMAIL)
    # Two changed characters (never equal to the token itself: "AA" was when it ended so).
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for forged in (altered, token + "x", "x" * 50, ""):
        with pytest.raises(LinkUnusable):
            candidate_booking.open_link(session, sealer_of(app), forged)


def test_only_recruiters_with_a_calendar_create_links_and_input_is_checked(
    app, session, sandbox, org, recruiter, panel
):
    coordinator = make_user(session, org, Role.COORDINATOR)
    with pytest.raises(Forbidden):
        new_link(app, session, coordinator, panel)
    for bad in (
        dict(candidate_email="nope"),
        dict(duration=11),
        dict(days=99),
        dict(expires_days=0),
        dict(candidate_tzid="Nowhere/Land"),
        dict(title=" "),
        dict(start_date=dt.date.today() - dt.timedelta(days=3)),
    ):
        with pytest.raises(Invalid):
            new_link(app, session, recruiter, panel, **bad)
    assert session.scalar(select(SchedulingLink)) is None


def test_candidate_books_in_their_time_zone_and_the_link_works_once(
    app, client, session, sandbox, recruiter, panel
):
    link, token = new_link(app, session, recruiter, panel)
    response = client.get(f"/c/{token}")
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.get_data(as_text=True)
    assert "America/New_York" in html and f"Hello {NAME}" in html
    slots = slots_on_page(html)
    assert slots
    first = dt.datetime.fromisoformat(slots[0])
    local = first.astimezone(model.zone("America/New_York")).strftime("%H:%M")
    assert f'>{local}<span class="visually-hidden"> to ' in html
    # The candidate changes the zone.
    berlin = client.get(f"/c/{token}?tz=Europe/Berlin").get_data(as_text=True)
    assert first.astimezone(model.zone("Europe/Berlin")).strftime("%H:%M") in berlin

    done = client.post(
        f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots[0], "tz": "America/New_York"}
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Your interview is booked" in done.get_data(as_text=True)
    assert done.headers["Referrer-Policy"] == "no-referrer"
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED
    assert interview.scheduling_link_id == link.id and interview.created_by_id == recruiter.id
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert EMAIL in {a.email for a in ev.attendees} and ev.start == first
    # Single use: opened again, the link shows what it booked (read from the calendar), in the
    # candidate's zone or the one they pick, and books nothing more.
    when = first.astimezone(model.zone("America/New_York")).strftime("%A %d %B %Y, %H:%M")
    again = client.get(f"/c/{token}")
    shown = again.get_data(as_text=True)
    assert again.status_code == 200 and "Your interview is booked" in shown
    assert when in shown and "cannot book another" in shown and "Book this time" not in shown
    berlin = client.get(f"/c/{token}?tz=Europe/Berlin").get_data(as_text=True)
    assert first.astimezone(model.zone("Europe/Berlin")).strftime("%H:%M") in berlin
    repost = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots[1]})
    assert repost.status_code == 200 and when in repost.get_data(as_text=True)
    assert session.scalar(select(Interview).where(Interview.id != interview.id)) is None
    # Moved by the recruiter, the link shows the new time; cancelled, it says so.
    later = dt.datetime.fromisoformat(slots[-1])
    moved, payload = rescheduling.reschedule_interview(
        session,
        deps.broker.of(app),
        deps.cipher.of(app),
        sealer_of(app),
        actor_of(recruiter),
        interview.uid,
        later,
        jobs=deps.jobs.of(app),  # the write job runs at once
    )
    new_when = later.astimezone(model.zone("America/New_York")).strftime("%A %d %B %Y, %H:%M")
    assert new_when in client.get(f"/c/{token}").get_data(as_text=True)
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=HeldJobs())
    cancelled = client.get(f"/c/{token}").get_data(as_text=True)
    assert "This interview was cancelled" in cancelled and new_when not in cancelled


def test_a_double_click_on_book_shows_the_booking(
    app, client, session, sandbox, recruiter, panel, live_server
):
    """Two POSTs of the same form at once (a double-click): one books, and the other shows the
    booking instead of refusing the link; one interview, one event."""
    import requests

    _link, token = new_link(app, session, recruiter, panel)
    web = requests.Session()
    page = web.get(f"{live_server.url}/c/{token}", timeout=10)
    slot = slots_on_page(page.text)[0]
    form = {"csrf_token": csrf(page.text), "slot": slot, "tz": "America/New_York"}
    barrier = threading.Barrier(2)
    answers = []

    def click():
        barrier.wait()
        answers.append(web.post(f"{live_server.url}/c/{token}", data=form, timeout=30))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(30)
    when = (
        dt.datetime.fromisoformat(slot)
        .astimezone(model.zone("America/New_York"))
        .strftime("%A %d %B %Y, %H:%M")
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text[-400:] for a in answers]
    for answer in answers:
        assert "Your interview is booked" in answer.text and when in answer.text
        assert "cannot be used" not in answer.text
    session.expire_all()
    [interview] = session.scalars(select(Interview))
    assert (
        len(
            [
                e
                for e in managed(app, session, interview.host_link)
                if e.event_id.startswith(f"rdv-{interview.uid}")
            ]
        )
        == 1
    )


def test_a_window_opening_after_the_link_expires_is_refused(
    app, session, sandbox, recruiter, panel
):
    with pytest.raises(Invalid, match="expire") as info:
        new_link(app, session, recruiter, panel, start_date=next_weekday(10), expires_days=2)
    assert info.value.field == "expires_days"
    assert session.scalar(select(SchedulingLink)) is None
    link, _token = new_link(
        app, session, recruiter, panel, start_date=next_weekday(10), expires_days=20
    )
    assert link.window_start < link.expires_at


def test_expired_revoked_and_unknown_links_are_refused(
    app, client, auth, session, sandbox, recruiter, panel
):
    expired, expired_token = new_link(app, session, recruiter, panel)
    expired.expires_at = utcnow() - dt.timedelta(minutes=1)
    session.commit()
    assert client.get(f"/c/{expired_token}").status_code == 410
    revoked, revoked_token = new_link(app, session, recruiter, panel)
    auth.login(recruiter.email)
    assert (
        auth.post(f"/schedule/links/{revoked.id}/revoke", form_page="/schedule/links/").status_code
        == 302
    )
    assert "withdrawn" in client.get(f"/c/{revoked_token}").get_data(as_text=True)
    assert client.get("/c/" + "A" * 60).status_code == 404


def test_two_candidates_racing_for_the_last_slot(app, client, session, sandbox, org, recruiter):
    # A one-person panel whose working day holds exactly one 60-minute slot.
    user, link = make_panel(app, session, sandbox, org, 1)[0]
    for who in (recruiter, user):
        session.add(
            SchedulingPreference(
                organisation_id=org.id,
                user_id=who.id,
                start_minute=0,
                end_minute=24 * 60,
                weekdays="1234567",
            )
        )
    session.commit()
    panel = [(user, link)]
    first_link, token_a = new_link(app, session, recruiter, panel, days=2)
    second_link, token_b = new_link(app, session, recruiter, panel, days=2)
    opened = candidate_booking.open_link(session, sealer_of(app), token_a)
    slots = candidate_booking.slots(session, deps.broker.of(app), opened)
    target = slots[0].start
    results = {}
    barrier = threading.Barrier(2)

    def attempt(name, token):
        with deps.database.of(app).sessions() as own:
            barrier.wait()
            try:
                results[name] = candidate_booking.book(
                    own,
                    deps.broker.of(app),
                    deps.cipher.of(app),
                    sealer_of(app),
                    token,
                    target,
                    jobs=HeldJobs(),
                )
            except SlotTaken as exc:
                results[name] = exc

    threads = [
        threading.Thread(target=attempt, args=("a", token_a)),
        threading.Thread(target=attempt, args=("b", token_b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(type(r).__name__ for r in results.values())
    assert outcomes == ["Booking", "SlotTaken"], results
    session.expire_all()
    assert len(list(session.scalars(select(Interview)))) == 1
    used = [link for link in session.scalars(select(SchedulingLink)) if link.used_at is not None]
    assert len(used) == 1  # the loser's link still works for another time
    # The loser sees the message and fresh slots without the taken one.
    loser_token = token_b if isinstance(results["b"], SlotTaken) else token_a
    html = client.get(f"/c/{loser_token}").get_data(as_text=True)
    response = client.post(
        f"/c/{loser_token}", data={"csrf_token": csrf(html), "slot": target.isoformat()}
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "That time was just taken" in page
    assert target.isoformat() not in slots_on_page(page) and slots_on_page(page)


def test_the_token_never_reaches_the_logs(
    app, client, session, sandbox, recruiter, panel, live_server, caplog
):
    import requests

    _link, token = new_link(app, session, recruiter, panel)
    with caplog.at_level(logging.INFO):
        assert requests.get(f"{live_server.url}/c/{token}", timeout=10).status_code == 200
        client.get(f"/c/{token}")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/c/[redacted]" in text  # the request line was logged, redacted
    assert token not in text and token[:20] not in text


def test_the_candidate_pages_are_rate_limited(app_config, sandbox, session):
    from webapp import create_app

    app_config["RATELIMIT_ENABLED"] = True
    application = create_app(app_config)
    client = application.test_client()
    statuses = [client.get("/c/" + "B" * 60).status_code for _ in range(35)]
    assert statuses[0] == 404 and 429 in statuses


def test_an_icloud_host_sends_a_smart_invite_with_ics(app, client, session, sandbox, org):
    host = make_user(
        session, org, Role.RECRUITER, email="quinn.baker@icloud.example", name="Quinn Baker"
    )
    link = link_calendar(app, session, sandbox, host)
    assert link.provider == "apple"
    _l, token = new_link(app, session, host, [(host, link)])
    html = client.get(f"/c/{token}").get_data(as_text=True)
    slot = slots_on_page(html)[0]
    done = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slot})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "download the invitation (.ics)" in page
    assert "BEGIN%3AVCALENDAR" in page or "BEGIN:VCALENDAR" in page
    interview = session.scalar(select(Interview))
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert EMAIL not in {a.email for a in ev.attendees}  # invited by Smart Invite instead


def test_the_smart_invite_is_the_documented_request_and_the_answer_comes_back(
    app, client, session, sandbox, org, live_server
):
    """The invitation goes out as the current documentation sends it (method "request", the
    organizer's email, a callback_url), and the candidate's answer, POSTed signed to that
    callback, reaches the interview; forged or misdirected answers change nothing."""
    import requests

    from models import AuditEntry
    from tests.conftest import SANDBOX_CLIENT_SECRET

    app.config["PUBLIC_BASE_URL"] = live_server.url
    app.config["SMART_INVITE_ORGANIZER_EMAIL"] = "invitations@northwind.example"
    host = make_user(
        session, org, Role.RECRUITER, email="quinn.baker@icloud.example", name="Quinn Baker"
    )
    link = link_calendar(app, session, sandbox, host)
    _l, token = new_link(app, session, host, [(host, link)])
    html = client.get(f"/c/{token}").get_data(as_text=True)
    client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots_on_page(html)[0]})
    interview = session.scalar(select(Interview))
    invite_id = f"rdv-{interview.uid}"
    held = requests.get(
        sandbox.url + "/v1/smart_invites",
        timeout=5,
        params={"smart_invite_id": invite_id, "recipient_email": EMAIL},
        headers={"Authorization": f"Bearer {SANDBOX_CLIENT_SECRET}"},
    ).json()
    callback = held["callback_url"]
    assert callback.startswith(live_server.url + "/hooks/cronofy/invite/")
    assert len(callback.rsplit("/", 1)[1]) > 20  # the interview id travels sealed
    ics = held["attachments"]["icalendar"].replace("\r\n ", "")
    assert "ORGANIZER;CN=Quinn Baker:mailto:invitations@northwind.example" in ics

    sandbox.call(
        "POST", f"/smart_invites/{invite_id}/reply", json={"email": EMAIL, "status": "declined"}
    )
    assert [d["ok"] for d in sandbox.deliver() if d.get("url") == callback] == [True]
    session.expire_all()
    interview = session.get(Interview, interview.id)
    assert interview.candidate_reply == "declined" and interview.needs_notice
    replied = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "interview.candidate_replied")
    )
    assert replied.detail == {"reply": "declined"} and replied.target_id == str(interview.id)

    path = "/hooks/cronofy/invite/" + callback.rsplit("/", 1)[1]
    import base64
    import hashlib
    import hmac
    import json

    def post(url, body, secret=SANDBOX_CLIENT_SECRET, signed=True):
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["Cronofy-HMAC-SHA256"] = base64.b64encode(
                hmac.new(secret.encode(), raw, hashlib.sha256).digest()
            ).decode()
        return app.test_client().post(url, data=raw, headers=headers).status_code

    accepted = {
        "notification": {"type": "smart_invite"},
        "smart_invite": {
            "smart_invite_id": invite_id,
            "callback_url": callback,
            "recipient": {"email": EMAIL, "status": "accepted"},
        },
    }
    assert post(path, accepted, signed=False) == 401
    assert post(path, accepted, secret="another-secret") == 401
    other = dict(accepted, smart_invite={**accepted["smart_invite"], "smart_invite_id": "rdv-x"})
    assert post(path, other) == 401  # signed, but not this interview's invitation
    forged_ref = "/hooks/cronofy/invite/" + deps.sealer.of(app).seal("push", "1")
    assert post(forged_ref, accepted) == 404
    session.expire_all()
    assert session.get(Interview, interview.id).candidate_reply == "declined"
    assert post(path, accepted) == 200  # the genuine next answer
    session.expire_all()
    assert session.get(Interview, interview.id).candidate_reply == "accepted"
    recruiter_client = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(recruiter_client).login(host.email)
    page = recruiter_client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert "Candidate&#39;s invitation" in page or "Candidate's invitation" in page
    assert ">Accepted</span>" in page


def test_old_links_are_purged_and_booked_interviews_stay(
    app, client, session, sandbox, recruiter, panel
):
    used, token = new_link(app, session, recruiter, panel)
    html = client.get(f"/c/{token}").get_data(as_text=True)
    client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots_on_page(html)[0]})
    fresh, _ = new_link(app, session, recruiter, panel)
    assert candidate_links.purge(session) == 0
    later = utcnow() + candidate_links.PURGE_AFTER + dt.timedelta(days=1)
    assert candidate_links.purge(session, now=later) == 1  # the used one; the open one expires
    session.expire_all()
    assert [link.id for link in session.scalars(select(SchedulingLink))] == [fresh.id]
    interview = session.scalar(select(Interview))
    assert interview.status is InterviewStatus.SCHEDULED and interview.scheduling_link_id is None
