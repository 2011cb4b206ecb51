"""Directory people: the organisation's interviewers who have no login.

A directory person is a ``User`` row with ``Role.INTERVIEWER``: an email, a display name and a
time zone, no password and no invitation. Enterprise Connect makes one for each mailbox it is
asked to link that has no row in the organisation yet (matched by address inside the
organisation only, never across organisations). Being a ``User`` row, a directory person sits
on panels through their calendar link, has working hours, and is covered by the compliance
inventory, subject export and erasure exactly like an account; inviting them to log in
(``accounts.invite_to_log_in``) gives them a role and keeps everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Role, SchedulingPreference, User
from webapp.services import Actor, in_batches, printable
from webapp.services.accounts import org_user, require_admin
from webapp.services.audit import record
from webapp.services.enterprise.address_list import Address
from webapp.services.errors import Conflict, Invalid
from webapp.services.scheduling.preferences import parse_minutes, preference_of
from webapp.services.zones import known_zone


def clean_name(name: str | None) -> str | None:
    name = " ".join((name or "").split())
    return name[:200] if name and printable(name) else None


def default_name(email: str) -> str:
    """A readable name from the address until the directory gives one: anna.schmidt@… →
    "Anna Schmidt"."""
    local = email.split("@", 1)[0]
    words = [w for w in re.split(r"[._+\-]+", local) if w]
    return (" ".join(w[:1].upper() + w[1:] for w in words) or email)[:200]


def people_by_email(session: Session, organisation_id: int, domain: str) -> dict[str, User]:
    """Every person of the organisation at ``domain`` (accounts, directory people, deactivated
    ones), by lower-case address. Another organisation's rows are never among them."""
    return {
        u.email.lower(): u
        for u in session.scalars(
            select(User).where(
                User.organisation_id == organisation_id,
                User.email.endswith("@" + domain, autoescape=True),
            )
        )
    }


def create_people(session: Session, organisation_id: int, entries: Sequence[Address]) -> int:
    """Insert a directory person for each entry (addresses known to have no row in the
    organisation yet), in batches: one INSERT per 500 people, so linking ten thousand
    mailboxes stays a handful of statements. Not committed; returns how many."""
    rows = [
        {
            "organisation_id": organisation_id,
            "email": e.email,
            "name": clean_name(e.name) or default_name(e.email),
            "role": Role.INTERVIEWER,
            "active": True,
            "session_version": 1,
            "timezone": known_zone(e.timezone),
        }
        for e in entries
    ]
    for chunk in in_batches(rows):
        session.execute(insert(User), list(chunk))
    return len(rows)


def ensure_people(
    session: Session, organisation_id: int, domain: str, entries: Sequence[Address]
) -> tuple[dict[str, User], int]:
    """The organisation's people at ``domain`` by address, after making a directory person for
    each entry that had none; and how many were made. Two admins linking the same addresses at
    once both succeed: the unique address per organisation refuses the second insert (in its
    own savepoint), and the addresses the other request made meanwhile are matched instead."""
    made = 0
    for _attempt in range(3):
        people = people_by_email(session, organisation_id, domain)
        missing = [e for e in entries if e.email not in people]
        if not missing:
            return people, made
        try:
            with session.begin_nested():
                create_people(session, organisation_id, missing)
        except IntegrityError:
            continue
        made += len(missing)
    people = people_by_email(session, organisation_id, domain)
    if any(e.email not in people for e in entries):
        raise Conflict("Someone else is linking the same mailboxes right now; try again.")
    return people, made


def update_person(user: User, entry: Address) -> bool:
    """Take the name and time zone the admin listed: for a directory person both (the
    directory is theirs), for an account only a time zone they have not set. True if changed."""
    changed = False
    name, tz = clean_name(entry.name), known_zone(entry.timezone)
    if user.is_directory_person and name and name != user.name:
        user.name, changed = name, True
    if tz and tz != user.timezone and (user.is_directory_person or not user.timezone):
        user.timezone, changed = tz, True
    return changed


def directory_people(session: Session, actor: Actor) -> list[User]:
    """The organisation's directory people (no login), for the IT admin."""
    require_admin(actor)
    return list(
        session.scalars(
            select(User)
            .where(User.organisation_id == actor.organisation_id, User.role == Role.INTERVIEWER)
            .order_by(User.name)
        )
    )


def set_working_hours(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    start: str,
    end: str,
    weekdays: Iterable[str],
) -> SchedulingPreference:
    """Set a person's working hours (in their own time zone): an IT admin for anyone in the
    organisation (directory people above all, who never sign in), anyone for themselves."""
    if actor.user_id != user_id:
        require_admin(actor)
    user = org_user(session, actor, user_id)
    start_minute, end_minute = parse_minutes(start, "start"), parse_minutes(end, "end")
    if end_minute <= start_minute:
        raise Invalid("The working day must end after it starts.", field="end")
    days = "".join(sorted({d for d in weekdays if d in "1234567" and len(d) == 1}))
    if not days:
        raise Invalid("Choose at least one working day.", field="weekdays")
    pref = preference_of(session, user.organisation_id, user.id)
    if pref is None:
        pref = SchedulingPreference(organisation_id=user.organisation_id, user_id=user.id)
        session.add(pref)
    pref.start_minute, pref.end_minute, pref.weekdays = start_minute, end_minute, days
    record(
        session,
        actor,
        "scheduling.hours_changed",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        detail={"start": start_minute, "end": end_minute, "weekdays": days},
    )
    session.commit()
    return pref


def hours_of(session: Session, user: User) -> tuple[int, int, str] | None:
    """A person's own working hours, if set (else the organisation's default applies)."""
    pref = preference_of(session, user.organisation_id, user.id)
    return None if pref is None else (pref.start_minute, pref.end_minute, pref.weekdays)
