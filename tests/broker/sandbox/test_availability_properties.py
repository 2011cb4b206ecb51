"""Property tests of the availability functions against a brute-force oracle (§6, issue "Tests")."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.sandbox import availability as av

BASE = 1_700_000_000 - 1_700_000_000 % 3600  # an hour boundary
STEP = 300  # every value is a multiple of five minutes, so the oracle can walk in 5-minute steps
DAY = 24 * 3600

times = st.integers(min_value=0, max_value=DAY // STEP).map(lambda n: BASE + n * STEP)


@st.composite
def intervals(draw, max_size=8):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(times)
        length = draw(st.integers(1, 36)) * STEP
        out.append((start, start + length))
    return out


@st.composite
def queries(draw, *, all_required: bool | None = None):
    n_groups = draw(st.integers(1, 2))
    groups = []
    counter = 0
    for _ in range(n_groups):
        members = []
        for _ in range(draw(st.integers(1, 3))):
            counter += 1
            available = draw(st.none() | intervals(max_size=3).filter(bool))
            members.append(av.Member(f"acc_{counter}", draw(intervals()), available))
        required_all = draw(st.booleans()) if all_required is None else all_required
        required = None if required_all else draw(st.integers(1, len(members)))
        groups.append(av.Group(members, required))
    periods = draw(intervals(max_size=3).filter(bool))
    return av.Query(
        groups=groups,
        duration=draw(st.sampled_from([15, 30, 45, 60])) * 60,
        periods=periods,
        before=draw(st.sampled_from([0, 5, 10, 30])) * 60,
        after=draw(st.sampled_from([0, 5, 15])) * 60,
        interval=draw(st.sampled_from([15, 30, 60])) * 60,
        max_results=100_000,
    )


# ---- the oracle ------------------------------------------------------------------------------


def in_periods(query: av.Query, start: int, end: int) -> bool:
    return any(s <= start and end <= e for s, e in av.merge(query.periods))


def member_free(query: av.Query, member: av.Member, start: int, end: int) -> bool:
    if member.available is not None and not any(
        s <= start and end <= e for s, e in av.merge(member.available)
    ):
        return False
    return all(not (start - query.before < b1 and end + query.after > b0) for b0, b1 in member.busy)


def free_members(query: av.Query, start: int, end: int) -> set[str] | None:
    """Members free over [start, end), or None if a group's requirement is not met."""
    if not in_periods(query, start, end):
        return None
    who: set[str] = set()
    for group in query.groups:
        free = {m.sub for m in group.members if member_free(query, m, start, end)}
        if len(free) < group.needed:
            return None
        who |= free
    return who


def grid(query: av.Query):
    lo = min(s for s, _ in query.periods) - 3600
    hi = max(e for _, e in query.periods)
    t = av.next_aligned(lo, query.interval)
    while t <= hi:
        yield t
        t = av.next_aligned(t + 1, query.interval)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(queries())
def test_overlapping_slots_are_exactly_the_free_aligned_starts(query):
    got = {w.start: w for w in av.slots(query, overlapping=True)}
    expected = {t: free_members(query, t, t + query.duration) for t in grid(query)}
    expected = {t: who for t, who in expected.items() if who is not None}
    assert set(got) == set(expected), "no free window of sufficient length is missed, none invented"
    for start, window in got.items():
        assert window.end - window.start == query.duration
        assert set(window.participants) == expected[start]


@PROPERTY
@given(queries())
def test_slots_never_overlap_a_participants_busy_time(query):
    for window in av.slots(query):
        assert in_periods(query, window.start, window.end)
        members = {m.sub: m for g in query.groups for m in g.members}
        for sub in window.participants:
            assert member_free(query, members[sub], window.start, window.end), "buffers included"
        for group in query.groups:
            assert len({m.sub for m in group.members} & window.participants) >= group.needed


@PROPERTY
@given(queries(all_required=True))
def test_required_all_means_every_member_is_free(query):
    everyone = {m.sub for g in query.groups for m in g.members}
    for window in av.slots(query) + av.periods(query):
        assert set(window.participants) == everyone
        for group in query.groups:
            for member in group.members:
                assert member_free(query, member, window.start, window.end)


