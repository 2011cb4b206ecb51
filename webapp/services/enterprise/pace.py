"""How long a domain's waiting mailbox requests will take at the current pace (mailbox page).

The pace is observed from what is already stored: each request's ``completed_at`` (when it was
linked or failed). Over the last :data:`WINDOW`, answered requests ÷ the time they took is the
rate; the waiting ones (queued or pending) ÷ that rate is the estimate. While nothing has been
answered in that window (a fresh start), the estimate comes from the aggregator budget left to
background work instead (the background lane's per-minute cap ÷ :data:`CALLS_PER_MAILBOX`),
which is the best case: other domains and organisations share that budget. Nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import MailboxKind, MailboxRequest, MailboxStatus
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

    @property
    def text(self) -> str:
        """The sentence the page shows ("" when nothing is waiting)."""
        if self.basis == "done":
            return ""
        if self.basis == "unknown" or self.seconds_left is None or self.per_minute is None:
            return "No estimate yet: no mailbox has been answered in the last 10 minutes."
        rate = f"{self.per_minute:.0f}" if self.per_minute >= 10 else f"{self.per_minute:.1f}"
        if self.basis == "observed":
            return (
                f"{_duration(self.seconds_left).capitalize()} to go at the current pace "
                f"({rate} mailboxes a minute over the last 10 minutes)."
            )
        return (
            f"At best {_duration(self.seconds_left)} to go: no mailbox has been answered in "
            f"the last 10 minutes yet, so this estimate uses the calendar service's budget for "
            f"background work ({rate} mailboxes a minute), which other domains share."
        )


def _duration(seconds: int) -> str:
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'' if minutes == 1 else 's'}"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} hour{'' if hours == 1 else 's'} {minutes} min"


def pace_of(
    session: Session, link_id: int, *, now: datetime, background_per_minute: int | None
) -> Pace:
    """The expected time for the domain ``link_id``'s waiting mailboxes (read-only).
    ``background_per_minute`` is the background lane's per-minute cap (None: unknown)."""
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
    elif background_per_minute:
        per_minute = background_per_minute / CALLS_PER_MAILBOX
        basis = "budget"
    else:
        return Pace(int(waiting), "unknown")
    return Pace(int(waiting), basis, per_minute, round(waiting * 60 / per_minute))
