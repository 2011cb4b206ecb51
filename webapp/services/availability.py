"""Panel availability: working hours, the aggregator's common free slots, and busy blocks.

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
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import AvailabilityQuery, Credentials, Group, Member, Period, Slot
from models import (
    CoordinatorAssignment,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    Organisation,
    ProfileLink,
    Role,
    SchedulingPreference,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp.security import TokenCipher
from webapp.services import Actor, claims
from webapp.services.credentials import broker_problem, store_credentials, usable_credentials
from webapp.services.errors import Forbidden, Invalid, ReconnectNeeded, ServiceError
from webapp.services.zones import known_zone, zone_label, zone_names  # noqa: F401  (re-exported)

UTC = dt.UTC
DEFAULT_START = 9 * 60
DEFAULT_END = 17 * 60 + 30
DEFAULT_WEEKDAYS = "12345"
MAX_DAYS = 14
MAX_PANEL = 10
DURATIONS = (15, 30, 45, 60, 90, 120)
START_INTERVAL = dt.timedelta(minutes=15)
#: Slots start at least this far in the future (nobody can get to an interview in no time).
LEAD_TIME = dt.timedelta(minutes=15)
#: Threads for concurrent aggregator reads (a panel has at most MAX_PANEL people, plus the
#: availability call; a few requests at once share the pool).
POOL_THREADS = 32


def zone(name: str | None, fallback: str = "Etc/UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def valid_zone(name: str | None) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


@dataclass(frozen=True)
class Hours:
    """Working hours, in the person's own zone (``tzid``)."""

    start_minute: int
    end_minute: int
    weekdays: str
    tzid: str
    #: False while the person has not set their own zone (the organisation's is assumed).
    zone_set: bool = True

    def label(self) -> str:
        return f"{_hhmm(self.start_minute)}–{_hhmm(self.end_minute)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class PanelMember:
    link: ProfileLink
    user: User
    hours: Hours

    @property
    def label(self) -> str:
        return self.user.name

    @property
    def email(self) -> str:
        return self.link.account_email or self.user.email


@dataclass(frozen=True)
class Room:
    """A room linked for scheduling: invited by email, checked in availability by its sub."""

    email: str
    name: str
    sub: str


@dataclass(frozen=True)
class Block:
    """A busy block: times and status only."""

    start: dt.datetime
    end: dt.datetime
    status: str


@dataclass(frozen=True)
class Query:
    panel_link_ids: tuple[int, ...]
    duration: int = 60
    start_date: dt.date | None = None
    days: int = 5
    required: Literal["all"] | int = "all"
    buffer_before: int = 0
    buffer_after: int = 0
    tzid: str = "Europe/London"
    on_behalf_of_id: int | None = None
    #: Email of a linked room that must be free too.
    room: str | None = None


@dataclass
class Grid:
    query: Query
    members: list[PanelMember]
    window: Period
    slots: tuple[Slot, ...]
    busy: dict[int, list[Block]]
    busy_problems: dict[int, str]
    days: list[dt.date]
    room: Room | None = None


# ---------------------------------------------------------------------------------------------
# Who may be on a panel


def assigned_manager_ids(session: Session, coordinator_id: int) -> set[int]:
    return set(
        session.scalars(
            select(CoordinatorAssignment.manager_id).where(
                CoordinatorAssignment.coordinator_id == coordinator_id
            )
        )
    )


def panel_choices(session: Session, actor: Actor) -> list[tuple[ProfileLink, User]]:
    """People the actor may put on a panel: anyone in the organisation with a usable calendar,
    or, for a coordinator, the hiring managers assigned to them."""
    query = (
        select(ProfileLink, User)
        .join(User, User.id == ProfileLink.user_id)
        .where(
            ProfileLink.organisation_id == actor.organisation_id,
            ProfileLink.status == LinkStatus.ACTIVE,
            User.active.is_(True),
        )
        .order_by(User.name, ProfileLink.id)
    )
    if actor.role is Role.COORDINATOR:
        query = query.where(User.id.in_(assigned_manager_ids(session, actor.user_id) or {-1}))
    elif actor.role is not Role.RECRUITER:
        raise Forbidden("Your role cannot schedule interviews.")
    seen: set[int] = set()
    out = []
    for link, user in session.execute(query):
        if user.id not in seen:  # one calendar per person
            seen.add(user.id)
            out.append((link, user))
    return out


