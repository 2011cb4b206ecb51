"""A shadow sitting in on an interview (``InterviewLoad.is_shadow``) follows it when it moves,
only where they are still free: the aggregator says so for exactly the new time (one
availability call, the shadow as a ``required: 1`` group, the interview's buffers), they are
under their own limits there, and their time can be claimed (in a savepoint: another booking
holding it leaves the shadow out, never the move). Otherwise the shadow is left out of the moved
event and the ledger: a shadow never holds a move back, and is never double booked by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import (
    Interview,
    InterviewLoad,
    LinkStatus,
    Organisation,
    Pool,
    SlotClaim,
    User,
)
from webapp.services import claims
from webapp.services.availability import free_slots, model, roster
from webapp.services.connect import link_of
from webapp.services.errors import ServiceError
from webapp.services.pools import picking
from webapp.services.scheduling.content import Content


def _still_free(
    session: Session,
    broker: CalendarBroker,
    interview: Interview,
    row: InterviewLoad,
    start: dt.datetime,
    duration: int,
    before: int,
    after: int,
) -> model.PanelMember | None:
    """The shadow as a panel member, when they may sit in at the new time."""
    user = session.get(User, row.user_id)
    link = link_of(session, row.user_id)
    pool = session.get(Pool, row.pool_id) if row.pool_id is not None else None
    if (
        user is None
        or not user.active
        or link is None
        or link.status is not LinkStatus.ACTIVE
        or pool is None
        or pool.organisation_id != interview.organisation_id
        or user.organisation_id != interview.organisation_id
    ):
        return None
    org = session.get_one(Organisation, interview.organisation_id)
    member = model.PanelMember(link, user, roster.hours_for(session, [user], org)[user.id])
    query = model.Query(
        panel_link_ids=(), duration=duration, buffer_before=before, buffer_after=after
    )
    try:
        free = free_slots.free_at(
            broker, [], query, start, asks=(model.PoolAsk(pool, 1, (member,)),)
        )
    except ServiceError:
        return None
    if free is None or link.aggregator_sub not in free:
        return None
    picks = picking.pick_from_pool(
        session, pool, {user.id}, 1, start, shadows=True, ignore_interview=interview.id
    )
    return member if picking.picked(picks) else None


def follow_move(
    session: Session,
    broker: CalendarBroker,
    interview: Interview,
    content: Content,
    start: dt.datetime,
    duration: int,
    before: int = 0,
    after: int = 0,
) -> Content:
    """Keep the interview's shadows where they are still free at ``start`` (claimed), leave out
    the others (their ledger rows deleted, their invitation left out of ``content``). Call in the
    move's transaction, after its own claims; the caller commits."""
    rows = session.scalars(
        select(InterviewLoad).where(
            InterviewLoad.interview_id == interview.id, InterviewLoad.is_shadow.is_(True)
        )
    ).all()
    if not rows:
        return content
    attendees, removed = list(content.attendees), list(content.removed)
    for row in rows:
        member = _still_free(session, broker, interview, row, start, duration, before, after)
        if member is not None:
            hold = claims.hold_of([member.link.sub], start, duration, before=before, after=after)
            try:
                with session.begin_nested():
                    session.execute(
                        insert(SlotClaim),
                        [
                            {
                                "organisation_id": interview.organisation_id,
                                "interview_id": interview.id,
                                "sub": member.link.sub,
                                "bucket_start": bucket,
                                "starts_at": hold.start,
                                "ends_at": hold.end,
                            }
                            for bucket in hold.buckets()
                        ],
                    )
                continue
            except IntegrityError:
                pass  # held by another booking meanwhile: left out
        user = session.get(User, row.user_id)
        link = link_of(session, row.user_id)
        addresses = {
            a.lower() for a in (user.email if user else None, link and link.account_email) if a
        }
        attendees = [a for a in attendees if a[0].lower() not in addresses]
        removed += sorted(addresses)
        session.delete(row)
    session.flush()
    return dataclasses.replace(content, attendees=tuple(attendees), removed=tuple(removed))
