"""Arranging scheduling tests: people with calendars linked at the sandbox, without a browser."""

from __future__ import annotations

import datetime as dt

from broker.types import Credentials, LinkingProfile
from models import LinkMode, LinkStatus, ProfileLink, Role
from tests.factories import make_user
from webapp import deps
from webapp.services import connect, credentials

#: Seeded sandbox people (Google, London/New York/Berlin) usable as panel members.
PANEL_EMAILS = [
    "riley.chen@northwind.example",
    "morgan.lee@northwind.example",
    "taylor.nguyen@northwind.example",
    "drew.martin@northwind.example",
    "jordan.diaz@northwind.example",
    "casey.brooks@northwind.example",
    "priya.shah@northwind.example",
    "dana.wright@contoso.example",
    "lee.okafor@contoso.example",
    "maria.garcia@contoso.example",
    "noah.fischer@contoso.example",
]


def link_calendar(
    app, session, sandbox, user, email: str | None = None, *, mode: LinkMode = LinkMode.BUSINESS
) -> ProfileLink:
    """Consent + code exchange at the sandbox, stored as the user's ProfileLink."""
    email = email or user.email
    body = sandbox.call(
        "POST",
        "/tokens",
        json={
            "email": email,
            "scope": "read_account list_calendars read_events create_event "
            "delete_event read_free_busy",
        },
    )
    creds = Credentials(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=body["expires_in"]),
        scope=body["scope"],
        sub=body["sub"],
        account_id=body["account_id"],
    )
    broker = deps.broker.of(app)
    calendars = broker.calendars(creds)
    profile_id = body["linking_profile"]["profile_id"]
    target = next(c for c in calendars if c.profile_id == profile_id and c.primary)
    link = ProfileLink(
        organisation_id=user.organisation_id,
        user_id=user.id,
        mode=mode,
        sub=body["sub"],
        account_id=body["account_id"],
        profile_id=profile_id,
        provider=connect.provider_key(LinkingProfile(**body["linking_profile"])),
        account_email=email,
        status=LinkStatus.ACTIVE,
        target_calendar_id=target.calendar_id,
        conflict_calendar_ids=[target.calendar_id],
    )
    session.add(link)
    session.flush()
    credentials.store_credentials(link, creds, deps.cipher.of(app))
    session.commit()
    return link


def make_panel(app, session, sandbox, org, size: int, *, start: int = 1):
    """``size`` recruiters with linked calendars (seeded sandbox people)."""
    people = []
    for email in PANEL_EMAILS[start : start + size]:
        user = make_user(
            session,
            org,
            Role.RECRUITER,
            email=email,
            name=email.split("@")[0].replace(".", " ").title(),
        )
        people.append((user, link_calendar(app, session, sandbox, user)))
    return people


def creds_of(app, link) -> Credentials:
    return credentials.load_credentials(link, deps.cipher.of(app))


def managed(app, session, link, *, include_deleted: bool = False):
    """Our events in the link's calendar, as the aggregator holds them now."""
    session.refresh(link)
    return deps.broker.of(app).managed_events(creds_of(app, link), include_deleted=include_deleted)


def next_weekday(days_ahead: int = 1) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days_ahead)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    return day
