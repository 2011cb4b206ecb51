"""Bringing the demo organisation to life against the local sandbox aggregator (development
only): calendars linked, interviews scheduled and a candidate link in use, all through the
same services the pages call and the sandbox's real OAuth and Enterprise Connect endpoints.

The only shortcut is the consent page: instead of a person typing their sandbox password into
it, the sandbox's ``/_sandbox/consent`` posts the same form (with the identity's sandbox
password) and answers with the redirect URL that carries the code, which the app's own
``complete`` services then redeem. Nothing here writes a link, an interview or an event row
by hand.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    Organisation,
    ProfileLink,
    User,
)
from webapp import callbacks, deps
from webapp.public_urls import external_url
from webapp.services import Actor, candidate_booking, candidate_links, connect, delegation
from webapp.services.availability.free_slots import open_slots
from webapp.services.availability.model import Query
from webapp.services.enterprise import domains, mailboxes, rooms
from webapp.services.scheduling.booking import NewInterview, create_interview
from webapp.services.scheduling.preferences import save_preferences

#: People who link their own calendar (Business Connect), with the provider they pick.
BUSINESS_LINKS = (
    ("riley.chen@northwind.example", "google"),
    ("sam.patel@contoso.example", "office365"),
    ("morgan.lee@northwind.example", "google"),
)
#: A colleague's calendar delegated to a Business Connect account (Sam's Microsoft 365 account
#: sees Noah's), which Sam puts on panels: Noah never links anything himself.
DELEGATED = ("sam.patel@contoso.example", "noah.fischer@contoso.example", "Noah Fischer")
#: The domain the IT admin links through Enterprise Connect, with its service account.
ENTERPRISE_DOMAIN = ("exchange", "svc-calendar@fabrikam.example")
ENTERPRISE_ROOMS = ("room.spree@fabrikam.example", "room.havel@fabrikam.example")
RECRUITER = "riley.chen@northwind.example"
ADMIN = "alex.kim@northwind.example"
#: The three-zone panel of the demo: London (Google), New York (Microsoft 365), Berlin (Exchange).
PANEL = (
    "riley.chen@northwind.example",
    "sam.patel@contoso.example",
    "anna.becker@fabrikam.example",
)
PANEL_ROOM = "room.havel@fabrikam.example"
#: Working hours the panel's people keep (set on their own preferences page), in their own zones:
#: with Riley's default 09:00–17:30 London the three overlap 13:00–17:30 London.
WORKING_HOURS = {
    "sam.patel@contoso.example": ("08:00", "17:00"),
    "anna.becker@fabrikam.example": ("10:00", "19:00"),
}


class DemoError(RuntimeError):
    """The demo could not be brought up (the app still runs; the message says what failed)."""


#: How long before the interview the demo links' candidates may still reschedule or cancel.
CANDIDATE_CUTOFF_HOURS = 24


@dataclass
class Populated:
    linked: list[str] = field(default_factory=list)
    mailboxes: dict[str, int] = field(default_factory=dict)
    interviews: list[str] = field(default_factory=list)
    #: Colleagues put on panels through a calendar delegated to a Business Connect account.
    delegated: list[str] = field(default_factory=list)
    #: The used candidate link's page, as its candidate sees it (with "Need to change it?").
    candidate_page: str | None = None


def _actor(user: User) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role)


class _Consent:
    """The sandbox's consent form, posted as its identities would."""

    def __init__(self, sandbox_url: str) -> None:
        self.url = sandbox_url.rstrip("/") + "/_sandbox"
        self.http = requests.Session()
        listed = self._call("GET", "/identities")["identities"]
        self.passwords = {i["email"]: i["password"] for i in listed}

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, self.url + path, timeout=20, **kwargs)
        if response.status_code >= 400:
            raise DemoError(f"sandbox {path}: {response.status_code} {response.text[:200]}")
        return response.json() if response.content else {}

    def approve(self, authorize_url: str, email: str) -> tuple[str | None, str | None]:
        """Approve as ``email``; returns the (code, state) the app is sent back with."""
        body = {
            "authorize_url": authorize_url,
            "email": email,
            "password": self.passwords[email],
            "decision": "approve",
        }
        redirect = self._call("POST", "/consent", json=body)["redirect_url"]
        query = {k: v[-1] for k, v in parse_qs(urlsplit(redirect).query).items()}
        return query.get("code"), query.get("state")


