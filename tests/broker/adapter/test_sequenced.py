"""Sequenced availability (§6.2) in the broker: the body it sends and the answers it reads (the SDK
fixtures' shapes and the variations the documentation allows). The call against the strict
sandbox is in test_contract_sandbox.py."""

from __future__ import annotations

import datetime as dt

import pytest

from broker.cronofy import decode, encode
from broker.errors import Invalid
from broker.types import (
    Group,
    Member,
    Period,
    SequencedAvailabilityQuery,
    SequenceStep,
)

UTC = dt.UTC
MIN = dt.timedelta(minutes=1)


def _at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2031, 3, 4, hour, minute, tzinfo=UTC)


def _query(**second) -> SequencedAvailabilityQuery:
    return SequencedAvailabilityQuery(
        steps=(
            SequenceStep(
                "123",
                (Group((Member("acc_567236000909002"),)),),
                60 * MIN,
                start_interval=60 * MIN,
                gap_after_min=15 * MIN,
                gap_after_max=30 * MIN,
            ),
            SequenceStep(
                "456",
                (Group((Member("acc_678347111010113"), Member("res_1")), required=1),),
                60 * MIN,
                **second,
            ),
        ),
        periods=(Period(_at(9), _at(18)),),
    )


def test_body_is_the_documented_shape():
    body = encode.sequenced_availability_body(
        _query(gap_before_min=30 * MIN, gap_before_max=60 * MIN)
    )
    assert body["query_periods"] == [
        {"start": "2031-03-04T09:00:00Z", "end": "2031-03-04T18:00:00Z"}
    ]
    first, second = body["sequence"]
    assert (first["sequence_id"], first["ordinal"]) == ("123", 1)
    assert (second["sequence_id"], second["ordinal"]) == ("456", 2)
    assert first["participants"] == [
        {"members": [{"sub": "acc_567236000909002"}], "required": "all"}
    ]
    assert second["participants"][0]["required"] == 1
    assert first["required_duration"] == {"minutes": 60}
    assert first["start_interval"] == {"minutes": 60}
    assert first["buffer"] == {"after": {"minimum": {"minutes": 15}, "maximum": {"minutes": 30}}}
    assert second["buffer"] == {"before": {"minimum": {"minutes": 30}, "maximum": {"minutes": 60}}}
    assert "start_interval" not in second


@pytest.mark.parametrize(
    "query, field",
    [
        (SequencedAvailabilityQuery(steps=(), periods=(Period(_at(9), _at(10)),)), "sequence"),
        (SequencedAvailabilityQuery(steps=_query().steps, periods=()), "query_periods"),
        (
            SequencedAvailabilityQuery(
                steps=(_query().steps[0], _query().steps[0]), periods=_query().periods
            ),
            "sequence",
        ),
        (_query(gap_before_min=40 * MIN), "buffer"),  # no gap is both ≥ 40 and ≤ 30 minutes
        (_query(gap_before_min=20 * MIN, gap_before_max=10 * MIN), "buffer"),
        (_query(gap_before_min=dt.timedelta(seconds=90)), "buffer"),
    ],
)
def test_what_cannot_be_asked_is_refused_before_sending(query, field):
    with pytest.raises(Invalid) as info:
        encode.sequenced_availability_body(query)
    assert field in info.value.fields


def _item(sid, start, end, sub):
    return {"sequence_id": sid, "start": start, "end": end, "participants": [{"sub": sub}]}


def test_answers_are_read_in_step_order_whatever_comes_back():
    """Ids may come back as integers (cronofy-ruby's fixture) and steps in any order; options
    come back earliest first; extra keys (a sequence-level start/end) are ignored."""
    data = {
        "sequences": [
            {
                "sequence": [
                    _item(456, "2031-03-04T12:30:00Z", "2031-03-04T13:30:00Z", "res_1"),
                    _item(123, "2031-03-04T11:00:00Z", "2031-03-04T12:00:00Z", "acc_5"),
                ],
                "start": "2031-03-04T11:00:00Z",
                "end": "2031-03-04T13:30:00Z",
            },
            {
                "sequence": [
                    _item("123", "2031-03-04T09:00:00Z", "2031-03-04T10:00:00Z", "acc_5"),
                    _item("456", "2031-03-04T10:15:00Z", "2031-03-04T11:15:00Z", "acc_6"),
                ]
            },
        ]
    }
    first, second = decode.sequences(data, _query())
    assert [sid for sid, _slot in first.slots] == ["123", "456"]
    assert (first.start, first.end) == (_at(9), _at(11, 15))
    assert first.slot("456").participants == ("acc_6",)
    assert (second.start, second.end) == (_at(11), _at(13, 30))
    assert decode.sequences({"sequences": []}, _query()) == ()


@pytest.mark.parametrize(
    "items",
    [
        [_item("123", "2031-03-04T09:00:00Z", "2031-03-04T10:00:00Z", "a")],
        [
            _item("123", "2031-03-04T09:00:00Z", "2031-03-04T10:00:00Z", "a"),
            _item("999", "2031-03-04T10:00:00Z", "2031-03-04T11:00:00Z", "b"),
        ],
        [
            _item("123", "2031-03-04T09:00:00Z", "2031-03-04T10:00:00Z", "a"),
            _item("456", "2031-03-04T09:30:00Z", "2031-03-04T10:30:00Z", "b"),
        ],
    ],
)
def test_a_sequence_missing_steps_or_out_of_order_is_malformed(items):
    with pytest.raises(ValueError):
        decode.sequences({"sequences": [{"sequence": items}]}, _query())
