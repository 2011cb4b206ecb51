"""``POST /v1/availability`` and ``/v1/sequenced_availability`` (§6): parse, then pure functions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from . import availability as av
from . import errors, events, web
from .state import SandboxState
from .timeutil import BadTime, format_ts, parse_datetime

bp = Blueprint("sandbox_availability", __name__)

FORMATS = {"periods", "slots", "overlapping_slots"}


def _minutes(
    value: Any, field: str, *, required: bool = False, allow_zero: bool = False
) -> int | None:
    """``{"minutes": N}`` (or a bare int) as seconds."""
    if value in (None, {}, [], ""):
        if required:
            raise errors.required(field)
        return None
    minutes = value.get("minutes") if isinstance(value, dict) else value
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or minutes < 0
        or (minutes == 0 and not allow_zero)
        or minutes > 60 * 24 * 7
    ):
        raise errors.invalid(field, "invalid", f"{field} must be a positive number of minutes")
    return minutes * 60


def _buffer_side(value: Any, field: str) -> tuple[int, int | None]:
    """(minimum, maximum) seconds from ``{minutes}`` or ``{minimum: {minutes}, maximum: {...}}``."""
    if not value:
        return 0, None
    if not isinstance(value, dict):
        raise errors.invalid(field, "invalid", f"{field} must be an object")
    if "minimum" in value or "maximum" in value:
        low = _minutes(value.get("minimum"), field, allow_zero=True) or 0
        high = _minutes(value.get("maximum"), field, allow_zero=True)
        return low, high
    return _minutes(value, field, allow_zero=True) or 0, None


def _periods(value: Any, field: str, config, *, required: bool) -> list[tuple[int, int]]:
    if not value:
        if required:
            raise errors.required(field)
        return []
    if not isinstance(value, list):
        raise errors.invalid(field, "invalid", f"{field} must be a list of {{start, end}}")
    if len(value) > config.max_query_periods:
        raise errors.invalid(field, "too_many", f"at most {config.max_query_periods} periods")
    spans = []
    for period in value:
        try:
            start = int(parse_datetime(period["start"]).timestamp())
            end = int(parse_datetime(period["end"]).timestamp())
        except (BadTime, KeyError, TypeError):
            raise errors.invalid(
                field, "invalid", "each period needs ISO 8601 start and end"
            ) from None
        if end <= start:
            raise errors.invalid(field, "invalid", "each period must end after it starts")
        spans.append((start, end))
    span = max(e for _s, e in spans) - min(s for s, _e in spans)
    if span > config.max_query_span_days * 86400:
        raise errors.invalid(
            field, "too_long", f"periods may span at most {config.max_query_span_days} days"
        )
    return spans


def _authorized_subs(state: SandboxState, client_id: str) -> set[str]:
    """Subs with a live grant for the app. A room (``res_…``) counts only once the app asked for it
    through the service account and exchanged the callback code (§2.3–2.5); linking its domain
    is not enough, and revoking the room's sub (§1.4) takes it away again."""
    return {
        g.sub for g in state.world.grants.values() if not g.revoked and g.client_id == client_id
    }


def _groups(state: SandboxState, client_id: str, participants: Any, config) -> list[av.Group]:
    if isinstance(participants, dict):
        participants = [participants]
    if not isinstance(participants, list) or not participants:
        raise errors.required("participants")
    if len(participants) > config.max_participant_groups:
        raise errors.invalid(
            "participants",
            "too_many",
            f"at most {config.max_participant_groups} participant groups",
        )
    world = state.world
    known = _authorized_subs(state, client_id)
    groups = []
    for group in participants:
        members_in = group.get("members") if isinstance(group, dict) else None
        if not isinstance(members_in, list) or not members_in:
            raise errors.invalid("participants", "required", "each group needs members")
        if len(members_in) > config.max_members_per_group:
            raise errors.invalid(
                "participants",
                "too_many",
                f"at most {config.max_members_per_group} members per group",
            )
        members = []
        for member in members_in:
            member = {"sub": member} if isinstance(member, str) else member
            sub = member.get("sub") if isinstance(member, dict) else None
            if not sub or sub not in world.accounts or sub not in known:
                raise errors.invalid(
                    "participants",
                    "unknown_sub",
                    f"{sub!r} is not an account or resource authorized by this app",
                )
            calendar_ids = member.get("calendar_ids") or None
            if calendar_ids is not None and (
                not isinstance(calendar_ids, list)
                or not all(isinstance(c, str) and c for c in calendar_ids)
            ):
                raise errors.invalid(
                    "participants", "invalid", "calendar_ids must be a list of calendar ids"
                )
            available = (
                _periods(member.get("available_periods"), "participants", config, required=False)
                or None
            )
            members.append(
                av.Member(sub, events.busy_intervals(world, sub, calendar_ids), available)
            )
        required = group.get("required", "all")
        if required in (None, "all"):
            needed = None
        elif (
            isinstance(required, int)
            and not isinstance(required, bool)
            and 1 <= required <= len(members)
        ):
            needed = required
        else:
            raise errors.invalid(
                "participants", "invalid", 'required must be "all" or a number of members'
            )
        groups.append(av.Group(members, needed))
    return groups


