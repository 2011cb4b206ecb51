"""Noticing that a colleague withdrew the calendar they shared with a Business Connect account
(see ``delegation``): the account stops listing it, and reads of it are refused.

Checked where the app reads from the aggregator anyway: when a panel's availability or a
delegated member's free/busy read fails (the owner's calendar list is then read once), on a
push notification for the owner's profile, periodically, and on the owner's calendar page. A
colleague found withdrawn is put in needs-attention once (audited), so no panel offers them as
free and the owner and schedulers are told; the owner adds the calendar again to bring it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Calendar
from models import Attention, LinkStatus, ProfileLink, User
from webapp.security import TokenCipher
from webapp.services import rowcount
from webapp.services.audit import record
from webapp.services.calendars import calendars_of
from webapp.services.errors import AggregatorTrouble, Conflict, ServiceError


def no_longer_listed(
    session: Session, owner: ProfileLink, listed: Sequence[Calendar]
) -> list[ProfileLink]:
    """Colleagues added from ``owner`` whose calendar ``listed`` (the owner's account's list,
    just read) no longer holds: put in needs-attention (committed, audited once) and returned."""
    visible = {c.calendar_id for c in listed if not c.deleted}
    lost = []
    active = select(ProfileLink).where(
        ProfileLink.delegated_from_id == owner.id, ProfileLink.status == LinkStatus.ACTIVE
    )
    for link in list(session.scalars(active)):
        if link.delegated_calendar_id in visible:
            continue
        # Once, however many reads notice it at the same moment (one audit entry).
        won = rowcount(
            session.execute(
                update(ProfileLink)
                .where(ProfileLink.id == link.id, ProfileLink.status == LinkStatus.ACTIVE)
                .values(status=LinkStatus.NEEDS_ATTENTION, attention=Attention.RECONNECT)
                .execution_options(synchronize_session=False)
            )
        )
        session.refresh(link, ["status", "attention"])
        if won:
            record(
                session,
                None,
                "calendar.needs_attention",
                organisation_id=link.organisation_id,
                target_type="profile_link",
                target_id=link.id,
                target_label=link.account_email,
                detail={
                    "reason": "delegated calendar no longer listed",
                    "attention": Attention.RECONNECT.value,
                },
            )
        lost.append(link)
    session.commit()
    return lost


class Withdrawn(Conflict):
    """Colleagues of a panel whose shared calendar the owner's account no longer sees."""

    code = "delegation_withdrawn"

    def __init__(self, message: str, link_ids: Sequence[int]):
        super().__init__(message)
        self.link_ids = tuple(link_ids)


def recheck_owners(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, links: Sequence[ProfileLink]
) -> list[ProfileLink]:
    """After the aggregator refused or failed a read that included colleagues' delegated
    calendars (``links``; others are ignored): ask each of their owners' accounts once for its
    calendar list, and put the colleagues whose calendar it no longer lists in needs-attention
    (audited, committed). The links found withdrawn; nothing when a list cannot be read now
    (the next read, push or periodic check tries again)."""
    asked = [x for x in links if x.is_delegated and x.delegated_from_id]
    lost: list[ProfileLink] = []
    for owner_id in sorted({x.delegated_from_id for x in asked if x.delegated_from_id}):
        owner = session.get(ProfileLink, owner_id)
        if owner is None or owner.status is not LinkStatus.ACTIVE:
            continue
        try:
            listed = calendars_of(session, broker, cipher, owner)
        except ServiceError:
            continue
        no_longer_listed(session, owner, listed)
        visible = {c.calendar_id for c in listed if not c.deleted}
        # Marked by us or, at the same moment, by another read: withdrawn all the same.
        lost.extend(
            x
            for x in asked
            if x.delegated_from_id == owner_id and x.delegated_calendar_id not in visible
        )
    return lost


def withdrawn_message(session: Session, links: Sequence[ProfileLink]) -> str:
    """What a scheduler is told about colleagues whose shared calendar was withdrawn."""
    parts = []
    for link in links:
        person = session.get_one(User, link.user_id)
        holder = (
            session.get(ProfileLink, link.delegated_from_id) if link.delegated_from_id else None
        )
        owner = session.get(User, holder.user_id) if holder is not None else None
        through = f"{owner.name}'s calendar account" if owner else "the account it was shared to"
        parts.append(f"{person.name}'s calendar is no longer shared with {through}")
    return (
        "; ".join(parts)
        + ". They cannot be on a panel until it is added again from that account's calendar "
        "page, so no time is offered for this panel. Choose the panel again without them."
    )


def check_panel(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    links: Sequence[ProfileLink],
) -> None:
    """Raise ``Withdrawn`` when some of a panel's delegated calendars (``links``: those whose
    read failed, or the whole panel after the availability call failed) turn out withdrawn."""
    lost = recheck_owners(session, broker, cipher, links)
    if lost:
        raise Withdrawn(withdrawn_message(session, lost), [x.id for x in lost])


def check_owners(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, only: int | None = None
) -> int:
    """Read the calendar list of every active link through which active colleagues' calendars
    are read (``only``: just that link, after a push for its profile) and put colleagues no
    longer listed in needs-attention; how many. Stops at the first list that cannot be read
    now (no budget, the aggregator away): the next push or periodic run goes on."""
    colleague = select(ProfileLink.delegated_from_id).where(
        ProfileLink.delegated_from_id.is_not(None), ProfileLink.status == LinkStatus.ACTIVE
    )
    owners = select(ProfileLink).where(
        ProfileLink.id.in_(colleague), ProfileLink.status == LinkStatus.ACTIVE
    )
    if only is not None:
        owners = owners.where(ProfileLink.id == only)
    lost = 0
    for owner in list(session.scalars(owners.order_by(ProfileLink.id))):
        try:
            listed = calendars_of(session, broker, cipher, owner)
        except AggregatorTrouble:  # no budget now, or the aggregator away: the next run goes on
            break
        except ServiceError:  # this owner's link needs attention itself (marked by the call)
            continue
        lost += len(no_longer_listed(session, owner, listed))
    return lost
