"""Undoing Enterprise Connect: unlink one mailbox or room, disconnect a domain, reset the whole
integration. Tokens are deleted at once; authorizations are revoked at the aggregator or queued
for the ``revocations`` job."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import (
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import Actor, JobQueue, credentials, in_batches, revocations
from webapp.services.audit import record
from webapp.services.enterprise.domains import domain_link, require_admin
from webapp.services.enterprise.rooms import revoke_room
from webapp.services.errors import NotFound, ReconnectNeeded


def _revoke_profile_link(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link: ProfileLink | None,
    organisation_id: int,
) -> tuple[bool, bool]:
    """Revoke at the aggregator (or queue the revocation for the ``revocations`` job when the
    aggregator does not take it now) and forget tokens; (revoked now, had tokens)."""
    if link is None or link.status is LinkStatus.DISCONNECTED:
        return False, False
    had = link.has_tokens
    revoked = had and revocations.revoke_or_queue(
        session, broker, cipher, link, organisation_id=organisation_id, reason="ec.unlinked"
    )
    credentials.forget_tokens(link)
    link.status = LinkStatus.DISCONNECTED
    return revoked, had


@dataclass(frozen=True)
class UnlinkPlan:
    """What unlinking one mailbox or room will do, for the admin to confirm."""

    row: MailboxRequest
    #: "unlink" (linked), "cancel" (waiting for the answer) or "remove" (failed).
    verb: str
    #: The Rendezvous person whose mailbox it is (None for a room).
    person: str | None
    #: Whether a calendar link (or a room's id) goes, and tokens with it.
    revokes: bool


def unlink_plan(session: Session, actor: Actor, request_id: int) -> UnlinkPlan:
    require_admin(actor)
    row = session.get(MailboxRequest, request_id)
    if (
        row is None
        or row.organisation_id != actor.organisation_id
        or row.status is MailboxStatus.UNLINKED
    ):
        raise NotFound("Your organisation has no such mailbox still linked or requested.")
    verb = {MailboxStatus.LINKED: "unlink", MailboxStatus.FAILED: "remove"}.get(
        row.status, "cancel"
    )
    person = None
    if row.kind is MailboxKind.MAILBOX and row.user_id:
        user = session.get(User, row.user_id)
        person = user.name if user is not None else None
    return UnlinkPlan(row, verb, person, row.status is MailboxStatus.LINKED)


@dataclass(frozen=True)
class DisconnectPlan:
    """What disconnecting a domain will do: its mailboxes and rooms by status."""

    link: ServiceAccountLink
    mailboxes_linked: int
    mailboxes_waiting: int
    mailboxes_failed: int
    rooms_linked: int
    rooms_waiting: int
    rooms_failed: int

    @property
    def affected(self) -> int:
        return (
            self.mailboxes_linked
            + self.mailboxes_waiting
            + self.mailboxes_failed
            + self.rooms_linked
            + self.rooms_waiting
            + self.rooms_failed
        )


def disconnect_plan(session: Session, actor: Actor, link_id: int) -> DisconnectPlan:
    require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is LinkStatus.DISCONNECTED:
        raise NotFound("That domain is not connected.")
    found: Counter[tuple[MailboxKind, str]] = Counter()
    for kind, status, count in session.execute(
        select(MailboxRequest.kind, MailboxRequest.status, func.count(MailboxRequest.id))
        .where(MailboxRequest.service_account_link_id == link.id)
        .group_by(MailboxRequest.kind, MailboxRequest.status)
    ):
        bucket = {
            MailboxStatus.LINKED: "linked",
            MailboxStatus.FAILED: "failed",
            MailboxStatus.QUEUED: "waiting",
            MailboxStatus.PENDING: "waiting",
        }.get(status)
        if bucket:
            found[(kind, bucket)] += int(count)
    mailbox, room = MailboxKind.MAILBOX, MailboxKind.ROOM
    return DisconnectPlan(
        link,
        found[(mailbox, "linked")],
        found[(mailbox, "waiting")],
        found[(mailbox, "failed")],
        found[(room, "linked")],
        found[(room, "waiting")],
        found[(room, "failed")],
    )


def unlink_mailbox(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    actor: Actor,
    request_id: int,
    *,
    jobs: JobQueue,
) -> MailboxRequest:
    """Unlink one mailbox (or cancel its pending request). A revocation the aggregator did not
    take at once is worked off by the ``revocations.run`` job queued here."""
    require_admin(actor)
    row = session.get(MailboxRequest, request_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound("Your organisation has no mailbox with this id.")
    if row.status is MailboxStatus.UNLINKED:
        jobs.enqueue("revocations.run")
        return row
    before = row.status
    if row.kind is MailboxKind.ROOM:
        revoked, had = revoke_room(session, broker, row)
    else:
        revoked, had = _revoke_profile_link(
            session,
            broker,
            cipher,
            session.get(ProfileLink, row.profile_link_id) if row.profile_link_id else None,
            row.organisation_id,
        )
    row.status = MailboxStatus.UNLINKED
    row.claim = None
    row.completed_at = utcnow()
    record(
        session,
        actor,
        "ec.unlinked",
        target_type="mailbox_request",
        target_id=row.id,
        target_label=row.email,
        detail={
            "was": before.value,
            "revoked_at_aggregator": revoked,
            "revocation_queued": had and not revoked,
            "tokens_deleted": had,
        },
    )
    session.commit()
    jobs.enqueue("revocations.run")
    return row


@dataclass(frozen=True)
class DisconnectReport:
    domain: str
    mailboxes: int
    tokens_deleted: int
    #: Authorizations queued for revocation at the aggregator (mailboxes, rooms, the service
    #: account); the ``revocations`` job works them off after the request.
    revocations: int


def _disconnect(
    session: Session, cipher: TokenCipher, link: ServiceAccountLink, *, reason: str
) -> DisconnectReport:
    """Unlink every mailbox and room of the domain and delete every token, locally and at once;
    queue their authorizations for revocation (no aggregator call here, whatever the size)."""
    rows = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.status != MailboxStatus.UNLINKED,
            )
        )
    )
    profile_ids = [
        r.profile_link_id for r in rows if r.kind is MailboxKind.MAILBOX and r.profile_link_id
    ]
    links: list[ProfileLink] = []
    for chunk in in_batches(profile_ids):
        links.extend(
            session.scalars(
                select(ProfileLink).where(
                    ProfileLink.id.in_(chunk), ProfileLink.status != LinkStatus.DISCONNECTED
                )
            )
        )
    rooms = [r.resource_sub for r in rows if r.resource_sub]
    now = utcnow()
    for row in rows:
        row.status = MailboxStatus.UNLINKED
        row.claim = None
        row.resource_sub = None
        row.completed_at = now
    # The service account is revoked with its refresh token (the documented way; by its ser_…
    # sub is unconfirmed): the token moves from the link into the revocation queue.
    tokens = {}
    if link.has_tokens:
        try:
            tokens[link.sub] = credentials.load_credentials(link, cipher).refresh_token
        except (ReconnectNeeded, DecryptionFailed):
            pass  # then by sub, as for the rest
    revoke, deleted = credentials.disconnect_here([*links, link])
    queued = revocations.queue(
        session,
        [*rooms, *revoke],
        organisation_id=link.organisation_id,
        reason=reason,
        tokens=tokens,
        cipher=cipher,
    )
    return DisconnectReport(link.domain, len(rows), deleted, queued)


def disconnect_domain(
    session: Session, cipher: TokenCipher, actor: Actor, link_id: int, *, jobs: JobQueue
) -> DisconnectReport:
    """Unlink every mailbox and room of the domain and the service account: tokens are deleted
    now, and their authorizations revoked at the aggregator by the ``revocations.run`` job
    queued here."""
    require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is LinkStatus.DISCONNECTED:
        raise NotFound("That domain is not connected.")
    report = _disconnect(session, cipher, link, reason="ec.disconnected")
    record(
        session,
        actor,
        "ec.disconnected",
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        detail={
            "mailboxes": report.mailboxes,
            "tokens_deleted": report.tokens_deleted,
            "revocations_queued": report.revocations,
        },
    )
    session.commit()
    jobs.enqueue("revocations.run")
    return report


@dataclass(frozen=True)
class ResetReport:
    domains: int
    mailboxes: int
    tokens_deleted: int
    reports: tuple[DisconnectReport, ...] = field(default=())


def reset(session: Session, cipher: TokenCipher, actor: Actor, *, jobs: JobQueue) -> ResetReport:
    """Disconnect every domain and forget the whole Enterprise Connect configuration (tokens
    deleted now, authorizations revoked by the ``revocations.run`` job queued here)."""
    require_admin(actor)
    links = list(
        session.scalars(
            select(ServiceAccountLink).where(
                ServiceAccountLink.organisation_id == actor.organisation_id
            )
        )
    )
    reports = tuple(
        _disconnect(session, cipher, link, reason="ec.reset")
        for link in links
        if link.status is not LinkStatus.DISCONNECTED or link.has_tokens
    )
    session.flush()
    session.execute(
        delete(MailboxRequest).where(MailboxRequest.organisation_id == actor.organisation_id)
    )
    session.execute(
        delete(ServiceAccountLink).where(
            ServiceAccountLink.organisation_id == actor.organisation_id
        )
    )
    result = ResetReport(
        len(reports),
        sum(r.mailboxes for r in reports),
        sum(r.tokens_deleted for r in reports),
        reports,
    )
    record(
        session,
        actor,
        "ec.reset",
        target_type="organisation",
        target_id=actor.organisation_id,
        detail={
            "domains": result.domains,
            "mailboxes": result.mailboxes,
            "tokens_deleted": result.tokens_deleted,
            "revocations_queued": sum(r.revocations for r in reports),
        },
    )
    session.commit()
    jobs.enqueue("revocations.run")
    return result