def _query(
    state: SandboxState, client_id: str, data: dict, *, periods_required: bool = True
) -> av.Query:
    """Validate everything, reporting every bad field at once as Cronofy does."""
    config = state.config
    found: dict[str, list] = {}

    def check(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except errors.ApiError as exc:
            for field, items in exc.body.get("errors", {}).items():
                found.setdefault(field, []).extend(items)
            return None

    def max_results_of(value):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= config.max_max_results
        ):
            raise errors.invalid(
                "max_results",
                "invalid",
                f"max_results must be between 1 and {config.max_max_results}",
            )
        return value

    groups = check(_groups, state, client_id, data.get("participants"), config)
    duration = check(_minutes, data.get("required_duration"), "required_duration", required=True)
    periods = data.get("query_periods") or data.get("available_periods")
    spans = check(_periods, periods, "query_periods", config, required=periods_required)
    before = check(_buffer_side, (data.get("buffer") or {}).get("before"), "buffer")
    after = check(_buffer_side, (data.get("buffer") or {}).get("after"), "buffer")
    interval = check(_minutes, data.get("start_interval"), "start_interval")
    max_results = check(max_results_of, data.get("max_results", config.default_max_results))
    if found:
        raise errors.ApiError(422, {"errors": found})
    return av.Query(
        groups,
        duration,
        spans or [],
        before[0],
        after[0],
        interval or config.default_start_interval * 60,
        max_results,
    )


def _window_json(window: av.Window, order: list[str]) -> dict[str, Any]:
    return {
        "start": format_ts(window.start),
        "end": format_ts(window.end),
        "participants": [{"sub": s} for s in order if s in window.participants],
    }


def _order(query: av.Query) -> list[str]:
    seen: dict[str, None] = {}
    for group in query.groups:
        for member in group.members:
            seen.setdefault(member.sub, None)
    return list(seen)


@bp.post("/v1/availability")
def availability():
    """Find available periods or slots for groups of people and resources (§6.1)."""
    who = web.caller(allow_api_key=True)
    data = web.body()
    fmt = data.get("response_format") or "periods"
    if fmt not in FORMATS:
        raise errors.invalid(
            "response_format",
            "invalid",
            "response_format must be periods, slots or overlapping_slots",
        )
    query_slots = data.get("query_slots")
    state = web.state()
    with state.lock:
        query = _query(state, who.client_id, data, periods_required=not query_slots)
    order = _order(query)
    if query_slots:
        try:
            starts = [int(parse_datetime(s["start"]).timestamp()) for s in query_slots]
        except (BadTime, KeyError, TypeError):
            raise errors.invalid(
                "query_slots", "invalid", "each query slot needs a start"
            ) from None
        if not query.periods:  # the slots themselves are the periods being asked about
            query.periods = [(start, start + query.duration) for start in starts]
        found = av.check_slots(query, starts)
        return jsonify({"available_slots": [_window_json(w, order) for w in found]})
    if fmt == "periods":
        return jsonify({"available_periods": [_window_json(w, order) for w in av.periods(query)]})
    found = av.slots(query, overlapping=fmt == "overlapping_slots")
    return jsonify({"available_slots": [_window_json(w, order) for w in found]})


STEP_KEYS = {
    "sequence_id",
    "ordinal",
    "participants",
    "required_duration",
    "start_interval",
    "buffer",
    "available_periods",
    "event",
}


