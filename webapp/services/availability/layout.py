"""The week grid laid out for the page: each day a time axis in the viewer's zone, one lane per
panel member (merged busy blocks over shaded working hours) and the panel's lane (free windows
and a pick for every slot), positioned on fixed 15-minute rows.

Pure arithmetic on a ``Grid``: no aggregator call, no database, nothing stored. Positions are
grid line numbers that the page turns into class names (``gr-3 gs-4``: row 3, four rows high),
so a strict content security policy (no inline style) holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from broker.types import Period, Slot
from webapp.services.availability.model import UTC, Block, Grid, Hours, PanelMember, zone
from webapp.services.availability.windows import hours_text, working_periods

#: Minutes per row of the grid.
STEP = 15
#: Rows above the first time row (the lanes' headings).
HEAD_ROWS = 1
#: The axis shown when nobody's hours or slots say otherwise.
DEFAULT_FIRST, DEFAULT_LAST = 8 * 60, 18 * 60
DAY_MINUTES = 24 * 60
#: Whatever the day, a grid never needs more lines than a full day of rows (plus the heading).
MAX_ROW = HEAD_ROWS + DAY_MINUTES // STEP + 1
#: Busy statuses, the strongest first: a merged block takes the strongest of its parts.
STRENGTH = {"busy": 3, "unknown": 2, "tentative": 1}
WEEKEND = (6, 7)


@dataclass(frozen=True)
class Span:
    """A period on one day's rows: from grid line ``row``, ``rows`` rows high."""

    row: int
    rows: int
    start: dt.datetime
    end: dt.datetime
    status: str = ""
    #: The titles of the viewer's own events in it (their own lane only).
    titles: tuple[str, ...] = field(default=(), repr=False)
    #: Its place on the rows as the page's classes ("gr-3 gs-4"), formatted once here.
    place: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "place", f"gr-{self.row} gs-{self.rows}")

    @property
    def times(self) -> str:
        return f"{_clock(self.start)}–{_clock(self.end)}"


@dataclass(frozen=True)
class Pick:
    """One slot the panel is free for: a radio button on the row of its start."""

    value: str
    row: int
    times: str
    theirs: str
    #: The first slot of a free window (its time stays visible).
    lead: bool


@dataclass
class LaneDay:
    member: PanelMember
    column: int
    busy: list[Span]
    work: list[Span]
    problem: str | None
    #: The member's merged busy times on this day, whole (not cut to the axis), for the text.
    busy_text: list[str]


@dataclass
class DayView:
    date: dt.date
    label: str
    long_label: str
    anchor: str
    lanes: list[LaneDay]
    free: list[Span]
    picks: list[Pick]
    current: bool = False


@dataclass
class Legend:
    initials: str
    name: str
    hours: str
    problem: str | None


@dataclass
class WeekView:
    days: list[DayView]
    #: (grid line, "09:00") of each hour on the axis.
    ticks: list[tuple[int, str]]
    first_minute: int
    last_minute: int
    lanes: int
    panel_column: int
    legend: list[Legend]
    #: Free slots on Saturdays and Sundays left out of the page.
    hidden_weekend_slots: int = 0
    weekends: bool = False
    zone: str = "Etc/UTC"
    members: list[PanelMember] = field(default_factory=list)
    #: The members' busy blocks are not laid out yet: they come as the overlay.
    busy_pending: bool = False

    @property
    def last_row(self) -> int:
        return HEAD_ROWS + (self.last_minute - self.first_minute) // STEP + 1


def merge(blocks: Sequence[Block]) -> list[Block]:
    """Busy blocks with overlapping or touching ones merged (a ``free`` block is not busy); a
    merged block is as busy as the strongest of its parts."""
    out: list[Block] = []
    for b in sorted(blocks, key=lambda b: (b.start, b.end)):
        if b.status == "free" or b.end <= b.start:
            continue
        status = b.status if b.status in STRENGTH else "busy"
        if out and b.start <= out[-1].end:
            last = out[-1]
            strongest = max(last.status, status, key=lambda s: STRENGTH[s])
            titles = tuple(dict.fromkeys(last.titles + b.titles))
            out[-1] = Block(last.start, max(last.end, b.end), strongest, titles)
        else:
            out.append(Block(b.start, b.end, status, b.titles))
    return out


