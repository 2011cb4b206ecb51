"""Reschedule and cancel notices to the candidate: they arrive at a real SMTP server (aiosmtpd)
as text + HTML with an .ics of the same UID as the booking's and a higher SEQUENCE (moved) or
METHOD:CANCEL (cancelled), from the web (recruiter, coordinator) and the API; the address is
read from the event before the change or from the link's encrypted details, never stored or
logged; when the candidate cannot be told apart from other guests, nothing is guessed."""

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

from broker.types import Attendee, ManagedEvent
from models import AuditEntry, Interview
from tests.api.conftest import ApiClient, issue_token
from tests.webapp.test_candidate_links import EMAIL, NAME, new_link
from tests.webapp.test_mail import book_through_link
from tests.webapp.test_scheduling import (
    CANDIDATE,
    CANDIDATE_EMAIL,
    TITLE,
    actor_of,
    broker_cipher,
    query_for,
    schedule,
    sealer_of,
)
from webapp.services.availability import free_slots
from webapp.services.scheduling import notices

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SLOT_RE = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')


def messages(inbox):
    return [email.message_from_bytes(e.content, policy=policy.default) for e in inbox.envelopes]


def parts(message):
    """(text, html, ics attachment) of a notice."""
    [alternative, attachment] = message.get_payload()
    text, html = (p.get_content() for p in alternative.get_payload())
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "interview.ics"
    return text, html, attachment


def vevent(attachment):
    calendar = Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    return calendar, event


def no_address_in_trail_or_logs(session, caplog, *addresses):
    trail = " ".join(
        repr((e.detail, e.target_label, e.actor_label)) for e in session.scalars(select(AuditEntry))
    )
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    for address in addresses:
        assert address not in trail and address not in logged


def test_a_recruiter_moves_then_cancels_and_the_candidate_is_told_each_time(
    smtp, app, client, auth, session, sandbox, recruiter, panel, caplog
):
    caplog.set_level(logging.DEBUG)
    recruiter.timezone = "Europe/Berlin"
    session.commit()
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    interview, _payload = schedule(app, session, recruiter, query, slots[0].start)
    assert smtp.envelopes == []  # a recruiter's booking: the calendar invitation tells them

    auth.login(recruiter.email)
    day = slots[-1].start.date()
    form_page = f"/interviews/{interview.uid}/reschedule?start_date={day}"
    page = client.get(form_page).get_data(as_text=True)
    target = dt.datetime.fromisoformat(SLOT_RE.findall(page)[-1])
    moved = auth.post(
        f"/interviews/{interview.uid}/reschedule",
        {"slot": target.isoformat(), "start_date": day.isoformat()},
        form_page=form_page,
    )
    assert moved.status_code == 303, moved.get_data(as_text=True)

    [notice] = messages(smtp)
    assert smtp.envelopes[0].rcpt_tos == [CANDIDATE_EMAIL]
    assert notice["Subject"] == f"Interview moved: {TITLE}"
    text, html, attachment = parts(notice)
    assert CANDIDATE in text and TITLE in text and "moved" in text
    assert "Casey Candidate" in html and "&lt;" not in TITLE
    old = slots[0].start.astimezone(dt.UTC).strftime("%H:%M")
    new = target.astimezone(dt.UTC).strftime("%A %d %B %Y, %H:%M")
    assert new in text and f"It was {slots[0].start:%A %d %B %Y}, {old}" in text
    assert attachment.get_param("method") == "PUBLISH"
    calendar, event = vevent(attachment)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(event["UID"]) == f"interview-{interview.uid}@localhost"
    assert event.decoded("DTSTART") == target
    assert event.decoded("DTEND") == target + dt.timedelta(minutes=60)
    first_sequence = int(event["SEQUENCE"])
    assert first_sequence > 0  # the booking confirmation's file has 0

    sandbox.deliver()
    session.expire_all()
    cancelled = auth.post(
        f"/interviews/{interview.uid}/cancel",
        {"confirm": "yes"},
        form_page=f"/interviews/{interview.uid}/cancel",
    )
    assert cancelled.status_code == 303
    [_moved, notice] = messages(smtp)
    assert notice["Subject"] == f"Interview cancelled: {TITLE}"
    text, html, attachment = parts(notice)
    assert "cancelled" in text and target.astimezone(dt.UTC).strftime("%H:%M") in text
    assert attachment.get_param("method") == "CANCEL"
    calendar, event = vevent(attachment)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == f"interview-{interview.uid}@localhost"
    assert int(event["SEQUENCE"]) >= first_sequence
    assert str(event["ORGANIZER"]) == "mailto:hiring@northwind.example"
    assert event.decoded("DTSTART") == target

    sent = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.sent")).all()
    assert [e.detail for e in sent] == [
        {"kind": kind, "recipient_hash": hashlib.sha256(CANDIDATE_EMAIL.encode()).hexdigest()}
        for kind in ("interview_rescheduled", "interview_cancelled")
    ]
    no_address_in_trail_or_logs(session, caplog, CANDIDATE_EMAIL)


