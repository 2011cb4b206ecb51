"""Wire format, incoming: Cronofy's JSON (as pycronofy or the token endpoint hands it over) →
the frozen values of ``broker.types``.

Parsers take what the documentation and the official SDKs' fixtures show, read optional parts
leniently and raise ``KeyError``/``ValueError``/``TypeError`` on a missing required part: the
requestor turns those into one ``BrokerError`` ("unexpected response shape").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from broker.cronofy.transport import fields_from_errors
from broker.types import (
    Attendee,
    BatchEntryResult,
    BatchOperation,
    BatchResult,
    BusyPeriod,
    Calendar,
    Channel,
    ConferencingProfile,
    Credentials,
    EventSummary,
    LinkingProfile,
    ManagedEvent,
    Profile,
    Resource,
    SequencedAvailabilityQuery,
    SequenceOption,
    Slot,
    SmartInvite,
    SmartInviteReply,
    UserInfo,
)


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (optional parts read leniently)."""
    return value if isinstance(value, dict) else {}


def parse_time(value: Any) -> dt.datetime | dt.date:
    if isinstance(value, dict):
        value = value.get("time")
    if not isinstance(value, str):
        raise ValueError("time missing")
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_dt(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_time(value)
    if not isinstance(parsed, dt.datetime):
        return dt.datetime.combine(parsed, dt.time(), tzinfo=dt.UTC)
    return parsed


def calendar(c: Mapping[str, Any], profile: Mapping[str, Any] | None = None) -> Calendar:
    profile = profile or {}
    return Calendar(
        calendar_id=c["calendar_id"],
        profile_id=c.get("profile_id") or profile.get("profile_id"),
        profile_name=c.get("profile_name") or profile.get("profile_name"),
        provider_name=c.get("provider_name") or profile.get("provider_name"),
        name=c.get("calendar_name") or "",
        readonly=bool(c.get("calendar_readonly", False)),
        deleted=bool(c.get("calendar_deleted", False)),
        primary=bool(c.get("calendar_primary", False)),
        integrated_conferencing=bool(c.get("calendar_integrated_conferencing_available", False)),
        permission_level=c.get("permission_level"),
    )


def profile(p: Mapping[str, Any]) -> Profile:
    return Profile(
        profile_id=p["profile_id"],
        provider_name=p.get("provider_name") or "",
        provider_service=p.get("provider_service"),
        profile_name=p.get("profile_name") or "",
        connected=bool(p.get("profile_connected", False)),
        relink_url=p.get("profile_relink_url") or None,
        initial_sync_required=bool(p.get("profile_initial_sync_required", False)),
        calendars=tuple(calendar(c, p) for c in p.get("profile_calendars") or ()),
    )


def attendee(a: Mapping[str, Any]) -> Attendee:
    return Attendee(
        email=a.get("email") or "", display_name=a.get("display_name"), status=a.get("status")
    )


def managed_event(e: Mapping[str, Any]) -> ManagedEvent:
    conferencing = _dict(e.get("conferencing"))
    location = _dict(e.get("location"))
    return ManagedEvent(
        event_id=e.get("event_id"),
        event_uid=e.get("event_uid") or "",
        calendar_id=e["calendar_id"],
        start=parse_time(e["start"]),
        end=parse_time(e["end"]),
        status=e.get("status") or e.get("event_status"),
        deleted=bool(e.get("deleted", False)),
        summary=e.get("summary"),
        attendees=tuple(attendee(a) for a in e.get("attendees") or ()),
        participation_status=e.get("participation_status"),
        join_url=conferencing.get("join_url") or e.get("meeting_url"),
        conferencing_provider=conferencing.get("provider_name")
        or conferencing.get("provider_description"),
        location=location.get("description"),
        created=parse_dt(e.get("created")),
        updated=parse_dt(e.get("updated")),
        description=e.get("description") if isinstance(e.get("description"), str) else None,
        tzid=e["start"].get("tzid") if isinstance(e.get("start"), dict) else None,
        transparency=e.get("transparency"),
        event_private=e.get("event_private") if isinstance(e.get("event_private"), bool) else None,
    )


def smart_invite(data: Mapping[str, Any], fallback_id: str) -> SmartInvite:
    recipient = _dict(data.get("recipient"))
    if not recipient and isinstance(data.get("recipients"), list) and data["recipients"]:
        recipient = data["recipients"][0]
    attachments = _dict(data.get("attachments"))
    event = _dict(data.get("event"))
    return SmartInvite(
        smart_invite_id=data.get("smart_invite_id") or fallback_id,
        recipient_email=recipient.get("email"),
        recipient_status=recipient.get("status"),
        callback_url=data.get("callback_url"),
        icalendar=attachments.get("icalendar"),
        replies=tuple(
            SmartInviteReply(
                email=r.get("email") or "", status=r.get("status") or "", comment=r.get("comment")
            )
            for r in data.get("replies") or ()
            if isinstance(r, dict)
        ),
        # Documented as {time, tzid} objects; plain strings are read too.
        start=parse_time(event["start"]) if event.get("start") else None,
        end=parse_time(event["end"]) if event.get("end") else None,
    )


def required_dt(value: Any) -> dt.datetime:
    parsed = parse_dt(value)
    if parsed is None:
        raise ValueError("time missing")
    return parsed


def credentials(
    data: Mapping[str, Any], previous: Credentials | None, now: dt.datetime
) -> Credentials:
    """A token response; what it leaves out (refresh token, scope, ids) comes from ``previous``."""
    access = data.get("access_token")
    refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise ValueError("token response without tokens")
    lp = data.get("linking_profile")
    linking_profile = (
        LinkingProfile(
            provider_name=lp.get("provider_name") or "",
            provider_service=lp.get("provider_service"),
            profile_id=lp["profile_id"],
            profile_name=lp.get("profile_name") or "",
        )
        if isinstance(lp, dict) and lp.get("profile_id")
        else (previous.linking_profile if previous else None)
    )
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        expires_at=now + dt.timedelta(seconds=int(data.get("expires_in") or 0)),
        scope=data.get("scope") or (previous.scope if previous else ""),
        sub=data.get("sub") or (previous.sub if previous else None),
        account_id=data.get("account_id") or (previous.account_id if previous else None),
        linking_profile=linking_profile,
        service_account_id=data.get("service_account_id")
        or (previous.service_account_id if previous else None),
    )


