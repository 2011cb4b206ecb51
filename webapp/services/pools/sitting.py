"""Shadows (trainees) sitting in on our interviews (``InterviewLoad.is_shadow``): who of a
pool's shadows is free at a booking's time (``ask_free``: one availability call, the shadows as a
``required: 1`` group; Cronofy has no optional participant, so they are never part of the
panel's own call), who is brought (``choose``: the least loaded under their own limits, clear of
our pending bookings), and seating them (``seat``: their time claimed in a savepoint, a ledger
row flagged shadow, an invitation), which never refuses the booking.

A shadow sitting in on an interview follows it when it moves,
only where they are still free: the aggregator says so for exactly the new time (one
availability call, the shadow as a ``required: 1`` group, the interview's buffers), they are
under their own limits there, and their time can be claimed (in a savepoint: another booking
holding it leaves the shadow out, never the move). Otherwise the shadow is left out of the moved
event and the ledger: a shadow never holds a move back, and is never double booked by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from concurrent.futures import Future

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
from webapp.services.pools import ledger, picking
from webapp.services.scheduling.content import Content


def ask_free(
    broker: CalendarBroker,
    pool: Pool,
    shadows: Sequence[model.PanelMember],
    start: dt.datetime,
    duration: int,
    before: int = 0,
    after: int = 0,
) -> Future | None:
    """Ask, in the background, which of ``shadows`` is free at exactly ``start`` (the answer:
    their subs, or None); None when there is nobody to ask about."""
    if not shadows:
        return None
    query = model.Query(
        panel_link_ids=(), duration=duration, buffer_before=before, buffer_after=after
    )
    ask = model.PoolAsk(pool, 1, tuple(shadows))
    return free_slots.pool().submit(free_slots.free_at, broker, [], query, start, asks=(ask,))


def answer(future: Future | None) -> frozenset[str]:
    """The subs ``ask_free`` found free (none when the call failed: a shadow is optional)."""
    if future is None:
        return frozenset()
    try:
        return future.result() or frozenset()
    except ServiceError:
        return frozenset()


def choose(
    session: Session,
    organisation_id: int,
    pool: Pool,
    shadows: Sequence[model.PanelMember],
    free: Collection[str],
    start: dt.datetime,
    duration: int,
    before: int,
    after: int,
    on_panel: Collection[int],
    avoid: Collection[int] = (),
) -> tuple[model.PanelMember, tuple[picking.Pick, ...]] | None:
    """The shadow to bring among those free (``free``: subs), by load under their own limits,
    clear of our pending bookings; ``avoid``: others first (spread over the shadows). Call
    after ``picking.lock_people`` on them."""
    shared = Counter(m.link.aggregator_sub for m in shadows)
    by_sub = {m.link.aggregator_sub: m for m in shadows if shared[m.link.aggregator_sub] == 1}
    subs = [s for s in free if s in by_sub]
    if not subs:
        return None
    end = start + dt.timedelta(minutes=duration)
    held = claims.held(session, organisation_id, [by_sub[s].link.sub for s in subs], start, end)
    free_ids = {
        by_sub[s].user.id
        for s in subs
        if not held.clashes([by_sub[s].link.sub], start, end, before=before, after=after)
    }
    for exclude in ({*on_panel, *avoid}, set(on_panel)):
        picks = picking.pick_from_pool(
            session, pool, free_ids, 1, start, exclude_user_ids=exclude, shadows=True
        )
        chosen = picking.picked(picks)
        if chosen:
            member = next(m for m in shadows if m.user.id == chosen[0].user_id)
            return member, tuple(picks)
    return None


def seat(
    session: Session,
    organisation_id: int,
    interview_id: int,
    member: model.PanelMember,
    pool_id: int,
    content: Content,
    before: int = 0,
    after: int = 0,
    seen: set[tuple[str, dt.datetime]] | None = None,
) -> Content | None:
    """Seat the shadow on the interview in the booking's transaction (a savepoint): their time
    claimed (less ``seen``: buckets this booking's other sessions gave them already), a ledger
    row flagged shadow, and ``content`` with their invitation; None, with nothing kept, when
    another booking holds their time meanwhile."""
    minutes = int((content.end - content.start).total_seconds() // 60)
    hold = claims.hold_of([member.link.sub], content.start, minutes, before=before, after=after)
    seen = seen if seen is not None else set()
    rows = [
        {
            "organisation_id": organisation_id,
            "interview_id": interview_id,
            "sub": member.link.sub,
            "bucket_start": bucket,
            "starts_at": hold.start,
            "ends_at": hold.end,
        }
        for bucket in hold.buckets()
        if (member.link.sub, bucket) not in seen
    ]
    try:
        with session.begin_nested():
            if rows:
                session.execute(insert(SlotClaim), rows)
            ledger.write(
                session,
                organisation_id,
                interview_id,
                [member.user.id],
                content.start,
                {member.user.id: pool_id},
                shadow=True,
            )
            session.flush()
    except IntegrityError:
        return None
    seen |= {(member.link.sub, bucket) for bucket in hold.buckets()}
    invited = (*content.attendees, (member.email, member.user.name))
    return dataclasses.replace(content, attendees=invited)


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
