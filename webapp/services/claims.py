"""Slot claims: a booking holds its time for every panel member and the room, atomically.

Why: the calendar cannot catch two bookings racing for one slot. The first booking's event is
written by a background job, and an invited attendee's calendar may show the invitation late or
never, so the second booking's availability check still sees the time free.

How: a booking inserts one :class:`models.SlotClaim` row per (organisation, person or room,
5-minute bucket) covering [start - buffer before, end + buffer after), in the same transaction
that commits its Interview. The unique constraint makes the database refuse the second of two
overlapping bookings, from any path and any process, on SQLite and PostgreSQL alike; rows are
inserted in one sorted order so two bookings never wait on each other in a cycle. Buffers make a
claim stricter than Cronofy's one-sided buffer check (two buffers may not overlap either); that
only ever refuses, never admits, a booking.

The same rows are what Rendezvous counts as busy for every panel member until the calendar shows
the interview (:func:`held`). :func:`settle` (a job every few minutes) asks the aggregator, in one
availability call per interview, which held people and rooms are now busy for the whole interview
time; their rows are marked confirmed and deleted a grace period later (longer than any booking
request takes, so a booking that checked availability before the calendar showed the interview
still meets the claim). Rows also go when the booking fails, is cancelled or moved, and once
their time has passed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import AvailabilityQuery, Group, Member, Period
from models import Interview, InterviewStatus, LinkStatus, ProfileLink, SlotClaim, utcnow
from webapp.services import rowcount

log = logging.getLogger("webapp.services.claims")

UTC = dt.UTC
BUCKET = dt.timedelta(minutes=5)
#: A confirmed claim is deleted this long after the calendar first showed the interview: longer
#: than a booking request can take between its availability check and its insert.
GRACE = dt.timedelta(minutes=2)
#: Availability calls one settle run may make (application key, ≤ 500 per minute in all).
CHECKS_PER_RUN = 60
#: Largest buffer a query may ask for (validate_query refuses more).
MAX_BUFFER = dt.timedelta(minutes=120)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)


def _floor(moment: dt.datetime) -> dt.datetime:
    return _EPOCH + (moment - _EPOCH) // BUCKET * BUCKET


@dataclass(frozen=True)
class Hold:
    """The time one booking holds: its subs (people's calendar accounts and the room), its own
    start and end, and the buffers around it."""

    subs: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    before: dt.timedelta = dt.timedelta(0)
    after: dt.timedelta = dt.timedelta(0)

    def buckets(self) -> list[dt.datetime]:
        return buckets(self.start - self.before, self.end + self.after)


def buckets(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The 5-minute buckets that [start, end) touches."""
    out, moment = [], _floor(start.astimezone(UTC))
    while moment < end:
        out.append(moment)
        moment += BUCKET
    return out


def hold_of(
    subs: Iterable[str], start: dt.datetime, minutes: int, *, before: int = 0, after: int = 0
) -> Hold:
    return Hold(
        tuple(sorted(set(subs))),
        start.astimezone(UTC),
        start.astimezone(UTC) + dt.timedelta(minutes=minutes),
        dt.timedelta(minutes=before),
        dt.timedelta(minutes=after),
    )


def claim(
    session: Session,
    organisation_id: int,
    interview_id: int,
    hold: Hold,
    *,
    skip: Collection[tuple[str, dt.datetime]] = (),
) -> bool:
    """Insert the hold's rows in the caller's transaction (less ``skip``, as ``claim_all``).
    False (after rolling the whole transaction back) when another booking holds any of them."""
    return claim_all(session, organisation_id, [(interview_id, hold)], skip=skip)


def claim_all(
    session: Session,
    organisation_id: int,
    holds: Sequence[tuple[int, Hold]],
    *,
    skip: Collection[tuple[str, dt.datetime]] = (),
) -> bool:
    """The claims of several bookings made together (a loop's sessions), in one insert and the
    caller's transaction. Sessions may hold the same person back to back, their buffers
    meeting: a bucket two of them touch is held once, by the first. ``skip``: (sub, bucket)
    pairs the caller's own other bookings hold already (a loop's other sessions when one
    moves). False (after rolling the whole transaction back) when another booking holds any."""
    return _insert(session, rows_for(organisation_id, holds, skip=skip))


def rows_for(
    organisation_id: int,
    holds: Sequence[tuple[int, Hold]],
    *,
    skip: Collection[tuple[str, dt.datetime]] = (),
) -> list[dict]:
    """The ``SlotClaim`` rows of these holds, less ``skip``, a bucket two holds touch once (the
    first's), in the one order every booking inserts in (so two never wait in a cycle)."""
    seen = set(skip)
    rows = []
    for interview_id, hold in holds:
        for sub in hold.subs:
            for bucket in hold.buckets():
                if (sub, bucket) in seen:
                    continue
                seen.add((sub, bucket))
                rows.append(
                    {
                        "organisation_id": organisation_id,
                        "interview_id": interview_id,
                        "sub": sub,
                        "bucket_start": bucket,
                        "starts_at": hold.start,
                        "ends_at": hold.end,
                    }
                )
    rows.sort(key=lambda r: (r["sub"], r["bucket_start"]))
    return rows


def held_buckets(session: Session, interview_ids: Collection[int]) -> set[tuple[str, dt.datetime]]:
    """The (sub, bucket) pairs these bookings hold."""
    if not interview_ids:
        return set()
    return {
        (sub, bucket)
        for sub, bucket in session.execute(
            select(SlotClaim.sub, SlotClaim.bucket_start).where(
                SlotClaim.interview_id.in_(set(interview_ids))
            )
        )
    }


def _insert(session: Session, rows: list[dict]) -> bool:
    if not rows:
        return True
    try:
        session.execute(insert(SlotClaim), rows)
    except IntegrityError as exc:
        session.rollback()
        if "slot_claim" not in str(exc.orig):
            raise
        return False
    return True


def release(session: Session, interview_id: int) -> None:
    """Drop the interview's claims (cancelled, failed or moved); the caller commits."""
    session.execute(
        delete(SlotClaim)
        .where(SlotClaim.interview_id == interview_id)
        .execution_options(synchronize_session=False)
    )


def booked_time(session: Session, interview_id: int) -> tuple[dt.datetime, dt.datetime] | None:
    """The time our booking holds while its calendar does not show it yet (None once settled)."""
    row = session.execute(
        select(SlotClaim.starts_at, SlotClaim.ends_at)
        .where(SlotClaim.interview_id == interview_id)
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


@dataclass
class Held:
    """Our own bookings' holds on some people and rooms around a window."""

    buckets: dict[str, set[dt.datetime]] = field(default_factory=lambda: defaultdict(set))
    times: dict[str, set[tuple[dt.datetime, dt.datetime]]] = field(
        default_factory=lambda: defaultdict(set)
    )

    def clashes(
        self,
        subs: Iterable[str],
        start: dt.datetime,
        end: dt.datetime,
        *,
        before: int = 0,
        after: int = 0,
    ) -> bool:
        """Whether a booking of [start, end) with these buffers would meet a claim."""
        wanted = buckets(start - dt.timedelta(minutes=before), end + dt.timedelta(minutes=after))
        return any(b in self.buckets.get(sub, ()) for sub in subs for b in wanted)

    def blocks(self, sub: str) -> list[tuple[dt.datetime, dt.datetime]]:
        """The held interviews' own times for one person or room."""
        return sorted(self.times.get(sub, ()))


def held(
    session: Session,
    organisation_id: int,
    subs: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    *,
    ignore_interview: int | None = None,
    ignore_interviews: Iterable[int] = (),
) -> Held:
    """What our own bookings hold for these subs around [start, end) (one query), less the
    claims of ``ignore_interview`` / ``ignore_interviews`` (bookings being moved)."""
    found = Held()
    if not subs:
        return found
    margin = MAX_BUFFER + BUCKET
    query = select(
        SlotClaim.sub, SlotClaim.bucket_start, SlotClaim.starts_at, SlotClaim.ends_at
    ).where(
        SlotClaim.organisation_id == organisation_id,
        SlotClaim.sub.in_(set(subs)),
        SlotClaim.bucket_start >= start - margin,
        SlotClaim.bucket_start < end + margin,
    )
    ignored = set(ignore_interviews) | (
        {ignore_interview} if ignore_interview is not None else set()
    )
    if ignored:
        query = query.where(SlotClaim.interview_id.not_in(ignored))
    for sub, bucket, starts, ends in session.execute(query):
        found.buckets[sub].add(bucket)
        found.times[sub].add((starts, ends))
    return found


# ---------------------------------------------------------------------------------------------
# Settling: once the calendar shows the interview, the aggregator protects it


def _members(session: Session, organisation_id: int, subs: set[str]) -> dict[str, Member]:
    """Aggregator members for the subs we can still ask about: people with an active link (with
    the calendars their bookings were checked against) and the organisation's linked rooms."""
    from webapp.services.availability.roster import room_choices

    out = {}
    for link in session.scalars(
        select(ProfileLink).where(
            ProfileLink.organisation_id == organisation_id,
            ProfileLink.sub.in_(subs),
            ProfileLink.status == LinkStatus.ACTIVE,
        )
    ):
        calendars = link.conflict_calendar_ids or (
            [link.target_calendar_id] if link.target_calendar_id else []
        )
        out[link.sub] = Member(sub=link.aggregator_sub, calendar_ids=tuple(calendars))
    for room in room_choices(session, organisation_id):
        if room.sub in subs:
            out[room.sub] = Member(sub=room.sub)
    return out


def settle(
    session: Session,
    broker: CalendarBroker | None,
    *,
    now: dt.datetime | None = None,
    limit: int = CHECKS_PER_RUN,
) -> dict[str, int]:
    """Delete claims that no longer protect anything; confirm those the calendar now shows."""
    now = now or utcnow()
    counts: dict[str, int] = defaultdict(int)

    def gone(condition, name: str) -> None:
        result = session.execute(
            delete(SlotClaim).where(condition).execution_options(synchronize_session=False)
        )
        counts[name] += rowcount(result)

    gone(SlotClaim.bucket_start <= now - BUCKET, "past")
    gone(SlotClaim.confirmed_at <= now - GRACE, "confirmed")
    gone(
        SlotClaim.interview_id.in_(
            select(Interview.id).where(
                Interview.status.not_in((InterviewStatus.PENDING, InterviewStatus.SCHEDULED))
            )
        ),
        "booking_gone",
    )
    session.commit()
    if broker is None:
        return dict(counts)
    # Scheduled interviews (their write is confirmed) whose claims still wait for the calendar;
    # the least recently checked first, so claims that never show cannot starve the others.
    waiting: dict[int, dict] = {}
    for interview_id, org_id, sub, starts, ends, checked in session.execute(
        select(
            SlotClaim.interview_id,
            SlotClaim.organisation_id,
            SlotClaim.sub,
            SlotClaim.starts_at,
            SlotClaim.ends_at,
            SlotClaim.checked_at,
        )
        .join(Interview, Interview.id == SlotClaim.interview_id)
        .where(
            Interview.status == InterviewStatus.SCHEDULED,
            SlotClaim.confirmed_at.is_(None),
            SlotClaim.starts_at > now,
        )
        .distinct()
    ):
        entry = waiting.setdefault(
            interview_id,
            {"org": org_id, "subs": set(), "start": starts, "end": ends, "checked": checked},
        )
        entry["subs"].add(sub)
        if checked is None or (entry["checked"] is not None and checked < entry["checked"]):
            entry["checked"] = checked
    order = sorted(
        waiting.items(),
        key=lambda kv: (kv[1]["checked"] is not None, kv[1]["checked"] or now, kv[1]["start"]),
    )
    for interview_id, entry in order[:limit]:
        members = _members(session, entry["org"], entry["subs"])
        shown: set[str] = set()
        if members:
            query = AvailabilityQuery(
                groups=(Group(members=tuple(members[s] for s in sorted(members)), required=1),),
                duration=BUCKET,
                periods=(Period(entry["start"], entry["end"]),),
                start_interval=BUCKET,
                response_format="slots",
                max_results=512,
            )
            try:
                slots = broker.availability(query)
            except broker_errors.NotSent:  # no budget left to periodic work: the next run goes on
                counts["deferred"] += 1
                break
            except broker_errors.BrokerError as exc:
                log.info("claims of interview %s not checked: %s", interview_id, type(exc).__name__)
                counts["unchecked"] += 1
                continue
            free = {p for s in slots for p in s.participants}
            # Busy in every 5-minute slot of the interview: the calendar shows it now. (Claims
            # are kept by our link's sub; a delegated calendar is asked about as its owner's
            # account, so an owner free then keeps the colleague's claim: the safe side.)
            shown = {key for key, member in members.items() if member.sub not in free}
        base = SlotClaim.interview_id == interview_id
        if shown:
            result = session.execute(
                update(SlotClaim)
                .where(base, SlotClaim.sub.in_(shown), SlotClaim.confirmed_at.is_(None))
                .values(confirmed_at=now)
                .execution_options(synchronize_session=False)
            )
            counts["confirmed_rows"] += rowcount(result)
        session.execute(
            update(SlotClaim)
            .where(base)
            .values(checked_at=now)
            .execution_options(synchronize_session=False)
        )
        counts["checked"] += 1
        session.commit()
    return dict(counts)