def userinfo(data: Mapping[str, Any]) -> UserInfo:
    kind = data.get("cronofy.type") or "account"
    cdata = _dict(data.get("cronofy.data"))
    authz = _dict(cdata.get("authorization"))
    if kind == "service_account":
        sa = _dict(cdata.get("service_account"))
        return UserInfo(
            sub=data["sub"],
            kind="service_account",
            email=data.get("email") or data.get("cronofy.service_account.email"),
            name=data.get("name"),
            scope=authz.get("scope"),
            status=authz.get("status"),
            domain=sa.get("domain") or data.get("cronofy.service_account.domain"),
            provider_name=sa.get("provider_name"),
            delegated_scope=authz.get("delegated_scope"),
        )
    return UserInfo(
        sub=data["sub"],
        kind="account",
        email=data.get("email"),
        name=data.get("name"),
        zoneinfo=data.get("zoneinfo"),
        scope=authz.get("scope"),
        status=authz.get("status"),
        profiles=tuple(profile(p) for p in cdata.get("profiles") or ()),
        conferencing_profiles=tuple(
            ConferencingProfile(
                profile_id=p["profile_id"],
                provider_name=p.get("provider_name") or "",
                profile_name=p.get("profile_name"),
                connected=bool(p.get("profile_connected", False)),
            )
            for p in cdata.get("conferencing_profiles") or ()
        ),
    )


def event_summary(e: Mapping[str, Any]) -> EventSummary:
    status = e.get("status") or e.get("event_status")
    summary = e.get("summary")
    return EventSummary(
        start=parse_time(e["start"]),
        end=parse_time(e["end"]),
        summary=summary if isinstance(summary, str) and summary.strip() else None,
        busy=e.get("transparency") != "transparent" and status != "cancelled",
    )


def busy_period(b: Mapping[str, Any]) -> BusyPeriod:
    return BusyPeriod(
        calendar_id=b["calendar_id"],
        start=parse_time(b["start"]),
        end=parse_time(b["end"]),
        status=b.get("free_busy_status") or "busy",
    )


def slots(data: Mapping[str, Any], response_format: str | None) -> tuple[Slot, ...]:
    """An availability answer: ``available_slots`` for the slot formats, else periods."""
    answer = (
        "available_slots"
        if response_format in ("slots", "overlapping_slots")
        else "available_periods"
    )
    return tuple(
        Slot(
            start=required_dt(s["start"]),
            end=required_dt(s["end"]),
            participants=tuple(p["sub"] for p in s.get("participants") or ()),
        )
        for s in data[answer]
    )


def sequences(
    data: Mapping[str, Any], query: SequencedAvailabilityQuery
) -> tuple[SequenceOption, ...]:
    """A sequenced availability answer, each option's slots in the query's step order (matched
    by ``sequence_id``, whatever order or id type comes back), earliest option first. An option
    that lacks a step or names one we did not ask for is a malformed answer."""
    wanted = [step.sequence_id for step in query.steps]
    options = []
    for option in data["sequences"]:
        by_id = {}
        for item in option["sequence"]:
            by_id[str(item["sequence_id"])] = Slot(
                start=required_dt(item["start"]),
                end=required_dt(item["end"]),
                participants=tuple(p["sub"] for p in item.get("participants") or ()),
            )
        if set(by_id) != set(wanted) or len(option["sequence"]) != len(wanted):
            raise ValueError("a sequence does not hold exactly the requested steps")
        chosen = [by_id[sid] for sid in wanted]
        if any(b.start < a.end for a, b in zip(chosen, chosen[1:], strict=False)):
            raise ValueError("a sequence's steps overlap or run out of order")
        options.append(SequenceOption(tuple(zip(wanted, chosen, strict=True))))
    return tuple(sorted(options, key=lambda o: (o.start, o.end)))


def channel(ch: Mapping[str, Any]) -> Channel:
    filters = _dict(ch.get("filters"))
    return Channel(
        channel_id=ch["channel_id"],
        callback_url=ch.get("callback_url") or "",
        calendar_ids=tuple(filters.get("calendar_ids") or ()),
        only_managed=bool(filters.get("only_managed", False)),
    )


def resource(r: Mapping[str, Any]) -> Resource:
    return Resource(email=r["email"], name=r.get("name"))


def batch_result(
    operations: Sequence[BatchOperation], entries: Sequence[Any], secrets: tuple[str, ...]
) -> BatchResult:
    """Per-entry outcome of a batch, in request order (entries carry pycronofy's ``response``)."""
    results = []
    for op, entry in zip(operations, entries, strict=False):
        res = _dict(entry.response)
        status = int(res.get("status") or 0)
        data = _dict(res.get("data"))
        errors = fields_from_errors(data.get("errors"), secrets)
        results.append(BatchEntryResult(operation=op, status=status, errors=errors))
    if len(results) != len(operations):
        raise ValueError("batch response length mismatch")
    return BatchResult(entries=tuple(results))
