"""The load ledger: who sits on which interview Rendezvous booked, and when it starts.

Written (``write``) in the transaction that commits a booking (``booking.commit_interview``),
moved with the interview (``rescheduling``), and purged 29 days after the interview's time:
longer than any limit (a week) or the fairness window looks back. A cancelled interview stops
counting at once (the picker counts live interviews only) and its rows go with the purge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from models import InterviewLoad, utcnow
from webapp.services import rowcount

#: Rows are kept this long after their interview's start.
KEEP = dt.timedelta(days=29)


def write(
    session: Session,
    organisation_id: int,
    interview_id: int,
    user_ids: Iterable[int],
    start: dt.datetime,
    picked_from: Mapping[int, int] | None = None,
    *,
    shadow: bool = False,
) -> None:
    """One row per person on the interview (``picked_from``: user id → the pool they were
    picked from; ``shadow``: they sit in as a shadow). The caller commits, with the booking."""
    picked_from = picked_from or {}
    now = utcnow()
    for user_id in dict.fromkeys(user_ids):
        session.add(
            InterviewLoad(
                organisation_id=organisation_id,
                interview_id=interview_id,
                user_id=user_id,
                pool_id=picked_from.get(user_id),
                is_shadow=shadow,
                starts_at=start,
                booked_at=now,
            )
        )


def move(session: Session, interview_id: int, start: dt.datetime) -> None:
    """The interview now starts at ``start``. The caller commits."""
    session.execute(
        update(InterviewLoad)
        .where(InterviewLoad.interview_id == interview_id)
        .values(starts_at=start)
    )


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Delete rows of interviews that started over ``KEEP`` ago; commit; how many went."""
    cutoff = (now or utcnow()) - KEEP
    result = session.execute(delete(InterviewLoad).where(InterviewLoad.starts_at < cutoff))
    session.commit()
    return rowcount(result)
