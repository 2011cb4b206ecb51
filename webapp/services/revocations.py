"""Revoking authorizations at the aggregator in bulk, durably.

Disconnecting a domain (or resetting an integration) deletes every token at once, locally, in
the admin's request, and queues each authorization's ``sub`` here in the same transaction.
``run`` then revokes them by sub (the application's own credentials; no token needed) at the
pace the aggregator allows: a 429 stops the run and says when to go on, other failures are
tried again later with a growing pause. A row is deleted once the aggregator confirms (or says
the authorization is already gone), so a worker that dies loses nothing: the periodic job picks
up what is left.

Several runs may meet (the job the admin's request queued and the every-minute resume job, on a
consumer with several workers or processes): each run claims the rows it works on first, by
moving their next attempt past a lease in one conditional update per row, so each authorization
is revoked, and audited, by one run only. A run that dies holds its rows until the lease ends.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from broker import errors as broker_errors
from broker.port import CalendarBroker
from models import PendingRevocation, utcnow
from webapp.services import in_batches
from webapp.services.audit import record

log = logging.getLogger("webapp.services.revocations")

#: Rows taken per database round trip.
BATCH = 100
#: Longest pause between two attempts at one sub.
MAX_BACKOFF = timedelta(hours=1)
#: How long a run holds the rows it claimed (far longer than a batch takes at the aggregator's
#: pace); rows of a run that died are taken up again after it.
LEASE = timedelta(minutes=5)


def queue(session: Session, subs: Iterable[str | None], *, organisation_id: int | None,
          reason: str) -> int:
    """Queue these subs for revocation (not committed: the caller's transaction does that, so
    the tokens' deletion and the queue entries land together). Returns how many were new."""
    wanted = {s for s in subs if s}
    if not wanted:
        return 0
    known = set()
    listed = sorted(wanted)
    for batch in in_batches(listed):
        known |= set(session.scalars(select(PendingRevocation.sub).where(
            PendingRevocation.sub.in_(batch))))
    now = utcnow()
    fresh = [s for s in listed if s not in known]
    session.add_all(PendingRevocation(organisation_id=organisation_id, sub=s, reason=reason[:40],
                                      requested_at=now, next_attempt_at=now, attempts=0)
                    for s in fresh)
    return len(fresh)


def cancel(session: Session, sub: str | None) -> None:
    """The account was authorized again (same sub): the new authorization must not be revoked
    by an older queued request. Not committed; the caller's transaction does that."""
    if sub:
        session.execute(delete(PendingRevocation).where(PendingRevocation.sub == sub))


def pending(session: Session, organisation_id: int) -> int:
    return session.scalar(select(func.count(PendingRevocation.id)).where(
        PendingRevocation.organisation_id == organisation_id)) or 0


@dataclass
class RunReport:
    revoked: int = 0
    failed: int = 0
    #: Seconds to wait before going on (the aggregator rate-limited us), or None when done.
    retry_in: float | None = None
    by_organisation: Counter = field(default_factory=Counter)


def _backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=30 * 2 ** min(attempts, 10)))


def _claim(session: Session, moment: datetime, size: int) -> list[PendingRevocation]:
    """Take up to ``size`` due rows for this run. The due condition is checked again in each
    row's update, so of two runs that read the same rows only one gets each (PostgreSQL makes
    the second update wait for the first and re-check; SQLite writes one at a time)."""
    due = list(session.scalars(
        select(PendingRevocation).where(PendingRevocation.next_attempt_at <= moment)
        .order_by(PendingRevocation.id).limit(size)))
    held_until = max(moment, utcnow()) + LEASE
    mine = []
    for row in due:
        taken = session.execute(
            update(PendingRevocation)
            .where(PendingRevocation.id == row.id, PendingRevocation.next_attempt_at <= moment)
            .values(next_attempt_at=held_until)
            .execution_options(synchronize_session=False))
        if taken.rowcount:
            set_committed_value(row, "next_attempt_at", held_until)
            mine.append(row)
    session.commit()
    return mine


def run(session: Session, broker: CalendarBroker, *, limit: int | None = None,
        now: datetime | None = None) -> RunReport:
    """Revoke every due queued sub (at most ``limit``); safe to run twice or concurrently:
    each row is claimed by one run before its sub goes to the aggregator."""
    report = RunReport()
    done = 0
    while limit is None or done < limit:
        rows = _claim(session, now or utcnow(), BATCH if limit is None else min(BATCH, limit - done))
        if not rows:
            break
        for position, row in enumerate(rows):
            done += 1
            try:
                broker.revoke_sub(row.sub)
            except broker_errors.NotFound:
                pass  # nothing left to revoke: that is the goal
            except broker_errors.RateLimited as exc:
                report.retry_in = max(1.0, float(getattr(exc, "retry_after", None) or 2.0))
                for untried in rows[position:]:  # handed back, due again at once
                    untried.next_attempt_at = utcnow()
                session.commit()
                _audit(session, report)
                return report
            except broker_errors.BrokerError as exc:
                row.attempts += 1
                row.last_error = type(exc).__name__[:64]
                row.next_attempt_at = utcnow() + _backoff(row.attempts)
                report.failed += 1
                log.warning("revoking a queued authorization failed (%s); attempt %d",
                            type(exc).__name__, row.attempts)
                continue
            session.execute(delete(PendingRevocation).where(PendingRevocation.id == row.id))
            report.revoked += 1
            report.by_organisation[row.organisation_id] += 1
        session.commit()
    _audit(session, report)
    return report


def _audit(session: Session, report: RunReport) -> None:
    for organisation_id, count in report.by_organisation.items():
        if organisation_id is not None:
            record(session, None, "calendar.revoked_in_bulk", organisation_id=organisation_id,
                   target_type="organisation", target_id=organisation_id,
                   detail={"revoked": count, "still_queued": pending(session, organisation_id)})
    report.by_organisation.clear()
    session.commit()
