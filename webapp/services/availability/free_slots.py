"""The calls: the aggregator's common free slots and each member's busy blocks.

One ``availability`` call per query whatever the panel size. Busy blocks (free/busy only: start,
end and status, never an event's title, attendees or location) are read once per member,
concurrently, so the page waits for about one call. Nothing read here is stored.

A room (linked through Enterprise Connect, see ``enterprise.rooms.request_rooms``) is a second
group of the same availability query, required in full: a slot is offered only when the room is
free too.

Our own bookings count as busy for every panel member and the room until their calendars show
them (``webapp.services.claims``): a slot that meets one of our claims is not offered, and the
booked time is listed among the member's busy blocks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Period, Slot
from models import (
    ProfileLink,
    User,
    utcnow,
)
from webapp.security import TokenCipher
from webapp.services import Actor, claims, delegation_watch
from webapp.services.availability.busy import PendingBusy, send_first
from webapp.services.availability.model import (
    Block,
    Grid,
    PanelMember,
    PoolAsk,
    Query,
    Room,
    zone,
)
from webapp.services.availability.roster import resolve_panel, resolve_room
from webapp.services.availability.windows import availability_query, validate_query, window_for
from webapp.services.credentials import broker_problem
from webapp.services.errors import ServiceError
from webapp.services.pools import asks as pool_asks


def common_slots(
    broker: CalendarBroker,
    members: Sequence[PanelMember],
    query: Query,
    window: Period,
    *,
    query_slots: Sequence[dt.datetime] = (),
    room: Room | None = None,
    within: Sequence[Period] | None = None,
    asks: Sequence[PoolAsk] = (),
) -> tuple[Slot, ...]:
    """One aggregator call (application key) for the whole panel, the pool asks and the room."""
    built = availability_query(
        members, query, window, query_slots=query_slots, room=room, within=within, asks=asks
    )
    if built is None:
        return ()
    try:
        slots = broker.availability(built)
    except broker_errors.BrokerError as exc:
        raise broker_problem(exc) from None
    now = utcnow()
    return tuple(s for s in slots if s.start >= now)


class PendingGrid:
    """A grid whose aggregator calls are in flight: the caller can do its own database work
    meanwhile, then take ``result()`` (which must run in the same thread as ``start_grid``)."""

    def __init__(
        self,
        query: Query,
        members: list[PanelMember],
        window: Period,
        days: list[dt.date],
        room: Room | None,
        slots=None,
        busy: PendingBusy | None = None,
        held: claims.Held | None = None,
        asks: tuple[PoolAsk, ...] = (),
        session: Session | None = None,
    ):
        self.query, self.members, self.window, self.days, self.room = (
            query,
            members,
            window,
            days,
            room,
        )
        self._slots, self._busy, self._held = slots, busy, held or claims.Held()
        self.asks, self._session = asks, session
        #: Checks failed reads of delegated calendars (``delegation_watch.check_panel``).
        self.checker: Callable[[list[ProfileLink]], None] | None = None

    def _check_delegated(self, links: list[ProfileLink]) -> None:
        """A read that failed for colleagues' delegated calendars: were they withdrawn?"""
        if self.checker is not None and any(link.is_delegated for link in links):
            self.checker(links)

    def result(self) -> Grid:
        if self._slots is None:
            return Grid(
                self.query,
                self.members,
                self.window,
                (),
                {},
                {},
                self.days,
                self.room,
                asks=self.asks,
            )
        pending = self._busy is None
        busy, problems = held_busy(self._busy, self.members, self._held) if self._busy else ({}, {})
        try:
            found = self._slots.result()
        except ServiceError:
            self._check_delegated([m.link for m in self.members])
            raise
        if problems:  # a colleague's calendar refused alone: never offer them as free
            self._check_delegated([m.link for m in self.members if m.link.id in problems])
        slots = without_held(self._held, found, self.members, self.query, room=self.room)
        picks: dict[str, tuple[pool_asks.SlotPicks, ...]] = {}
        if self.asks and self._session is not None:
            slots, picks = pool_asks.picked_slots(
                self._session, self.asks, slots, self.members, self.query, self.window
            )
        return Grid(
            self.query,
            self.members,
            self.window,
            slots,
            busy,
            problems,
            self.days,
            self.room,
            pending,
            self.asks,
            picks,
        )