def test_a_link_booking_cancelled_through_the_api_tells_the_candidate_with_the_same_uid(
    smtp, app, client, session, sandbox, recruiter, panel, caplog
):
    caplog.set_level(logging.DEBUG)
    _link, token = new_link(app, session, recruiter, panel)
    start, _page = book_through_link(client, token)
    interview = session.scalar(select(Interview))
    [confirmation] = messages(smtp)
    _t, _h, attachment = parts(confirmation)
    _c, booked = vevent(attachment)
    sandbox.deliver()

    api = ApiClient(client, issue_token(session, recruiter))
    response = api.post(f"/interviews/{interview.uid}/cancel")
    assert response.status_code == 200, response.get_json()
    [_confirmation, notice] = messages(smtp)
    assert smtp.envelopes[1].rcpt_tos == [EMAIL]
    text, _html, attachment = parts(notice)
    assert f"Hello {NAME}" in text and "cand-title-4411" in text
    assert "America/New_York" in text  # the time in the candidate's zone
    calendar, event = vevent(attachment)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == str(booked["UID"])
    assert int(event["SEQUENCE"]) > int(booked["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == start
    assert token not in " ".join(e.content.decode() for e in smtp.envelopes)
    all_logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert token not in all_logged
    no_address_in_trail_or_logs(session, caplog, EMAIL)


def test_moving_an_interview_through_the_api_tells_the_candidate(
    smtp, app, client, session, sandbox, recruiter, panel
):
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slots = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots
    interview, _payload = schedule(app, session, recruiter, query, slots[0].start)
    sandbox.deliver()
    api = ApiClient(client, issue_token(session, recruiter))
    moved = api.post(
        f"/interviews/{interview.uid}/reschedule", json={"start": slots[-1].start.isoformat()}
    )
    assert moved.status_code == 200, moved.get_json()
    [notice] = messages(smtp)
    assert notice["To"] == CANDIDATE_EMAIL and "moved" in notice["Subject"]
    _text, _html, attachment = parts(notice)
    _calendar, event = vevent(attachment)
    assert event.decoded("DTSTART") == slots[-1].start


def test_the_candidate_is_the_one_guest_outside_the_organisation_or_nobody(
    app, session, sandbox, org, recruiter, panel
):
    query = query_for(panel)
    interview, _payload = schedule(
        app, session, recruiter, query, free_slots_first(app, session, recruiter, query)
    )
    colleague = panel[0][1].account_email
    start = dt.datetime(2030, 3, 4, 10, tzinfo=dt.UTC)

    def event(*guests):
        return ManagedEvent(
            event_id="e",
            event_uid="u",
            calendar_id="c",
            start=start,
            end=start + dt.timedelta(hours=1),
            status="confirmed",
            deleted=False,
            summary=TITLE,
            attendees=tuple(Attendee(email=e, display_name=n) for e, n in guests),
        )

    sealer = sealer_of(app)
    found = notices.candidate_of(
        session, sealer, interview, event((colleague, "C"), ("Ann@Else.example", "Ann"))
    )
    assert found == notices.Candidate("Ann@Else.example", "Ann")
    # The colleague's address in another case is still the organisation's.
    assert notices.candidate_of(session, sealer, interview, event((colleague.upper(), "C"))) is None
    # Two outsiders: which is the candidate is not clear, so nobody is emailed.
    both = event(("ann@else.example", "Ann"), ("agent@agency.example", "Agent"))
    assert notices.candidate_of(session, sealer, interview, both) is None
    held = []

    class Held:
        def enqueue(self, *args):
            held.append(args)

    notify = notices.Notify(None, None, sealer, "localhost", "x@localhost")  # type: ignore[arg-type]
    assert not notices.notify_candidate(
        session, notify, actor_of(recruiter), interview, "cancelled", event=both, jobs=Held()
    )
    assert held == []
    [skipped] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "interview.candidate_notice_skipped")
    ).all()
    assert skipped.detail == {"change": "cancelled", "reason": "no_candidate"}


