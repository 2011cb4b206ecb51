"""Colleagues' calendars delegated to a Business Connect user, as panel members.

A Business Connect account may see calendars other people delegated or shared to it (an
assistant's account sees the managers' calendars). The aggregator lists them among the
account's calendars but does not say whose they are, so the account's owner chooses which ones
are a colleague's and names the colleague. The colleague is the organisation's person at that
address (matched inside the owner's organisation only, never another's), or a new directory
person. They get a calendar link of their own with no tokens: their free/busy is read with the
owner's credentials, restricted to that one calendar (availability members and free/busy both
take ``calendar_ids``), and nothing is ever written to it (they are invited as attendees).

The owner's account is the only way to that calendar, so when the owner unlinks or relinks, or
their link stops working, or the calendar is no longer listed, the colleague's link needs
attention (refused for scheduling with a clear message, listed on the owner's page) until the
owner adds it again. Event details are never read through it: everyone sees free/busy only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Calendar
from models import LinkMode, LinkStatus, ProfileLink, Role, User
from webapp.security import TokenCipher
from webapp.services import Actor
from webapp.services.accounts import normalise_email, valid_email
from webapp.services.audit import record
from webapp.services.calendars import calendars_of
from webapp.services.connect import link_of
from webapp.services.credentials import mark_needs_attention, token_link
from webapp.services.delegation_watch import no_longer_listed
from webapp.services.directory import clean_name, default_name
from webapp.services.errors import Conflict, Forbidden, Invalid, NotFound, ReconnectNeeded

#: Who may add colleagues: the people who link a calendar of their own.
OWNER_ROLES = (Role.RECRUITER, Role.COORDINATOR)


@dataclass(frozen=True)
class Delegated:
    """A colleague added from the owner's account, and whether it can be used now."""

    link: ProfileLink
    person: User
    usable: bool


def owner_link(session: Session, actor: Actor) -> ProfileLink:
    """The actor's own working Business Connect link (the account colleagues are seen in)."""
    if actor.role not in OWNER_ROLES:
        raise Forbidden("Your role does not link a calendar.")
    link = link_of(session, actor.user_id)
    if link is None or link.mode is not LinkMode.BUSINESS:
        raise NotFound("Connect your own calendar first.")
    if link.status is not LinkStatus.ACTIVE:
        raise ReconnectNeeded("Reconnect your calendar first.")
    return link


def offered(owner: ProfileLink, listed: Sequence[Calendar]) -> list[Calendar]:
    """The calendars of the owner's account that may be a colleague's: not deleted, not a
    primary calendar (the account's own), not the one interviews are written to."""
    return [
        c
        for c in listed
        if not c.deleted and not c.primary and c.calendar_id != owner.target_calendar_id
    ]


def usable(session: Session, link: ProfileLink) -> bool:
    try:
        token_link(session, link)
    except ReconnectNeeded:
        return False
    return True


def delegated_from(session: Session, owner: ProfileLink) -> list[Delegated]:
    """The colleagues added from the owner's link (not removed), by name."""
    rows = session.execute(
        select(ProfileLink, User)
        .join(User, User.id == ProfileLink.user_id)
        .where(
            ProfileLink.delegated_from_id == owner.id,
            ProfileLink.status != LinkStatus.DISCONNECTED,
        )
        .order_by(User.name, ProfileLink.id)
    )
    return [Delegated(link, person, usable(session, link)) for link, person in rows]


@dataclass(frozen=True)
class SeenThrough:
    """A person's delegated calendar, and whose account reads it (None once that is gone)."""

    link: ProfileLink
    owner: User | None
    usable: bool


def seen_through(session: Session, person: User) -> SeenThrough | None:
    """The person's delegated calendar link (not removed), if they have one."""
    link = session.scalar(
        select(ProfileLink)
        .where(
            ProfileLink.user_id == person.id,
            ProfileLink.delegated_calendar_id.is_not(None),
            ProfileLink.status != LinkStatus.DISCONNECTED,
        )
        .order_by(ProfileLink.id.desc())
    )
    if link is None:
        return None
    holder = session.get(ProfileLink, link.delegated_from_id) if link.delegated_from_id else None
    owner = session.get(User, holder.user_id) if holder is not None else None
    return SeenThrough(link, owner, usable(session, link))


def _existing(session: Session, actor: Actor, email: str) -> User | None:
    """The organisation's person at ``email``; never another organisation's."""
    return session.scalar(
        select(User).where(
            User.organisation_id == actor.organisation_id, func.lower(User.email) == email
        )
    )


def _person(session: Session, actor: Actor, email: str, name: str | None) -> tuple[User, bool]:
    """The organisation's person at ``email``, or a new directory person; and whether one was
    made."""
    for _attempt in range(2):
        person = _existing(session, actor, email)
        if person is not None:
            return person, False
        person = User(
            organisation_id=actor.organisation_id,
            email=email,
            name=clean_name(name) or default_name(email),
            role=Role.INTERVIEWER,
            active=True,
            session_version=1,
        )
        try:
            with session.begin_nested():
                session.add(person)
                session.flush()
        except IntegrityError:
            continue  # made by a concurrent request meanwhile: match it
        return person, True
    raise Conflict("Someone else is adding this colleague right now; try again.")


