"""Revoking authorizations at the aggregator in bulk, durably.

Disconnecting a domain (or resetting an integration) deletes every token at once, locally, in
the admin's request, and queues each authorization's ``sub`` here in the same transaction.
``run`` then revokes them at the pace the aggregator allows: accounts by sub (documented; the
application's own credentials, no token needed), a service account by its refresh token, which
the disconnect moved here (revoking a ``ser_…`` or a room's sub is unconfirmed; a room's token
is never kept, so a room goes by sub). A 429 stops the run and says when to go on; an outage is
tried again later with a growing pause, at most ``MAX_ATTEMPTS`` times; a refusal (the
aggregator answered 4xx) is not retried. Either way a revocation given up on is marked as
needing attention, audited, and shown to the IT admin, who may try it again or confirm it was
revoked elsewhere. A row is deleted once the aggregator confirms (or says the authorization is
already gone), so a worker that dies loses nothing: the periodic job picks up what is left.

Several runs may meet (the job the admin's request queued and the every-minute resume job, on a
consumer with several workers or processes): each run claims the rows it works on first, by
moving their next attempt past a lease in one conditional update per row, so each authorization
is revoked, and audited, by one run only. A run that dies holds its rows until the lease ends.

Each call counts against the fair share of the background lane of the organisation the
authorization belonged to (``broker.ratelimit.tenant``), like that organisation's bulk linking:
one organisation's mass disconnect cannot hold more than its share while others have work.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.ratelimit import tenant as rate_tenant
from models import PendingRevocation, ProfileLink, Role, utcnow
from webapp.security import DecryptionFailed, Sealed, TokenCipher
from webapp.services import Actor, JobQueue, in_batches
from webapp.services.audit import record
from webapp.services.errors import Forbidden, NotFound, ReconnectNeeded

log = logging.getLogger("webapp.services.revocations")

#: Rows taken per database round trip.
BATCH = 100
#: Longest pause between two attempts at one sub.
MAX_BACKOFF = timedelta(hours=1)
#: Failed attempts (outages, timeouts) before a revocation is given up on and shown to the
#: admin: about six hours of growing pauses.
MAX_ATTEMPTS = 12
TABLE = PendingRevocation.__tablename__
#: How long a run holds the rows it claimed (far longer than a batch takes at the aggregator's
#: pace); rows of a run that died are taken up again after it.
LEASE = timedelta(minutes=5)


def queue(
    session: Session,
    subs: Iterable[str | None],
    *,
    organisation_id: int | None,
    reason: str,
    tokens: Mapping[str, str] | None = None,
    cipher: TokenCipher | None = None,
) -> int:
    """Queue these subs for revocation (not committed: the caller's transaction does that, so
    the tokens' deletion and the queue entries land together). Returns how many were new.

    ``tokens`` maps a sub to the refresh token to revoke it with (kept encrypted with
    ``cipher`` until revoked); subs without one are revoked by sub."""
    wanted = {s for s in subs if s}
    if not wanted:
        return 0
    known = set()
    listed = sorted(wanted)
    for batch in in_batches(listed):
        known |= set(
            session.scalars(select(PendingRevocation.sub).where(PendingRevocation.sub.in_(batch)))
        )
    now = utcnow()
    fresh = [s for s in listed if s not in known]
    session.add_all(
        PendingRevocation(
            organisation_id=organisation_id,
            sub=s,
            reason=reason[:40],
            requested_at=now,
            next_attempt_at=now,
            attempts=0,
        )
        for s in fresh
    )
    held = {s: t for s, t in (tokens or {}).items() if s in wanted and t}
    if held:
        if cipher is None:
            raise ValueError("tokens to keep need the cipher")
        session.flush()  # row ids bind the ciphertext to its row
        for row in session.scalars(
            select(PendingRevocation).where(PendingRevocation.sub.in_(sorted(held)))
        ):
            sealed = cipher.encrypt(
                held[row.sub], table=TABLE, column="refresh_token", row_id=row.id
            )
            row.refresh_token, row.key_id = sealed.blob, sealed.key_id
    return len(fresh)


def revoke_or_queue(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link: ProfileLink,
    *,
    organisation_id: int | None,
    reason: str,
) -> bool:
    """Revoke a link's whole authorization at the aggregator now (call before its tokens are
    forgotten); if the aggregator did not take it (no budget, busy, down, no broker), queue it
    here with its refresh token (by its sub when the token cannot be read) so it is never
    dropped. True if revoked now, False if queued (not committed: the caller's transaction
    does that; the every-minute resume job runs it if the caller queues no run). A link
    without tokens has nothing to revoke: True."""
    from webapp.services import credentials

    if not link.has_tokens:
        return True
    try:
        token: str | None = credentials.load_credentials(link, cipher).refresh_token
    except (ReconnectNeeded, DecryptionFailed):
        token = None  # then by its sub (an account: documented)
    if broker is not None and credentials.revoke_at_aggregator(
        broker, cipher, link, whole_account=True
    ):
        return True
    queue(
        session,
        [link.sub],
        organisation_id=organisation_id,
        reason=reason,
        tokens={link.sub: token} if token and link.sub else None,
        cipher=cipher,
    )
    return False


def cancel(session: Session, sub: str | None) -> None:
    """The account was authorized again (same sub): the new authorization must not be revoked
    by an older queued request. Not committed; the caller's transaction does that."""
    if sub:
        session.execute(delete(PendingRevocation).where(PendingRevocation.sub == sub))


