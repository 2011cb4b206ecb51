"""Sequenced availability (§6.2) against a brute-force oracle, like single availability.

The oracle knows nothing of interval algebra: for every step it walks every aligned start in the
periods and asks, member by member, who is free; then it searches every chain of such starts
exhaustively (memoised) for one that respects each gap's minimum and maximum.
"""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.sandbox import availability as av

from .test_availability_properties import BASE, free_members, grid, queries

GAPS_MIN = [0, 15, 30]
GAPS_MAX = [None, 0, 15, 30, 60, 120]


@st.composite
def step_lists(draw):
    first = draw(queries())
    steps = [av.Step("s0", first)]
    for i in range(1, draw(st.integers(1, 3))):
        query = draw(queries())
        query.periods = first.periods  # one set of query periods for the whole sequence
        gap_min = draw(st.sampled_from(GAPS_MIN)) * 60
        gap_max = draw(st.sampled_from(GAPS_MAX))
        gap_max = None if gap_max is None else max(gap_min, gap_max * 60)
        steps.append(av.Step(f"s{i}", query, gap_min, gap_max))
    return steps


def oracle(steps: list[av.Step]):
    """(free[i]: start -> participants for each step, completable(i, start))."""
    free = []
    for step in steps:
        q = step.query
        found = {t: free_members(q, t, t + q.duration) for t in grid(q)}
        free.append({t: who for t, who in found.items() if who is not None})

    @cache
    def completable(i: int, start: int) -> bool:
        if i == len(steps) - 1:
            return True
        end = start + steps[i].query.duration
        nxt = steps[i + 1]
        return any(
            t - end >= nxt.gap_min
            and (nxt.gap_max is None or t - end <= nxt.gap_max)
            and completable(i + 1, t)
            for t in free[i + 1]
        )

    return free, completable


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(step_lists())
def test_every_sequence_is_valid_and_none_is_missed(steps):
    free, completable = oracle(steps)
    chains = av.sequences(steps, max_results=1 << 30)
    for chain in chains:
        assert [sid for sid, _w in chain] == [s.sequence_id for s in steps], "ordinal order"
        prev_end = None
        for step, (_sid, window) in zip(steps, chain, strict=True):
            q = step.query
            assert window.end - window.start == q.duration
            assert av.next_aligned(window.start, q.interval) == window.start, "on the grid"
            assert window.start in free[steps.index(step)], "participants free, inside periods"
            assert set(window.participants) == free[steps.index(step)][window.start]
            if prev_end is not None:
                gap = window.start - prev_end
                assert gap >= step.gap_min
                assert step.gap_max is None or gap <= step.gap_max
            prev_end = window.end
    got_first = [chain[0][1].start for chain in chains]
    assert got_first == sorted(set(got_first)), "one sequence per first start, earliest first"
    expected_first = {t for t in free[0] if completable(0, t)}
    assert set(got_first) == expected_first, "a sequence exists exactly where the oracle finds one"


def _one(sub, busy=()):
    return [av.Group([av.Member(sub, list(busy))])]


def test_a_tight_maximum_gap_later_is_not_hidden_by_an_early_choice():
    """A greedy chain takes the earliest second step and then cannot meet the third's maximum."""
    day = [(BASE, BASE + 8 * 3600)]
    first = av.Query(_one("a"), 3600, day, interval=3600)
    second = av.Query(_one("b"), 3600, day, interval=3600)
    third = av.Query(_one("c", [(BASE, BASE + 4 * 3600)]), 3600, day, interval=3600)
    steps = [
        av.Step("one", first),
        av.Step("two", second),
        av.Step("three", third, gap_min=0, gap_max=0),
    ]
    chains = av.sequences(steps, max_results=1)
    assert [(sid, w.start - BASE) for sid, w in chains[0]] == [
        ("one", 0),
        ("two", 3 * 3600),
        ("three", 4 * 3600),
    ]


def test_max_results_caps_the_sequences():
    day = [(BASE, BASE + 8 * 3600)]
    steps = [
        av.Step("one", av.Query(_one("a"), 1800, day, interval=1800)),
        av.Step("two", av.Query(_one("b"), 1800, day, interval=1800), 0, 0),
    ]
    assert len(av.sequences(steps, max_results=3)) == 3
    assert len(av.sequences(steps, max_results=1000)) == 15  # 09:00 .. 16:00 back to back