@PROPERTY
@given(queries(all_required=True))
def test_periods_are_maximal_free_windows_and_miss_nothing(query):
    found = av.periods(query)
    d = query.duration

    def free(start: int, end: int) -> bool:
        return free_members(query, start, end) is not None

    for w in found:
        assert w.end - w.start >= d
        assert all(free(t, t + STEP) for t in range(w.start, w.end, STEP))
        assert not free(w.start - STEP, w.start) and not free(w.end, w.end + STEP), "maximal"
    lo = min(s for s, _ in query.periods)
    hi = max(e for _, e in query.periods)
    for t in range(lo, hi - d + 1, STEP):
        if free(t, t + d):
            assert any(w.start <= t and t + d <= w.end for w in found), "a free window was missed"


@PROPERTY
@given(queries(all_required=False))
def test_periods_with_required_n_are_backed_by_enough_members(query):
    members = {m.sub: m for g in query.groups for m in g.members}
    for w in av.periods(query):
        for group in query.groups:
            listed = [m for m in group.members if m.sub in w.participants]
            assert len(listed) >= group.needed
        for sub in w.participants:
            assert member_free(query, members[sub], w.start, w.end)


@PROPERTY
@given(queries(all_required=False))
def test_slots_with_required_n_list_exactly_the_members_free_for_that_slot(query):
    """What a pool pick relies on: for ``required: N`` each slot names every member free over
    that very slot (not over a longer window around it), and no one busy in it."""
    for window in av.slots(query):
        assert set(window.participants) == free_members(query, window.start, window.end)


@PROPERTY
@given(queries(), st.data())
def test_query_slots_agree_with_the_oracle(query, data):
    starts = data.draw(st.lists(times, max_size=6))
    found = av.check_slots(query, starts)
    got = {w.start for w in found}
    assert got == {t for t in starts if free_members(query, t, t + query.duration) is not None}
    for w in found:  # the booking's re-check of a pool pick reads who is free from these
        assert set(w.participants) == free_members(query, w.start, w.end)


def test_slots_are_back_to_back_and_aligned():
    query = av.Query(
        [av.Group([av.Member("a", [])])], 45 * 60, [(BASE + 600, BASE + 4 * 3600)], interval=30 * 60
    )
    starts = [w.start - BASE for w in av.slots(query)]
    assert starts == [1800, 4500 + 900, 9000]  # 00:30, 01:30 (next grid point after 01:15), 02:30


def test_start_interval_counts_from_the_hour():
    assert av.next_aligned(BASE + 1, 45 * 60) == BASE + 45 * 60
    assert av.next_aligned(BASE + 46 * 60, 45 * 60) == BASE + 3600
    assert av.next_aligned(BASE + 1, 120 * 60) % (120 * 60) == 0


def test_max_results_caps_the_answer():
    query = av.Query(
        [av.Group([av.Member("a", [])])],
        15 * 60,
        [(BASE, BASE + DAY)],
        interval=15 * 60,
        max_results=5,
    )
    assert len(av.slots(query, overlapping=True)) == 5


def test_sequences_chain_steps_with_gaps():
    first = av.Query(
        [av.Group([av.Member("a", [(BASE, BASE + 3600)])])],
        3600,
        [(BASE, BASE + 8 * 3600)],
        interval=3600,
    )
    second = av.Query(
        [av.Group([av.Member("b", [(BASE + 2 * 3600, BASE + 3 * 3600)])])],
        3600,
        [(BASE, BASE + 8 * 3600)],
        interval=3600,
    )
    chains = av.sequences([av.Step("one", first), av.Step("two", second, gap_min=0)], 3)
    assert chains, "a chain exists"
    one, two = chains[0]
    assert one[1].start == BASE + 3600 and two[1].start == BASE + 3 * 3600
    for chain in chains:
        assert chain[1][1].start >= chain[0][1].end