def pending(session: Session, organisation_id: int) -> int:
    return (
        session.scalar(
            select(func.count(PendingRevocation.id)).where(
                PendingRevocation.organisation_id == organisation_id
            )
        )
        or 0
    )


def needing_attention(session: Session, organisation_id: int) -> list[PendingRevocation]:
    """Revocations the aggregator refused or that kept failing: an admin must look."""
    return list(
        session.scalars(
            select(PendingRevocation)
            .where(
                PendingRevocation.organisation_id == organisation_id,
                PendingRevocation.refused_at.is_not(None),
            )
            .order_by(PendingRevocation.id)
        )
    )


def kind_of(sub: str) -> str:
    """What a sub names, for people: the service account, a room, or a calendar account."""
    return {"ser_": "service account", "res_": "room"}.get(sub[:4], "calendar account")


def _attention_row(session: Session, actor: Actor, revocation_id: int) -> PendingRevocation:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only IT admins manage revocations.")
    row = session.get(PendingRevocation, revocation_id)
    if row is None or row.organisation_id != actor.organisation_id or row.refused_at is None:
        raise NotFound("There is no such revocation needing attention.")
    return row


def try_again(
    session: Session, actor: Actor, revocation_id: int, *, jobs: JobQueue
) -> PendingRevocation:
    """Put a revocation given up on back in the queue and queue the ``revocations.run`` job."""
    row = _attention_row(session, actor, revocation_id)
    row.refused_at, row.attempts, row.next_attempt_at = None, 0, utcnow()
    record(
        session,
        actor,
        "calendar.revoke_retried",
        target_type="pending_revocation",
        target_id=row.id,
        detail={"kind": kind_of(row.sub)},
    )
    session.commit()
    jobs.enqueue("revocations.run")
    return row


def resolved_elsewhere(session: Session, actor: Actor, revocation_id: int) -> None:
    """The admin revoked it at the aggregator by other means: forget it (and its token)."""
    row = _attention_row(session, actor, revocation_id)
    record(
        session,
        actor,
        "calendar.revoke_resolved_elsewhere",
        target_type="pending_revocation",
        target_id=row.id,
        detail={"kind": kind_of(row.sub), "last_error": row.last_error},
    )
    session.delete(row)
    session.commit()


@dataclass
class RunReport:
    revoked: int = 0
    failed: int = 0
    #: Given up on in this run (refused, or failed ``MAX_ATTEMPTS`` times): needs attention.
    refused: int = 0
    #: Seconds to wait before going on (the aggregator rate-limited us), or None when done.
    retry_in: float | None = None
    by_organisation: Counter = field(default_factory=Counter)


def _backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=30 * 2 ** min(attempts, 10)))