def held_busy(
    pending: PendingBusy, members: Sequence[PanelMember], held: claims.Held
) -> tuple[dict[int, list[Block]], dict[int, str]]:
    """The members' busy blocks plus our own bookings, whether or not their calendars show them
    yet; and the members whose calendars could not be read."""
    busy, problems = pending.result()
    for m in members:
        if m.link.id in busy:
            busy[m.link.id] = with_held(busy[m.link.id], held.blocks(m.link.sub))
    return busy, problems


def subs_of(members: Sequence[PanelMember], room: Room | None = None) -> list[str]:
    """Whose time a booking of this panel (and room) claims."""
    return [m.link.sub for m in members] + ([room.sub] if room is not None else [])


def held_for(
    session: Session,
    members: Sequence[PanelMember],
    window: Period,
    *,
    room: Room | None = None,
    ignore_interview: int | None = None,
) -> claims.Held:
    if not members:
        return claims.Held()
    return claims.held(
        session,
        members[0].link.organisation_id,
        subs_of(members, room),
        window.start,
        window.end,
        ignore_interview=ignore_interview,
    )


def without_held(
    held: claims.Held,
    slots: Sequence[Slot],
    members: Sequence[PanelMember],
    query: Query,
    *,
    room: Room | None = None,
) -> tuple[Slot, ...]:
    """The slots no claim of ours stands in the way of (the same test a booking's claim makes,
    so every slot offered can be claimed unless someone else takes it first)."""
    # The union of the panel's held buckets, once: a slot clashes when it touches any of them
    # (what ``held.clashes`` asks per slot, without walking every member for every bucket).
    taken = set().union(*(held.buckets.get(sub, ()) for sub in subs_of(members, room)))
    if not taken:
        return tuple(slots)
    before = dt.timedelta(minutes=query.buffer_before)
    after = dt.timedelta(minutes=query.buffer_after)
    return tuple(
        s for s in slots if taken.isdisjoint(claims.buckets(s.start - before, s.end + after))
    )