def _gap_side(value: Any, field: str) -> tuple[int, int | None]:
    """A sequenced buffer side, ``{minutes}`` or ``{minimum: {minutes}, maximum: {minutes}}``.

    Returns (minimum, maximum) seconds. Anything else, a mix of both forms, or a maximum below
    the minimum is a 422 (the stricter reading where the documentation is silent)."""
    if value is None:
        return 0, None
    if not isinstance(value, dict) or not value:
        raise errors.invalid(field, "invalid", f"{field} must be an object")
    keys = set(value)
    if keys == {"minutes"}:
        return _minutes(value, field, allow_zero=True) or 0, None
    if not keys <= {"minimum", "maximum"}:
        raise errors.invalid(
            field, "invalid", f"{field} takes either minutes or minimum/maximum, not {sorted(keys)}"
        )
    for bound in keys:
        if not isinstance(value[bound], dict) or set(value[bound]) != {"minutes"}:
            raise errors.invalid(field, "invalid", f"{field}.{bound} must be {{minutes: N}}")
    low = _minutes(value.get("minimum"), field, allow_zero=True) or 0
    high = _minutes(value.get("maximum"), field, allow_zero=True) if "maximum" in keys else None
    if high is not None and high < low:
        raise errors.invalid(field, "invalid", f"{field}.maximum must not be below its minimum")
    return low, high


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@bp.post("/v1/sequenced_availability")
def sequenced_availability():
    """Chains of slots, one per step, in ``ordinal`` order (§6.2).

    Each step is an availability query of its own (participants, required_duration,
    start_interval) over the top-level ``query_periods`` (or ``available_periods``), narrowed by
    the step's own ``available_periods``. ``buffer.before``/``after`` minimums must be free time
    for the step's participants, like availability buffers, and also bound the gap between
    consecutive steps from below; the maximums bound that gap from above.
    """
    who = web.caller(allow_api_key=True)
    data = web.body()
    sequence = data.get("sequence")
    if not isinstance(sequence, list) or not sequence:
        raise errors.required("sequence")
    state = web.state()
    config = state.config
    if len(sequence) > config.max_sequence_steps:
        raise errors.invalid(
            "sequence", "too_many", f"at most {config.max_sequence_steps} steps in a sequence"
        )
    if not all(isinstance(item, dict) for item in sequence):
        raise errors.invalid("sequence", "invalid", "each step must be an object")
    ids = [item.get("sequence_id") for item in sequence]
    for sid in ids:
        if isinstance(sid, bool) or not isinstance(sid, (str, int)) or sid == "":
            raise errors.invalid(
                "sequence", "required", "each step needs a sequence_id (a string or integer)"
            )
    if len({str(sid) for sid in ids}) != len(ids):
        raise errors.invalid("sequence", "invalid", "sequence_id must be unique in the sequence")
    ordinals = [item.get("ordinal") for item in sequence]
    if any(o is not None for o in ordinals):
        if any(isinstance(o, bool) or not isinstance(o, int) or o < 1 for o in ordinals):
            raise errors.invalid(
                "sequence", "invalid", "ordinal must be a positive integer on every step"
            )
        if len(set(ordinals)) != len(ordinals):
            raise errors.invalid("sequence", "invalid", "ordinal must be unique in the sequence")
        sequence = sorted(sequence, key=lambda item: item["ordinal"])
    for item in sequence:
        unknown = set(item) - STEP_KEYS
        if unknown:
            raise errors.invalid("sequence", "invalid", f"unknown step fields {sorted(unknown)}")
        if "event" in item and not isinstance(item["event"], dict):
            raise errors.invalid("sequence", "invalid", "event must be an object")
    shared = data.get("query_periods") or data.get("available_periods")
    steps: list[av.Step] = []
    sides: list[tuple[tuple[int, int | None], tuple[int, int | None]]] = []
    with state.lock:
        shared_spans = _periods(shared, "query_periods", config, required=True)
        for item in sequence:
            buffer = item.get("buffer")
            if buffer is not None and (
                not isinstance(buffer, dict) or not set(buffer) <= {"before", "after"}
            ):
                raise errors.invalid("buffer", "invalid", "buffer takes before and after")
            buffer = buffer or {}
            before = _gap_side(buffer.get("before"), "buffer")
            after = _gap_side(buffer.get("after"), "buffer")
            own = _periods(
                item.get("available_periods"), "available_periods", config, required=False
            )
            spans = av.merge(shared_spans)
            if own:
                spans = av.intersect(spans, av.merge(own))
            if not spans:
                raise errors.invalid(
                    "available_periods", "invalid", "a step's periods lie outside query_periods"
                )
            step_data = {
                "participants": item.get("participants"),
                "required_duration": item.get("required_duration"),
                "start_interval": item.get("start_interval"),
                "query_periods": [{"start": format_ts(s), "end": format_ts(e)} for s, e in spans],
                "buffer": {
                    "before": {"minutes": before[0] // 60},
                    "after": {"minutes": after[0] // 60},
                },
            }
            query = _query(state, who.client_id, step_data)
            if sides:
                (_prev_before, prev_after) = sides[-1]
                gap_min = max(prev_after[0], before[0])
                gap_max = _tighter(prev_after[1], before[1])
                if gap_max is not None and gap_max < gap_min:
                    raise errors.invalid(
                        "buffer", "invalid", "a maximum gap is below the minimum gap it meets"
                    )
            else:
                gap_min, gap_max = 0, None
            sides.append((before, after))
            steps.append(av.Step(item["sequence_id"], query, gap_min, gap_max))
        chains = av.sequences(steps, config.max_sequence_results)
    return jsonify(
        {
            "sequences": [
                {
                    "sequence": [
                        dict(_window_json(w, _order(step.query)), sequence_id=sid)
                        for (sid, w), step in zip(chain, steps, strict=True)
                    ]
                }
                for chain in chains
            ]
        }
    )