def merge_periods(periods: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[Period]:
    """The union of periods, in order."""
    out: list[Period] = []
    # The window being merged; made a Period once it is whole (not once per slot in it).
    first = last = None
    for start, end in sorted(periods):
        if last is not None and start <= last:
            if end > last:
                last = end
        elif end > start:
            if first is not None and last is not None:
                out.append(Period(first, last))
            first, last = start, end
    if first is not None and last is not None:
        out.append(Period(first, last))
    return out


def initials(name: str) -> str:
    words = [w for w in name.replace("-", " ").split() if w[:1].isalpha()]
    if not words:
        return "?"
    return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()


def _minute_of(moment: dt.datetime, day: dt.date) -> int:
    """Wall-clock minutes of ``moment`` (in the viewer's zone) since ``day`` began, clamped to
    the day."""
    if moment.date() < day:
        return 0
    if moment.date() > day:
        return DAY_MINUTES
    return moment.hour * 60 + moment.minute


def _local_parts(
    start: dt.datetime, end: dt.datetime, tz: dt.tzinfo
) -> list[tuple[dt.date, int, int]]:
    """The period cut into days of zone ``tz``: (day, first minute, last minute)."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    out = []
    day, last = start.date(), (end - dt.timedelta(microseconds=1)).date()
    while day <= last:
        a, b = _minute_of(start, day), _minute_of(end, day)
        if b > a:
            out.append((day, a, b))
        day += dt.timedelta(days=1)
    return out


def _span(
    day: dt.date,
    a: int,
    b: int,
    first: int,
    last: int,
    tz: dt.tzinfo,
    status: str = "",
    titles: tuple[str, ...] = (),
) -> Span | None:
    """The minutes ``a``–``b`` of ``day`` on the axis ``first``–``last`` (cut to it)."""
    a, b = max(a, first), min(b, last)
    if b <= a:
        return None
    row = HEAD_ROWS + 1 + (a - first) // STEP
    end_row = HEAD_ROWS + 1 + -(-(b - first) // STEP)
    midnight = dt.datetime.combine(day, dt.time(0))
    start = (midnight + dt.timedelta(minutes=a)).replace(tzinfo=tz)
    end = (midnight + dt.timedelta(minutes=b)).replace(tzinfo=tz)
    return Span(row, end_row - row, start, end, status, titles)


def shown_days(days: Sequence[dt.date], weekends: bool) -> list[dt.date]:
    """The days on the page: Saturdays and Sundays only when asked (or when nothing else is)."""
    if weekends:
        return list(days)
    weekdays = [d for d in days if d.isoweekday() not in WEEKEND]
    return weekdays or list(days)


def week_view(
    grid: Grid,
    tzid: str,
    *,
    candidate_tzid: str | None = None,
    weekends: bool = False,
    current: dt.date | None = None,
    axis: tuple[int, int] | None = None,
) -> WeekView:
    """The grid laid out for the page, in zone ``tzid``. ``axis``: the first and last minute
    of the time axis, as the page the busy overlay goes onto laid it out (else from the
    members' working hours and the free slots)."""
    tz = zone(tzid)
    other = zone(candidate_tzid) if candidate_tzid and candidate_tzid != tzid else None
    days = shown_days(grid.days, weekends)
    on_page = set(days)
    span = Period(
        dt.datetime.combine(grid.days[0], dt.time(0), tz).astimezone(UTC),
        dt.datetime.combine(grid.days[-1] + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC),
    )

    # Members often share their hours (the organisation's default): lay out each hours once.
    hours_parts: dict[Hours, list[tuple[dt.date, int, int]]] = {}
    work: dict[int, list[tuple[dt.date, int, int]]] = {}
    for m in grid.members:
        if m.hours not in hours_parts:
            hours_parts[m.hours] = [
                part
                for p in working_periods(m.hours, span)
                for part in _local_parts(p.start, p.end, tz)
                if part[0] in on_page
            ]
        work[m.link.id] = hours_parts[m.hours]
    in_grid = set(grid.days)
    # Each slot's start converted and dated once (the days on the page are among the grid's).
    slots: list[tuple[Slot, dt.datetime, dt.date]] = []
    hidden = 0
    for s in grid.slots:
        local = s.start.astimezone(tz)
        day = local.date()
        if day in on_page:
            slots.append((s, local, day))
        elif day in in_grid:
            hidden += 1
    free_parts = [
        part
        for w in merge_periods([(s.start, s.end) for s, _local, _day in slots])
        for part in _local_parts(w.start, w.end, tz)
    ]

    # One axis for the whole week, so the days line up: everyone's working hours and every slot.
    edges = [(a, b) for parts in work.values() for _d, a, b in parts]
    edges += [(a, b) for _d, a, b in free_parts]
    if axis is not None:
        first, last = axis
    elif edges:
        first = min(a for a, _b in edges) // 60 * 60
        last = min(DAY_MINUTES, -(-max(b for _a, b in edges) // 60) * 60)
    else:
        first, last = DEFAULT_FIRST, DEFAULT_LAST
    if axis is None and last - first < 4 * 60:  # a short axis still reads as a day
        last = min(DAY_MINUTES, first + 4 * 60)
        first = max(0, last - 4 * 60)

    # Each merged block cut into the viewer's days once (not once per day shown).
    # (block, first minute, last minute, the block's times as text on that day)
    busy_parts: dict[int, dict[dt.date, list[tuple[Block, int, int, str]]]] = {}
    for link_id, blocks in grid.busy.items():
        per_day: dict[dt.date, list[tuple[Block, int, int, str]]] = {}
        for b in merge(blocks):
            start, end = b.start.astimezone(tz), b.end.astimezone(tz)
            note = _status_note(b.status) + (f": {'; '.join(b.titles)}" if b.titles else "")
            for d, a, z in _local_parts(start, end, tz):
                if d in on_page:
                    per_day.setdefault(d, []).append((b, a, z, _times(start, end, d) + note))
        busy_parts[link_id] = per_day
    work_by_day: dict[int, dict[dt.date, list[tuple[int, int]]]] = {}
    for link_id, parts in work.items():
        for d, a, z in parts:
            work_by_day.setdefault(link_id, {}).setdefault(d, []).append((a, z))
    free_by_day: dict[dt.date, list[tuple[int, int]]] = {}
    for d, a, z in free_parts:
        free_by_day.setdefault(d, []).append((a, z))
    slots_by_day: dict[dt.date, list[tuple[Slot, dt.datetime]]] = {}
    # A slot's end is most often another's start: its clock is taken from there.
    clocks: dict[dt.datetime, str] = {}
    for s, local, day in slots:  # in order: each day's picks in the order of their starts
        slots_by_day.setdefault(day, []).append((s, local))
        clocks[s.start] = _clock(local)
    current = current if current in on_page else None
    # Members sharing their hours share their shaded spans (frozen): each is made once.
    shades: dict[tuple[dt.date, int, int], Span | None] = {}

    def shaded(day: dt.date, a: int, z: int) -> Span | None:
        if (day, a, z) not in shades:
            shades[day, a, z] = _span(day, a, z, first, last, tz)
        return shades[day, a, z]

    views: list[DayView] = []
    for day in days:
        lanes = []
        for i, m in enumerate(grid.members):
            problem = grid.busy_problems.get(m.link.id)
            busy: list[Span] = []
            text: list[str] = []
            for b, a, z, times in busy_parts.get(m.link.id, {}).get(day, ()):
                text.append(times)
                placed = _span(day, a, z, first, last, tz, b.status, b.titles)
                if placed is not None:
                    busy.append(placed)
            shade = [
                placed
                for a, z in work_by_day.get(m.link.id, {}).get(day, ())
                if (placed := shaded(day, a, z)) is not None
            ]
            lanes.append(LaneDay(m, i + 2, busy, shade, problem, text))
        free = [
            placed
            for a, z in free_by_day.get(day, ())
            if (placed := _span(day, a, z, first, last, tz)) is not None
        ]
        picks: list[Pick] = []
        previous_end: dt.datetime | None = None
        for s, local in slots_by_day.get(day, ()):
            a = local.hour * 60 + local.minute
            if not first <= a < last:
                continue
            theirs = f"{s.start.astimezone(other):%H:%M}" if other else ""
            lead = previous_end is None or s.start > previous_end
            previous_end = s.end if previous_end is None else max(previous_end, s.end)
            picks.append(
                Pick(
                    s.start.isoformat(),
                    HEAD_ROWS + 1 + (a - first) // STEP,
                    f"{clocks[s.start]}–{clocks.get(s.end) or _clock(s.end.astimezone(tz))}",
                    theirs,
                    lead,
                )
            )
        views.append(
            DayView(
                day,
                day.strftime("%a %d %b"),
                day.strftime("%A %d %B"),
                f"day-{day.isoformat()}",
                lanes,
                free,
                picks,
                current=(day == current) if current else not views,
            )
        )
    texts: dict[Hours, str] = {}
    for m in grid.members:
        if m.hours not in texts:
            texts[m.hours] = hours_text(m.hours, grid.days, tzid)
    legend = [
        Legend(initials(m.label), m.label, texts[m.hours], grid.busy_problems.get(m.link.id))
        for m in grid.members
    ]
    ticks = [
        (HEAD_ROWS + 1 + (h - first) // STEP, f"{h // 60:02d}:00") for h in range(first, last, 60)
    ]
    return WeekView(
        views,
        ticks,
        first,
        last,
        len(grid.members),
        len(grid.members) + 2,
        legend,
        hidden_weekend_slots=hidden,
        weekends=weekends,
        zone=tz.key,
        members=list(grid.members),
        busy_pending=grid.busy_pending,
    )


def _times(start: dt.datetime, end: dt.datetime, day: dt.date) -> str:
    """ "09:00–10:30", with the day named when the block begins or ends on another day."""
    a = _clock(start) if start.date() == day else f"{start:%a %H:%M}"
    b = _clock(end) if end.date() == day else f"{end:%a %H:%M}"
    return f"{a}–{b}"


def _clock(moment: dt.datetime) -> str:
    """ "09:05": the same as ``%H:%M``, without strftime's cost (it runs for every block)."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def _status_note(status: str) -> str:
    return "" if status == "busy" else f" ({status})"
