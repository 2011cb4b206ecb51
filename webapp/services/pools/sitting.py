"""Shadows (trainees) sitting in on our interviews (``InterviewLoad.is_shadow``): who of a
pool's shadows is free at a booking's time (``ask_free``: one availability call, the shadows as a
``required: 1`` group; Cronofy has no optional participant, so they are never part of the
panel's own call), who is brought (``choose``: the least loaded under their own limits, clear of
our pending bookings), and seating them (``seat``: their time claimed in a savepoint, a ledger
row flagged shadow, an invitation), which never refuses the booking.

A shadow sitting in on an interview follows it when it moves, only where they may still sit in.
Whether they are free at exactly the new time is asked before the move's locked part
(``ask_moving``, one availability call each beside the panel's, the shadow as a ``required: 1``
group with the interview's buffers; ``collect``); in the move's transaction (``follow_move``,
the shadows locked with the move's other people by ``limits.check_move``) only the answers are
used: a shadow the aggregator says is busy is left out; one whose call failed is kept,
unverified. A kept shadow must be under their own limits there and their time is claimed in a
savepoint (another booking holding it leaves the shadow out, never the move). A shadow left out
is off the moved event and out of the ledger: a shadow never holds a move back, and is never
double booked by one. A whole-loop move that goes back claims a kept shadow's previous time
again (``kept_holds``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
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

log = logging.getLogger("webapp.services.pools")


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
    return free_slots.send_first(free_slots.free_at, broker, [], query, start, asks=(ask,))


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
    rows = claims.rows_for(organisation_id, [(interview_id, hold)], skip=seen)
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


def _shadow_rows(session: Session, interview_id: int) -> list[InterviewLoad]:
    return list(
        session.scalars(
            select(InterviewLoad)
            .where(InterviewLoad.interview_id == interview_id, InterviewLoad.is_shadow.is_(True))
            .order_by(InterviewLoad.user_id)
        )
    )


def _sitting(
    session: Session, interview: Interview, row: InterviewLoad
) -> tuple[model.PanelMember, Pool] | None:
    """The shadow as a panel member, with their pool, while they may still sit in (active, a
    linked calendar, of the interview's organisation)."""
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
    return member, pool


#: What a move was told of its shadows' new time, by user id: True free, False not free, None
#: unknown (the call failed).
Answers = Mapping[int, bool | None]


def ask_moving(
    session: Session,
    broker: CalendarBroker,
    interview: Interview,
    start: dt.datetime,
    duration: int,
    before: int = 0,
    after: int = 0,
) -> dict[int, tuple[str, Future | None]]:
    """Ask, in the background, whether each shadow sitting in on the interview is free at
    exactly ``start`` (one call each, the shadow as a ``required: 1`` group, the interview's
    buffers). Call BEFORE the move's locked part and read the answers with ``collect``."""
    asked: dict[int, tuple[str, Future | None]] = {}
    for row in _shadow_rows(session, interview.id):
        found = _sitting(session, interview, row)
        if found is not None:
            member, pool = found
            future = ask_free(broker, pool, [member], start, duration, before, after)
            asked[row.user_id] = (member.link.aggregator_sub, future)
    return asked


def collect(asked: Mapping[int, tuple[str, Future | None]]) -> dict[int, bool | None]:
    """The answers of ``ask_moving`` (waiting for them): a call that failed is None, unknown."""
    out: dict[int, bool | None] = {}
    for user_id, (sub, future) in asked.items():
        try:
            free = future.result() if future is not None else None
        except ServiceError as exc:
            log.info("shadow %s: availability not known (%s); kept, unverified", user_id, exc)
            out[user_id] = None
            continue
        out[user_id] = free is not None and sub in free
    return out


def follow_move(
    session: Session,
    interview: Interview,
    content: Content,
    start: dt.datetime,
    duration: int,
    before: int = 0,
    after: int = 0,
    *,
    answers: Answers,
) -> Content:
    """Keep the interview's shadows where they may sit in at ``start`` (claimed), leave out the
    others (their ledger rows deleted, their invitation left out of ``content``). ``answers``:
    what ``collect`` heard of the new time BEFORE the locked part (no call is made here). A
    shadow the aggregator said is busy there is left out; one it could not tell about (the call
    failed) is kept, their time claimed like any, so a clash with another of our bookings still
    leaves them out. Call in the move's transaction, after its own claims (and after
    ``limits.check_move``, which locks the shadows with the other people); the caller commits."""
    rows = _shadow_rows(session, interview.id)
    if not rows:
        return content
    # Their limits are read under the same locks a booking takes (one sorted set: no deadlock).
    picking.lock_people(session, interview.organisation_id, [r.user_id for r in rows])
    attendees, removed = list(content.attendees), list(content.removed)
    for row in rows:
        found = _sitting(session, interview, row)
        if found is not None and answers.get(row.user_id) is not False:
            member, pool = found
            picks = picking.pick_from_pool(
                session, pool, {row.user_id}, 1, start, shadows=True, ignore_interview=interview.id
            )
            if picking.picked(picks):
                hold = claims.hold_of(
                    [member.link.sub], start, duration, before=before, after=after
                )
                try:
                    with session.begin_nested():
                        session.execute(
                            insert(SlotClaim),
                            claims.rows_for(interview.organisation_id, [(interview.id, hold)]),
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


def kept_holds(
    session: Session,
    interview_id: int,
    start: dt.datetime,
    duration: int,
    before: int = 0,
    after: int = 0,
) -> list[claims.Hold]:
    """The holds of the shadows still sitting in on the interview, were it at ``start``: what
    taking a move back claims for them again (with the panel's)."""
    subs = []
    for row in _shadow_rows(session, interview_id):
        link = link_of(session, row.user_id)
        if link is not None:
            subs.append(link.sub)
    if not subs:
        return []
    return [claims.hold_of(subs, start, duration, before=before, after=after)]
