"""Enterprise Connect mailboxes: the admin chooses which people's mailboxes to link, follows
their requests, relinks one that needs attention and retries the failed ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models import (
    LinkStatus,
    MailboxKind,
    MailboxList,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp.services import Actor, JobQueue, directory, in_batches
from webapp.services.audit import record
from webapp.services.enterprise import list_summaries
from webapp.services.enterprise.address_list import (
    MAX_ADDRESSES,
    Address,
    Refusal,
    TooManyAddresses,
    valid_email,
)
from webapp.services.enterprise.domains import domain_link, require_admin
from webapp.services.errors import Invalid, NotFound

#: Shown for error keys the aggregator may send; unknown keys show the aggregator's text.
ERROR_HINTS = {
    "unknown_mailbox": "No such mailbox on the domain.",
    "outside_impersonation_scope": "The service account is not allowed to impersonate this "
    "mailbox (extend the ApplicationImpersonation scope).",
    "scope_not_granted": "The service account was not granted access to mailboxes.",
    "aggregator_unavailable": "The calendar service kept failing; use Retry failed.",
    "code_exchange_failed": "The calendar service's answer could not be redeemed; "
    "use Retry failed.",
    "code_not_redeemed": "The calendar service's answer lapsed before it could be redeemed; "
    "use Retry failed.",
    "linked_to_another_user": "This calendar account is already linked to another Rendezvous user.",
    "request_refused": "The calendar service refused the request.",
    "no_room_id": "The calendar service linked the room without an id; use Retry failed.",
}


def counts(session: Session, link_id: int) -> dict[str, int]:
    """Mailbox requests per status (every status present, zero if none), plus ``total``."""
    found = dict(
        session.execute(
            select(MailboxRequest.status, func.count(MailboxRequest.id))
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.kind == MailboxKind.MAILBOX,
            )
            .group_by(MailboxRequest.status)
        ).all()
    )
    result = {s.value: int(found.get(s, 0)) for s in MailboxStatus}
    result["total"] = sum(result.values()) - result["unlinked"]
    result["waiting"] = result["queued"] + result["pending"]
    return result


def _filtered(stmt, link_id: int, status: str | None, query: str | None):
    stmt = stmt.where(
        MailboxRequest.service_account_link_id == link_id,
        MailboxRequest.kind == MailboxKind.MAILBOX,
    )
    if status == "waiting":
        stmt = stmt.where(MailboxRequest.status.in_([MailboxStatus.QUEUED, MailboxStatus.PENDING]))
    elif status in {s.value for s in MailboxStatus}:
        stmt = stmt.where(MailboxRequest.status == MailboxStatus(status))
    if query:
        stmt = stmt.where(
            MailboxRequest.email.contains(query.strip().lower()[:100], autoescape=True)
        )
    return stmt


def mailbox_requests(
    session: Session,
    link_id: int,
    *,
    status: str | None = None,
    query: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[MailboxRequest]:
    stmt = _filtered(select(MailboxRequest), link_id, status, query)
    return list(
        session.scalars(
            stmt.order_by(MailboxRequest.email, MailboxRequest.id).limit(limit).offset(offset)
        )
    )


#: Mailboxes per page of the Enterprise Connect table.
PAGE_SIZE = 50


@dataclass(frozen=True)
class MailboxPage:
    rows: list[MailboxRequest]
    total: int
    page: int
    pages: int


def mailbox_page(
    session: Session,
    link_id: int,
    *,
    status: str | None = None,
    query: str | None = None,
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> MailboxPage:
    """One page of the domain's mailboxes (by address) matching the filter; a page past the
    end shows the last one."""
    total = int(
        session.scalar(_filtered(select(func.count(MailboxRequest.id)), link_id, status, query))
        or 0
    )
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = mailbox_requests(
        session,
        link_id,
        status=status,
        query=query,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return MailboxPage(rows, total, page, pages)


def candidates(
    session: Session, link: ServiceAccountLink, *, query: str | None = None, limit: int = 500
) -> list[tuple[User, MailboxRequest | None]]:
    """Active people of the organisation on the domain (accounts and directory people), with
    their current request (if any)."""
    stmt = select(User).where(
        User.organisation_id == link.organisation_id,
        User.active.is_(True),
        User.email.endswith("@" + link.domain, autoescape=True),
    )
    if query:
        needle = query.strip().lower()[:100]
        stmt = stmt.where(
            or_(
                User.email.contains(needle, autoescape=True),
                func.lower(User.name).contains(needle, autoescape=True),
            )
        )
    users = list(session.scalars(stmt.order_by(User.email).limit(limit)))
    requests_ = {
        r.user_id: r
        for r in session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.user_id.in_([u.id for u in users]),
            )
        )
    }
    return [(u, requests_.get(u.id)) for u in users]


# ---------------------------------------------------------------------------------------------
# Choosing mailboxes


@dataclass(frozen=True)
class Rejected:
    email: str
    reason: str
    #: The line of a pasted list or file it came from (None for a checkbox or the API).
    line: int | None = None
    #: The address on that line when ``email`` shows the whole line.
    address: str | None = None


@dataclass(frozen=True)
class RequestReport:
    queued: int
    rejected: tuple[Rejected, ...] = ()
    #: The kept summary of a pasted list (:mod:`.list_summaries`), when one was asked for.
    summary_id: int | None = None


def request_mailboxes(
    session: Session,
    actor: Actor,
    link_id: int,
    *,
    emails: Sequence[str] = (),
    addresses: Sequence[Address] = (),
    refused: Sequence[Refusal] = (),
    all_users: bool = False,
    callback_url: Callable[[int], str],
    jobs: JobQueue,
    keep_summary: bool = False,
) -> RequestReport:
    """Queue link requests for valid mailboxes and the job that sends them; list every other
    address with the reason (and, with ``keep_summary``, keep that for the summary page).

    ``addresses`` come from a pasted list or file (:mod:`.address_list`), with the name and
    time zone it gives; ``refused`` are that list's unusable lines, reported with the rest.
    ``emails`` are bare addresses (checkboxes, the API). A mailbox whose address has no person
    in the organisation yet gets a directory person (no login; :mod:`webapp.services.directory`),
    made in batches; an address is matched inside the organisation only.
    """
    require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before linking mailboxes.")
    if len(emails) + len(addresses) > MAX_ADDRESSES:
        raise TooManyAddresses(len(emails) + len(addresses))
    people = directory.people_by_email(session, link.organisation_id, link.domain)
    if all_users:
        wanted = [Address(e) for e, u in people.items() if u.active]
    else:
        wanted = [Address(e.strip().lower()) for e in emails] + list(addresses)
    rejected = [Rejected(r.text, r.reason, r.line, r.email) for r in refused]
    if not wanted and not rejected:
        raise Invalid(
            "Choose at least one mailbox."
            if not all_users
            else f"Your organisation has no people on {link.domain} yet."
        )
    existing = {
        r.email: r
        for r in session.scalars(
            select(MailboxRequest).where(MailboxRequest.service_account_link_id == link.id)
        )
    }
    seen: set[str] = set()
    accepted: list[Address] = []
    for entry in wanted:
        email, line = entry.email, entry.line
        person = people.get(email)
        if not valid_email(email):
            rejected.append(Rejected(email[:100], "not a valid email address", line))
        elif email in seen:
            rejected.append(Rejected(email, "listed more than once", line))
        elif email.rsplit("@", 1)[1] != link.domain:
            rejected.append(Rejected(email, f"not on {link.domain}", line))
        elif person is not None and not person.active:
            rejected.append(Rejected(email, "deactivated in your organisation", line))
        elif existing.get(email) and existing[email].status is MailboxStatus.LINKED:
            rejected.append(Rejected(email, "already linked", line))
        elif existing.get(email) and existing[email].status in (
            MailboxStatus.QUEUED,
            MailboxStatus.PENDING,
        ):
            rejected.append(Rejected(email, "already requested; waiting for the answer", line))
        else:
            accepted.append(entry)
        seen.add(email)
    people, created = directory.ensure_people(session, link.organisation_id, link.domain, accepted)
    updated = sum(directory.update_person(people[e.email], e) for e in accepted)
    now = utcnow()
    rows = []
    for entry in accepted:
        row = existing.get(entry.email)
        if row is None:
            row = MailboxRequest(
                service_account_link_id=link.id,
                organisation_id=link.organisation_id,
                email=entry.email,
            )
            session.add(row)
        requeue(row, now)
        row.user_id = people[entry.email].id
        row.requested_at = now
        rows.append(row)
    return save_requests(
        session,
        actor,
        link,
        rows,
        rejected,
        "ec.mailboxes_requested",
        callback_url,
        jobs,
        all_users=all_users,
        directory_people_created=created,
        people_updated=updated,
        reasons=dict(Counter(r.reason for r in rejected)),
        summary=list_summaries.keep(session, actor, link, len(rows), rejected)
        if keep_summary
        else None,
    )


def save_requests(
    session: Session,
    actor: Actor,
    link: ServiceAccountLink,
    rows: list[MailboxRequest],
    rejected: list[Rejected],
    action: str,
    callback_url: Callable[[int], str],
    jobs: JobQueue,
    summary: MailboxList | None = None,
    **detail,
) -> RequestReport:
    """Give new requests their callback URL (it carries the row id), audit, commit, queue the
    sending job (if any were queued), report."""
    session.flush()
    for row in rows:
        if row.callback_url is None:
            row.callback_url = callback_url(row.id)
    record(
        session,
        actor,
        action,
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        outcome="success" if not rejected else "partial",
        detail={"queued": len(rows), "rejected": len(rejected), **detail},
    )
    session.commit()
    if rows:
        jobs.enqueue("enterprise.send_batches", link.id)
    return RequestReport(len(rows), tuple(rejected), summary.id if summary else None)


# ---------------------------------------------------------------------------------------------
# Relinking and retrying


def needing_attention(session: Session, rows: Iterable[MailboxRequest]) -> set[int]:
    """Ids of the linked mailbox requests whose calendar link needs attention (for the table)."""
    ids = {
        r.profile_link_id: r.id
        for r in rows
        if r.status is MailboxStatus.LINKED and r.profile_link_id
    }
    found: set[int] = set()
    for chunk in in_batches(list(ids)):
        found.update(
            ids[i]
            for i in session.scalars(
                select(ProfileLink.id).where(
                    ProfileLink.id.in_(chunk), ProfileLink.status == LinkStatus.NEEDS_ATTENTION
                )
            )
        )
    return found


def relink_mailbox(
    session: Session, actor: Actor, request_id: int, *, jobs: JobQueue
) -> MailboxRequest:
    """The admin's way back for a linked mailbox that needs attention: ask the aggregator for
    it again through the service account (queued, with the sending job; the callback makes the
    link active again)."""
    require_admin(actor)
    row = session.get(MailboxRequest, request_id)
    if (
        row is None
        or row.organisation_id != actor.organisation_id
        or row.kind is not MailboxKind.MAILBOX
    ):
        raise NotFound("Your organisation has no mailbox with this id.")
    link = row.service_account
    profile = session.get(ProfileLink, row.profile_link_id) if row.profile_link_id else None
    if (
        row.status is not MailboxStatus.LINKED
        or profile is None
        or profile.status is not LinkStatus.NEEDS_ATTENTION
    ):
        raise Invalid(f"{row.email} does not need relinking.")
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before relinking its mailboxes.")
    now = utcnow()
    requeue(row, now)
    row.requested_at = now
    record(
        session,
        actor,
        "ec.relink_requested",
        target_type="mailbox_request",
        target_id=row.id,
        target_label=row.email,
        detail={"attention": profile.attention.value if profile.attention else None},
    )
    session.commit()
    jobs.enqueue("enterprise.send_batches", row.service_account_link_id)
    return row


def requeue(row: MailboxRequest, now) -> None:
    row.status = MailboxStatus.QUEUED
    row.claim = None
    row.state_hash = None
    row.state_used_at = None
    row.error_key = row.error_text = None
    row.sent_at = row.completed_at = None
    row.attempts = 0
    row.updated_at = now


def retry_failed(session: Session, actor: Actor, link_id: int, *, jobs: JobQueue) -> int:
    """Queue every failed mailbox of the domain again (and the sending job); returns how
    many."""
    require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before retrying.")
    rows = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.status == MailboxStatus.FAILED,
            )
        )
    )
    now = utcnow()
    for row in rows:
        requeue(row, now)
    record(
        session,
        actor,
        "ec.retry",
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        detail={"mailboxes": len(rows)},
    )
    session.commit()
    if rows:
        jobs.enqueue("enterprise.send_batches", link.id)
    return len(rows)
