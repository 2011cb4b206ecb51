"""Verify and parse what the aggregator POSTs to us: push notifications and EC callbacks.

``Cronofy-HMAC-SHA256`` is ``base64(HMAC-SHA256(key=client_secret, msg=raw body))``; during a
secret rotation the header carries one value per active secret, comma-separated (reference
§7.3). Verification must run over the *raw* bytes, before any JSON parsing, and must be
constant-time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.errors import InvalidNotification

HMAC_HEADER = "Cronofy-HMAC-SHA256"

#: Notification types we understand; anything else parses as ``type="unknown"``.
KNOWN_TYPES = frozenset(
    {
        "verification",
        "change",
        "profile_disconnected",
        "profile_initial_sync_completed",
        "conferencing_profile_disconnected",
        "conferencing_assigned",
        "conferencing_failing",
        "gdpr_requested",
        "smart_invite",
    }
)


def sign(raw_body: bytes, secret: str) -> str:
    """The header value the aggregator sends for ``raw_body`` under ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_hmac(raw_body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True if any comma-separated signature in ``header`` matches ``raw_body`` under any secret."""
    if not header or not secrets:
        return False
    if isinstance(raw_body, str):  # be forgiving to callers who already decoded
        raw_body = raw_body.encode("utf-8")
    offered = [v.strip().encode("ascii", "replace") for v in header.split(",") if v.strip()]
    if not offered:
        return False
    matched = False
    # Compare every pair without short-circuiting so timing does not reveal which matched.
    for secret in secrets:
        if not secret:
            continue
        expected = sign(raw_body, secret).encode("ascii")
        for value in offered:
            matched |= hmac.compare_digest(value, expected)
    return matched


# --- push notifications -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    #: One of KNOWN_TYPES, or ``"unknown"`` (then ``raw_type`` holds what was sent).
    type: str
    raw_type: str
    channel_id: str | None = None
    callback_url: str | None = None
    calendar_ids: tuple[str, ...] = ()
    only_managed: bool | None = None
    #: ``change`` only: read events with ``last_modified`` = this.
    changes_since: dt.datetime | None = None
    #: profile/conferencing notifications, when the body names one.
    profile_id: str | None = None
    #: conferencing subscription callbacks: the managed event they concern, when present.
    event_id: str | None = None
    join_url: str | None = None
    #: The parsed body's ``notification`` object, for types we do not model further.
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _loads(raw_body: bytes | str) -> Any:
    try:
        return json.loads(raw_body)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidNotification("body is not valid JSON") from None


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidNotification("changes_since is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_notification(raw_body: bytes | str) -> Notification:
    """Parse a push notification (call only after ``verify_hmac`` succeeded)."""
    data = _loads(raw_body)
    if not isinstance(data, dict):
        raise InvalidNotification("body is not a JSON object")
    note = data.get("notification")
    if not isinstance(note, dict) or not isinstance(note.get("type"), str):
        raise InvalidNotification("body has no notification.type")
    raw_type = note["type"]
    kind = raw_type if raw_type in KNOWN_TYPES else "unknown"

    channel = v if isinstance(v := data.get("channel"), dict) else {}
    filters = v if isinstance(v := channel.get("filters"), dict) else {}
    calendar_ids = filters.get("calendar_ids") or ()
    if not isinstance(calendar_ids, list | tuple):
        calendar_ids = ()
    only_managed = filters.get("only_managed")

    profile = v if isinstance(v := note.get("profile"), dict) else {}
    event = v if isinstance(v := data.get("event"), dict) else {}
    conferencing = v if isinstance(v := event.get("conferencing"), dict) else {}

    return Notification(
        type=kind,
        raw_type=raw_type,
        channel_id=_str_or_none(channel.get("channel_id")),
        callback_url=_str_or_none(channel.get("callback_url")),
        calendar_ids=tuple(str(c) for c in calendar_ids),
        only_managed=only_managed if isinstance(only_managed, bool) else None,
        changes_since=_parse_time(note.get("changes_since")) if kind == "change" else None,
        profile_id=_str_or_none(note.get("profile_id")) or _str_or_none(profile.get("profile_id")),
        event_id=_str_or_none(event.get("event_id")),
        join_url=_str_or_none(conferencing.get("join_url")),
        extra=dict(note),
    )


# --- Enterprise Connect service-account authorization callbacks -------------------------------


@dataclass(frozen=True, slots=True)
class SACallback:
    """The asynchronous answer to a service-account authorization request (reference §2.4)."""

    success: bool
    state: str | None = None
    #: Exchange with ``redirect_uri`` = the exact ``callback_url`` of the request.
    code: str | None = field(default=None, repr=False)
    error: str | None = None
    error_key: str | None = None
    error_description: str | None = None


def parse_service_account_callback(raw_body: bytes | str) -> SACallback:
    """Parse ``{"authorization": {"code", "state"}}`` or ``{"authorization": {"error", …}}``.

    The code and error keys are confirmed by Cronofy's sample apps; where ``state`` comes back
    is not, so it is read from ``authorization.state`` or from a top-level ``state`` (both, if
    sent, must agree)."""
    data = _loads(raw_body)
    auth = data.get("authorization") if isinstance(data, dict) else None
    if not isinstance(auth, dict):
        raise InvalidNotification("body has no authorization object")
    inner, outer = _str_or_none(auth.get("state")), _str_or_none(data.get("state"))
    if inner and outer and inner != outer:
        raise InvalidNotification("authorization.state and state disagree")
    state = inner or outer
    code = _str_or_none(auth.get("code"))
    if code and not auth.get("error"):
        return SACallback(success=True, code=code, state=state)
    error = _str_or_none(auth.get("error")) or _str_or_none(auth.get("error_key"))
    if not error:
        raise InvalidNotification("authorization has neither code nor error")
    return SACallback(
        success=False,
        state=state,
        error=error,
        error_key=_str_or_none(auth.get("error_key")),
        error_description=_str_or_none(auth.get("error_description")),
    )


# --- Smart Invite callbacks --------------------------------------------------------------------

#: A recipient's possible states (``pending`` until they answer).
SMART_INVITE_STATUSES = frozenset({"pending", "accepted", "tentative", "declined"})


@dataclass(frozen=True, slots=True)
class SmartInviteCallback:
    """A Smart Invite recipient's answer, as the aggregator POSTs it to the invite's
    ``callback_url`` (signed like push notifications). Comments and proposed times are not
    kept: only which invite, and the recipient's status."""

    smart_invite_id: str
    status: str


def parse_smart_invite_callback(raw_body: bytes | str) -> SmartInviteCallback:
    """Parse ``{"notification": {"type": "smart_invite"}, "smart_invite": {smart_invite_id,
    recipient: {email, status}, reply: {…}}}`` (call only after ``verify_hmac`` succeeded)."""
    data = _loads(raw_body)
    note = data.get("notification") if isinstance(data, dict) else None
    if not isinstance(note, dict) or note.get("type") != "smart_invite":
        raise InvalidNotification("not a smart_invite notification")
    invite = data.get("smart_invite")
    if not isinstance(invite, dict) or not _str_or_none(invite.get("smart_invite_id")):
        raise InvalidNotification("body has no smart_invite.smart_invite_id")
    recipient = v if isinstance(v := invite.get("recipient"), dict) else {}
    reply = v if isinstance(v := invite.get("reply"), dict) else {}
    status = recipient.get("status") or reply.get("status")
    if status not in SMART_INVITE_STATUSES:
        raise InvalidNotification("smart_invite has no known recipient status")
    return SmartInviteCallback(smart_invite_id=invite["smart_invite_id"], status=status)
