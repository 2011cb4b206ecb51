"""HMAC verification and parsing of what the aggregator POSTs to us (reference §2.4, §7)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InvalidNotification
from broker.notifications import (
    parse_notification,
    parse_service_account_callback,
    sign,
    verify_hmac,
)

BODY = b'{"example":"well-known"}'
# §7.3 vectors: (client_secret, expected header value)
VECTORS = [
    ("opposable thumbs", "38ArsN7+J/O8joGsgirVEdV16a/+eb+5QgHGIiuv4hk="),
    ("pDY0Oi7TJSP2hfNmZNkm5", "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="),
    ("CRN_NggYusqPGLxwjw5FHOJYOqSrTPNXy8WQf14OID", "5DxentQi5YSXODEzTVv06sRwJ3pULIz1KrYv20qxEK0="),
    ("CRN_nGlYDFXwfSXgB9rvGNBJyfE454GGPtWIbNuPwr", "BmQmWVuZ70ILWjr1CAt5oC7YOolgnku4WZtlrKfx/6k="),
]


@pytest.mark.parametrize(("secret", "expected"), VECTORS)
def test_documented_vectors(secret, expected):
    assert sign(BODY, secret) == expected
    assert verify_hmac(BODY, expected, [secret])


def test_rotation_header_with_several_values_and_spaces():
    (s1, h1), (s2, h2) = VECTORS[2], VECTORS[3]
    header = f"{h1}, {h2}"  # pycronofy's hmac_valid would reject the second (leading space)
    assert verify_hmac(BODY, header, [s2])
    assert verify_hmac(BODY, header, [s1])
    assert verify_hmac(BODY, f" {h2} ,garbage", ["other", s2])


@pytest.mark.parametrize(
    "header", [None, "", " , ", "garbage", VECTORS[1][1], VECTORS[0][1].lower()]
)
def test_rejects_missing_or_wrong_signatures(header):
    assert not verify_hmac(BODY, header, [VECTORS[0][0]])


def test_rejects_modified_body_and_empty_secret_list():
    secret, header = VECTORS[0]
    assert not verify_hmac(BODY + b" ", header, [secret])
    assert not verify_hmac(BODY, header, [])
    assert not verify_hmac(BODY, header, [""])


def test_uses_raw_bytes_not_reserialized_json():
    secret = "s3cret"
    raw = b'{ "notification" : {"type":"verification"} }'
    header = sign(raw, secret)
    assert verify_hmac(raw, header, [secret])
    assert not verify_hmac(json.dumps(json.loads(raw)).encode(), header, [secret])


@given(st.binary(max_size=512), st.text(min_size=1, max_size=40))
def test_sign_then_verify_roundtrip(body, secret):
    assert verify_hmac(body, sign(body, secret), [secret])
    assert not verify_hmac(body, sign(body + b"x", secret), [secret])


# --- push notifications -------------------------------------------------------------------------

CHANNEL = {
    "channel_id": "chn_54cf7c7cb4ad4c1027000001",
    "callback_url": "https://app.example.com/cronofy/push/42",
    "filters": {"calendar_ids": ["cal_n23kjnwrw2_sakdnawerd3"], "only_managed": False},
}


def _body(notification: dict) -> bytes:
    return json.dumps({"notification": notification, "channel": CHANNEL}).encode()


def test_change_notification_from_reference():
    n = parse_notification(_body({"type": "change", "changes_since": "2025-01-17T09:24:16Z"}))
    assert n.type == "change"
    assert n.changes_since == dt.datetime(2025, 1, 17, 9, 24, 16, tzinfo=dt.UTC)
    assert n.channel_id == "chn_54cf7c7cb4ad4c1027000001"
    assert n.callback_url == "https://app.example.com/cronofy/push/42"
    assert n.calendar_ids == ("cal_n23kjnwrw2_sakdnawerd3",)
    assert n.only_managed is False


@pytest.mark.parametrize(
    "kind",
    [
        "verification",
        "profile_disconnected",
        "profile_initial_sync_completed",
        "conferencing_profile_disconnected",
        "conferencing_assigned",
        "conferencing_failing",
        "gdpr_requested",
    ],
)
def test_known_types(kind):
    n = parse_notification(_body({"type": kind}))
    assert n.type == kind and n.raw_type == kind
    assert n.changes_since is None


def test_unknown_type_is_tolerated_and_preserved():
    n = parse_notification(_body({"type": "brand_new_thing", "x": 1}))
    assert n.type == "unknown"
    assert n.raw_type == "brand_new_thing"
    assert n.extra["x"] == 1


def test_profile_id_when_present():
    n = parse_notification(_body({"type": "profile_disconnected", "profile_id": "pro_1"}))
    assert n.profile_id == "pro_1"


def test_notification_without_channel():
    n = parse_notification(b'{"notification": {"type": "verification"}}')
    assert n.type == "verification" and n.channel_id is None and n.calendar_ids == ()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"channel": {}}',
        b'{"notification": {"type": 5}}',
        b"\xff\xfe",
        b'{"notification": {"type": "change", "changes_since": "yesterday"}}',
    ],
)
def test_malformed_bodies_raise_typed_error(raw):
    with pytest.raises(InvalidNotification):
        parse_notification(raw)


@given(st.binary(max_size=200))
def test_parser_never_raises_anything_but_invalid_notification(raw):
    try:
        parse_notification(raw)
    except InvalidNotification:
        pass


# --- service-account authorization callbacks ----------------------------------------------------


def test_sa_callback_success():
    cb = parse_service_account_callback(
        b'{"authorization": {"code": "Kq0aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "state": "u42"}}'
    )
    assert cb.success and cb.code == "Kq0aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" and cb.state == "u42"
    assert "Kq0" not in repr(cb)  # the code is a credential


def test_sa_callback_failure_with_state():
    cb = parse_service_account_callback(
        json.dumps(
            {
                "authorization": {
                    "error": "access_denied",
                    "error_key": "unknown_mailbox",
                    "error_description": "No such mailbox",
                    "state": "u43",
                }
            }
        ).encode()
    )
    assert not cb.success and cb.code is None
    assert (cb.error, cb.error_key, cb.error_description, cb.state) == (
        "access_denied",
        "unknown_mailbox",
        "No such mailbox",
        "u43",
    )


def test_sa_callback_failure_without_state():
    cb = parse_service_account_callback(b'{"authorization": {"error": "x", "error_key": "y"}}')
    assert not cb.success and cb.state is None and cb.error_key == "y"


@pytest.mark.parametrize(
    "body",
    [
        {"authorization": {"code": "c" * 32, "state": "u42"}},
        {"authorization": {"code": "c" * 32}, "state": "u42"},
        {"authorization": {"code": "c" * 32, "state": "u42"}, "state": "u42"},
        {
            "authorization": {"error": "access_denied", "error_key": "unknown_mailbox"},
            "state": "u42",
        },
    ],
    ids=["in authorization", "top level", "both", "failure, top level"],
)
def test_sa_callback_state_is_read_where_it_comes(body):
    """Where the aggregator puts ``state`` is unconfirmed: either place is read."""
    assert parse_service_account_callback(json.dumps(body).encode()).state == "u42"


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b"nope",
        b'{"authorization": {"state": "s"}}',
        b'{"authorization": {"code": "c", "state": "a"}, "state": "b"}',
    ],
)
def test_sa_callback_malformed(raw):
    with pytest.raises(InvalidNotification):
        parse_service_account_callback(raw)
