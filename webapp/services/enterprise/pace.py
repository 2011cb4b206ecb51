"""How long a domain's waiting mailbox requests will take at the current pace (mailbox page).

The pace is observed from what is already stored: each request's ``completed_at`` (when it was
linked or failed). Over the last :data:`WINDOW`, answered requests ÷ the time they took is the
rate; the waiting ones (queued or pending) ÷ that rate is the estimate. While nothing has been
answered in that window (a fresh start), the estimate comes from the aggregator budget left to
background work instead (the background lane's per-minute cap ÷ :data:`CALLS_PER_MAILBOX`),
which is the best case: other domains share that budget.

Organisations share the background lane fairly (``broker.ratelimit.tenant``): while other
organisations have background work waiting (mailbox requests queued or awaiting their answer,
revocations due) or are asking for budget now, this organisation gets an equal part of the
lane. The budget estimate then uses that part, and an observed pace faster than it (measured
while the organisation had the lane to itself) is held to it; the page says so. Nothing is
stored; other organisations are only counted, never named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    PendingRevocation,
    ServiceAccountLink,
)
from webapp.services.enterprise.sending import BATCH_SIZE

#: How far back answered requests count towards the observed pace.
WINDOW = timedelta(minutes=10)
#: Aggregator calls one mailbox costs: its share of a batch request, the code exchange of its
#: callback and the choice of its interview calendar.
CALLS_PER_MAILBOX = 2 + 1 / BATCH_SIZE

Basis = Literal["done", "observed", "budget", "unknown"]


@dataclass(frozen=True)
class Pace:
    waiting: int
    basis: Basis
    per_minute: float | None = None  # mailboxes a minute (observed, or the budget's best case)
    seconds_left: int | None = None
    sharing: int = 1  # organisations sharing the background lane now, this one included
    held_to_share: bool = False  # the observed pace was faster than the fair share allows

    @property
    def text(self) -> str:
        """The sentence the page shows ("" when nothing is waiting)."""
        if self.basis == "done":
            return ""
        if self.basis == "unknown" or self.seconds_left is None or self.per_minute is None:
            return "No estimate yet: no mailbox has been answered in the last 10 minutes."
        rate = f"{self.per_minute:.0f}" if self.per_minute >= 10 else f"{self.per_minute:.1f}"
        others = self.sharing - 1
        shared = (
            f"{others} other organisation{'' if others == 1 else 's'} "
            f"{'has' if others == 1 else 'have'} background work waiting, so the calendar "
            f"service's budget is shared equally ({_part(self.sharing)} of it is yours)"
        )
        if self.basis == "observed" and self.held_to_share:
            return (
                f"{_duration(self.seconds_left).capitalize()} to go at your organisation's fair "
                f"share ({rate} mailboxes a minute): {shared}."
            )
        if self.basis == "observed":
            return (
                f"{_duration(self.seconds_left).capitalize()} to go at the current pace "
                f"({rate} mailboxes a minute over the last 10 minutes)."
            )
        if others:
            return (
                f"At best {_duration(self.seconds_left)} to go: no mailbox has been answered in "
                f"the last 10 minutes yet, so this estimate uses your organisation's share of "
                f"the budget for background work ({rate} mailboxes a minute): {shared}."
            )
        return (
            f"At best {_duration(self.seconds_left)} to go: no mailbox has been answered in "
            f"the last 10 minutes yet, so this estimate uses the calendar service's budget for "
            f"background work ({rate} mailboxes a minute), which other domains share."
        )


def _part(sharing: int) -> str:
    return {2: "half", 3: "a third", 4: "a quarter"}.get(sharing, f"1/{sharing}")


def _duration(seconds: int) -> str:
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'' if minutes == 1 else 's'}"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} hour{'' if hours == 1 else 's'} {minutes} min"


def sharing_organisations(
    session: Session, organisation_id: int, *, now: datetime, asking: int = 0
) -> int:
    """How many organisations share the background lane now, this one included: those with
    background work waiting (mailbox requests queued or awaiting their answer, revocations
    due), or ``asking`` (the rate limiter's count of those asking for budget), whichever is
    more. A count only."""
    waiting = select(MailboxRequest.organisation_id).where(
        MailboxRequest.status.in_([MailboxStatus.QUEUED, MailboxStatus.PENDING])
    )
    due = select(PendingRevocation.organisation_id).where(
        PendingRevocation.organisation_id.is_not(None),
        PendingRevocation.refused_at.is_(None),
        PendingRevocation.next_attempt_at <= now,
    )
    orgs = set(session.scalars(waiting.distinct())) | set(session.scalars(due.distinct()))
    return max(len(orgs | {organisation_id}), asking, 1)


def pace_of(
    session: Session,
    link_id: int,
    *,
    now: datetime,
    background_per_minute: int | None,
    asking: int = 0,
) -> Pace:
    """The expected time for the domain ``link_id``'s waiting mailboxes (read-only).
    ``background_per_minute`` is the background lane's per-minute cap (None: unknown);
    ``asking`` the organisations the rate limiter sees asking for background budget now."""
    mailboxes = (
        MailboxRequest.service_account_link_id == link_id,
        MailboxRequest.kind == MailboxKind.MAILBOX,
    )
    waiting = session.scalar(
        select(func.count(MailboxRequest.id)).where(
            *mailboxes,
            MailboxRequest.status.in_([MailboxStatus.QUEUED, MailboxStatus.PENDING]),
        )
    )
    if not waiting:
        return Pace(0, "done", seconds_left=0)
    organisation_id = session.scalar(
        select(ServiceAccountLink.organisation_id).where(ServiceAccountLink.id == link_id)
    )
    sharing = (
        1
        if organisation_id is None
        else sharing_organisations(session, organisation_id, now=now, asking=asking)
    )
    fair = background_per_minute / sharing / CALLS_PER_MAILBOX if background_per_minute else None
    answered, oldest = session.execute(
        select(func.count(MailboxRequest.id), func.min(MailboxRequest.completed_at)).where(
            *mailboxes,
            MailboxRequest.status.in_([MailboxStatus.LINKED, MailboxStatus.FAILED]),
            MailboxRequest.completed_at > now - WINDOW,
            MailboxRequest.completed_at <= now,
        )
    ).one()
    if answered and oldest is not None:
        if oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=now.tzinfo)
        # at least a minute: a handful answered seconds ago is no steady pace yet
        span = max((now - oldest).total_seconds(), 60.0)
        per_minute = answered * 60 / span
        basis: Basis = "observed"
        # faster than the fair share allows now that others wait: it will not stay that fast
        held = sharing > 1 and fair is not None and per_minute > fair
        if held and fair is not None:
            per_minute = fair
    elif fair is not None:
        per_minute, basis, held = fair, "budget", False
    else:
        return Pace(int(waiting), "unknown", sharing=sharing)
    seconds = round(waiting * 60 / per_minute)
    return Pace(int(waiting), basis, per_minute, seconds, sharing=sharing, held_to_share=held)
