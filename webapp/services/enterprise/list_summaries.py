"""The summary of a pasted list or CSV file of mailboxes: how many were queued, how many lines
were not used per reason with the first few of each, and every unused line for download.

A list of thousands of lines answers with this summary, not a page of thousands of rows. The
unused lines are kept for :data:`TTL` (the summary page and its download read them), then
purged; they hold what the admin wrote, shortened, never anything of ours (no token, no state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from models import MailboxList, MailboxListLine, ServiceAccountLink, utcnow
from webapp.services import Actor, rowcount
from webapp.services.audit import record
from webapp.services.enterprise.address_list import MAX_LINE_SHOWN, shown, valid_email
from webapp.services.enterprise.domains import require_admin
from webapp.services.errors import NotFound

#: How long a summary and its unused lines are kept.
TTL = dt.timedelta(hours=24)
#: How many lines of each reason the summary page shows.
FIRST_ROWS = 5


class Unused(Protocol):
    """A line that was not used (``mailboxes.Rejected``)."""

    @property
    def email(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def address(self) -> str | None: ...


@dataclass(frozen=True)
class ReasonGroup:
    reason: str
    count: int
    first: tuple[MailboxListLine, ...]


@dataclass(frozen=True)
class Summary:
    list: MailboxList
    link: ServiceAccountLink
    groups: tuple[ReasonGroup, ...]
    expires_at: dt.datetime


def keep(
    session: Session, actor: Actor, link: ServiceAccountLink, queued: int, unused: Sequence[Unused]
) -> MailboxList:
    """Keep the summary of a list (not committed: the caller commits it with the requests)."""
    summary = MailboxList(
        organisation_id=link.organisation_id,
        service_account_link_id=link.id,
        sent_by_id=actor.user_id,
        queued=queued,
        rejected=len(unused),
        created_at=utcnow(),
    )
    session.add(summary)
    session.flush()
    if unused:
        session.execute(
            insert(MailboxListLine),
            [
                {
                    "mailbox_list_id": summary.id,
                    "line": item.line,
                    "email": _address(item),
                    "entry": shown(item.email)[:MAX_LINE_SHOWN] or "(empty)",
                    "reason": item.reason[:200],
                }
                for item in unused
            ],
        )
    return summary


def _address(item: Unused) -> str | None:
    if item.address:
        return item.address
    candidate = item.email.strip().lower()
    return candidate if valid_email(candidate) else None


def _kept(session: Session, actor: Actor, list_id: int, now: dt.datetime | None) -> MailboxList:
    require_admin(actor)
    found = session.get(MailboxList, list_id)
    if found is None or found.organisation_id != actor.organisation_id:
        raise NotFound("Your organisation has no such list.")
    if found.created_at <= (now or utcnow()) - TTL:
        raise NotFound(
            "This list's summary is no longer kept (summaries are kept for 24 hours). "
            "The mailboxes themselves are on the Enterprise Connect page."
        )
    return found


def summary(session: Session, actor: Actor, list_id: int, *, now=None) -> Summary:
    """The summary of one of the organisation's lists: counts per reason, first lines of each."""
    found = _kept(session, actor, list_id, now)
    counted = session.execute(
        select(MailboxListLine.reason, func.count(MailboxListLine.id))
        .where(MailboxListLine.mailbox_list_id == found.id)
        .group_by(MailboxListLine.reason)
        .order_by(func.count(MailboxListLine.id).desc(), MailboxListLine.reason)
    ).all()
    groups = []
    for reason, count in counted:
        first = session.scalars(
            select(MailboxListLine)
            .where(MailboxListLine.mailbox_list_id == found.id, MailboxListLine.reason == reason)
            .order_by(MailboxListLine.id)
            .limit(FIRST_ROWS)
        ).all()
        groups.append(ReasonGroup(reason, int(count), tuple(first)))
    link = session.get(ServiceAccountLink, found.service_account_link_id)
    assert link is not None  # the list is deleted with its domain
    return Summary(found, link, tuple(groups), found.created_at + TTL)


def unused_lines(
    session: Session, actor: Actor, list_id: int, *, now=None
) -> list[tuple[int | None, str, str]]:
    """(line, entry, reason) of every unused line of the list, in the list's order, for
    download (audited: the lines may name people)."""
    found = _kept(session, actor, list_id, now)
    lines = session.execute(
        select(MailboxListLine.line, MailboxListLine.entry, MailboxListLine.reason)
        .where(MailboxListLine.mailbox_list_id == found.id)
        .order_by(MailboxListLine.line.is_(None), MailboxListLine.line, MailboxListLine.id)
    ).all()
    record(
        session,
        actor,
        "ec.list_downloaded",
        target_type="mailbox_list",
        target_id=found.id,
        detail={"lines": len(lines)},
    )
    session.commit()
    return [(line, entry, reason) for line, entry, reason in lines]


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Delete summaries (and their lines) past :data:`TTL`; returns how many lists."""
    old = select(MailboxList.id).where(MailboxList.created_at <= (now or utcnow()) - TTL)
    session.execute(delete(MailboxListLine).where(MailboxListLine.mailbox_list_id.in_(old)))
    result = session.execute(delete(MailboxList).where(MailboxList.id.in_(old)))
    session.commit()
    return rowcount(result)
