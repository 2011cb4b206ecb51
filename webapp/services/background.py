"""Background work waiting, per job type, and the periodic passes falling behind: one definition
for /metrics (the whole installation) and the Enterprise Connect page (one organisation), so
both say the same thing in the same words.

Each job type counts the work its job still has to do, from the rows that job works through
(not the queue's messages, which say nothing of how much one job has left):

* ``mailboxes_to_send`` (``enterprise.send_batches``): mailbox and room requests queued;
* ``mailboxes_awaiting_answer`` (the aggregator's callbacks, then
  ``enterprise.choose_calendar``): requests sent, their answer not in yet;
* ``codes_to_redeem`` (``enterprise.redeem_code``): answers in, their codes not redeemed yet;
* ``revocations`` (``revocations.run``): authorizations still to revoke (not given up on);
* ``reconciliation`` (``scheduling.reconcile_events``): interviewing calendars the current
  reconciliation pass has still to read.

A paced pass is *falling behind* when it is overdue now or its last pass finished late
(``webapp.services.pacing``). Counts and task names only: nothing names a person or calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import MailboxRequest, MailboxStatus, PendingRevocation, ProfileLink, utcnow
from webapp.services import pacing
from webapp.services.scheduling import sync

#: (kind, the job doing it, what the page calls it), in the order shown.
JOB_TYPES: tuple[tuple[str, str, str], ...] = (
    ("mailboxes_to_send", "enterprise.send_batches", "Mailbox and room requests to send"),
    (
        "mailboxes_awaiting_answer",
        "enterprise.choose_calendar",
        "Requests sent, awaiting the calendar service's answer",
    ),
    ("codes_to_redeem", "enterprise.redeem_code", "Answers received, their codes to redeem"),
    ("revocations", "revocations.run", "Authorizations to revoke"),
    ("reconciliation", sync.RECONCILE_TASK, "Calendars left to check in this reconciliation pass"),
)

#: What the page calls each paced pass.
PASS_LABELS = {sync.RECONCILE_TASK: "Reconciliation (interview events checked against calendars)"}


@dataclass(frozen=True)
class Waiting:
    kind: str
    task: str
    label: str
    count: int


@dataclass(frozen=True)
class Behind:
    task: str
    label: str
    running: bool
    lag_seconds: int

    @property
    def text(self) -> str:
        minutes = max(1, round(self.lag_seconds / 60))
        late = f"{minutes} minute{'' if minutes == 1 else 's'}"
        if self.running:
            return (
                f"{self.label} is falling behind: its pass is {late} past its period and goes "
                "on as the calendar service's budget allows."
            )
        return (
            f"{self.label} is falling behind: its last pass finished {late} after its period ended."
        )


def waiting(
    session: Session,
    store: pacing.PassStore,
    organisation_id: int | None = None,
    *,
    now: datetime | None = None,
) -> list[Waiting]:
    """Work waiting per job type: one organisation's, or the whole installation's (None)."""
    now = now or utcnow()

    def mine(column):
        return () if organisation_id is None else (column == organisation_id,)

    def requests(status: MailboxStatus, *where) -> int:
        return (
            session.scalar(
                select(func.count(MailboxRequest.id)).where(
                    MailboxRequest.status == status,
                    *where,
                    *mine(MailboxRequest.organisation_id),
                )
            )
            or 0
        )

    revoking = (
        session.scalar(
            select(func.count(PendingRevocation.id)).where(
                PendingRevocation.refused_at.is_(None), *mine(PendingRevocation.organisation_id)
            )
        )
        or 0
    )
    counts = {
        "mailboxes_to_send": requests(MailboxStatus.QUEUED),
        "mailboxes_awaiting_answer": requests(
            MailboxStatus.PENDING, MailboxRequest.state_used_at.is_(None)
        ),
        "codes_to_redeem": requests(
            MailboxStatus.PENDING, MailboxRequest.state_used_at.is_not(None)
        ),
        "revocations": revoking,
        "reconciliation": _left_to_reconcile(session, store, organisation_id),
    }
    return [Waiting(kind, task, label, counts[kind]) for kind, task, label in JOB_TYPES]


def _left_to_reconcile(
    session: Session, store: pacing.PassStore, organisation_id: int | None
) -> int:
    """Interviewing calendars after the current pass's cursor (none while no pass runs)."""
    raw = store.state(f"pass:{sync.RECONCILE_TASK}")
    if not raw or raw.get("finished_at"):
        return 0
    cursor = raw.get("cursor") or 0
    links = sync.interviewing_links().where(ProfileLink.id > cursor)
    if organisation_id is not None:
        links = links.where(ProfileLink.organisation_id == organisation_id)
    return session.scalar(select(func.count()).select_from(links.subquery())) or 0


def behind(store: pacing.PassStore, *, now: datetime | None = None) -> list[Behind]:
    """The paced passes falling behind (installation-wide: the budget is shared)."""
    return [
        Behind(s.name, PASS_LABELS.get(s.name, s.name), s.running, s.lag_seconds)
        for s in pacing.status(store, now=now)
        if s.behind
    ]