def hours_for(
    session: Session, users: Sequence[User], organisation: Organisation
) -> dict[int, Hours]:
    """Working hours per user: their own override, else the organisation default, else 9–17:30;
    always in the user's own zone (the organisation's until they set one)."""
    prefs = {
        p.user_id: p
        for p in session.scalars(
            select(SchedulingPreference).where(
                SchedulingPreference.organisation_id == organisation.id
            )
        )
    }
    default = prefs.get(None)
    out = {}
    for user in users:
        pref = prefs.get(user.id) or default
        own = known_zone(user.timezone)
        tzid = own or organisation.timezone or "Europe/London"
        if pref is None:
            out[user.id] = Hours(
                DEFAULT_START, DEFAULT_END, DEFAULT_WEEKDAYS, tzid, own is not None
            )
        else:
            out[user.id] = Hours(
                pref.start_minute, pref.end_minute, pref.weekdays, tzid, own is not None
            )
    return out


def resolve_panel(session: Session, actor: Actor, link_ids: Sequence[int]) -> list[PanelMember]:
    """The panel as PanelMembers, refusing anyone the actor may not schedule."""
    ids = list(dict.fromkeys(link_ids))
    if not ids:
        raise Invalid("Choose at least one person for the panel.", field="panel")
    if len(ids) > MAX_PANEL:
        raise Invalid(f"A panel has at most {MAX_PANEL} people.", field="panel")
    allowed = {link.id: (link, user) for link, user in panel_choices(session, actor)}
    unknown = [i for i in ids if i not in allowed]
    if unknown:
        raise Invalid("Choose the panel from the people listed.", field="panel")
    org = session.get(Organisation, actor.organisation_id)
    hours = hours_for(session, [allowed[i][1] for i in ids], org)
    return [PanelMember(allowed[i][0], allowed[i][1], hours[allowed[i][1].id]) for i in ids]


def room_choices(session: Session, organisation_id: int) -> list[Room]:
    """Rooms the organisation linked for scheduling, through a domain that is still connected
    (from the database: no aggregator call)."""
    rows = session.execute(
        select(MailboxRequest.email, MailboxRequest.display_name, MailboxRequest.resource_sub)
        .join(ServiceAccountLink, ServiceAccountLink.id == MailboxRequest.service_account_link_id)
        .where(
            MailboxRequest.organisation_id == organisation_id,
            MailboxRequest.kind == MailboxKind.ROOM,
            MailboxRequest.status == MailboxStatus.LINKED,
            MailboxRequest.resource_sub.is_not(None),
            ServiceAccountLink.status == LinkStatus.ACTIVE,
        )
    )
    rooms = {email: Room(email, name or email, sub) for email, name, sub in rows}
    return sorted(rooms.values(), key=lambda r: (r.name.lower(), r.email))


def resolve_room(session: Session, actor: Actor, email: str | None) -> Room | None:
    """The chosen room, refusing anything but a room the organisation linked."""
    if not email:
        return None
    found = {r.email: r for r in room_choices(session, actor.organisation_id)}
    room = found.get(email.strip().lower())
    if room is None:
        raise Invalid("Choose one of the listed rooms.", field="room")
    return room


# ---------------------------------------------------------------------------------------------
# Periods


def round_up(moment: dt.datetime, step: dt.timedelta = START_INTERVAL) -> dt.datetime:
    epoch = dt.datetime(2000, 1, 1, tzinfo=UTC)
    steps = -(-(moment - epoch) // step)
    return epoch + steps * step


def window_for(query: Query, now: dt.datetime | None = None) -> tuple[Period, list[dt.date]]:
    """The UTC window of the query's days in the viewer's zone, never starting in the past."""
    tz = zone(query.tzid)
    now = now or utcnow()
    first = query.start_date or now.astimezone(tz).date()
    days = [first + dt.timedelta(days=i) for i in range(query.days)]
    start = dt.datetime.combine(first, dt.time(0), tz).astimezone(UTC)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC)
    start = max(start, round_up(now + LEAD_TIME))
    return Period(start, end), days