def populate(
    app: Flask,
    organisation_id: int,
    sandbox_url: str,
    *,
    deliver: Callable[[], object] = lambda: None,
    timeout: float = 90.0,
) -> Populated:
    """Link calendars, a domain and rooms, schedule interviews and use a candidate link.

    ``deliver`` makes the sandbox send what it queued (callbacks, pushes) when it does not on its
    own (tests); the app must be reachable at its PUBLIC_BASE_URL for those callbacks."""
    consent = _Consent(sandbox_url)
    done = Populated()
    with app.app_context(), deps.database.of(app).sessions() as session:
        users = {
            u.email: u
            for u in session.scalars(select(User).where(User.organisation_id == organisation_id))
        }
        broker, cipher = deps.required_broker(), deps.cipher()
        for email, provider in BUSINESS_LINKS:
            actor, nonce = _actor(users[email]), secrets.token_urlsafe(16)
            redirect_uri = external_url("calendar.callback")
            url = connect.begin(
                session,
                broker,
                actor,
                provider=provider,
                session_nonce=nonce,
                redirect_uri=redirect_uri,
            )
            code, state = consent.approve(url, email)
            connect.complete(
                session,
                broker,
                cipher,
                actor,
                state=state,
                code=code,
                error=None,
                session_nonce=nonce,
                redirect_uri=redirect_uri,
                push_url=callbacks.push_url,
            )
            done.linked.append(email)
        owner, colleague, name = DELEGATED
        seeded = consent._call(
            "POST", "/seed", json={"delegations": [{"to": owner, "owner": colleague}]}
        )
        delegation.add_colleague(
            session,
            broker,
            cipher,
            _actor(users[owner]),
            calendar_id=seeded["delegations"][0]["calendar_id"],
            email=colleague,
            name=name,
        )
        done.delegated.append(colleague)

        provider, service_account = ENTERPRISE_DOMAIN
        admin, nonce = _actor(users[ADMIN]), secrets.token_urlsafe(16)
        redirect_uri = external_url("enterprise.callback")
        url = domains.begin(
            session,
            broker,
            admin,
            provider=provider,
            session_nonce=nonce,
            redirect_uri=redirect_uri,
        )
        code, state = consent.approve(url, service_account)
        domain = domains.complete(
            session,
            broker,
            cipher,
            admin,
            state=state,
            code=code,
            error=None,
            session_nonce=nonce,
            redirect_uri=redirect_uri,
            jobs=deps.jobs(),
        )
        mailboxes.request_mailboxes(  # queues the sending job
            session,
            admin,
            domain.id,
            all_users=True,
            callback_url=callbacks.service_account_callback_url,
            jobs=deps.jobs(),
        )
        rooms.request_rooms(
            session,
            broker,
            cipher,
            admin,
            domain.id,
            ENTERPRISE_ROOMS,
            callback_url=callbacks.service_account_callback_url,
            jobs=deps.jobs(),
        )
        _wait(session, deliver, timeout, lambda: _requests_answered(session, domain.id))
        done.mailboxes = mailboxes.counts(session, domain.id)

        for email, (start, end) in WORKING_HOURS.items():
            save_preferences(
                session,
                _actor(users[email]),
                start=start,
                end=end,
                weekdays=list("12345"),
                video_profile=None,
            )
        _schedule(session, users, done)
        _wait(session, deliver, timeout, lambda: _events_confirmed(session, organisation_id))
    return done


