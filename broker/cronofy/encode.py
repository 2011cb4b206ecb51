"""Wire format, outgoing: ``broker.types`` values → the request bodies and query values Cronofy
documents. Requests we already know to be wrong are refused here with ``Invalid`` (naive
datetimes, partial minutes, missing ids, oversized batches) before anything is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broker.errors import Invalid
from broker.types import (
    EXPLICIT_CONFERENCING,
    AvailabilityQuery,
    BatchDelete,
    BatchOperation,
    BatchUpsert,
    EventWrite,
    Group,
    Period,
    SequencedAvailabilityQuery,
    ServiceAccountAuthorizationRequest,
    SmartInviteWrite,
)

#: Batch requests and bulk service-account authorizations take 1 to 50 entries.
MAX_BATCH = 50


def fmt_time(value: dt.datetime | dt.date, name: str = "time") -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise Invalid("naive datetime", fields={name: ("errors.timezone_required",)})
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise Invalid("unsupported time value", fields={name: ("errors.invalid_time",)})


def query_days(
    start: dt.datetime | dt.date | None, end: dt.datetime | dt.date | None, tzid: str
) -> tuple[str | None, str | None]:
    """``from``/``to`` of read-events and free/busy: dates in ``tzid``, ``to`` exclusive.

    Cronofy documents both as dates interpreted in the query's ``tzid`` (events that end on or
    after ``from`` and start before ``to``). A date is sent as it is; an instant is widened to
    the local day that holds it, so ``[start, end)`` is always covered — in particular ``end``
    at local midnight after the last day shown gives ``to`` = the day after that last day.
    """
    try:
        zone = ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("unknown time zone", fields={"tzid": ("errors.invalid_tzid",)}) from None

    def day(value: dt.datetime | dt.date, name: str, *, exclusive_end: bool) -> str:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise Invalid("naive datetime", fields={name: ("errors.timezone_required",)})
            if exclusive_end:
                last = (value - dt.timedelta(microseconds=1)).astimezone(zone).date()
                return (last + dt.timedelta(days=1)).isoformat()
            return value.astimezone(zone).date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        raise Invalid("unsupported date value", fields={name: ("errors.invalid_date",)})

    from_ = day(start, "from", exclusive_end=False) if start is not None else None
    to = day(end, "to", exclusive_end=True) if end is not None else None
    return from_, to


def minutes(value: dt.timedelta, name: str) -> dict[str, int]:
    seconds = value.total_seconds()
    if seconds < 0 or seconds % 60:
        raise Invalid("durations are whole minutes", fields={name: ("errors.whole_minutes",)})
    return {"minutes": int(seconds // 60)}


def event_body(event: EventWrite) -> dict[str, Any]:
    if not event.event_id:
        raise Invalid("event_id is required", fields={"event_id": ("errors.required",)})
    if not event.summary:
        raise Invalid("summary is required", fields={"summary": ("errors.required",)})
    # Length limits (1024/4096) are left to the aggregator, which answers 422 with the field.
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "summary": event.summary,
        "start": fmt_time(event.start, "start"),
        "end": fmt_time(event.end, "end"),
        "tzid": event.tzid,
    }
    if body["end"] <= body["start"] and type(event.start) is type(event.end):
        raise Invalid("end must be after start", fields={"end": ("errors.end_before_start",)})
    if event.description is not None:
        body["description"] = event.description
    if event.location:
        body["location"] = {"description": event.location}
    if event.url:
        body["url"] = event.url
    if event.attendees or event.remove_attendees:
        attendees: dict[str, list[dict[str, str]]] = {}
        if event.attendees:
            attendees["invite"] = [
                {"email": a.email, **({"display_name": a.display_name} if a.display_name else {})}
                for a in event.attendees
            ]
        if event.remove_attendees:
            attendees["remove"] = [{"email": e} for e in event.remove_attendees]
        body["attendees"] = attendees
    if event.reminders_minutes:
        body["reminders"] = [{"minutes": m} for m in event.reminders_minutes]
    if event.reminders_create_only:
        body["reminders_create_only"] = True
    if event.transparency:
        body["transparency"] = event.transparency
    if event.event_private is not None:
        body["event_private"] = event.event_private
    if event.conferencing_profile_id == EXPLICIT_CONFERENCING:
        body["conferencing"] = _explicit_conferencing(event)
    elif event.conferencing_profile_id:
        body["conferencing"] = {"profile_id": event.conferencing_profile_id}
    if event.subscription_url:
        body["subscriptions"] = [
            {
                "type": "webhook",
                "uri": event.subscription_url,
                "interactions": [
                    {"type": "conferencing_assigned"},
                    {"type": "conferencing_failing"},
                ],
            }
        ]
    return body


def _explicit_conferencing(event: EventWrite) -> dict[str, str]:
    """``{"profile_id": "explicit", "provider_description", "join_url"}`` (cronofy-csharp
    UpsertEvent tests, docs conferencing-services/create); refused here when incomplete."""
    description, url = event.conferencing_description, event.conferencing_join_url
    if not description or not url or not url.startswith("https://"):
        raise Invalid(
            "explicit conferencing needs a provider_description and an https join_url",
            fields={"conferencing": ("errors.invalid",)},
        )
    return {
        "profile_id": EXPLICIT_CONFERENCING,
        "provider_description": description,
        "join_url": url,
    }


def availability_body(query: AvailabilityQuery) -> dict[str, Any]:
    """The documented availability body, with ``query_periods`` (the current name; pycronofy's
    availability() can only send the older ``available_periods``)."""
    participants = _participants(query.groups, "availability")
    if not query.periods and not query.query_slots:
        raise Invalid(
            "query periods or slots are required",
            fields={"query_periods": ("errors.required",)},
            operation="availability",
        )
    duration = minutes(query.duration, "required_duration")
    periods = _periods(query.periods)
    slots = [{"start": fmt_time(s)} for s in query.query_slots]
    buffer: dict[str, Any] = {}
    if query.buffer_before:
        buffer["before"] = minutes(query.buffer_before, "buffer")
    if query.buffer_after:
        buffer["after"] = minutes(query.buffer_after, "buffer")
    interval = minutes(query.start_interval, "start_interval") if query.start_interval else None

    body: dict[str, Any] = {"participants": participants, "required_duration": duration}
    if periods:
        body["query_periods"] = periods
    if slots:
        body["query_slots"] = slots
    if buffer:
        body["buffer"] = buffer
    if interval:
        body["start_interval"] = interval
    if query.response_format:
        body["response_format"] = query.response_format
    if query.max_results:
        body["max_results"] = query.max_results
    return body


def _participants(groups: Sequence[Group], operation: str) -> list[dict[str, Any]]:
    if not groups or not any(g.members for g in groups):
        raise Invalid(
            "at least one member is required",
            fields={"participants": ("errors.required",)},
            operation=operation,
        )
    participants = []
    for group in groups:
        members = []
        for m in group.members:
            member: dict[str, Any] = {"sub": m.sub}
            if m.calendar_ids:
                member["calendar_ids"] = list(m.calendar_ids)
            if m.available_periods:
                member["available_periods"] = _periods(m.available_periods)
            if m.managed_availability:
                member["managed_availability"] = True
            members.append(member)
        participants.append({"members": members, "required": group.required})
    return participants


def _periods(periods: Sequence[Period]) -> list[dict[str, str]]:
    return [{"start": fmt_time(p.start), "end": fmt_time(p.end)} for p in periods]


def _gap(low: dt.timedelta | None, high: dt.timedelta | None) -> dict[str, Any] | None:
    if low is None and high is None:
        return None
    if low is not None and high is not None and high < low:
        raise Invalid(
            "a maximum gap is below its minimum",
            fields={"buffer": ("errors.invalid",)},
            operation="sequenced_availability",
        )
    side: dict[str, Any] = {}
    if low is not None:
        side["minimum"] = minutes(low, "buffer")
    if high is not None:
        side["maximum"] = minutes(high, "buffer")
    return side


def sequenced_availability_body(query: SequencedAvailabilityQuery) -> dict[str, Any]:
    """The documented body (§6.2): steps with ``sequence_id`` and ``ordinal`` (their position),
    top-level ``query_periods``; each gap as ``buffer.before/after.minimum/maximum``."""
    op = "sequenced_availability"
    if not query.steps:
        raise Invalid("at least one step", fields={"sequence": ("errors.required",)}, operation=op)
    ids = [s.sequence_id for s in query.steps]
    if not all(ids) or len(set(ids)) != len(ids):
        raise Invalid(
            "every step needs its own sequence_id",
            fields={"sequence": ("errors.invalid",)},
            operation=op,
        )
    if not query.periods:
        raise Invalid(
            "query periods are required",
            fields={"query_periods": ("errors.required",)},
            operation=op,
        )
    for prev, nxt in zip(query.steps, query.steps[1:], strict=False):
        lows = [g for g in (prev.gap_after_min, nxt.gap_before_min) if g is not None]
        highs = [g for g in (prev.gap_after_max, nxt.gap_before_max) if g is not None]
        if lows and highs and min(highs) < max(lows):
            raise Invalid(
                f"no gap fits between {prev.sequence_id} and {nxt.sequence_id}",
                fields={"buffer": ("errors.invalid",)},
                operation=op,
            )
    steps = []
    for ordinal, step in enumerate(query.steps, start=1):
        item: dict[str, Any] = {
            "sequence_id": step.sequence_id,
            "ordinal": ordinal,
            "participants": _participants(step.groups, op),
            "required_duration": minutes(step.duration, "required_duration"),
        }
        if step.start_interval:
            item["start_interval"] = minutes(step.start_interval, "start_interval")
        buffer = {}
        before = _gap(step.gap_before_min, step.gap_before_max)
        after = _gap(step.gap_after_min, step.gap_after_max)
        if before:
            buffer["before"] = before
        if after:
            buffer["after"] = after
        if buffer:
            item["buffer"] = buffer
        if step.available_periods:
            item["available_periods"] = _periods(step.available_periods)
        steps.append(item)
    return {"sequence": steps, "query_periods": _periods(query.periods)}


def smart_invite_body(invite: SmartInviteWrite) -> dict[str, Any]:
    """The documented body: ``method: request``, the organizer's name and email, and the
    ``callback_url`` answers are reported to."""
    event: dict[str, Any] = {
        "summary": invite.summary,
        "start": fmt_time(invite.start, "start"),
        "end": fmt_time(invite.end, "end"),
        "tzid": invite.tzid,
    }
    if invite.description is not None:
        event["description"] = invite.description
    if invite.location:
        event["location"] = {"description": invite.location}
    body: dict[str, Any] = {
        "method": "request",
        "smart_invite_id": invite.smart_invite_id,
        "recipient": {"email": invite.recipient_email},
        "event": event,
    }
    if invite.callback_url:
        body["callback_url"] = invite.callback_url
    organizer = {
        k: v for k, v in (("name", invite.organizer_name), ("email", invite.organizer_email)) if v
    }
    if organizer:
        body["organizer"] = organizer
    return body


def service_account_authorizations(
    requests_: Sequence[ServiceAccountAuthorizationRequest],
) -> list[dict[str, str]]:
    """Entries of a bulk mailbox authorization (1–50, ``state`` per entry, as documented)."""
    if not 1 <= len(requests_) <= MAX_BATCH:
        raise Invalid(
            "between 1 and 50 authorizations per call",
            fields={"service_account_authorizations": ("errors.batch_size",)},
            operation="authorize_service_account_users",
        )
    entries = []
    for r in requests_:
        entry = {"email": r.email, "callback_url": r.callback_url, "scope": r.scope}
        if r.state is not None:
            entry["state"] = r.state
        entries.append(entry)
    return entries


def batch_entries(operations: Sequence[BatchOperation]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(kind, calendar_id, body)`` per operation of a batch of 1–50 upserts/deletes."""
    if not 1 <= len(operations) <= MAX_BATCH:
        raise Invalid(
            "between 1 and 50 operations per batch",
            fields={"batch": ("errors.batch_size",)},
            operation="batch",
        )
    bodies: list[tuple[str, str, dict[str, Any]]] = []
    for op in operations:
        if isinstance(op, BatchUpsert):
            bodies.append(("upsert", op.calendar_id, event_body(op.event)))
        elif isinstance(op, BatchDelete):
            bodies.append(("delete", op.calendar_id, {"event_id": op.event_id}))
        else:
            raise TypeError(f"unsupported batch operation {type(op).__name__}")
    return bodies
