"""Availability as pure functions over epoch-second intervals (§6).

Busy blocks grow by the buffers (a slot ``[s, e)`` needs the member free over
``[s - before, e + after)``, which is the same as growing each busy block ``[b0, b1)`` to
``[b0 - after, b1 + before)``). Each member's free time is then the query periods (and the
member's own available periods) minus those blocks. A group with ``required: "all"`` is free where
every member is; a group with ``required: N`` is free over any window where some N members are all
free throughout. Everything is sorted interval lists and linear sweeps, so four weeks of ten
people with thousands of events takes milliseconds.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Interval = tuple[int, int]
HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Member:
    sub: str
    busy: Sequence[Interval] = ()
    #: Member-specific windows; None means "no restriction beyond the query periods".
    available: Sequence[Interval] | None = None


@dataclass(frozen=True)
class Group:
    members: Sequence[Member]
    required: int | None = None  # None means all

    @property
    def needed(self) -> int:
        return len(self.members) if self.required is None else self.required


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    participants: frozenset[str]


@dataclass
class Query:
    groups: Sequence[Group]
    duration: int
    periods: Sequence[Interval]
    before: int = 0
    after: int = 0
    interval: int = 1800
    max_results: int = 256
    _free: dict[str, list[Interval]] = field(default_factory=dict, repr=False)

    def free(self, member: Member) -> list[Interval]:
        """The member's free intervals within the query periods, buffers applied (cached)."""
        if member.sub not in self._free:
            windows = merge(self.periods)
            if member.available is not None:
                windows = intersect(windows, merge(member.available))
            grown = merge((b0 - self.after, b1 + self.before) for b0, b1 in member.busy)
            self._free[member.sub] = subtract(windows, grown)
        return self._free[member.sub]


