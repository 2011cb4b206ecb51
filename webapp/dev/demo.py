"""The demo organisation that ``make run`` seeds (development only).

The emails match identities in the sandbox aggregator's seeded world, so the demo users can
connect "their" calendars there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CoordinatorAssignment, Organisation, Role, User
from webapp import security
from webapp.services.audit import record

DEMO_ORGANISATION = "Northwind Talent"
#: Shown by ``make run``; the demo database is local and throw-away.
DEMO_PASSWORD = "rendezvous-demo"


@dataclass(frozen=True)
class DemoUser:
    name: str
    email: str
    role: Role
    #: Their own zone, as in the sandbox (the panel's working hours are shown in it).
    timezone: str = "Europe/London"


DEMO_USERS = (
    DemoUser("Riley Chen", "riley.chen@northwind.example", Role.RECRUITER),
    DemoUser("Sam Patel", "sam.patel@contoso.example", Role.RECRUITER, "America/New_York"),
    DemoUser("Morgan Lee", "morgan.lee@northwind.example", Role.COORDINATOR),
    DemoUser("Alex Kim", "alex.kim@northwind.example", Role.ADMIN),
    DemoUser("Jordan Diaz", "jordan.diaz@northwind.example", Role.COMPLIANCE, "America/New_York"),
)
#: Hiring managers at Fabrikam (Exchange), so "Link all users" of Enterprise Connect has people
#: to link in the demo; one is outside the service account's impersonation scope.
DEMO_MAILBOX_USERS = tuple(
    DemoUser(name, email, Role.RECRUITER, "Europe/Berlin")
    for name, email in (
        ("Anna Becker", "anna.becker@fabrikam.example"),
        ("Ben Schulz", "ben.schulz@fabrikam.example"),
        ("Clara Hoffmann", "clara.hoffmann@fabrikam.example"),
        ("David Koch", "david.koch@fabrikam.example"),
        ("Elena Richter", "elena.richter@fabrikam.example"),
        ("Felix Klein", "felix.klein@fabrikam.example"),
        ("Office of the CEO", "ceo.office@fabrikam.example"),
    )
)
#: (coordinator email, hiring manager email)
DEMO_ASSIGNMENTS = (("morgan.lee@northwind.example", "sam.patel@contoso.example"),)


def seed_demo(session: Session) -> bool:
    """Create the demo organisation once; returns False when it already exists."""
    if session.scalar(select(Organisation.id).where(Organisation.name == DEMO_ORGANISATION)):
        return False
    # Business Connect is on so the demo recruiters can link their sandbox calendars at once.
    org = Organisation(
        name=DEMO_ORGANISATION, timezone="Europe/London", business_connect_enabled=True
    )
    session.add(org)
    session.flush()
    password_hash = security.hash_password(DEMO_PASSWORD)
    users = {}
    for demo in DEMO_USERS + DEMO_MAILBOX_USERS:
        user = User(
            organisation_id=org.id,
            name=demo.name,
            email=demo.email,
            role=demo.role,
            timezone=demo.timezone,
            password_hash=password_hash,
            active=True,
            session_version=1,
        )
        session.add(user)
        users[demo.email] = user
    session.flush()
    for coordinator, manager in DEMO_ASSIGNMENTS:
        session.add(
            CoordinatorAssignment(
                organisation_id=org.id,
                coordinator_id=users[coordinator].id,
                manager_id=users[manager].id,
            )
        )
    record(
        session,
        None,
        "demo.seeded",
        organisation_id=org.id,
        target_type="organisation",
        target_id=org.id,
        detail={"users": len(DEMO_USERS)},
    )
    session.commit()
    return True
