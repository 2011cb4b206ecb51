"""Calendar and event operations shared by the API, batch, the control API and the pages (§4, §5).

Callers hold ``state.lock``. Every change goes through :func:`record_change`, which is where
channels hear about it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any
from urllib.parse import urlsplit

from . import errors, notify
from . import models as m
from .state import SandboxState, World
from .timeutil import (
    BadTime,
    WireTime,
    format_ts,
    format_utc,
    is_date,
    localize,
    parse_datetime,
    parse_event_time,
    parse_query_bound,
    zone,
)

MAX_SUMMARY = 1024
MAX_DESCRIPTION = 4096
PARTICIPATION_STATUSES = {"accepted", "tentative", "declined"}


# ---- lookups -----------------------------------------------------------------------------------


def visible_calendars(world: World, account_id: str) -> list[m.Calendar]:
    return world.account_calendars(account_id)


def calendar_for(world: World, account_id: str, calendar_id: str) -> m.Calendar:
    """The caller's calendar ``calendar_id`` or 404 (calendars of other accounts do not exist)."""
    cal = world.calendars.get(calendar_id)
    if cal is None or cal not in visible_calendars(world, account_id):
        raise errors.not_found("calendar")
    return cal


def profile_of(world: World, cal: m.Calendar) -> m.Profile:
    return world.profiles[cal.profile_id]


# ---- payloads ----------------------------------------------------------------------------------


def event_payload(
    world: World, ev: m.Event, view: m.Calendar, *, localized: bool = False, tzid: str = "Etc/UTC"
) -> dict[str, Any]:
    writable = not view.readonly and not view.deleted
    external_editable = writable and view.permission_level == "unrestricted"
    start: Any = ev.start
    end: Any = ev.end
    if localized:
        start = localize(ev.start, ev.start_tzid or tzid)
        end = localize(ev.end, ev.end_tzid or tzid)
    payload: dict[str, Any] = {
        "calendar_id": view.calendar_id,
        "event_uid": ev.event_uid,
        "summary": ev.summary,
        "description": ev.description,
        "start": start,
        "end": end,
        "deleted": ev.deleted,
        "created": ev.created,
        "updated": ev.updated,
        "location": ev.location or {},
        "participation_status": ev.participation_status,
        "attendees": ev.attendees,
        "organizer": ev.organizer or {},
        "transparency": ev.transparency,
        "status": ev.status,
        "categories": [],
        "recurring": ev.recurring,
        "series_identifier": ev.series_identifier,
        "event_private": ev.event_private,
        "options": {
            "delete": writable and (ev.managed or external_editable),
            "update": writable and (ev.managed or external_editable),
            "change_participation_status": writable,
        },
    }
    if ev.event_id is not None:
        payload["event_id"] = ev.event_id
    if ev.url:
        payload["url"] = ev.url
    if ev.conferencing and ev.conferencing.get("join_url"):
        payload["conferencing"] = {
            "provider_name": ev.conferencing["provider_name"],
            "join_url": ev.conferencing["join_url"],
        }
        payload["meeting_url"] = ev.conferencing["join_url"]
    return payload


def free_busy_status(ev: m.Event) -> str:
    # An unanswered invitation shows as tentative, as Exchange shows it.
    if ev.status == "tentative" or ev.participation_status in ("tentative", "needs_action"):
        return "tentative"
    return "busy"


def counts_as_busy(ev: m.Event) -> bool:
    """Live, opaque and not declined: an unanswered or tentative invitation holds the time."""
    return (
        not ev.deleted
        and ev.status != "cancelled"
        and ev.transparency != "transparent"
        and ev.participation_status != "declined"
    )


# ---- reads -------------------------------------------------------------------------------------


