"""A self-scheduling link that offers an interview loop, against the sandbox aggregator and a real
SMTP server (aiosmtpd): the candidate sees start times with the loop's itinerary (one sequenced
availability call), books every session or none through a single-use link, gets ONE itinerary
(.ics with a VEVENT per session, each with its own interview's UID), and moves or cancels the
loop (or one session) where the link allows, before the cut-off measured from the first session;
the recruiter's moves and cancellations send the same one itinerary / cancellation notice."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import logging
import re
from email import policy

import pytest
from icalendar import Calendar
from sqlalchemy import select

from models import AuditEntry, InterviewLoop, InterviewStatus, LoopState, SchedulingLink
from tests.webapp.loop_support import CANDIDATE, CANDIDATE_EMAIL, compose_loop, plan_for
from tests.webapp.loop_support import session_interviews as interviews_of
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services.errors import ChangeRefused, Invalid, NotFound
from webapp.services.loops import availability, booking
from webapp.services.loops import candidate_changes as loops_changes
from webapp.services.loops import links as loop_links

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

OPTION_RE = re.compile(r'name="option" id="[^"]+" value="([^"]+)"')
TITLES = ["Intro", "Coding", "Design", "Values"]


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def messages(inbox):
    return [email.message_from_bytes(e.content, policy=policy.default) for e in inbox.envelopes]


def parts(message):
    [alternative, attachment] = message.get_payload()
    text, html = (p.get_content() for p in alternative.get_payload())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "itinerary.ics"
    return text, html, attachment


def vevents(ics_text):
    calendar = Calendar.from_ical(ics_text)
    return calendar, list(calendar.walk("VEVENT"))


@pytest.fixture
def four(app, session, sandbox, org, recruiter, panel):
    """A four-session loop over two colleagues (both on the last), the candidate in New York."""
    (_a, la), (_b, lb) = panel
    plan = plan_for([[la], [lb], [la], [la, lb]], titles=TITLES, candidate_tzid="America/New_York")
    return compose_loop(app, session, recruiter, plan)


def offer(app, session, recruiter, loop, **kw):
    return loop_links.offer_loop(
        session, deps.sealer.of(app), actor_of(recruiter), loop.uid, expires_days=7, **kw
    )


def book_page(client, token):
    html = client.get(f"/c/{token}").get_data(as_text=True)
    options = OPTION_RE.findall(html)
    assert options, html
    return html, options


def book_through(client, token, index=0):
    html, options = book_page(client, token)
    done = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": options[index]})
    assert done.status_code == 303, done.get_data(as_text=True)
    return [dt.datetime.fromisoformat(v) for v in options[index].split(",")]


def no_address_in_trail_or_logs(session, caplog, *secrets):
    trail = " ".join(
        repr((e.detail, e.target_label, e.actor_label)) for e in session.scalars(select(AuditEntry))
    )
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    for value in secrets:
        assert value not in trail and value not in logged


def test_the_candidate_books_a_loop_and_gets_one_itinerary(
    smtp, app, client, session, sandbox, recruiter, panel, four, caplog
):
    caplog.set_level(logging.DEBUG)
    link, token = offer(app, session, recruiter, four, candidate_may_change=True)
    assert link.loop_id == four.id and link.state == "open"
    sandbox.call("DELETE", "/stats")
    html, options = book_page(client, token)
    requests = sandbox.stats()["requests"]
    assert requests.get("POST /v1/sequenced_availability") == 1  # the whole page: one call
    assert not requests.get("POST /v1/availability")
    for title in TITLES:
        assert title in html
    (a, _la), (b, _lb) = panel
    assert f"with {a.name.split()[0]}" in html and b.name not in html  # first names only
    assert "America/New_York" in html  # the candidate's zone, changeable
    assert 'data-detected="yes"' in html

    starts = book_through(client, token)
    session.expire_all()
    assert session.get(SchedulingLink, link.id).used_at is not None
    loop = session.get(InterviewLoop, four.id)
    assert loop.state is LoopState.BOOKED
    booked = interviews_of(session, loop)
    assert len(booked) == 4 and all(i.status is InterviewStatus.SCHEDULED for i in booked)

    page = client.get(f"/c/{token}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Your interviews are booked" in text
    assert text.count('class="add-links"') == 4 and "Download the itinerary (.ics)" in text
    assert "Reschedule all sessions" in text

    [message] = messages(smtp)  # ONE email for the loop
    assert smtp.envelopes[0].rcpt_tos == [CANDIDATE_EMAIL]
    assert message["Subject"] == "Interviews booked: Onsite"
    body, html_body, attachment = parts(message)
    assert CANDIDATE in body and all(t in body for t in TITLES)
    assert "calendar.google.com" in html_body  # add-to-calendar links
    assert "America/New_York" in body
    assert "/c/" in body  # the way back to change it (the link allows changes)
    assert attachment.get_param("method") == "PUBLISH"
    calendar, events = vevents(attachment.get_content())
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert [str(e["UID"]) for e in events] == [f"interview-{i.uid}@localhost" for i in booked]
    assert [e.decoded("DTSTART") for e in events] == starts
    assert all(int(e["SEQUENCE"]) == 0 for e in events)

    download = client.get(f"/c/{token}/interview.ics")
    assert download.status_code == 200 and download.mimetype == "text/calendar"
    _c, again = vevents(download.get_data())
    assert [str(e["UID"]) for e in again] == [str(e["UID"]) for e in events]
    assert all(int(e["SEQUENCE"]) > 0 for e in again)

    sent = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.sent")).all()
    assert [e.detail["kind"] for e in sent] == ["loop_booked"]
    assert sent[0].detail["recipient_hash"] == hashlib.sha256(CANDIDATE_EMAIL.encode()).hexdigest()
    no_address_in_trail_or_logs(session, caplog, CANDIDATE_EMAIL, token)


def test_the_link_works_once_and_bad_input_changes_nothing(
    app, client, session, sandbox, recruiter, four
):
    link, token = offer(app, session, recruiter, four)
    html, options = book_page(client, token)
    for bad in ("", "not-a-time", options[0].split(",")[0], "2030-01-01T09:00:00," * 3 + "x"):
        response = client.post(
            f"/c/{token}", data={"csrf_token": csrf(html), "option": bad, "tz": "Asia/Tokyo"}
        )
        assert response.status_code == 400, bad
        page = response.get_data(as_text=True)
        assert "Pick one of the start times offered." in page
        assert "<option selected>Asia/Tokyo</option>" in page  # what was entered is kept
    # An itinerary that was never offered (an hour later than the first) is refused too.
    shifted = ",".join(
        (dt.datetime.fromisoformat(v) + dt.timedelta(minutes=7)).isoformat()
        for v in options[0].split(",")
    )
    response = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": shifted})
    assert response.status_code in (400, 409)
    session.expire_all()
    assert session.get(SchedulingLink, link.id).used_at is None
    assert session.get(InterviewLoop, four.id).state is LoopState.DRAFT

    book_through(client, token)
    # Used: a second submit (a double click, another tab) shows what was booked, books nothing.
    again = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": options[-1]})
    assert again.status_code == 200 and "Your interviews are booked" in again.get_data(as_text=True)
    assert len(interviews_of(session, four)) == 4


def test_a_loop_booked_by_the_recruiter_first_is_no_longer_offered(
    app, client, session, sandbox, recruiter, four
):
    _link, token = offer(app, session, recruiter, four)
    html, options = book_page(client, token)
    broker, _cipher = broker_cipher(app)
    option = availability.loop_times(
        session, broker, deps.sealer.of(app), actor_of(recruiter), four
    ).options[0]
    booking.book_loop(
        session,
        broker,
        deps.sealer.of(app),
        actor_of(recruiter),
        four.uid,
        [s.start for s in option.stops],
        jobs=deps.jobs.of(app),
    )
    response = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": options[-1]})
    assert response.status_code == 410
    assert "already been arranged" in response.get_data(as_text=True)
    assert client.get(f"/c/{token}").status_code == 410


def test_two_loops_sharing_people_one_wins(app, client, session, sandbox, recruiter, panel, four):
    """The candidate picks a time that another loop (over the same people) took meanwhile: told
    it was taken, nothing stored, the link still open."""
    (_a, la), (_b, lb) = panel
    _link, token = offer(app, session, recruiter, four)
    html, options = book_page(client, token)
    other = compose_loop(
        app,
        session,
        recruiter,
        plan_for([[la], [lb], [la], [la, lb]], titles=TITLES, title="Other onsite"),
    )
    broker, _cipher = broker_cipher(app)
    starts = [dt.datetime.fromisoformat(v) for v in options[0].split(",")]
    booking.book_loop(
        session,
        broker,
        deps.sealer.of(app),
        actor_of(recruiter),
        other.uid,
        starts,
        jobs=deps.jobs.of(app),
    )
    response = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": options[0]})
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(
        select(SchedulingLink).where(SchedulingLink.loop_id == four.id)
    ).state == ("open")
    assert session.get(InterviewLoop, four.id).state is LoopState.DRAFT
    assert options[0] not in OPTION_RE.findall(client.get(f"/c/{token}").get_data(as_text=True))


def test_the_candidate_moves_the_loop_and_gets_the_updated_itinerary(
    smtp, app, client, session, sandbox, recruiter, four, caplog
):
    caplog.set_level(logging.DEBUG)
    _link, token = offer(app, session, recruiter, four, candidate_may_change=True)
    first = book_through(client, token)
    sandbox.deliver()
    page = client.get(f"/c/{token}/reschedule")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    options = OPTION_RE.findall(html)
    assert options and ",".join(s.isoformat() for s in first) not in options
    target = options[-1]
    moved = client.post(f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "option": target})
    assert moved.status_code == 303, moved.get_data(as_text=True)
    assert "done=moved" in moved.headers["Location"]
    session.expire_all()
    booked = interviews_of(session, four)
    assert all(i.needs_notice for i in booked)  # the recruiter sees the candidate moved it
    [booked_mail, moved_mail] = messages(smtp)
    assert moved_mail["Subject"] == "Interviews moved: Onsite"
    _t, _h, attachment = parts(moved_mail)
    _c, before = vevents(parts(booked_mail)[2].get_content())
    _c, after = vevents(attachment.get_content())
    assert [str(e["UID"]) for e in after] == [str(e["UID"]) for e in before]
    assert [e.decoded("DTSTART") for e in after] == [
        dt.datetime.fromisoformat(v) for v in target.split(",")
    ]
    assert all(int(e["SEQUENCE"]) > int(b["SEQUENCE"]) for e, b in zip(after, before, strict=True))
    assert "Your interviews were moved" in client.get(moved.headers["Location"]).get_data(
        as_text=True
    )
    no_address_in_trail_or_logs(session, caplog, CANDIDATE_EMAIL, token)


def test_a_candidate_refused_for_a_pool_limit_is_not_told_whose_limit(
    app, client, session, sandbox, recruiter, four, monkeypatch
):
    """A move that would take a pool-picked interviewer over their limit is refused (the
    scheduler's message names them and their load); the candidate sees only that the times are
    gone, and nothing changes."""
    from webapp.services.pools import limits

    _link, token = offer(app, session, recruiter, four, candidate_may_change=True)
    first = book_through(client, token)
    sandbox.deliver()

    def over(*_a, **_k):
        raise limits.OverLimit("Sam Pool has reached the limit of 1 interview a day.")

    monkeypatch.setattr(limits, "check_moves", over)
    html = client.get(f"/c/{token}/reschedule").get_data(as_text=True)
    target = OPTION_RE.findall(html)[-1]
    refused = client.post(
        f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "option": target}
    )
    page = refused.get_data(as_text=True)
    assert 400 <= refused.status_code < 500, page
    assert "no longer available" in page and "Sam Pool" not in page and "limit" not in page
    session.expire_all()
    assert all(i.status is InterviewStatus.SCHEDULED for i in interviews_of(session, four))
    assert not session.scalars(
        select(AuditEntry).where(AuditEntry.action == "loop.rescheduled")
    ).all()
    assert len(first) == 4


def test_the_candidate_cancels_one_session_then_the_rest(
    smtp, app, client, session, sandbox, recruiter, four
):
    _link, token = offer(app, session, recruiter, four, candidate_may_change=True)
    book_through(client, token)
    sandbox.deliver()
    confirm = client.get(f"/c/{token}/cancel?session=2")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Cancel this session?" in html and "Coding" in html
    bad = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(html), "session": "9"})
    assert bad.status_code == 404
    done = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(html), "session": "2"})
    assert done.status_code == 303, done.get_data(as_text=True)
    session.expire_all()
    booked = interviews_of(session, four)
    assert [i.status.live for i in booked] == [True, False, True, True]
    [_booked, notice] = messages(smtp)
    assert notice["Subject"] == "Interview cancelled: Onsite"
    text, _html, attachment = parts(notice)
    assert "Still on" in text and "Intro" in text
    assert attachment.get_param("method") == "CANCEL"
    calendar, events = vevents(attachment.get_content())
    assert str(calendar["METHOD"]) == "CANCEL"
    assert [str(e["UID"]) for e in events] == [f"interview-{booked[1].uid}@localhost"]
    assert str(events[0]["STATUS"]) == "CANCELLED" and "ORGANIZER" in events[0]
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Cancelled" in page and "Reschedule all sessions" not in page

    html = client.get(f"/c/{token}/cancel").get_data(as_text=True)
    done = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(html)})
    assert done.status_code == 303
    session.expire_all()
    assert session.get(InterviewLoop, four.id).state is LoopState.CANCELLED
    [_b, _one, rest] = messages(smtp)
    _t, _h, attachment = parts(rest)
    _c, events = vevents(attachment.get_content())
    assert sorted(str(e["UID"]) for e in events) == sorted(
        f"interview-{i.uid}@localhost" for i in (booked[0], booked[2], booked[3])
    )
    assert "cancelled" in client.get(f"/c/{token}").get_data(as_text=True)
    assert client.get(f"/c/{token}/interview.ics").status_code == 410


def test_changes_follow_the_link_and_the_cut_off_before_the_first_session(
    app, client, session, sandbox, recruiter, four
):
    _link, token = offer(app, session, recruiter, four, change_cutoff_hours=2)
    form, _options = book_page(client, token)
    starts = book_through(client, token)
    sandbox.deliver()
    # This link does not allow changes: refused, audited, nothing changed.
    assert client.get(f"/c/{token}/reschedule").status_code == 403
    html = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Changes through this link are not possible" in html
    refused = client.post(f"/c/{token}/cancel", data={"csrf_token": csrf(form)})
    assert refused.status_code == 403
    session.execute(
        SchedulingLink.__table__.update()
        .where(SchedulingLink.loop_id == four.id)
        .values(candidate_may_change=True)
    )
    session.commit()
    session.expire_all()
    broker, cipher = broker_cipher(app)
    sealer = deps.sealer.of(app)
    change = loops_changes.change_of(session, broker, cipher, sealer, token)
    assert change.allowed and change.deadline == starts[0] - dt.timedelta(hours=2)
    late = starts[0] - dt.timedelta(hours=1)
    with pytest.raises(ChangeRefused, match="2 hours before the first session"):
        loops_changes.cancel(
            session, broker, cipher, sealer, token, jobs=deps.jobs.of(app), now=late
        )
    refused = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "loop.candidate_change_refused")
    ).all()
    assert [e.detail["reason"] for e in refused] == ["not allowed on the link", "after the cut-off"]
    assert all(i.status.live for i in interviews_of(session, four))


def test_the_recruiter_moving_or_cancelling_sends_the_candidate_one_email(
    smtp, app, client, auth, session, sandbox, recruiter, four
):
    _link, token = offer(app, session, recruiter, four)
    book_through(client, token)
    sandbox.deliver()
    auth.login(recruiter.email)
    url = f"/schedule/loops/{four.uid}"
    html = client.get(f"{url}/reschedule").get_data(as_text=True)
    option = OPTION_RE.findall(html)[-1]
    moved = auth.post(f"{url}/reschedule", {"option": option}, form_page=f"{url}/reschedule")
    assert moved.status_code == 303, moved.get_data(as_text=True)
    [_booked, notice] = messages(smtp)
    assert notice["Subject"] == "Interviews moved: Onsite"
    _c, events = vevents(parts(notice)[2].get_content())
    assert len(events) == 4
    sandbox.deliver()
    session.expire_all()
    cancelled = auth.post(f"{url}/cancel", {}, form_page=url)
    assert cancelled.status_code == 303
    [_b, _m, gone] = messages(smtp)
    assert gone["Subject"] == "Interviews cancelled: Onsite"
    calendar, events = vevents(parts(gone)[2].get_content())
    assert str(calendar["METHOD"]) == "CANCEL" and len(events) == 4


def test_offering_a_loop_refuses_bad_input_and_other_organisations(
    app, client, auth, session, sandbox, recruiter, four
):
    from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour, snapshot

    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    theirs = neighbour.ids["interview_loop"]
    before = snapshot(session, neighbour.org.id)
    with pytest.raises(NotFound):
        offer(
            app,
            session,
            recruiter,
            session.scalar(select(InterviewLoop).where(InterviewLoop.uid == theirs)),
        )
    with pytest.raises(Invalid, match="expire"):
        loop_links.offer_loop(
            session, deps.sealer.of(app), actor_of(recruiter), four.uid, expires_days=99
        )
    auth.login(recruiter.email)
    page = client.get("/schedule/links/").get_data(as_text=True)
    assert f'value="{four.uid}"' in page and theirs not in page
    bad = auth.post(
        "/schedule/links/loop",
        {"loop": four.uid, "loop_expires_days": "99", "loop_change_cutoff_hours": "5"},
        form_page="/schedule/links/",
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "expire after 1 to 30 days" in text and 'value="99"' in text and 'value="5"' in text
    assert (
        auth.post(
            "/schedule/links/loop", {"loop": theirs}, form_page="/schedule/links/"
        ).status_code
        == 404
    )
    assert session.scalar(select(SchedulingLink).where(SchedulingLink.loop_id == four.id)) is None
    made = auth.post(
        "/schedule/links/loop",
        {"loop": four.uid, "loop_expires_days": "5", "loop_candidate_may_change": "on"},
        form_page="/schedule/links/",
    )
    assert made.status_code == 201
    link = session.scalar(select(SchedulingLink).where(SchedulingLink.loop_id == four.id))
    assert link.candidate_may_change and link.organisation_id == four.organisation_id
    # One open link per loop.
    again = auth.post("/schedule/links/loop", {"loop": four.uid}, form_page="/schedule/links/")
    assert again.status_code == 400 and "already has an open link" in again.get_data(as_text=True)
    assert snapshot(session, neighbour.org.id) == before
    auth.logout()
    auth.login(recruiter.email, NEIGHBOUR_PASSWORD)
    assert four.uid not in client.get("/schedule/links/").get_data(as_text=True)


def test_the_candidate_moves_one_session_between_the_others(
    smtp, app, client, session, sandbox, recruiter, panel
):
    """Session 3 moves to another time between sessions 2 and 4: the others stay, the candidate
    gets the whole itinerary again with the same UIDs; a time overlapping session 2, or one
    leaving a break longer than the loop's longest (two hours here), is refused."""
    (_a, la), (_b, lb) = panel
    four = compose_loop(
        app,
        session,
        recruiter,
        plan_for([[la], [lb], [la], [la, lb]], titles=TITLES, max_break=120),
    )
    _link, token = offer(app, session, recruiter, four, candidate_may_change=True)
    starts = book_through(client, token)
    sandbox.deliver()
    page = client.get(f"/c/{token}/reschedule?session=3")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    offered = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', html)
    assert offered, html
    times = [dt.datetime.fromisoformat(v) for v in offered]
    hour = dt.timedelta(minutes=60)
    assert all(starts[1] + hour <= t and t + hour <= starts[3] for t in times)
    assert starts[2] not in times
    clash = (starts[1] + dt.timedelta(minutes=30)).isoformat()
    refused = client.post(
        f"/c/{token}/reschedule",
        data={"csrf_token": csrf(html), "session": "3", "slot": clash, "tz": "Asia/Tokyo"},
    )
    assert refused.status_code == 400
    assert "overlap another session" in refused.get_data(as_text=True), re.findall(
        r"flash-error[^>]*>([^<]*)", refused.get_data(as_text=True)
    )
    # Session 4 later than two hours after session 3 ends: the loop's longest break.
    too_late = starts[2] + hour + dt.timedelta(minutes=150)
    refused = client.post(
        f"/c/{token}/reschedule",
        data={"csrf_token": csrf(html), "session": "4", "slot": too_late.isoformat()},
    )
    assert refused.status_code == 400
    assert "more than 120 minutes between two sessions" in refused.get_data(as_text=True)
    assert (
        client.post(
            f"/c/{token}/reschedule", data={"csrf_token": csrf(html), "session": "3", "slot": "x"}
        ).status_code
        == 400
    )
    assert client.get(f"/c/{token}/reschedule?session=9").status_code == 404
    assert [i.status.live for i in interviews_of(session, four)] == [True] * 4
    target = times[-1]
    moved = client.post(
        f"/c/{token}/reschedule",
        data={"csrf_token": csrf(html), "session": "3", "slot": target.isoformat()},
    )
    assert moved.status_code == 303, moved.get_data(as_text=True)
    assert "done=session_moved" in moved.headers["Location"]
    [_booked, notice] = messages(smtp)
    assert notice["Subject"] == "Interviews moved: Onsite"
    _c, events = vevents(parts(notice)[2].get_content())
    assert [e.decoded("DTSTART") for e in events] == [*starts[:2], target, starts[3]]
    booked = interviews_of(session, four)
    assert [str(e["UID"]) for e in events] == [f"interview-{i.uid}@localhost" for i in booked]


def test_the_candidates_hours_limit_what_the_link_offers(
    app, client, auth, session, sandbox, recruiter, four
):
    """Only itineraries whose every session is between 06:00 and 12:00 in the candidate's zone
    (New York; the interviewers work London hours) are offered, and another is refused."""
    from zoneinfo import ZoneInfo

    broker, _cipher = broker_cipher(app)
    every = availability.loop_times(
        session, broker, deps.sealer.of(app), actor_of(recruiter), four
    ).options
    _link, token = offer(app, session, recruiter, four, candidate_hours=(6 * 60, 12 * 60))
    html, options = book_page(client, token)
    york = ZoneInfo("America/New_York")

    def inside(value: str) -> bool:
        starts = [dt.datetime.fromisoformat(v) for v in value.split(",")]
        ends = [s + dt.timedelta(minutes=60) for s in starts]
        return all(
            dt.time(6) <= s.astimezone(york).time()
            and e.astimezone(york).time() <= dt.time(12)
            and e.astimezone(york).date() == s.astimezone(york).date()
            for s, e in zip(starts, ends, strict=True)
        )

    assert options and all(inside(v) for v in options)
    outside = [o.value for o in every if not inside(o.value)]
    assert outside, "the London mornings start before 06:00 in New York"
    refused = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": outside[0]})
    assert refused.status_code == 400
    with pytest.raises(Invalid, match="end after they start"):
        offer(app, session, recruiter, four, candidate_hours=(12 * 60, 6 * 60))
    auth.login(recruiter.email)
    bad = auth.post(
        "/schedule/links/loop",
        {
            "loop": four.uid,
            "loop_candidate_hours": "on",
            "loop_candidate_start": "10:00",
            "loop_candidate_end": "10:30",
        },
        form_page="/schedule/links/",
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "shorter than a session" in text and 'value="10:30"' in text


def test_a_link_never_opens_another_organisations_loop(
    app, client, session, sandbox, recruiter, four
):
    """Even a link row pointing at a neighbouring organisation's loop (same addresses) opens
    nothing: the loop is looked up inside the link's own organisation."""
    from tests.tenants import seed_neighbour, snapshot

    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    theirs = session.scalar(
        select(InterviewLoop).where(InterviewLoop.uid == neighbour.ids["interview_loop"])
    )
    link, token = offer(app, session, recruiter, four)
    html, _options = book_page(client, token)
    session.execute(
        SchedulingLink.__table__.update()
        .where(SchedulingLink.id == link.id)
        .values(loop_id=theirs.id)
    )
    session.commit()
    before = snapshot(session, neighbour.org.id)
    for path in ("", "/interview.ics", "/reschedule", "/cancel"):
        response = client.get(f"/c/{token}{path}")
        assert response.status_code in (404, 410), path
        page = response.get_data(as_text=True)
        assert neighbour.markers and not any(m in page for m in neighbour.markers), path
    posted = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "option": "x"})
    assert posted.status_code == 404
    assert snapshot(session, neighbour.org.id) == before