def _wait(session: Session, deliver, timeout: float, finished: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        deliver()
        session.expire_all()
        if finished():
            return
        if time.monotonic() > deadline:
            raise DemoError("the sandbox did not answer in time (is the job worker running?)")
        time.sleep(0.2)


def _requests_answered(session: Session, link_id: int) -> bool:
    waiting = session.scalar(
        select(MailboxRequest.id).where(
            MailboxRequest.service_account_link_id == link_id,
            MailboxRequest.status.in_([MailboxStatus.QUEUED, MailboxStatus.PENDING]),
        )
    )
    return waiting is None


def _events_confirmed(session: Session, organisation_id: int) -> bool:
    waiting = session.scalar(
        select(CreatedEvent.id)
        .join(Interview, Interview.id == CreatedEvent.interview_id)
        .where(
            Interview.organisation_id == organisation_id,
            CreatedEvent.status == EventStatus.PENDING,
        )
    )
    return waiting is None


def _link_ids(session: Session, users: dict[str, User], emails) -> tuple[int, ...]:
    ids = []
    for email in emails:
        link = connect.link_of(session, users[email].id)
        if link is None or link.status is not LinkStatus.ACTIVE:
            raise DemoError(f"{email}'s calendar did not link")
        ids.append(link.id)
    return tuple(ids)


def _first_weekday(days_ahead: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days_ahead)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    return day


def _schedule(session: Session, users: dict[str, User], done: Populated) -> None:
    """Two upcoming interviews (one with the three-zone panel, a room and video), one booked by
    a candidate through their link, one link still waiting for its candidate, and two
    interviews that took place in the last days (webapp/dev/demo_history.py)."""
    broker, cipher, sealer = deps.required_broker(), deps.cipher(), deps.sealer()
    riley = _actor(users[RECRUITER])
    plans = [
        (
            PANEL,
            PANEL_ROOM,
            2,
            "Staff engineer – panel interview",
            "Noor Haddad",
            "America/Chicago",
        ),
        (PANEL[:2], None, 8, "Product designer – portfolio review", "Luca Rossi", "Europe/Rome"),
    ]
    for emails, room, days_ahead, title, candidate, tzid in plans:
        query = Query(
            panel_link_ids=_link_ids(session, users, emails),
            duration=60,
            start_date=_first_weekday(days_ahead),
            days=10,
            tzid="Europe/London",
            room=room,
        )
        slots = open_slots(session, broker, riley, query)
        if not slots:
            raise DemoError(f"no free time for '{title}'")
        new = NewInterview(
            query=query,
            start=slots[len(slots) // 3].start,
            candidate_name=candidate,
            candidate_email=candidate.lower().replace(" ", ".") + "@candidates.example",
            title=title,
            video=True,
            candidate_tzid=tzid,
        )
        create_interview(session, broker, cipher, sealer, riley, new, jobs=deps.jobs())
        done.interviews.append(title)

    panel_ids = _link_ids(session, users, PANEL[:2])
    for candidate, used in (("Jamie Rivera", True), ("Avery Morgan", False)):
        link, token = candidate_links.create_link(
            session,
            sealer,
            riley,
            panel_link_ids=panel_ids,
            duration=45,
            start_date=_first_weekday(3),
            days=5,
            expires_days=14,
            candidate_name=candidate,
            candidate_email=candidate.lower().replace(" ", ".") + "@candidates.example",
            candidate_tzid="America/New_York",
            title="Data analyst – first interview",
            video=True,
            # The candidate may reschedule or cancel what they book, up to a day before.
            candidate_may_change=True,
            change_cutoff_hours=CANDIDATE_CUTOFF_HOURS,
        )
        if not used:  # waits for its candidate (the token is shown once and never stored)
            continue
        # The candidate opens the link and books its first free time, as their page does.
        opened = candidate_booking.open_link(session, sealer, token)
        found = candidate_booking.slots(session, broker, opened)
        if not found:
            raise DemoError("no free time on the candidate's link")
        booking = candidate_booking.book(
            session,
            broker,
            cipher,
            sealer,
            token,
            found[0].start,
            invite_callback_url=callbacks.invite_callback_url,
            jobs=deps.jobs(),
        )
        done.interviews.append(f"{booking.title} (booked by {candidate})")
        done.candidate_page = external_url("candidate.page", token=token)

    from webapp.dev.demo_history import schedule_past  # it imports this module

    done.interviews += schedule_past(
        session, riley, lambda emails: _link_ids(session, users, emails)
    )


def demo_organisation_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Organisation.id).where(Organisation.name == name))


def linked_panel(session: Session, organisation_id: int) -> list[ProfileLink]:
    """The organisation's active calendar links (what the panel list offers)."""
    return list(
        session.scalars(
            select(ProfileLink).where(
                ProfileLink.organisation_id == organisation_id,
                ProfileLink.status == LinkStatus.ACTIVE,
            )
        )
    )