def free_slots_first(app, session, recruiter, query):
    broker, cipher = broker_cipher(app)
    return free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[0].start


def test_the_candidates_download_after_a_move_outranks_the_notice(
    smtp, app, client, session, sandbox, recruiter, panel
):
    _link, token = new_link(app, session, recruiter, panel)
    _start, _page = book_through_link(client, token)
    interview = session.scalar(select(Interview))
    sandbox.deliver()
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    later = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[-1].start
    api = ApiClient(client, issue_token(session, recruiter))
    moved = api.post(f"/interviews/{interview.uid}/reschedule", json={"start": later.isoformat()})
    assert moved.status_code == 200, moved.get_json()
    [_confirmation, notice] = messages(smtp)
    assert notice["To"] == EMAIL
    _text, _html, attachment = parts(notice)
    _calendar, sent = vevent(attachment)
    assert sent.decoded("DTSTART") == later
    sandbox.deliver()

    download = client.get(f"/c/{token}/interview.ics")
    assert download.status_code == 200
    _calendar, fetched = vevent_of(download.get_data(as_text=True))
    assert str(fetched["UID"]) == str(sent["UID"])
    assert fetched.decoded("DTSTART") == later
    assert int(fetched["SEQUENCE"]) >= int(sent["SEQUENCE"]) > 0


def vevent_of(text: str):
    calendar = Calendar.from_ical(text)
    [event] = calendar.walk("VEVENT")
    return calendar, event


@pytest.mark.parametrize("choice", ["cancel", "keep"])
def test_an_erasure_that_cancels_an_interview_tells_its_candidate(
    smtp, app, session, sandbox, org, recruiter, panel, caplog, choice
):
    """Erasing the host with their future interviews cancelled cancels through the usual path,
    and the candidate gets the same cancel notice as for any other cancellation; interviews
    kept are not cancelled and nobody is told."""
    from models import ErasureRequest, Role
    from tests.factories import make_user
    from tests.webapp.test_compliance import _client_for

    caplog.set_level(logging.DEBUG)
    query = query_for(panel)
    broker, cipher = broker_cipher(app)
    slot = free_slots.grid(session, broker, cipher, actor_of(recruiter), query).slots[0]
    interview, _payload = schedule(app, session, recruiter, query, slot.start)
    uid, host_id = interview.uid, recruiter.id
    assert smtp.envelopes == []
    reviewer = make_user(session, org, Role.COMPLIANCE)
    admin = make_user(session, org, Role.ADMIN)
    _client, reviewer_auth = _client_for(app, reviewer)
    reviewer_auth.post(
        f"/compliance/people/{host_id}/erasure",
        {"future_interviews": choice},
        form_page=f"/compliance/people/{host_id}",
    )
    request_id = session.scalar(select(ErasureRequest.id))
    _admin_client, admin_auth = _client_for(app, admin)
    done = admin_auth.post(
        f"/compliance/erasures/{request_id}",
        {"decision": "confirm", "confirm_email": recruiter.email},
        form_page="/compliance/erasures",
    )
    assert done.status_code in (302, 303), done.get_data(as_text=True)[:300]
    session.expire_all()
    receipt = session.get(ErasureRequest, request_id).receipt
    if choice == "keep":
        assert receipt["future_interviews_kept"] == 1
        assert smtp.envelopes == []
        return
    assert receipt["future_interviews_cancelled"] == 1
    [notice] = messages(smtp)
    assert smtp.envelopes[0].rcpt_tos == [CANDIDATE_EMAIL]
    assert notice["Subject"] == f"Interview cancelled: {TITLE}"
    text, _html, attachment = parts(notice)
    assert CANDIDATE in text and "cancelled" in text
    assert slot.start.astimezone(dt.UTC).strftime("%H:%M") in text
    calendar, event = vevent(attachment)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == f"interview-{uid}@localhost"
    # Audited with the recipient hashed; the address in no log line and no audit entry.
    queued = [
        e
        for e in session.scalars(select(AuditEntry))
        if e.action == "interview.candidate_notice_queued"
    ]
    assert [e.detail["change"] for e in queued] == ["cancelled"]
    no_address_in_trail_or_logs(session, caplog, CANDIDATE_EMAIL)