def add_colleague(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    calendar_id: str,
    email: str,
    name: str | None = None,
) -> ProfileLink:
    """Make one of the calendars the actor's account sees the calendar of the colleague at
    ``email``: they can then be put on panels (free/busy only). Adding it again after it
    needed attention (or for another calendar) brings the same link back."""
    owner = owner_link(session, actor)
    email = normalise_email(email)
    if not valid_email(email):
        raise Invalid("Enter the colleague's email address.", field="email")
    me = session.get_one(User, actor.user_id)
    if email in {normalise_email(me.email), normalise_email(owner.account_email or "")}:
        raise Invalid(
            "That is your own address: your calendar is on panels already.", field="email"
        )
    listed = offered(owner, calendars_of(session, broker, cipher, owner))
    calendar = next((c for c in listed if c.calendar_id == calendar_id), None)
    if calendar is None:
        raise Invalid("Choose one of the colleagues' calendars listed.", field="calendar_id")
    taken = session.scalar(
        select(ProfileLink).where(
            ProfileLink.delegated_from_id == owner.id,
            ProfileLink.delegated_calendar_id == calendar_id,
            ProfileLink.status != LinkStatus.DISCONNECTED,
        )
    )
    existing = _existing(session, actor, email)
    if taken is not None and (existing is None or taken.user_id != existing.id):
        raise Conflict("That calendar is already added as another colleague's.")
    link = None
    if existing is not None:
        if not existing.active:
            raise Invalid("That person is deactivated in your organisation.", field="email")
        links = list(session.scalars(select(ProfileLink).where(ProfileLink.user_id == existing.id)))
        if any(not x.is_delegated and x.status is LinkStatus.ACTIVE for x in links):
            raise Conflict(
                f"{existing.name} has linked their own calendar: they are on panels already."
            )
        delegated = [x for x in links if x.is_delegated]
        link = next((x for x in delegated if x.delegated_from_id == owner.id), None)
        if link is None:
            if any(usable(session, x) for x in delegated):
                raise Conflict(f"A colleague has already added {existing.name}'s calendar.")
            link = next(iter(delegated), None)
    person, made = _person(session, actor, email, name)
    if link is None:
        link = ProfileLink(
            organisation_id=actor.organisation_id,
            user_id=person.id,
            mode=LinkMode.BUSINESS,
            # Never an aggregator id: nothing at the aggregator answers to it, nothing revokes it.
            sub=f"dlg_{secrets.token_hex(16)}",
        )
        session.add(link)
    link.account_id = owner.sub  # whose account reads it (checked at every use)
    link.profile_id = calendar.profile_id
    link.provider = owner.provider
    link.account_email = person.email
    link.delegated_from_id = owner.id
    link.delegated_calendar_id = calendar.calendar_id
    link.conflict_calendar_ids = [calendar.calendar_id]
    link.target_calendar_id = None  # never written to: the colleague is invited instead
    link.status, link.attention = LinkStatus.ACTIVE, None
    session.flush()
    record(
        session,
        actor,
        "calendar.delegated_added",
        target_type="user",
        target_id=person.id,
        target_label=person.email,
        detail={"link": link.id, "person_created": made, "owner_link": owner.id},
    )
    session.commit()
    return link


def remove_colleague(session: Session, actor: Actor, link_id: int) -> User:
    """Take a colleague's calendar off (the owner's own choice); the person stays."""
    owner = link_of(session, actor.user_id)
    link = session.get(ProfileLink, link_id)
    if (
        owner is None
        or link is None
        or not link.is_delegated
        or link.delegated_from_id != owner.id
        or link.status is LinkStatus.DISCONNECTED
    ):
        raise NotFound("There is no such colleague's calendar on your account.")
    link.status, link.attention = LinkStatus.DISCONNECTED, None
    person = session.get_one(User, link.user_id)
    record(
        session,
        actor,
        "calendar.delegated_removed",
        target_type="user",
        target_id=person.id,
        target_label=person.email,
        detail={"link": link.id},
    )
    session.commit()
    return person


def owner_changed(session: Session, owner: ProfileLink, reason: str) -> int:
    """The owner unlinked or relinked: the colleagues seen through the link need attention
    until the owner adds them again (not committed); how many."""
    found = 0
    for link in session.scalars(
        select(ProfileLink).where(
            ProfileLink.delegated_from_id == owner.id, ProfileLink.status == LinkStatus.ACTIVE
        )
    ):
        mark_needs_attention(session, link, reason)
        found += 1
    return found


def still_listed(session: Session, owner: ProfileLink, listed: Sequence[Calendar]) -> int:
    """Colleagues whose calendar the owner's account no longer lists (the delegation was
    withdrawn, or the calendar deleted) need attention; committed, how many."""
    return len(no_longer_listed(session, owner, listed))
