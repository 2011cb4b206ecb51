"""Outgoing mail: the booking confirmation arrives at a real SMTP server (aiosmtpd, started in
the test) as text + HTML with an .ics that parses; nothing logs the token or the password; the
send is audited with the recipient hashed; the development outbox and its page's access rules;
the candidate's .ics download and add-to-calendar links."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import logging
import re
from email import policy
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from icalendar import Calendar
from sqlalchemy import select

from models import AuditEntry, Interview, Role
from tests.factories import make_org, make_user
from tests.held_jobs import HeldJobs
from tests.tls import self_signed
from tests.webapp.conftest import SMTP_PASSWORD, SMTP_USER, Inbox, free_port
from tests.webapp.test_candidate_links import EMAIL, csrf, new_link, slots_on_page
from tests.webapp.test_scheduling import actor_of
from webapp import deps
from webapp.mail import OutboxMailer, build_mailer
from webapp.services.scheduling import booking

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def panel(app, session, sandbox, org, recruiter):
    from tests.webapp.scheduling_support import make_panel

    return make_panel(app, session, sandbox, org, 2)


def book_through_link(client, token):
    html = client.get(f"/c/{token}").get_data(as_text=True)
    slots = slots_on_page(html)
    assert slots
    done = client.post(f"/c/{token}", data={"csrf_token": csrf(html), "slot": slots[0]})
    assert done.status_code == 200, done.get_data(as_text=True)
    return dt.datetime.fromisoformat(slots[0]), done.get_data(as_text=True)


def the_event(ics_text: str):
    calendar = Calendar.from_ical(ics_text)
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_the_booking_confirmation_arrives_with_text_html_and_the_ics(
    smtp, app, client, session, sandbox, recruiter, panel, caplog
):
    caplog.set_level(logging.DEBUG)
    link, token = new_link(app, session, recruiter, panel)
    start, _page = book_through_link(client, token)
    interview = session.scalar(select(Interview))

    [envelope] = smtp.envelopes
    assert smtp.logins == [SMTP_USER]
    assert envelope.rcpt_tos == [EMAIL]
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    assert message["To"] == EMAIL and "Interview with Northwind" in message["Subject"]
    assert message.get_content_type() == "multipart/mixed"
    [alternative, attachment] = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    text = alternative.get_payload()[0].get_content()
    html = alternative.get_payload()[1].get_content()
    local = start.astimezone(dt.timezone(dt.timedelta(hours=-5))).strftime("%H:%M")
    assert "cand-title-4411" in text and "cand-title-4411" in html
    assert "America/New_York" in text and local in text  # the candidate's zone (winter)
    assert token not in envelope.content.decode()  # the mail carries no bearer link

    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == "interview.ics"
    calendar, event = the_event(attachment.get_content())
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(event["UID"]) == f"interview-{interview.uid}@localhost"
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTSTART").utcoffset() == dt.timedelta(0)
    assert event.decoded("DTEND") == start + dt.timedelta(minutes=60)
    assert "cand-title-4411" in str(event["SUMMARY"])
    assert "DTSTART:" in attachment.get_content()  # UTC form (…Z), no TZID parameter

    # Audited, with the address only as a hash.
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.sent")).all()
    assert entry.organisation_id == link.organisation_id and entry.outcome == "success"
    assert entry.target_type == "interview" and entry.target_id == str(interview.id)
    assert entry.detail == {
        "kind": "booking_confirmation",
        "recipient_hash": hashlib.sha256(EMAIL.encode()).hexdigest(),
    }
    every_entry = " ".join(
        repr((e.detail, e.target_label)) for e in session.scalars(select(AuditEntry))
    )
    assert EMAIL not in every_entry

    # The app's logs (aiosmtpd, the test's server, logs the conversation as "mail.log").
    ours = [r for r in caplog.records if r.name != "mail.log"]
    logged = "\n".join(r.getMessage() for r in ours)
    assert "mail booking_confirmation: sent" in logged
    assert token not in logged and SMTP_PASSWORD not in logged and EMAIL not in logged


def test_the_confirmation_carries_the_change_link_when_the_recruiter_allows_it(
    smtp, app, client, session, sandbox, recruiter, panel, caplog
):
    caplog.set_level(logging.DEBUG)
    _link, token = new_link(
        app, session, recruiter, panel, candidate_may_change=True, change_cutoff_hours=36
    )
    book_through_link(client, token)
    [envelope] = smtp.envelopes
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    [alternative, _attachment] = message.get_payload()
    text = alternative.get_payload()[0].get_content()
    html = alternative.get_payload()[1].get_content()
    url = f"{app.config['PUBLIC_BASE_URL'].rstrip('/')}/c/{token}"
    assert "up to 36 hours before the interview" in text and url in text
    assert f'<a href="{url}">Reschedule or cancel</a>' in html
    ours = [r for r in caplog.records if r.name != "mail.log"]
    assert token not in "\n".join(r.getMessage() for r in ours)


def test_a_failing_smtp_server_never_fails_the_booking(
    app_config, app, client, session, sandbox, recruiter, panel, caplog
):
    dead = free_port()  # nothing listens there
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=dead)
    deps.mailer.install(app, build_mailer({**app.config}, app.instance_path))
    _link, token = new_link(app, session, recruiter, panel)
    _start, page = book_through_link(client, token)
    assert "Your interview is booked" in page
    assert session.scalar(select(Interview)) is not None
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "mail.sent")) is None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "not sent (ConnectionRefusedError)" in logged and token not in logged


def test_the_confirmation_page_offers_the_ics_and_calendar_links(
    app, client, session, sandbox, recruiter, panel
):
    _link, token = new_link(app, session, recruiter, panel)
    start, page = book_through_link(client, token)
    interview = session.scalar(select(Interview))
    assert f'href="/c/{token}/interview.ics"' in page

    hrefs = {
        urlsplit(h).netloc: h
        for h in re.findall(r'href="(https://[^"]+)"', page.replace("&amp;", "&"))
    }
    end = start + dt.timedelta(minutes=60)
    google = parse_qs(urlsplit(hrefs["calendar.google.com"]).query)
    assert google["action"] == ["TEMPLATE"] and "cand-title-4411" in google["text"][0]
    assert google["dates"] == [f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}"]
    for host in ("outlook.live.com", "outlook.office.com"):
        outlook = parse_qs(urlsplit(hrefs[host]).query)
        assert outlook["startdt"] == [f"{start:%Y-%m-%dT%H:%M:%SZ}"]
        assert outlook["enddt"] == [f"{end:%Y-%m-%dT%H:%M:%SZ}"]
    assert all(token not in h for h in hrefs.values())

    download = client.get(f"/c/{token}/interview.ics")
    assert download.status_code == 200 and download.mimetype == "text/calendar"
    assert "attachment" in download.headers["Content-Disposition"]
    _calendar, event = the_event(download.get_data(as_text=True))
    assert str(event["UID"]) == f"interview-{interview.uid}@localhost"
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == end
    # The page shown again (the link is used) offers the same.
    assert f"/c/{token}/interview.ics" in client.get(f"/c/{token}").get_data(as_text=True)

    # Unknown tokens and unused links get no file; a cancelled interview says so.
    assert client.get("/c/not-a-token/interview.ics").status_code == 404
    _other, unused = new_link(app, session, recruiter, panel)
    assert client.get(f"/c/{unused}/interview.ics").status_code in {404, 410}
    booking.cancel_interview(session, actor_of(recruiter), interview.uid, jobs=HeldJobs())
    gone = client.get(f"/c/{token}/interview.ics")
    assert gone.status_code == 410 and "cancelled" in gone.get_data(as_text=True)


def test_the_outbox_keeps_mail_in_development_for_the_organisations_admins(
    app, client, auth, session, sandbox, org, recruiter, panel
):
    outbox = deps.mailer.of(app)
    assert isinstance(outbox, OutboxMailer)  # no SMTP configured outside production
    _link, token = new_link(app, session, recruiter, panel)
    book_through_link(client, token)
    [name] = outbox.names(org.id)

    # A second organisation's admin (same address book) sees nothing of it.
    other = make_org(session, "Contoso")
    outsider = make_user(session, other, Role.ADMIN, email="admin@contoso.example")
    auth.login(outsider.email)
    assert "No mail yet" in client.get("/dev/outbox/").get_data(as_text=True)
    assert client.get(f"/dev/outbox/{name}").status_code == 404
    auth.logout()

    # A recruiter of the organisation may not read it; anonymous visitors are sent to log in.
    auth.login(recruiter.email)
    assert client.get("/dev/outbox/").status_code == 403
    auth.logout()
    assert client.get("/dev/outbox/").status_code in {302, 401}

    admin = make_user(session, org, Role.ADMIN)
    auth.login(admin.email)
    listing = client.get("/dev/outbox/").get_data(as_text=True)
    assert EMAIL in listing and "cand-title-4411" in listing
    shown = client.get(f"/dev/outbox/{name}").get_data(as_text=True)
    assert "Your interview is booked" in shown and "interview.ics" in shown
    html = client.get(f"/dev/outbox/{name}/html")
    assert html.headers["Content-Security-Policy"].startswith("sandbox")
    assert "<strong>" in html.get_data(as_text=True)
    ics = client.get(f"/dev/outbox/{name}/attachments/0")
    assert ics.mimetype == "text/calendar"
    the_event(ics.get_data(as_text=True))
    assert client.get(f"/dev/outbox/{name}/attachments/5").status_code == 404
    assert client.get("/dev/outbox/..%2Fsecrets.json").status_code == 404


def test_the_outbox_page_exists_only_without_smtp_and_never_in_production(smtp, app, client):
    assert not isinstance(deps.mailer.of(app), OutboxMailer)
    assert "outbox" not in app.blueprints
    assert build_mailer({"ENVIRONMENT": "production"}, "/nonexistent") is None
    assert isinstance(build_mailer({"ENVIRONMENT": "development"}, "/tmp/x"), OutboxMailer)
    assert "smtp-pass" not in repr(deps.mailer.of(app))


def test_an_invitation_is_emailed_with_its_link_which_no_log_shows(
    app, client, auth, session, org, caplog
):
    caplog.set_level(logging.DEBUG)
    admin = make_user(session, org, Role.ADMIN, name="Ada Admin")
    auth.login(admin.email)
    response = auth.post(
        "/admin/users",
        {"name": "Dana Fox", "email": "dana@northwind.example", "role": "recruiter"},
        form_page="/admin/users",
    )
    assert response.status_code == 201 and "emailed" in response.get_data(as_text=True)
    link = re.search(
        r'value="(http://localhost/invite/[^"]+)"', response.get_data(as_text=True)
    ).group(1)
    outbox = deps.mailer.of(app)
    [name] = outbox.names(org.id)
    message = email.message_from_bytes(outbox.read(org.id, name), policy=policy.default)
    assert message["To"] == "dana@northwind.example"
    assert link in message.get_body(("plain",)).get_content()
    assert f'href="{link}"' in message.get_body(("html",)).get_content()
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.sent")).all()
    assert entry.detail["kind"] == "user_invitation" and entry.target_type == "user"
    assert entry.detail["recipient_hash"] == hashlib.sha256(b"dana@northwind.example").hexdigest()
    token = link.rsplit("/", 1)[1]
    assert all(token not in r.getMessage() for r in caplog.records)


def test_starttls_is_required_before_the_login_and_the_certificate_is_checked(tmp_path):
    """The production default: STARTTLS, then AUTH; a server whose certificate does not verify
    gets neither the password nor the message."""
    import smtplib
    import ssl

    from webapp.mail import Mail, SmtpMailer, compose

    cert_path, key_path = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    inbox = Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD)

    port = free_port()
    controller = Controller(
        inbox,
        hostname="localhost",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        mail = Mail(to=EMAIL, subject="Hello", text="plain", html="<p>html</p>", kind="test")
        trusting = ssl.create_default_context(cafile=str(cert_path))
        mailer = SmtpMailer(
            "localhost",
            port,
            security="starttls",
            sender="hiring@northwind.example",
            user=SMTP_USER,
            password=SMTP_PASSWORD,
            ssl_context=trusting,
        )
        mailer.send(compose(mail, mailer.sender))
        [envelope] = inbox.envelopes
        assert envelope.rcpt_tos == [EMAIL] and inbox.logins == [SMTP_USER]

        # The system's trust store does not know this certificate: nothing is sent.
        untrusting = SmtpMailer(
            "localhost",
            port,
            security="starttls",
            sender="hiring@northwind.example",
            user=SMTP_USER,
            password=SMTP_PASSWORD,
        )
        with pytest.raises(ssl.SSLError):
            untrusting.send(compose(mail, untrusting.sender))
        assert len(inbox.envelopes) == 1 and inbox.logins == [SMTP_USER]
        # Without STARTTLS the server refuses the login and the mail.
        plain = SmtpMailer(
            "localhost",
            port,
            security="none",
            sender="hiring@northwind.example",
            user=SMTP_USER,
            password=SMTP_PASSWORD,
        )
        with pytest.raises(smtplib.SMTPException):
            plain.send(compose(mail, plain.sender))
        assert len(inbox.envelopes) == 1 and inbox.logins == [SMTP_USER]
    finally:
        controller.stop()
