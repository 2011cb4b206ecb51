"""Enterprise Connect rooms: the rooms a domain's service account lists, linked for their
free/busy so that interviews can check a room's availability."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from models import (
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ServiceAccountLink,
    utcnow,
)
from webapp.security import TokenCipher
from webapp.services import Actor, JobQueue, revocations
from webapp.services.enterprise.domains import domain_link, require_admin, resources
from webapp.services.enterprise.mailboxes import Rejected, RequestReport, requeue, save_requests
from webapp.services.errors import Invalid

log = logging.getLogger("webapp.services.enterprise")


@dataclass(frozen=True)
class RoomEntry:
    """A room of the domain as the admin sees it: from the directory, with its request."""

    email: str
    name: str | None
    request: MailboxRequest | None
    #: False for a room linked earlier that the directory no longer lists.
    listed: bool = True


def room_requests(session: Session, link_id: int) -> list[MailboxRequest]:
    return list(
        session.scalars(
            select(MailboxRequest)
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.kind == MailboxKind.ROOM,
            )
            .order_by(MailboxRequest.email)
        )
    )


def room_directory(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> list[RoomEntry]:
    """The rooms the service account lists (read now), each with its link request; rooms
    linked earlier and no longer listed come last, so they can still be unlinked."""
    listed = resources(session, broker, cipher, link)
    rows = {r.email: r for r in room_requests(session, link.id)}
    out = [
        RoomEntry(r.email.lower(), r.name, rows.pop(r.email.lower(), None))
        for r in sorted(listed, key=lambda r: ((r.name or r.email).lower(), r.email))
    ]
    out += [
        RoomEntry(row.email, row.display_name, row, listed=False)
        for row in rows.values()
        if row.status is not MailboxStatus.UNLINKED
    ]
    return out


def request_rooms(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    link_id: int,
    emails: Sequence[str],
    *,
    callback_url: Callable[[int], str],
    jobs: JobQueue,
) -> RequestReport:
    """Queue link requests for rooms the service account lists (free/busy only), and the job
    that sends them, so that interviews can check the room's availability."""
    require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before linking rooms.")
    if not emails:
        raise Invalid("Choose at least one room.", field="rooms")
    listed = {r.email.lower(): r for r in resources(session, broker, cipher, link)}
    existing = {r.email: r for r in room_requests(session, link.id)}
    taken = set(
        session.scalars(
            select(MailboxRequest.email).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.kind == MailboxKind.MAILBOX,
            )
        )
    )
    seen: set[str] = set()
    rejected: list[Rejected] = []
    accepted: list[str] = []
    for raw in emails:
        email = str(raw).strip().lower()
        row = existing.get(email)
        if email in seen:
            rejected.append(Rejected(email[:100], "listed more than once"))
        elif email not in listed:
            rejected.append(Rejected(email[:100], f"not a room {link.domain} lists"))
        elif email in taken:
            rejected.append(Rejected(email, "requested as a person's mailbox"))
        elif row is not None and row.status is MailboxStatus.LINKED:
            rejected.append(Rejected(email, "already linked"))
        elif row is not None and row.status in (MailboxStatus.QUEUED, MailboxStatus.PENDING):
            rejected.append(Rejected(email, "already requested; waiting for the answer"))
        else:
            accepted.append(email)
        seen.add(email)
    now = utcnow()
    rows = []
    for email in accepted:
        row = existing.get(email)
        if row is None:
            row = MailboxRequest(
                service_account_link_id=link.id,
                kind=MailboxKind.ROOM,
                organisation_id=link.organisation_id,
                email=email,
            )
            session.add(row)
        requeue(row, now)
        row.display_name = (listed[email].name or "")[:200] or None
        row.resource_sub = None
        row.requested_at = now
        rows.append(row)
    return save_requests(
        session, actor, link, rows, rejected, "ec.rooms_requested", callback_url, jobs
    )


def revoke_room(
    session: Session, broker: CalendarBroker | None, row: MailboxRequest
) -> tuple[bool, bool]:
    """Revoke a linked room at the aggregator and forget its sub; (revoked, had a sub).

    No token of a room is kept, so it goes by sub, which is unconfirmed for rooms: when that
    fails it joins the revocation queue (an outage is tried again; a refusal needs the admin)."""
    sub, row.resource_sub = row.resource_sub, None
    if not sub:
        return False, False
    if broker is not None:
        try:
            broker.revoke_sub(sub)
            return True, True
        except broker_errors.BrokerError as exc:
            log.warning("revoking room request %s failed: %s", row.id, type(exc).__name__)
    revocations.queue(session, [sub], organisation_id=row.organisation_id, reason="ec.unlinked")
    return False, True