def _claim(session: Session, moment: datetime, size: int) -> list[PendingRevocation]:
    """Take up to ``size`` due rows for this run. The due condition is checked again in each
    row's update, so of two runs that read the same rows only one gets each (PostgreSQL makes
    the second update wait for the first and re-check; SQLite writes one at a time)."""
    due = list(
        session.scalars(
            select(PendingRevocation)
            .where(
                PendingRevocation.next_attempt_at <= moment, PendingRevocation.refused_at.is_(None)
            )
            .order_by(PendingRevocation.id)
            .limit(size)
        )
    )
    held_until = max(moment, utcnow()) + LEASE
    mine = []
    for row in due:
        taken = cast(
            CursorResult,
            session.execute(
                update(PendingRevocation)
                .where(PendingRevocation.id == row.id, PendingRevocation.next_attempt_at <= moment)
                .values(next_attempt_at=held_until)
                .execution_options(synchronize_session=False)
            ),
        )
        if taken.rowcount:
            set_committed_value(row, "next_attempt_at", held_until)
            mine.append(row)
    session.commit()
    return mine


def _token(row: PendingRevocation, cipher: TokenCipher | None) -> str | None:
    """The refresh token kept for this row, or None (then the sub is used)."""
    if row.refresh_token is None:
        return None
    if cipher is None:
        raise ValueError("queued tokens need the cipher to be revoked")
    try:
        return cipher.decrypt(
            Sealed(row.key_id or "", row.refresh_token),
            table=TABLE,
            column="refresh_token",
            row_id=row.id,
        )
    except DecryptionFailed:
        log.warning("queued revocation %s: its token cannot be decrypted; revoking by sub", row.id)
        return None


def _give_up(session: Session, row: PendingRevocation, exc: Exception, *, refused: bool) -> None:
    """No more automatic attempts: the admin sees it on the Enterprise Connect tab."""
    row.refused_at = utcnow()
    row.last_error = type(exc).__name__[:64]
    status = getattr(exc, "status", None)
    record(
        session,
        None,
        "calendar.revoke_refused" if refused else "calendar.revoke_gave_up",
        organisation_id=row.organisation_id,
        outcome="failure",
        target_type="pending_revocation",
        target_id=row.id,
        detail={
            "kind": kind_of(row.sub),
            "by": "token" if row.refresh_token else "sub",
            "error": row.last_error,
            "status": status,
            "attempts": row.attempts,
        },
    )


def run(
    session: Session,
    broker: CalendarBroker,
    *,
    cipher: TokenCipher | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> RunReport:
    """Revoke every due queued authorization (at most ``limit``); safe to run twice or
    concurrently: each row is claimed by one run before it goes to the aggregator."""
    report = RunReport()
    done = 0
    while limit is None or done < limit:
        rows = _claim(
            session, now or utcnow(), BATCH if limit is None else min(BATCH, limit - done)
        )
        if not rows:
            break
        for position, row in enumerate(rows):
            done += 1
            try:
                token = _token(row, cipher)
                # background work for the row's organisation: its fair share of the lane
                with rate_tenant(row.organisation_id):
                    if token is not None:
                        broker.revoke(token)  # the documented way (RFC 7009: 200 even if gone)
                    else:
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
            except (broker_errors.Invalid, broker_errors.Forbidden) as exc:
                # The aggregator answered and said no (e.g. a sub it will not revoke): asking
                # again would get the same answer.
                row.attempts += 1
                _give_up(session, row, exc, refused=True)
                report.failed += 1
                report.refused += 1
                log.warning("the aggregator refused a queued revocation (%s)", type(exc).__name__)
                continue
            except broker_errors.BrokerError as exc:
                row.attempts += 1
                row.last_error = type(exc).__name__[:64]
                row.next_attempt_at = utcnow() + _backoff(row.attempts)
                report.failed += 1
                if row.attempts >= MAX_ATTEMPTS:
                    _give_up(session, row, exc, refused=False)
                    report.refused += 1
                log.warning(
                    "revoking a queued authorization failed (%s); attempt %d",
                    type(exc).__name__,
                    row.attempts,
                )
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
            record(
                session,
                None,
                "calendar.revoked_in_bulk",
                organisation_id=organisation_id,
                target_type="organisation",
                target_id=organisation_id,
                detail={"revoked": count, "still_queued": pending(session, organisation_id)},
            )
    report.by_organisation.clear()
    session.commit()