def working_periods(hours: Hours, window: Period) -> tuple[Period, ...]:
    """The member's working hours inside the window, in UTC."""
    tz = zone(hours.tzid)
    first = window.start.astimezone(tz).date() - dt.timedelta(days=1)
    last = window.end.astimezone(tz).date()
    out = []
    day = first
    while day <= last:
        if str(day.isoweekday()) in hours.weekdays:
            start = (
                dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(minutes=hours.start_minute)
            ).astimezone(UTC)
            end = (
                dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(minutes=hours.end_minute)
            ).astimezone(UTC)
            start, end = max(start, window.start), min(end, window.end)
            if end > start:
                out.append(Period(start, end))
        day += dt.timedelta(days=1)
    return tuple(out)


def hours_seen_from(
    hours: Hours, days: Sequence[dt.date], tzid: str
) -> list[tuple[str, list[dt.date]]]:
    """The member's working hours on each of their working ``days``, as times in zone ``tzid``,
    grouped by how they read there (they differ across a daylight-saving change), in the order
    they first occur: e.g. ``[("14:00–22:30", [Fri, Mon]), ("13:00–21:30", [Tue, Wed])]``."""
    own, there = zone(hours.tzid), zone(tzid)
    groups: dict[str, list[dt.date]] = {}
    for day in days:
        if str(day.isoweekday()) not in hours.weekdays:
            continue
        midnight = dt.datetime.combine(day, dt.time(0), own)
        start = (midnight + dt.timedelta(minutes=hours.start_minute)).astimezone(there)
        end = (midnight + dt.timedelta(minutes=hours.end_minute)).astimezone(there)
        groups.setdefault(f"{_clock(start, day)}–{_clock(end, day)}", []).append(day)
    return list(groups.items())


def _clock(moment: dt.datetime, day: dt.date) -> str:
    shift = (moment.date() - day).days
    return f"{moment:%H:%M}" + ("" if not shift else f" ({shift:+d} day)")


def _day_runs(days: Sequence[dt.date], all_days: Sequence[dt.date]) -> str:
    """Runs of days that follow each other in ``all_days``: "Mon 26 Oct–Fri 30 Oct, Mon 02 Nov"."""
    index = {d: i for i, d in enumerate(all_days)}
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and index.get(day, -2) == index.get(runs[-1][-1], -9) + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        f"{r[0]:%a %d %b}" + (f"–{r[-1]:%a %d %b}" if len(r) > 1 else "") for r in runs
    )


def hours_text(hours: Hours, days: Sequence[dt.date], tzid: str) -> str:
    """The member's hours in their own zone and in the viewer's, for the grid:
    "09:00–17:30 New York = 14:00–22:30 London" (with the days that read otherwise)."""
    own = f"{hours.label()} {zone_label(hours.tzid)}"
    if not hours.zone_set:
        own += " (own time zone not set: the organisation's is assumed)"
    seen = hours_seen_from(hours, days, tzid)
    if zone(tzid).key == zone(hours.tzid).key or not seen:
        return own
    here = zone_label(tzid)
    (first, _days), *others = seen
    text = f"{own} = {first} {here}"
    if others:
        text += "; " + "; ".join(f"{times} {here} on {_day_runs(on, days)}" for times, on in others)
    return text


def _overlap(a: Sequence[Period], b: Sequence[Period]) -> tuple[Period, ...]:
    """Where the periods of ``a`` and of ``b`` overlap, in order (each list is disjoint)."""
    found = (Period(max(x.start, y.start), min(x.end, y.end)) for x in a for y in b)
    return tuple(sorted((p for p in found if p.end > p.start), key=lambda p: p.start))