def with_held(blocks: list[Block], times: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[Block]:
    """Busy blocks plus the times of our own bookings not already among them."""
    have = {(b.start, b.end) for b in blocks}
    extra = [Block(start, end, "busy") for start, end in times if (start, end) not in have]
    return sorted(blocks + extra, key=lambda b: (b.start, b.end)) if extra else blocks


def start_grid(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    query: Query,
    *,
    ignore_interview: int | None = None,
    choices: Sequence[tuple[ProfileLink, User]] | None = None,
    with_busy: bool = True,
    owner_id: int | None = None,
) -> PendingGrid:
    """Check the question and send its aggregator calls: the availability call first (it is
    the one the page waits for), then one free/busy read per member, all concurrently; read our
    own claims meanwhile (``ignore_interview``: the one being moved; ``choices``: the actor's
    ``roster.panel_choices`` when the caller has read them for its own page). Without
    ``with_busy`` only the availability call is made (no member's token is even decrypted):
    the grid's busy overlay is read on its own (``overlay.busy_overlay``). ``owner_id``: the
    viewer, whose own blocks carry their events' titles (``busy.PendingBusy``)."""
    validate_query(query)
    members = resolve_panel(
        session,
        actor,
        query.panel_link_ids,
        on_behalf_of_id=query.on_behalf_of_id,
        choices=choices,
        allow_empty=bool(query.pools),
    )
    # The pools' people are read on their own: ``choices`` may hold only the named panel's.
    asks = pool_asks.resolve(session, actor, query, members)
    room = resolve_room(session, actor, query.room)
    window, days = window_for(query)
    if window.end <= window.start:
        return PendingGrid(query, members, window, days, room, asks=asks)
    # The call leaves before this thread reads our claims (and the page renders around them).
    slots = send_first(common_slots, broker, members, query, window, room=room, asks=asks)
    busy = (
        PendingBusy(session, broker, cipher, members, days, query.tzid, owner_id=owner_id)
        if with_busy
        else None
    )
    held = held_for(session, members, window, room=room, ignore_interview=ignore_interview)
    found = PendingGrid(
        query, members, window, days, room, slots, busy, held, asks=asks, session=session
    )
    found.checker = functools.partial(delegation_watch.check_panel, session, broker, cipher)
    return found


def grid(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    query: Query,
    *,
    ignore_interview: int | None = None,
) -> Grid:
    """Busy blocks and common free slots for a panel (free/busy only)."""
    return start_grid(
        session, broker, cipher, actor, query, ignore_interview=ignore_interview
    ).result()


def open_slots(
    session: Session,
    broker: CalendarBroker,
    actor: Actor,
    query: Query,
    *,
    around: dt.datetime | None = None,
    ignore_interview: int | None = None,
) -> tuple[Slot, ...]:
    """The panel's free slots, less our own claims (one aggregator call), over the query's days
    from the day of ``around``: what a booking that lost its slot is offered instead."""
    if around is not None:
        day = around.astimezone(zone(query.tzid)).date()
        today = utcnow().astimezone(zone(query.tzid)).date()
        query = dataclasses.replace(query, start_date=max(day, today))
    validate_query(query)
    members = resolve_panel(
        session, actor, query.panel_link_ids, on_behalf_of_id=query.on_behalf_of_id
    )
    room = resolve_room(session, actor, query.room)
    window, _days = window_for(query)
    if window.end <= window.start:
        return ()
    slots = common_slots(broker, members, query, window, room=room)
    held = held_for(session, members, window, room=room, ignore_interview=ignore_interview)
    return without_held(held, slots, members, query, room=room)


def slot_is_free(
    broker: CalendarBroker,
    members: Sequence[PanelMember],
    query: Query,
    start: dt.datetime,
    *,
    room: Room | None = None,
) -> bool:
    """Ask the aggregator whether exactly this start is still free for the panel and the room
    (one call)."""
    return free_at(broker, members, query, start, room=room) is not None


def free_at(
    broker: CalendarBroker,
    members: Sequence[PanelMember],
    query: Query,
    start: dt.datetime,
    *,
    room: Room | None = None,
    asks: Sequence[PoolAsk] = (),
) -> frozenset[str] | None:
    """Ask the aggregator whether exactly this start is still free for the panel, the pool
    asks and the room (one call): who is free then (subs), or None."""
    end = start + dt.timedelta(minutes=query.duration)
    margin = dt.timedelta(hours=12)  # room for the buffers inside each member's working periods
    window = Period(start - margin, end + margin)
    found = common_slots(broker, members, query, window, query_slots=(start,), room=room, asks=asks)
    return next((frozenset(s.participants) for s in found if s.start == start), None)


@dataclass
class Day:
    date: dt.date
    label: str
    long_label: str
    #: link id → [(times, status)] of busy blocks, formatted in the viewer's zone.
    busy: dict[int, list[tuple[str, str]]]
    #: [(ISO start in UTC, times in the viewer's zone, times in the candidate's zone or "")].
    slots: list[tuple[str, str, str]]


def by_day(found: Grid, tzid: str, candidate_tzid: str | None = None) -> list[Day]:
    """The grid laid out per day in the viewer's zone, labels formatted once here."""
    tz = zone(tzid)
    other = zone(candidate_tzid) if candidate_tzid and candidate_tzid != tzid else None
    days = {
        d: Day(
            d,
            d.strftime("%a %d %b"),
            d.strftime("%A %d %B"),
            {m.link.id: [] for m in found.members},
            [],
        )
        for d in found.days
    }
    for link_id, blocks in found.busy.items():
        for block in blocks:
            start, end = block.start.astimezone(tz), block.end.astimezone(tz)
            times = f"{start:%H:%M}–{end:%H:%M}"
            day, last = start.date(), (end - dt.timedelta(seconds=1)).date()
            while day <= last:
                if day in days:
                    days[day].busy[link_id].append((times, block.status))
                day += dt.timedelta(days=1)
    for slot in found.slots:
        start = slot.start.astimezone(tz)
        day = start.date()
        if day in days:
            theirs = f"{slot.start.astimezone(other):%H:%M}" if other else ""
            days[day].slots.append(
                (slot.start.isoformat(), f"{start:%H:%M}–{slot.end.astimezone(tz):%H:%M}", theirs)
            )
    return [days[d] for d in found.days]
