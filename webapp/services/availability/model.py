"""What availability is asked and answered in: the limits, the panel member and room, the
question (``Query``) and the grid of slots it gets back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broker.types import Period, Slot
from models import (
    Pool,
    ProfileLink,
    User,
)

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
    """A busy block: times and status only; on the viewer's own lane, the titles of their own
    events in it (calendar content for the owner's eyes: never stored, never logged)."""

    start: dt.datetime
    end: dt.datetime
    status: str
    titles: tuple[str, ...] = field(default=(), repr=False)


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
    #: "Any N from pool X" on top of the named panel: (pool id, N) pairs.
    pools: tuple[tuple[int, int], ...] = ()
    #: The asked pools that also bring a shadow (a trainee, when one is free; never in the N).
    shadows: tuple[int, ...] = ()


@dataclass(frozen=True)
class PoolAsk:
    """ "Any ``count`` from ``pool``": the members who can be picked (not shadows, a usable
    calendar, not already named on the panel) go to the aggregator as one group with
    ``required: count``."""

    pool: Pool
    count: int
    candidates: tuple[PanelMember, ...]
    #: The pool's shadows who may be brought along (when the query asks for one).
    shadows: tuple[PanelMember, ...] = ()


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
    #: The members' busy times were not read: the page shows the slots and the working hours,
    #: and the busy overlay comes on its own (``overlay.busy_overlay``).
    busy_pending: bool = False
    #: The pool asks, and per slot (its start, ISO in UTC) who each would pick and why
    #: (``pools.asks.SlotPicks``); slots no pick can fill are not among ``slots``.
    asks: tuple[PoolAsk, ...] = ()
    pool_picks: dict = field(default_factory=dict)
