"""Events, free/busy (with absolute ``next_page`` URLs), writes and batch (§4, §5, §10)."""

from __future__ import annotations

import math
import re
from typing import Any

from flask import Blueprint, jsonify, make_response, request

from . import errors, events, web
from .state import new_token

bp = Blueprint("sandbox_events", __name__)

PAGE_TTL = 900


def _paginate(kind: str, items: list[dict[str, Any]], sub: str) -> dict[str, Any]:
    """First page of ``items``; later pages are kept under tokens behind absolute URLs."""
    state = web.state()
    size = max(1, state.config.page_size)
    total = max(1, math.ceil(len(items) / size))
    pages = [items[i * size : (i + 1) * size] for i in range(total)]
    tokens = [new_token(16) for _ in range(total)]
    with state.lock:
        now = state.clock.time()
        for token, entry in list(state.page_cache.items()):
            if entry["expires_at"] < now:
                del state.page_cache[token]
        for index in range(1, total):
            state.page_cache[tokens[index]] = {
                "kind": kind,
                "sub": sub,
                "items": pages[index],
                "current": index + 1,
                "total": total,
                "next": tokens[index + 1] if index + 1 < total else None,
                "expires_at": now + PAGE_TTL,
            }
    return _page_body(kind, pages[0], 1, total, tokens[1] if total > 1 else None)


def _page_body(kind: str, items, current: int, total: int, next_token: str | None) -> dict:
    pages: dict[str, Any] = {"current": current, "total": total}
    if next_token:
        pages["next_page"] = f"{web.base_url()}/v1/{kind}/pages/{next_token}"
    return {"pages": pages, kind: items}


def _next_page(kind: str, token: str):
    who = web.account_caller()
    state = web.state()
    with state.lock:
        entry = state.page_cache.get(token)
    if entry is None or entry["kind"] != kind or entry["sub"] != who.sub:
        raise errors.not_found("page")
    return jsonify(
        _page_body(kind, entry["items"], entry["current"], entry["total"], entry["next"])
    )


@bp.get("/v1/events")
def read_events():
    """Read events, paged (§4.1)."""
    only_managed = events.parse_bool(request.args.get("only_managed"), "only_managed")
    who = web.account_caller() if only_managed else web.account_caller("read_events")
    if only_managed and not (who.has_scope("read_events") or who.has_scope("create_event")):
        raise errors.forbidden("the token lacks the read_events scope")
    state = web.state()
    with state.lock:
        items = events.read_events(state, who.sub, request.args, web.list_param("calendar_ids"))
    return jsonify(_paginate("events", items, who.sub))


@bp.get("/v1/events/pages/<token>")
def events_page(token: str):
    """A later page of a read-events result."""
    return _next_page("events", token)


@bp.get("/v1/free_busy")
def free_busy():
    """Free/busy blocks computed from events, paged (§4.2)."""
    who = web.account_caller("read_free_busy")
    state = web.state()
    with state.lock:
        items = events.read_free_busy(state, who.sub, request.args, web.list_param("calendar_ids"))
    return jsonify(_paginate("free_busy", items, who.sub))


@bp.get("/v1/free_busy/pages/<token>")
def free_busy_page(token: str):
    """A later page of a free/busy result."""
    return _next_page("free_busy", token)


def _accepted():
    return make_response("", 202)


@bp.post("/v1/calendars/<calendar_id>/events")
def upsert_event(calendar_id: str):
    """Create or update an event (§5.1)."""
    who = web.account_caller("create_event")
    data = web.body()
    state = web.state()
    with state.lock:
        events.upsert_event(state, who.sub, calendar_id, data)
    return _accepted()


@bp.delete("/v1/calendars/<calendar_id>/events")
def delete_event(calendar_id: str):
    """Delete a managed event by event_id or an external one by event_uid (§5.2, §5.3)."""
    who = web.account_caller("delete_event")
    data = web.body()
    state = web.state()
    with state.lock:
        events.delete_event(state, who.sub, calendar_id, data)
    return _accepted()


@bp.delete("/v1/events")
def bulk_delete():
    """Delete managed events everywhere or in some calendars; body or query parameters (§5.4)."""
    who = web.account_caller("delete_event")
    data = web.body()
    delete_all = events.parse_bool(
        request.args.get("delete_all", data.get("delete_all")), "delete_all"
    )
    calendar_ids = web.list_param("calendar_ids", data)
    state = web.state()
    with state.lock:
        events.bulk_delete(state, who.sub, delete_all, calendar_ids)
    return _accepted()


@bp.post("/v1/calendars/<calendar_id>/events/<event_uid>/participation_status")
def participation_status(calendar_id: str, event_uid: str):
    """Accept, decline or tentatively accept an event (§5.5)."""
    who = web.account_caller("change_participation_status")
    data = web.body()
    state = web.state()
    with state.lock:
        events.change_participation(state, who.sub, calendar_id, event_uid, data)
    return _accepted()


_EVENTS_URL = re.compile(r"^/v1/calendars/([^/?#]+)/events/?$")


@bp.post("/v1/batch")
def batch():
    """Run up to 50 event writes in order; 207 with a status per entry (§10)."""
    who = web.account_caller()
    data = web.body()
    entries = data.get("batch")
    if not isinstance(entries, list) or not entries:
        raise errors.required("batch")
    state = web.state()
    if len(entries) > state.config.max_batch_entries:
        raise errors.invalid(
            "batch",
            "too_many_entries",
            f"a batch may hold at most {state.config.max_batch_entries} requests",
        )
    results = []
    for entry in entries:
        results.append(_batch_entry(state, who, entry))
    return make_response(jsonify({"batch": results}), 207)


def _batch_entry(state, who, entry: Any) -> dict[str, Any]:
    try:
        if not isinstance(entry, dict):
            raise errors.invalid("batch", "invalid", "each entry must be an object")
        method = str(entry.get("method", "")).upper()
        match = _EVENTS_URL.match(str(entry.get("relative_url", "")))
        if match is None or method not in {"POST", "DELETE"}:
            raise errors.not_found("batch operation")
        calendar_id = match.group(1)
        scope = "create_event" if method == "POST" else "delete_event"
        if not who.has_scope(scope):
            raise errors.forbidden(f"the token lacks the {scope} scope")
        with state.lock:
            if method == "POST":
                events.upsert_event(state, who.sub, calendar_id, entry.get("data") or {})
            else:
                events.delete_event(state, who.sub, calendar_id, entry.get("data") or {})
        # pycronofy counts only 2xx statuses with status % 100 == 2 as success (§10).
        return {"status": 202}
    except errors.ApiError as exc:
        result: dict[str, Any] = {"status": exc.status}
        if exc.body:
            result["data"] = exc.body
        return result