def availability_query(
    members: Sequence[PanelMember],
    query: Query,
    window: Period,
    *,
    query_slots: Sequence[dt.datetime] = (),
    room: Room | None = None,
    within: Sequence[Period] | None = None,
) -> AvailabilityQuery | None:
    """The single aggregator query for the panel (and room), or None when nobody can be
    available. ``within``: extra periods the slots must fall in (a candidate's hours), sent as
    the query's periods, so the call stays one."""
    query_periods: tuple[Period, ...] = (window,)
    if within is not None:
        query_periods = _overlap(within, (window,))
        if not query_periods:
            return None
    built = []
    for m in members:
        periods = working_periods(m.hours, window)
        if within is not None:  # inside the query's periods too, whatever the aggregator assumes
            periods = _overlap(periods, query_periods)
        if periods:
            built.append(
                Member(
                    sub=m.link.sub,
                    calendar_ids=tuple(
                        m.link.conflict_calendar_ids
                        or ([m.link.target_calendar_id] if m.link.target_calendar_id else [])
                    ),
                    available_periods=periods,
                )
            )
    required = query.required
    if required == "all" and len(built) < len(members):
        return None
    if isinstance(required, int):
        if required > len(built):
            return None
        if required >= len(built):
            required = "all"
    if not built:
        return None
    groups = [Group(members=tuple(built), required=required)]
    if room is not None:  # the room's own group: it must be free, whatever "at least N" says
        groups.append(Group(members=(Member(sub=room.sub),), required="all"))
    return AvailabilityQuery(
        groups=tuple(groups),
        duration=dt.timedelta(minutes=query.duration),
        periods=() if query_slots else query_periods,
        query_slots=tuple(query_slots),
        buffer_before=dt.timedelta(minutes=query.buffer_before) if query.buffer_before else None,
        buffer_after=dt.timedelta(minutes=query.buffer_after) if query.buffer_after else None,
        start_interval=START_INTERVAL,
        response_format="slots",
        max_results=512,
    )


def validate_query(query: Query) -> None:
    if query.duration not in DURATIONS:
        raise Invalid("Choose one of the listed durations.", field="duration")
    if not 1 <= query.days <= MAX_DAYS:
        raise Invalid(f"Show between 1 and {MAX_DAYS} days.", field="days")
    if query.required != "all" and not (
        isinstance(query.required, int) and 1 <= query.required <= len(query.panel_link_ids)
    ):
        raise Invalid("“At least N” must be between 1 and the panel size.", field="required")
    for name in ("buffer_before", "buffer_after"):
        if not 0 <= getattr(query, name) <= 120:
            raise Invalid("Buffers are between 0 and 120 minutes.", field=name)
    if not valid_zone(query.tzid):
        raise Invalid("Choose a valid time zone.", field="tzid")
    today = utcnow().astimezone(zone(query.tzid)).date()
    if query.start_date is not None and query.start_date < today:
        raise Invalid("The date range cannot start in the past.", field="start_date")
    if query.start_date is not None and query.start_date > today + dt.timedelta(days=365):
        raise Invalid("Choose a date within the next year.", field="start_date")


# ---------------------------------------------------------------------------------------------
# Calls


def common_slots(
    broker: CalendarBroker,
    members: Sequence[PanelMember],
    query: Query,
    window: Period,
    *,
    query_slots: Sequence[dt.datetime] = (),
    room: Room | None = None,
    within: Sequence[Period] | None = None,
) -> tuple[Slot, ...]:
    """One aggregator call (application key) for the whole panel and the room."""
    built = availability_query(
        members, query, window, query_slots=query_slots, room=room, within=within
    )
    if built is None:
        return ()
    try:
        slots = broker.availability(built)
    except broker_errors.BrokerError as exc:
        raise broker_problem(exc) from None
    now = utcnow()
    return tuple(s for s in slots if s.start >= now)


_POOL: ThreadPoolExecutor | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One long-lived pool per process for the concurrent aggregator reads: no thread is started
    on a page's critical path (made lazily, so a forked worker makes its own)."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        with _POOL_LOCK:
            if _POOL is None or _POOL_PID != os.getpid():
                _POOL = ThreadPoolExecutor(
                    max_workers=POOL_THREADS, thread_name_prefix="availability"
                )
                _POOL_PID = os.getpid()
    return _POOL