def parse_bool(value: Any, field: str, default: bool = False) -> bool:
    """A JSON boolean, or exactly ``true``/``false`` in a query string.

    Every official SDK but pycronofy sends lowercase, and Cronofy validates booleans strictly
    (``errors.must_be_boolean``); Python's ``True``/``False``, ``1`` or ``yes`` are refused.
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise errors.invalid(field, "must_be_boolean", f"{field} must be true or false")


def _query_date(params, name: str) -> str:
    """``from``/``to`` are dates (``YYYY-MM-DD``) read in ``tzid``: Cronofy documents them as
    dates, so an instant (``…T09:00:00Z``) is refused rather than silently cut to a day."""
    value = params[name]
    if not is_date(value):
        raise errors.invalid(
            name, "invalid", f"{name} must be a date (YYYY-MM-DD), read in the query's tzid"
        )
    return value


def read_window(params, tzid: str, config, today: dt.date) -> tuple[int, int, bool]:
    """(from_ts, to_ts, explicit): ``from`` inclusive, ``to`` exclusive, dates in ``tzid``;
    without them the window is around ``today`` (the sandbox clock's day in ``tzid``)."""
    explicit = bool(params.get("from") or params.get("to"))
    try:
        start = (
            parse_query_bound(_query_date(params, "from"), tzid)
            if params.get("from")
            else parse_query_bound(
                (today - dt.timedelta(days=config.events_window_past_days)).isoformat(), tzid
            )
        )
    except BadTime as exc:
        raise errors.invalid("from", "invalid", str(exc)) from None
    try:
        end = (
            parse_query_bound(_query_date(params, "to"), tzid)
            if params.get("to")
            else parse_query_bound(
                (today + dt.timedelta(days=config.events_window_future_days)).isoformat(), tzid
            )
        )
    except BadTime as exc:
        raise errors.invalid("to", "invalid", str(exc)) from None
    if end <= start:
        raise errors.invalid("to", "must_be_after_from", "to must be after from")
    return int(start.timestamp()), int(end.timestamp()), explicit


def require_tzid(params) -> str:
    tzid = params.get("tzid")
    if not tzid:
        raise errors.required("tzid")
    try:
        zone(tzid)
    except BadTime:
        raise errors.invalid(
            "tzid", "invalid_tzid", f"{tzid!r} is not a known IANA time zone"
        ) from None
    return tzid


def selected_calendars(world: World, account_id: str, calendar_ids: list[str]) -> list[m.Calendar]:
    calendars = visible_calendars(world, account_id)
    if not calendar_ids:
        return calendars
    by_id = {c.calendar_id: c for c in calendars}
    unknown = [cid for cid in calendar_ids if cid not in by_id]
    if unknown:
        raise errors.invalid(
            "calendar_ids", "invalid_calendar_ids", f"unknown calendar ids: {', '.join(unknown)}"
        )
    return [by_id[cid] for cid in calendar_ids]


def _overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    if start == end:
        return lo <= start < hi
    return start < hi and end > lo


def read_events(
    state: SandboxState, account_id: str, params, calendar_ids: list[str]
) -> list[dict[str, Any]]:
    world, config = state.world, state.config
    tzid = require_tzid(params)
    lo, hi, explicit = read_window(params, tzid, config, state.clock.today(zone(tzid)))
    only_managed = parse_bool(params.get("only_managed"), "only_managed")
    include_managed = parse_bool(params.get("include_managed"), "include_managed") or only_managed
    include_deleted = parse_bool(params.get("include_deleted"), "include_deleted")
    include_moved = parse_bool(params.get("include_moved"), "include_moved")
    localized = parse_bool(params.get("localized_times"), "localized_times")
    parse_bool(params.get("include_geo"), "include_geo")
    modified_since = _last_modified(params)
    out: list[tuple[int, str, dict[str, Any]]] = []
    for cal in selected_calendars(world, account_id, calendar_ids):
        for ev in world.events_in(cal.store_id).values():
            if ev.managed and not include_managed:
                continue
            if only_managed and not ev.managed:
                continue
            if ev.deleted and not include_deleted:
                continue
            if modified_since is not None and ev.updated_ts < modified_since:
                continue
            in_window = _overlaps(ev.start_ts, ev.end_ts, lo, hi) or (
                include_moved and any(_overlaps(s, e, lo, hi) for s, e in ev.previous_spans)
            )
            # Managed events ignore the default window (§4.1).
            if not in_window and not (ev.managed and not explicit):
                continue
            out.append(
                (
                    ev.start_ts,
                    ev.event_uid,
                    event_payload(world, ev, cal, localized=localized, tzid=tzid),
                )
            )
    out.sort(key=lambda item: (item[0], item[1]))
    return [payload for _s, _u, payload in out]


def _last_modified(params) -> int | None:
    value = params.get("last_modified")
    if not value:
        return None
    try:
        return int(parse_datetime(value).timestamp())
    except BadTime as exc:
        raise errors.invalid("last_modified", "invalid", str(exc)) from None


def read_free_busy(
    state: SandboxState, account_id: str, params, calendar_ids: list[str]
) -> list[dict[str, Any]]:
    world, config = state.world, state.config
    tzid = require_tzid(params)
    lo, hi, _explicit = read_window(params, tzid, config, state.clock.today(zone(tzid)))
    include_managed = parse_bool(params.get("include_managed"), "include_managed")
    localized = parse_bool(params.get("localized_times"), "localized_times")
    out: list[tuple[int, str, dict[str, Any]]] = []
    for cal in selected_calendars(world, account_id, calendar_ids):
        for ev in world.events_in(cal.store_id).values():
            if not counts_as_busy(ev) or (ev.managed and not include_managed):
                continue
            if not _overlaps(ev.start_ts, ev.end_ts, lo, hi):
                continue
            start: Any = ev.start
            end: Any = ev.end
            if localized:
                start, end = localize(ev.start, ev.start_tzid), localize(ev.end, ev.end_tzid)
            out.append(
                (
                    ev.start_ts,
                    ev.event_uid,
                    {
                        "calendar_id": cal.calendar_id,
                        "start": start,
                        "end": end,
                        "free_busy_status": free_busy_status(ev),
                    },
                )
            )
    out.sort(key=lambda item: (item[0], item[1]))
    return [payload for _s, _u, payload in out]


def busy_intervals(
    world: World, account_id: str, calendar_ids: list[str] | None
) -> list[tuple[int, int]]:
    """Opaque, live events (managed and external) on the member's calendars, as epoch spans."""
    if calendar_ids:
        by_id = {
            c.calendar_id: c for c in world.account_calendars(account_id, authorized_only=False)
        }
        unknown = [cid for cid in calendar_ids if cid not in by_id]
        if unknown:
            raise errors.invalid(
                "participants",
                "invalid_calendar_ids",
                f"unknown calendar ids for {account_id}: {', '.join(unknown)}",
            )
        stores = {by_id[cid].store_id for cid in calendar_ids}
    else:
        stores = {c.store_id for c in world.own_calendars(account_id)}
    spans = []
    for store in stores:
        for ev in world.events_in(store).values():
            if counts_as_busy(ev) and ev.end_ts > ev.start_ts:
                spans.append((ev.start_ts, ev.end_ts))
    return spans


# ---- writes ------------------------------------------------------------------------------------


def _check_writable(state: SandboxState, cal: m.Calendar) -> None:
    world = state.world
    if not profile_of(world, cal).connected:
        raise errors.locked()
    if cal.readonly or cal.deleted:
        status = state.config.readonly_calendar_status
        key = "calendar_deleted" if cal.deleted else "calendar_readonly"
        if status == 422:
            raise errors.invalid("calendar_id", key, "the calendar cannot be written to")
        raise errors.ApiError(
            status, {"error": key, "error_description": "the calendar cannot be written to"}
        )


def _parse_event_fields(data: dict[str, Any], *, need_event_id: bool) -> dict[str, Any]:
    problems: dict[str, list[tuple[str, str]]] = {}

    def problem(field: str, key: str, text: str) -> None:
        problems.setdefault(field, []).append((key, text))

    fields: dict[str, Any] = {}
    if need_event_id:
        event_id = data.get("event_id")
        if event_id in (None, ""):
            problem("event_id", "required", "event_id must be specified")
        elif not isinstance(event_id, str | int) or len(str(event_id)) > 1024:
            problem("event_id", "invalid", "event_id must be a string of at most 1024 characters")
        else:
            fields["event_id"] = str(event_id)
    summary = data.get("summary")
    if summary in (None, ""):
        problem("summary", "required", "summary must be specified")
    elif not isinstance(summary, str):
        problem("summary", "invalid", "summary must be a string")
    elif len(summary) > MAX_SUMMARY:
        problem("summary", "too_long", f"summary must be at most {MAX_SUMMARY} characters")
    else:
        fields["summary"] = summary
    description = data.get("description", "")
    if description is not None and not isinstance(description, str):
        problem("description", "invalid", "description must be a string")
    elif description and len(description) > MAX_DESCRIPTION:
        problem(
            "description", "too_long", f"description must be at most {MAX_DESCRIPTION} characters"
        )
    else:
        fields["description"] = description or ""
    tzid = data.get("tzid") or "Etc/UTC"
    try:
        zone(tzid)
    except BadTime:
        problem("tzid", "invalid_tzid", f"{tzid!r} is not a known IANA time zone")
        tzid = "Etc/UTC"
    times: dict[str, WireTime] = {}
    for name in ("start", "end"):
        if data.get(name) in (None, "", {}):
            problem(name, "required", f"{name} must be specified")
            continue
        try:
            times[name] = parse_event_time(data[name], tzid)
        except (BadTime, TypeError, AttributeError) as exc:
            problem(name, "invalid", str(exc) or f"{name} is not a valid time")
    if len(times) == 2:
        if times["start"].all_day != times["end"].all_day:
            problem("end", "invalid", "start and end must both be dates or both be times")
        elif times["end"].timestamp("Etc/UTC") <= times["start"].timestamp("Etc/UTC"):
            problem("end", "must_be_after_start", "end must be after start")
        fields["start"], fields["end"] = times["start"], times["end"]
    transparency = data.get("transparency")
    if transparency not in (None, "opaque", "transparent"):
        problem("transparency", "invalid", "transparency must be opaque or transparent")
    elif transparency:
        fields["transparency"] = transparency
    location = data.get("location")
    if location is not None and not isinstance(location, dict):
        problem("location", "invalid", "location must be an object")
    elif location is not None:
        fields["location"] = {
            k: location[k] for k in ("description", "lat", "long") if k in location
        }
    attendees = data.get("attendees")
    if attendees is not None:
        if not isinstance(attendees, dict) or not all(
            isinstance(a, dict) and a.get("email")
            for key in ("invite", "remove")
            for a in (attendees.get(key) or [])
        ):
            problem("attendees", "invalid", "attendees.invite/remove must be lists of {email}")
        else:
            fields["attendees"] = attendees
    reminders = data.get("reminders")
    if reminders is not None:
        if not isinstance(reminders, list) or not all(
            isinstance(r, dict) and isinstance(r.get("minutes"), int) for r in reminders
        ):
            problem("reminders", "invalid", "reminders must be a list of {minutes}")
        else:
            fields["reminders"] = reminders[:5]
    conferencing = data.get("conferencing")
    if conferencing is not None:
        if not isinstance(conferencing, dict) or not conferencing.get("profile_id"):
            problem("conferencing", "invalid", "conferencing.profile_id must be specified")
        elif conferencing["profile_id"] == "explicit" and not _explicit_ok(conferencing):
            problem(
                "conferencing",
                "invalid",
                "explicit conferencing needs a provider_description and an https join_url",
            )
        else:
            fields["conferencing"] = conferencing
    subscriptions = data.get("subscriptions")
    if subscriptions is not None:
        if not isinstance(subscriptions, list) or not all(
            isinstance(s, dict) and s.get("uri") for s in subscriptions
        ):
            problem(
                "subscriptions",
                "invalid",
                "subscriptions must be a list of {type, uri, interactions}",
            )
        else:
            fields["subscriptions"] = subscriptions
    for name in ("event_private", "reminders_create_only"):
        if name in data and not isinstance(data[name], bool):
            problem(name, "must_be_boolean", f"{name} must be true or false")
        elif name in data:
            fields[name] = data[name]
    for name in ("url", "color"):
        if data.get(name) is not None:
            if not isinstance(data[name], str):
                problem(name, "invalid", f"{name} must be a string")
            else:
                fields[name] = data[name]
    if problems:
        raise errors.invalid_many(problems)
    return fields


def upsert_event(
    state: SandboxState, account_id: str, calendar_id: str, data: Any, *, source: str = "app"
) -> m.Event:
    """Create or update by ``(calendar_id, event_id)``, or edit an external event by
    ``event_uid``."""
    world = state.world
    cal = calendar_for(world, account_id, calendar_id)
    if not isinstance(data, dict):
        raise errors.invalid("event", "invalid", "the body must be a JSON object")
    external_uid = data.get("event_uid") if not data.get("event_id") else None
    fields = _parse_event_fields(data, need_event_id=external_uid is None)
    _check_writable(state, cal)
    store = world.events_in(cal.store_id)
    if external_uid:
        ev = store.get(str(external_uid))
        if ev is None:
            raise errors.not_found("event")
        if ev.managed:
            raise errors.invalid(
                "event_uid",
                "must_be_external_event_uid",
                "event_uid must identify an external event",
            )
        if cal.permission_level != "unrestricted":
            raise errors.forbidden("editing external events needs unrestricted permission")
    else:
        uid = world.managed_index.get((cal.store_id, fields["event_id"]))
        ev = store.get(uid) if uid else None
    owner = world.identity(cal.owner_email)
    owner_tzid = owner.tzid if owner else "Etc/UTC"
    stamp = state.clock.now()
    if ev is not None:
        _replace_omitted(ev, fields)
    if ev is None:
        ev = m.Event(
            event_uid="evt_" + secrets.token_hex(12),
            calendar_id=cal.store_id,
            summary=fields["summary"],
            start="",
            end="",
            start_tzid="",
            end_tzid="",
            start_ts=0,
            end_ts=0,
            created=format_utc(stamp),
            updated=format_utc(stamp),
            event_id=fields["event_id"],
            participation_status="accepted",
            organizer={
                "email": cal.owner_email,
                "display_name": owner.name if owner else cal.owner_email,
            },
        )
        store[ev.event_uid] = ev
        world.managed_index[(cal.store_id, fields["event_id"])] = ev.event_uid
    elif ev.deleted:
        ev.deleted = False
    _apply_fields(ev, fields, owner_tzid)
    if "conferencing" in fields:
        _request_conferencing(state, cal, ev, fields["conferencing"], account_id)
    record_change(state, ev, own=source == "app")
    return ev


def _replace_omitted(ev: m.Event, fields: dict[str, Any]) -> None:
    """An update replaces the event (§5.1): what the body leaves out is removed — the stricter
    reading where the reference is silent. Two exceptions the documentation states: omitted
    ``conferencing`` leaves the event's conferencing unchanged (§8.2), and with
    ``reminders_create_only`` an update leaves the reminders as they are."""
    if "location" not in fields:
        ev.location = None
    if "url" not in fields:
        ev.url = None
    if "color" not in fields:
        ev.color = None
    if "transparency" not in fields:
        ev.transparency = "opaque"
    if "event_private" not in fields:
        ev.event_private = False
    if fields.get("reminders_create_only") is True:
        fields.pop("reminders", None)
    elif "reminders" not in fields:
        ev.reminders = []
    if "attendees" not in fields:
        ev.attendees = []


def _apply_fields(ev: m.Event, fields: dict[str, Any], owner_tzid: str) -> None:
    start: WireTime = fields["start"]
    end: WireTime = fields["end"]
    new_span = (start.timestamp(owner_tzid), end.timestamp(owner_tzid))
    if ev.start and (ev.start_ts, ev.end_ts) != new_span:
        ev.previous_spans.append([ev.start_ts, ev.end_ts])
        # A new time asks every attendee again, as Exchange does: answers are reset.
        for attendee in ev.attendees:
            attendee["status"] = "needs_action"
    ev.start, ev.end, ev.start_tzid, ev.end_tzid = start.value, end.value, start.tzid, end.tzid
    ev.start_ts, ev.end_ts = new_span
    ev.summary = fields["summary"]
    ev.description = fields.get("description", ev.description)
    for name in (
        "transparency",
        "location",
        "url",
        "color",
        "event_private",
        "reminders",
        "subscriptions",
    ):
        if name in fields:
            setattr(ev, name, fields[name])
    attendees = fields.get("attendees")
    if attendees:
        removed = {a["email"].lower() for a in attendees.get("remove") or []}
        kept = [a for a in ev.attendees if a["email"].lower() not in removed]
        known = {a["email"].lower() for a in kept}
        for invite in attendees.get("invite") or []:
            if invite["email"].lower() not in known:
                kept.append(
                    {
                        "email": invite["email"],
                        "display_name": invite.get("display_name", invite["email"]),
                        "status": "needs_action",
                    }
                )
        ev.attendees = kept


def delete_event(
    state: SandboxState, account_id: str, calendar_id: str, data: Any, *, source: str = "app"
) -> None:
    world = state.world
    cal = calendar_for(world, account_id, calendar_id)
    if not isinstance(data, dict) or not (data.get("event_id") or data.get("event_uid")):
        raise errors.required("event_id")
    _check_writable(state, cal)
    store = world.events_in(cal.store_id)
    if data.get("event_id"):
        uid = world.managed_index.get((cal.store_id, str(data["event_id"])))
        ev = store.get(uid) if uid else None
        if ev is None or ev.deleted:
            if state.config.unknown_event_delete_status == 404 and ev is None:
                raise errors.not_found("event")
            return
    else:
        ev = store.get(str(data["event_uid"]))
        if ev is None:
            raise errors.not_found("event")
        if ev.managed:
            raise errors.invalid(
                "event_uid",
                "must_be_external_event_uid",
                "event_uid must identify an external event; use event_id",
            )
        if cal.permission_level != "unrestricted":
            raise errors.forbidden("deleting external events needs unrestricted permission")
        if ev.deleted:
            return
    ev.deleted = True
    record_change(state, ev, own=source == "app")


def bulk_delete(
    state: SandboxState, account_id: str, delete_all: bool, calendar_ids: list[str]
) -> None:
    world = state.world
    if not delete_all and not calendar_ids:
        raise errors.invalid("delete_all", "required", "delete_all or calendar_ids must be given")
    if calendar_ids:
        found = [world.calendars.get(cid) for cid in calendar_ids]
        mine = visible_calendars(world, account_id)
        if any(c is None or c not in mine for c in found):
            raise errors.invalid(
                "calendar_ids",
                "invalid_calendar_ids",
                "calendar_ids must be calendars of this account",
            )
        cals = [c for c in found if c is not None]
    else:
        cals = visible_calendars(world, account_id)
    for cal in cals:
        for ev in world.events_in(cal.store_id).values():
            if ev.managed and not ev.deleted:
                ev.deleted = True
                record_change(state, ev, own=True)


def change_participation(
    state: SandboxState, account_id: str, calendar_id: str, event_uid: str, data: Any
) -> None:
    world = state.world
    cal = calendar_for(world, account_id, calendar_id)
    status = data.get("status") if isinstance(data, dict) else None
    if not status:
        raise errors.required("status")
    if status not in PARTICIPATION_STATUSES:
        raise errors.invalid("status", "invalid", "status must be accepted, tentative or declined")
    ev = world.events_in(cal.store_id).get(event_uid)
    if ev is None or ev.deleted:
        raise errors.not_found("event")
    if not profile_of(world, cal).connected:
        raise errors.locked()
    if is_invitation(ev):
        _answer_invitation(state, ev, status, own=True)
        return
    ev.participation_status = status
    record_change(state, ev, own=True)


# ---- change bookkeeping ------------------------------------------------------------------------


def record_change(state: SandboxState, ev: m.Event, *, own: bool) -> None:
    """Let invited rooms answer, put the invitation on invited people's calendars, stamp
    ``updated`` and tell the channels that watch the calendar."""
    if not is_room_booking(ev) and not is_invitation(ev):
        _book_rooms(state, ev)
        _deliver_invitations(state, ev)
    _stamp_and_notify(state, ev, own=own)


def _stamp_and_notify(state: SandboxState, ev: m.Event, *, own: bool) -> None:
    stamp = state.clock.now()
    ts = max(int(stamp.timestamp()), ev.updated_ts)
    ev.updated_ts = ts
    ev.updated = format_ts(ts)
    state.mark_dirty()
    if not own or state.config.notify_own_changes:
        notify.enqueue_change(state, ev)


# ---- rooms: resource mailboxes answer invitations on their own ---------------------------------

#: Prefix of the events a room keeps for the meetings it accepted (never managed, never a source
#: of further room bookings).
ROOM_BOOKING_PREFIX = "evt_room_"


def room_booking_uid(event_uid: str, room_account_id: str) -> str:
    """The stable uid of ``room``'s copy of the event ``event_uid``."""
    digest = hashlib.sha256(f"{event_uid}|{room_account_id}".encode()).hexdigest()[:24]
    return ROOM_BOOKING_PREFIX + digest


def is_room_booking(ev: m.Event) -> bool:
    return ev.event_uid.startswith(ROOM_BOOKING_PREFIX)


def _room_calendar(world: World, room: m.Identity) -> m.Calendar | None:
    return next((c for c in world.own_calendars(room.account_id) if c.primary), None)


def _book_rooms(state: SandboxState, ev: m.Event) -> None:
    """Rooms among the attendees accept when free over the event's span (keeping a copy of the
    event in their calendar) and decline when busy, as Exchange and Google resource mailboxes do.
    Copies follow the original: moved, re-checked, removed when it is deleted or cancelled or the
    room is no longer invited."""
    world = state.world
    live = not ev.deleted and ev.status != "cancelled"
    invited: set[str] = set()
    for attendee in ev.attendees:
        room = world.identity(attendee.get("email"))
        if room is None or room.kind != "room" or not room.account_id:
            continue
        cal = _room_calendar(world, room)
        if cal is None or cal.store_id == ev.calendar_id:
            continue  # an event in the room's own calendar is not an invitation
        invited.add(room.account_id)
        store = world.events_in(cal.store_id)
        uid = room_booking_uid(ev.event_uid, room.account_id)
        if not live:
            _drop_copy(state, store.get(uid))
        elif _room_free(store, ev, uid):
            attendee["status"] = "accepted"
            _keep_room_booking(state, cal, store, uid, ev)
        else:
            attendee["status"] = "declined"
            _drop_copy(state, store.get(uid))
    for room in world.identities.values():
        if room.kind != "room" or not room.account_id or room.account_id in invited:
            continue
        cal = _room_calendar(world, room)
        if cal is not None:
            store = world.events_in(cal.store_id)
            _drop_copy(state, store.get(room_booking_uid(ev.event_uid, room.account_id)))


def _room_free(store: dict[str, m.Event], ev: m.Event, own_copy: str) -> bool:
    return not any(
        uid != own_copy
        and counts_as_busy(other)
        and other.end_ts > other.start_ts
        and other.start_ts < ev.end_ts
        and other.end_ts > ev.start_ts
        for uid, other in store.items()
    )


def _keep_room_booking(
    state: SandboxState, cal: m.Calendar, store: dict[str, m.Event], uid: str, ev: m.Event
) -> None:
    copy = store.get(uid)
    if copy is None:
        copy = _new_copy(state, cal, store, uid, ev)
    elif (
        not copy.deleted
        and [copy.start_ts, copy.end_ts] == [ev.start_ts, ev.end_ts]
        and copy.summary == ev.summary
        and copy.organizer == ev.organizer
    ):
        return  # nothing the room would notice
    else:
        _follow_times(copy, ev)
        copy.summary = ev.summary
        copy.deleted = False
    copy.organizer = dict(ev.organizer) if ev.organizer else None
    copy.transparency, copy.status, copy.participation_status = "opaque", "confirmed", "accepted"
    _stamp_and_notify(state, copy, own=False)


def _new_copy(
    state: SandboxState,
    cal: m.Calendar,
    store: dict[str, m.Event],
    uid: str,
    ev: m.Event,
    invitation_of: list[str] | None = None,
) -> m.Event:
    """A new copy of ``ev`` on ``cal`` (a room's booking or an invitee's invitation), stored."""
    stamp = format_utc(state.clock.now())
    copy = m.Event(
        event_uid=uid,
        calendar_id=cal.store_id,
        summary=ev.summary,
        start=ev.start,
        end=ev.end,
        start_tzid=ev.start_tzid,
        end_tzid=ev.end_tzid,
        start_ts=ev.start_ts,
        end_ts=ev.end_ts,
        created=stamp,
        updated=stamp,
        invitation_of=invitation_of,
    )
    store[uid] = copy
    return copy


def _follow_times(copy: m.Event, ev: m.Event) -> None:
    """The copy moves with the event, remembering the span it leaves."""
    if [copy.start_ts, copy.end_ts] != [ev.start_ts, ev.end_ts]:
        copy.previous_spans.append([copy.start_ts, copy.end_ts])
    copy.start, copy.end, copy.start_tzid, copy.end_tzid = (
        ev.start,
        ev.end,
        ev.start_tzid,
        ev.end_tzid,
    )
    copy.start_ts, copy.end_ts = ev.start_ts, ev.end_ts


def _drop_copy(state: SandboxState, copy: m.Event | None) -> None:
    if copy is not None and not copy.deleted:
        copy.deleted = True
        _stamp_and_notify(state, copy, own=False)


# ---- people: an invitation lands on the invitee's own calendar ---------------------------------

#: Prefix of the copies an invited person's calendar keeps of the meetings they are invited to.
INVITATION_PREFIX = "evt_invite_"
#: Identities whose mailbox receives invitations like a person's (rooms answer on their own).
INVITEE_KINDS = frozenset({"person", "assistant", "admin"})


def invitation_uid(event_uid: str, account_id: str) -> str:
    """The stable uid of ``account_id``'s copy of the event ``event_uid``."""
    digest = hashlib.sha256(f"invite|{event_uid}|{account_id}".encode()).hexdigest()[:24]
    return INVITATION_PREFIX + digest


def is_invitation(ev: m.Event) -> bool:
    return ev.event_uid.startswith(INVITATION_PREFIX)


def _primary_calendar(world: World, account_id: str) -> m.Calendar | None:
    return next((c for c in world.own_calendars(account_id) if c.primary), None)


def _deliver_invitations(state: SandboxState, ev: m.Event) -> None:
    """Every invited person (a sandbox identity other than a room) gets a copy of the event in
    their own primary calendar, as Google and Exchange deliver invitations: not managed, the
    organizer's details, ``participation_status`` = their answer on the organizer's event
    (``needs_action`` until they answer). Unanswered and tentative copies hold the time, a
    declined one does not. Copies follow the event: moved, updated, removed when it is deleted or
    cancelled or the person is no longer invited."""
    world = state.world
    live = not ev.deleted and ev.status != "cancelled"
    invited: list[str] = []
    for attendee in ev.attendees:
        person = world.identity(attendee.get("email"))
        if person is None or person.kind not in INVITEE_KINDS or not person.account_id:
            continue
        cal = _primary_calendar(world, person.account_id)
        if cal is None or cal.store_id == ev.calendar_id:
            continue  # the organizer's own calendar holds the event itself
        if person.account_id in invited:
            continue
        invited.append(person.account_id)
        store = world.events_in(cal.store_id)
        uid = invitation_uid(ev.event_uid, person.account_id)
        if live:
            _keep_invitation(state, cal, store, uid, ev, attendee.get("status") or "needs_action")
        else:
            _drop_copy(state, store.get(uid))
    for account_id in ev.invited_accounts:
        if account_id in invited:
            continue
        cal = _primary_calendar(world, account_id)
        if cal is not None:
            _drop_copy(
                state, world.events_in(cal.store_id).get(invitation_uid(ev.event_uid, account_id))
            )
    ev.invited_accounts = invited


def _mirrored(ev: m.Event) -> tuple:
    return (
        ev.start,
        ev.end,
        ev.start_tzid,
        ev.end_tzid,
        ev.summary,
        ev.description,
        ev.location,
        ev.organizer,
        ev.attendees,
        ev.conferencing,
        ev.transparency,
        ev.status,
        ev.event_private,
    )


def _keep_invitation(
    state: SandboxState,
    cal: m.Calendar,
    store: dict[str, m.Event],
    uid: str,
    ev: m.Event,
    answer: str,
) -> None:
    copy = store.get(uid)
    if copy is None:
        copy = _new_copy(state, cal, store, uid, ev, invitation_of=[ev.calendar_id, ev.event_uid])
    elif (
        not copy.deleted
        and copy.participation_status == answer
        and _mirrored(copy) == _mirrored(ev)
    ):
        return  # nothing the invitee would notice
    _follow_times(copy, ev)
    copy.summary, copy.description = ev.summary, ev.description
    copy.location = dict(ev.location) if ev.location else None
    copy.organizer = dict(ev.organizer) if ev.organizer else None
    copy.attendees = [dict(a) for a in ev.attendees]
    copy.conferencing = dict(ev.conferencing) if ev.conferencing else None
    copy.transparency, copy.status, copy.event_private = (
        ev.transparency,
        ev.status,
        ev.event_private,
    )
    copy.participation_status = answer
    copy.deleted = False
    _stamp_and_notify(state, copy, own=False)


def _answer_invitation(state: SandboxState, copy: m.Event, status: str, *, own: bool) -> None:
    """The invitee answers on their copy: the organizer's event records it (and the copy
    follows). A copy whose meeting is gone keeps the answer itself."""
    world = state.world
    original = None
    if copy.invitation_of:
        original = world.events_in(copy.invitation_of[0]).get(copy.invitation_of[1])
    owner = world.owner_identity(world.calendars[copy.calendar_id])
    attendee = None
    if original is not None and not original.deleted and owner is not None:
        attendee = next(
            (a for a in original.attendees if a.get("email", "").lower() == owner.email.lower()),
            None,
        )
    if attendee is None or original is None:
        copy.participation_status = status
        _stamp_and_notify(state, copy, own=own)
        return
    attendee["status"] = status
    record_change(state, original, own=False)


# ---- external changes: the owner edits their own calendar (control API and pages) -------------


def external_change(state: SandboxState, data: dict[str, Any]) -> dict[str, Any]:
    """Create, move, update or delete an event "as the owner", as they would in Outlook."""
    world = state.world
    email = data.get("email")
    ident = world.identity(email)
    if ident is None or not ident.account_id:
        raise errors.invalid("email", "unknown", f"no calendar owner {email!r}")
    action = data.get("action")
    own = world.own_calendars(ident.account_id)
    if data.get("calendar_id"):
        cal = world.calendars.get(data["calendar_id"])
        if cal is None or cal not in own:
            raise errors.invalid("calendar_id", "unknown", "not one of the owner's calendars")
    else:
        cal = next(c for c in own if c.primary)
    store = world.events_in(cal.store_id)
    if action == "create":
        fields = _parse_event_fields(
            {**data, "summary": data.get("summary") or "Busy"}, need_event_id=False
        )
        ev = m.Event(
            event_uid="evt_external_" + secrets.token_hex(12),
            calendar_id=cal.store_id,
            summary=fields["summary"],
            start="",
            end="",
            start_tzid="",
            end_tzid="",
            start_ts=0,
            end_ts=0,
            created=format_utc(state.clock.now()),
            updated=format_utc(state.clock.now()),
            organizer={"email": ident.email, "display_name": ident.name},
        )
        _apply_fields(ev, fields, ident.tzid)
        if data.get("status") in {"confirmed", "tentative", "cancelled"}:
            ev.status = data["status"]
        store[ev.event_uid] = ev
        record_change(state, ev, own=False)
        return event_payload(world, ev, cal)
    if action not in {"move", "update", "delete"}:
        raise errors.invalid("action", "invalid", "action must be create, move, update or delete")
    ev = _find_owner_event(world, ident, data)
    view = next((c for c in own if c.store_id == ev.calendar_id), cal)
    if is_invitation(ev):
        # Only the organizer moves a meeting; removing an invitation declines it, as Google and
        # Outlook do.
        if action != "delete":
            raise errors.invalid(
                "event_uid",
                "not_organizer",
                "an invitation can only be answered or removed (declined)",
            )
        if not ev.deleted:
            _answer_invitation(state, ev, "declined", own=False)
        return event_payload(world, ev, view)
    if action == "delete":
        if not ev.deleted:
            ev.deleted = True
            record_change(state, ev, own=False)
        return event_payload(world, ev, view)
    if action == "move":
        shift = data.get("shift_minutes")
        if data.get("start") and data.get("end"):
            moved = {
                "start": data["start"],
                "end": data["end"],
                "tzid": data.get("tzid") or ev.start_tzid,
            }
        elif isinstance(shift, int) and not isinstance(shift, bool):
            moved = {**_shifted(ev, shift), "tzid": ev.start_tzid}
        else:
            raise errors.invalid(
                "shift_minutes", "required", "give start and end, or shift_minutes"
            )
        fields = _parse_event_fields(
            {"summary": ev.summary, "description": ev.description, **moved}, need_event_id=False
        )
    else:
        edits = {k: data[k] for k in ("location", "reminders") if k in data}
        fields = _parse_event_fields(
            {
                "summary": data.get("summary", ev.summary),
                "description": data.get("description", ev.description),
                "start": data.get("start", ev.start),
                "end": data.get("end", ev.end),
                "transparency": data.get("transparency", ev.transparency),
                "tzid": data.get("tzid") or ev.start_tzid,
                **edits,
            },
            need_event_id=False,
        )
        if data.get("status") in {"confirmed", "tentative", "cancelled"}:
            ev.status = data["status"]
    ev.deleted = False
    _apply_fields(ev, fields, ident.tzid)
    record_change(state, ev, own=False)
    return event_payload(world, ev, view)


ATTENDEE_STATUSES = ("accepted", "declined", "tentative", "needs_action")


def attendee_response(state: SandboxState, data: dict[str, Any]) -> dict[str, Any]:
    """An attendee answers the organizer's invitation from their mail client: their ``status`` on
    the organizer's event changes, ``updated`` is stamped and the organizer's channels hear of it.
    Everything is checked before anything changes."""
    world = state.world
    organizer = world.identity(
        data.get("organizer") if isinstance(data.get("organizer"), str) else None
    )
    if organizer is None or not organizer.account_id:
        raise errors.invalid("organizer", "unknown", f"no calendar owner {data.get('organizer')!r}")
    status = data.get("status")
    if status not in ATTENDEE_STATUSES:
        raise errors.invalid(
            "status", "invalid", "status must be one of " + ", ".join(ATTENDEE_STATUSES)
        )
    email = data.get("attendee")
    if not isinstance(email, str) or not email.strip():
        raise errors.required("attendee")
    own = world.own_calendars(organizer.account_id)
    if data.get("calendar_id"):
        own = [c for c in own if c.calendar_id == data["calendar_id"]]
        if not own:
            raise errors.invalid("calendar_id", "unknown", "not one of the organizer's calendars")
    event_id, event_uid = data.get("event_id"), data.get("event_uid")
    if not event_id and not event_uid:
        raise errors.invalid("event_id", "required", "event_id or event_uid must be specified")
    ev = None
    for cal in own:
        store = world.events_in(cal.store_id)
        uid = world.managed_index.get((cal.store_id, str(event_id))) if event_id else str(event_uid)
        if uid and uid in store and not store[uid].deleted:
            ev, view = store[uid], cal
            break
    if ev is None:
        field = "event_id" if event_id else "event_uid"
        raise errors.invalid(field, "unknown", "no such live event in the organizer's calendars")
    attendee = next(
        (a for a in ev.attendees if a.get("email", "").lower() == email.strip().lower()), None
    )
    if attendee is None:
        raise errors.invalid("attendee", "unknown", f"{email} is not invited to this event")
    invited = world.identity(email)
    if invited is not None and invited.kind == "room":
        raise errors.invalid("attendee", "room", "rooms answer invitations themselves")
    attendee["status"] = status
    record_change(state, ev, own=False)
    return event_payload(world, ev, view)


def _find_owner_event(world: World, ident: m.Identity, data: dict[str, Any]) -> m.Event:
    stores = {c.store_id for c in world.own_calendars(ident.account_id)}
    uid = data.get("event_uid")
    for store in stores:
        events = world.events_in(store)
        if uid and uid in events:
            return events[uid]
        if data.get("event_id"):
            found = world.managed_index.get((store, str(data["event_id"])))
            if found:
                return events[found]
    raise errors.invalid("event_uid", "unknown", "no such event in the owner's calendars")


def _shifted(ev: m.Event, minutes: int) -> dict[str, Any]:
    if ev.all_day:
        days = dt.timedelta(
            days=max(1, round(minutes / 1440)) if minutes > 0 else min(-1, round(minutes / 1440))
        )
        return {
            "start": (dt.date.fromisoformat(ev.start) + days).isoformat(),
            "end": (dt.date.fromisoformat(ev.end) + days).isoformat(),
        }
    delta = dt.timedelta(minutes=minutes)
    return {
        "start": format_utc(parse_datetime(ev.start) + delta),
        "end": format_utc(parse_datetime(ev.end) + delta),
    }


# ---- conferencing (§8) -------------------------------------------------------------------------


JOIN_URLS = {
    "google_meet": "https://meet.sandbox.example/{a}-{b}-{c}",
    "ms_teams": "https://teams.sandbox.example/l/meetup-join/{hex}",
    "zoom": "https://zoom.sandbox.example/j/{digits}",
    "go_to": "https://goto.sandbox.example/join/{digits}",
}


def _explicit_ok(request: dict[str, Any]) -> bool:
    """Explicit conferencing as documented and in cronofy-csharp's UpsertEvent tests: a
    ``provider_description`` and a ``join_url``. The sandbox reads both as required and the URL
    as https (the stricter reading)."""
    description, url = request.get("provider_description"), request.get("join_url")
    if not isinstance(description, str) or not description.strip() or len(description) > 256:
        return False
    if not isinstance(url, str) or len(url) > 2048:
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _request_conferencing(
    state: SandboxState, cal: m.Calendar, ev: m.Event, request: dict[str, Any], account_id: str
) -> None:
    profile_id = request["profile_id"]
    if profile_id == "none":
        ev.conferencing = None
        ev.conferencing_request = None
        return
    if profile_id == "explicit":
        ev.conferencing = {
            "provider_name": request.get("provider_description") or "explicit",
            "join_url": request["join_url"],
        }
        return
    if ev.start_ts < state.clock.time():
        return  # Cronofy does not add conferencing to past events (§8.2).
    if profile_id not in {"default", "integrated"}:
        conf = state.world.conferencing_profiles.get(profile_id)
        if conf is None or conf.account_id != account_id:
            raise errors.invalid(
                "conferencing",
                "unknown_profile",
                "conferencing.profile_id is not a conferencing profile of this account",
            )
    ev.conferencing_request = dict(request)
    notify.schedule_task(
        state,
        {
            "type": "assign_conferencing",
            "store_calendar_id": cal.store_id,
            "calendar_id": cal.calendar_id,
            "event_uid": ev.event_uid,
            "account_id": account_id,
        },
        delay=state.config.conferencing_delay,
    )


def conferencing_provider(
    state: SandboxState, cal: m.Calendar, request: dict[str, Any], account_id: str
) -> str | None:
    """Which service provides the link: Zoom if linked (for ``default``), else Meet or Teams."""
    world = state.world
    profile_id = request.get("profile_id")
    integrated = None
    if cal.integrated_conferencing:
        integrated = {"google": "google_meet", "office365": "ms_teams"}.get(
            profile_of(world, cal).provider_name
        )
    linked = [
        c
        for c in world.conferencing_profiles.values()
        if c.account_id == account_id and c.connected and c.provider_name in JOIN_URLS
    ]
    if profile_id == "integrated":
        return integrated
    if profile_id == "default":
        return linked[0].provider_name if linked else integrated
    conf = world.conferencing_profiles.get(profile_id or "")
    if conf is not None and conf.connected and conf.provider_name in JOIN_URLS:
        return conf.provider_name
    return None


def make_join_url(provider: str) -> str:
    rnd = secrets.SystemRandom()
    letters = "abcdefghijklmnopqrstuvwxyz"
    return JOIN_URLS[provider].format(
        a="".join(rnd.choice(letters) for _ in range(3)),
        b="".join(rnd.choice(letters) for _ in range(4)),
        c="".join(rnd.choice(letters) for _ in range(3)),
        hex=secrets.token_hex(16),
        digits="".join(rnd.choice("0123456789") for _ in range(10)),
    )