# ---- interval algebra ---------------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and join overlapping or touching intervals; drop empty ones."""
    out: list[list[int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def subtract(base: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    """``base`` minus ``cuts``; both merged and sorted."""
    out: list[Interval] = []
    j = 0
    for start, end in base:
        cur = start
        while j < len(cuts) and cuts[j][1] <= cur:
            j += 1
        k = j
        while k < len(cuts) and cuts[k][0] < end:
            if cuts[k][0] > cur:
                out.append((cur, cuts[k][0]))
            cur = max(cur, cuts[k][1])
            if cur >= end:
                break
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two merged, sorted interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def covers(free: Sequence[Interval], start: int, end: int) -> bool:
    """True if one interval of ``free`` contains ``[start, end)``."""
    idx = bisect_right(free, (start, float("inf"))) - 1
    return idx >= 0 and free[idx][0] <= start and free[idx][1] >= end


def next_aligned(t: int, interval: int) -> int:
    """The first start at or after ``t`` on the ``start_interval`` grid, counted from the hour."""
    if interval <= HOUR:
        hour = t - t % HOUR
        steps = -(-(t - hour) // interval)
        candidate = hour + steps * interval
        return candidate if candidate - hour < HOUR else hour + HOUR
    if DAY % interval == 0:
        return -(-t // interval) * interval
    return -(-t // HOUR) * HOUR


# ---- groups -------------------------------------------------------------------------------------


def group_windows(query: Query, group: Group) -> list[Window]:
    """Maximal windows (≥ duration) in which the group's requirement is met by a fixed set."""
    members = list(group.members)
    needed = group.needed
    if needed <= 0:
        return [
            Window(s, e, frozenset()) for s, e in merge(query.periods) if e - s >= query.duration
        ]
    frees = {m.sub: query.free(m) for m in members}
    if needed >= len(members):
        common: list[Interval] | None = None
        for m in members:
            common = frees[m.sub] if common is None else intersect(common, frees[m.sub])
        everyone = frozenset(m.sub for m in members)
        return [Window(s, e, everyone) for s, e in common or [] if e - s >= query.duration]
    lefts = sorted({s for free in frees.values() for s, _e in free})
    windows: list[Window] = []
    for left in lefts:
        ends = []
        for sub, free in frees.items():
            idx = bisect_right(free, (left, float("inf"))) - 1
            if idx >= 0 and free[idx][0] <= left < free[idx][1]:
                ends.append((free[idx][1], sub))
        if len(ends) < needed:
            continue
        ends.sort(reverse=True)
        right = ends[needed - 1][0]
        if right - left >= query.duration:
            windows.append(Window(left, right, frozenset(sub for end, sub in ends if end >= right)))
    return _maximal(windows)


def _maximal(windows: list[Window]) -> list[Window]:
    """Drop windows whose time span lies inside another's."""
    windows.sort(key=lambda w: (w.start, -w.end))
    out: list[Window] = []
    furthest = None
    for w in windows:
        if furthest is not None and w.end <= furthest:
            continue
        out.append(w)
        furthest = w.end
    return out


def combined_windows(query: Query) -> list[Window]:
    """Windows where every group's requirement holds, with the union of free participants."""
    result: list[Window] | None = None
    for group in query.groups:
        windows = group_windows(query, group)
        if result is None:
            result = windows
            continue
        joined = []
        for a in result:
            for b in windows:
                if b.start >= a.end:
                    break
                start, end = max(a.start, b.start), min(a.end, b.end)
                if end - start >= query.duration:
                    joined.append(Window(start, end, a.participants | b.participants))
        result = _maximal(joined)
        if not result:
            break
    return sorted(result or [], key=lambda w: (w.start, w.end))


def _all_required(query: Query) -> bool:
    return all(g.needed >= len(g.members) for g in query.groups)


def slot_participants(query: Query, start: int, end: int) -> frozenset[str] | None:
    """Members free throughout ``[start, end)``, or None if some group's requirement fails."""
    free_subs: set[str] = set()
    for group in query.groups:
        free = [m.sub for m in group.members if covers(query.free(m), start, end)]
        if len(free) < group.needed:
            return None
        free_subs.update(free)
    return frozenset(free_subs)


# ---- responses ----------------------------------------------------------------------------------


def periods(query: Query) -> list[Window]:
    """``response_format: periods`` — maximal available windows, at most ``max_results``."""
    return combined_windows(query)[: query.max_results]


def slots(query: Query, *, overlapping: bool = False) -> list[Window]:
    """``slots`` (back to back) or ``overlapping_slots`` (every interval step)."""
    exact = not _all_required(query)
    found: dict[int, Window] = {}
    for window in combined_windows(query):
        start = next_aligned(window.start, query.interval)
        while start + query.duration <= window.end:
            end = start + query.duration
            if start not in found:
                who = slot_participants(query, start, end) if exact else window.participants
                if who is not None:
                    found[start] = Window(start, end, who)
            start = next_aligned(start + (1 if overlapping else query.duration), query.interval)
            if not exact and len(found) >= query.max_results:
                break
        if not exact and len(found) >= query.max_results:
            break
    return [found[s] for s in sorted(found)][: query.max_results]


def check_slots(query: Query, starts: Iterable[int]) -> list[Window]:
    """``query_slots``: which of these exact starts are available."""
    out = []
    for start in sorted(set(starts)):
        who = slot_participants(query, start, start + query.duration)
        if who is not None:
            out.append(Window(start, start + query.duration, who))
    return out[: query.max_results]


# ---- sequenced availability --------------------------------------------------------------------


@dataclass
class Step:
    """One step of a sequence. The gap is measured from the previous step's end to this start."""

    sequence_id: object
    query: Query
    gap_min: int = 0
    gap_max: int | None = None


def step_slots(query: Query) -> list[Window]:
    """Every aligned start at which the step's participant requirement holds."""
    every = Query(
        query.groups,
        query.duration,
        query.periods,
        query.before,
        query.after,
        query.interval,
        max_results=1 << 30,
    )
    return slots(every, overlapping=True)


def _next_within(starts: list[int], lo: int, hi: int | None) -> int | None:
    """Index of the first start in ``[lo, hi]`` (``hi`` None: unbounded), or None."""
    idx = bisect_left(starts, lo)
    if idx < len(starts) and (hi is None or starts[idx] <= hi):
        return idx
    return None


def sequences(steps: Sequence[Step], max_results: int) -> list[list[tuple[object, Window]]]:
    """Chains of one slot per step, each starting ``gap_min``..``gap_max`` after the previous end.

    Exact, not greedy: a backward pass keeps only the slots from which the rest of the chain
    can still be completed, so a tight maximum gap later in the sequence never hides a chain.
    One chain per feasible start of the first step, earliest first, each continuing with the
    earliest feasible slot of every later step.
    """
    if not steps:
        return []
    feasible: list[list[Window]] = [step_slots(s.query) for s in steps]
    for i in range(len(steps) - 2, -1, -1):
        nxt = steps[i + 1]
        starts = [w.start for w in feasible[i + 1]]
        feasible[i] = [
            w
            for w in feasible[i]
            if _next_within(
                starts,
                w.end + nxt.gap_min,
                None if nxt.gap_max is None else w.end + nxt.gap_max,
            )
            is not None
        ]
    all_starts = [[w.start for w in f] for f in feasible]
    results: list[list[tuple[object, Window]]] = []
    for first in feasible[0][:max_results]:
        chain = [(steps[0].sequence_id, first)]
        prev = first
        for i in range(1, len(steps)):
            step = steps[i]
            hi = None if step.gap_max is None else prev.end + step.gap_max
            idx = _next_within(all_starts[i], prev.end + step.gap_min, hi)
            assert idx is not None  # the backward pass kept only completable slots
            prev = feasible[i][idx]
            chain.append((step.sequence_id, prev))
        results.append(chain)
    return results