class PendingBusy:
    """Free/busy reads of each member, in flight. Times and status only."""

    def __init__(
        self,
        session: Session,
        broker: CalendarBroker,
        cipher: TokenCipher,
        members: Sequence[PanelMember],
        days: Sequence[dt.date],
        tzid: str,
    ):
        self.session, self.cipher, self.members = session, cipher, members
        self.problems: dict[int, str] = {}
        self.refreshed: dict[int, Credentials] = {}
        self._lock = threading.Lock()
        creds: dict[int, Credentials] = {}
        for m in members:  # token handling touches the database: do it here, in this thread
            try:
                creds[m.link.id], _ = usable_credentials(session, broker, cipher, m.link)
            except ServiceError as exc:
                self.problems[m.link.id] = exc.message

        def read(member: PanelMember):
            def keep(new: Credentials) -> None:
                with self._lock:
                    self.refreshed[member.link.id] = new

            # The aggregator reads dates in the query's zone: from the first day shown to the
            # day after the last one, so the last local day's evening is never cut off.
            return broker.free_busy(
                creds[member.link.id],
                start=days[0],
                end=days[-1] + dt.timedelta(days=1),
                tzid=tzid,
                calendar_ids=tuple(member.link.conflict_calendar_ids or ()),
                on_refresh=keep,
            )

        pool = _pool()
        self.futures = {m.link.id: pool.submit(read, m) for m in members if m.link.id in creds}

    def result(self) -> tuple[dict[int, list[Block]], dict[int, str]]:
        busy: dict[int, list[Block]] = {}
        for link_id, future in self.futures.items():
            try:
                periods = future.result()
            except broker_errors.BrokerError as exc:
                self.problems[link_id] = broker_problem(exc).message
                continue
            busy[link_id] = sorted(
                (Block(_as_utc(p.start), _as_utc(p.end), p.status) for p in periods),
                key=lambda b: (b.start, b.end),
            )
        if self.refreshed:  # back in the request's thread: store refreshed tokens
            by_id = {m.link.id: m.link for m in self.members}
            for link_id, new in self.refreshed.items():
                store_credentials(by_id[link_id], new, self.cipher)
            self.session.commit()
        return busy, self.problems


def _as_utc(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC)
    return dt.datetime.combine(value, dt.time(0), UTC)


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
        busy=None,
        held: claims.Held | None = None,
    ):
        self.query, self.members, self.window, self.days, self.room = (
            query,
            members,
            window,
            days,
            room,
        )
        self._slots, self._busy, self._held = slots, busy, held or claims.Held()

    def result(self) -> Grid:
        if self._slots is None:
            return Grid(self.query, self.members, self.window, (), {}, {}, self.days, self.room)
        busy, problems = self._busy.result()
        for m in self.members:  # our own bookings, whether or not the calendar shows them yet
            if m.link.id in busy:
                busy[m.link.id] = with_held(busy[m.link.id], self._held.blocks(m.link.sub))
        slots = without_held(
            self._held, self._slots.result(), self.members, self.query, room=self.room
        )
        return Grid(
            self.query, self.members, self.window, slots, busy, problems, self.days, self.room
        )


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
    subs = subs_of(members, room)
    return tuple(
        s
        for s in slots
        if not held.clashes(
            subs, s.start, s.end, before=query.buffer_before, after=query.buffer_after
        )
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
) -> PendingGrid:
    """Check the question and send its aggregator calls: the availability call first (it is
    the one the page waits for), then one free/busy read per member, all concurrently; read our
    own claims meanwhile (``ignore_interview``: the one being moved)."""
    validate_query(query)
    members = resolve_panel(session, actor, query.panel_link_ids)
    room = resolve_room(session, actor, query.room)
    window, days = window_for(query)
    if window.end <= window.start:
        return PendingGrid(query, members, window, days, room)
    slots = _pool().submit(common_slots, broker, members, query, window, room=room)
    busy = PendingBusy(session, broker, cipher, members, days, query.tzid)
    held = held_for(session, members, window, room=room, ignore_interview=ignore_interview)
    return PendingGrid(query, members, window, days, room, slots, busy, held)


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
    members = resolve_panel(session, actor, query.panel_link_ids)
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
    end = start + dt.timedelta(minutes=query.duration)
    margin = dt.timedelta(hours=12)  # room for the buffers inside each member's working periods
    window = Period(start - margin, end + margin)
    found = common_slots(broker, members, query, window, query_slots=(start,), room=room)
    return any(s.start == start for s in found)


__all__ = [
    "Block",
    "Grid",
    "Hours",
    "PanelMember",
    "Query",
    "ReconnectNeeded",
    "Room",
    "common_slots",
    "grid",
    "panel_choices",
    "start_grid",
    "resolve_panel",
    "resolve_room",
    "room_choices",
    "slot_is_free",
    "window_for",
]


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
