"""Push notification channels (§7.1); deliveries live in ``notify``."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, jsonify, make_response

from . import errors, events, notify, web
from . import models as m
from .state import new_id

bp = Blueprint("sandbox_channels", __name__)


@bp.post("/v1/channels")
def create_channel():
    """Open a channel; a ``verification`` notification follows (§7.1). Every open channel
    hears every change it matches, so duplicates deliver each change more than once."""
    who = web.account_caller()
    data = web.body()
    state = web.state()
    url = data.get("callback_url")
    if not url:
        raise errors.required("callback_url")
    parts = urlsplit(str(url))
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise errors.invalid("callback_url", "invalid", "callback_url must be an http(s) URL")
    if len(url) > state.config.max_callback_url_length:
        raise errors.invalid(
            "callback_url",
            "too_long",
            f"callback_url must be at most {state.config.max_callback_url_length} characters",
        )
    filters_in = data.get("filters") or {}
    if not isinstance(filters_in, dict):
        raise errors.invalid("filters", "invalid", "filters must be an object")
    filters = dict(filters_in)  # unknown keys pass through, as Cronofy's do
    with state.lock:
        if "calendar_ids" in filters:
            ids = filters["calendar_ids"]
            mine = {c.calendar_id for c in events.visible_calendars(state.world, who.sub)}
            if not isinstance(ids, list) or any(cid not in mine for cid in ids):
                raise errors.invalid(
                    "filters",
                    "invalid_calendar_ids",
                    "filters.calendar_ids must be calendars of this account",
                )
        if "only_managed" in filters:
            filters["only_managed"] = events.parse_bool(filters["only_managed"], "only_managed")
        open_ = [
            c
            for c in state.world.channels.values()
            if c.account_id == who.sub and c.client_id == who.client_id and not c.closed
        ]
        # Documented: the id "may be for an existing channel" when the request is identical.
        same = next((c for c in open_ if c.callback_url == url and c.filters == filters), None)
        if same is not None:
            return jsonify({"channel": notify.channel_payload(same)})
        if len(open_) >= state.config.max_channels_per_account:
            # Documented limit; the error's key is not (stated in the sandbox README).
            raise errors.invalid(
                "base",
                "too_many_channels",
                f"an account may have at most {state.config.max_channels_per_account} channels",
            )
        channel = m.Channel(
            channel_id=new_id("chn_"),
            client_id=who.client_id,
            account_id=who.sub,
            callback_url=url,
            filters=filters,
            created_at=int(state.clock.time()),
        )
        state.world.channels[channel.channel_id] = channel
        notify.notify_channel(state, channel, {"type": "verification"})
        state.mark_dirty()
        return jsonify({"channel": notify.channel_payload(channel)})


@bp.get("/v1/channels")
def list_channels():
    """List the account's open channels."""
    who = web.account_caller()
    state = web.state()
    with state.lock:
        return jsonify(
            {
                "channels": [
                    notify.channel_payload(c)
                    for c in state.world.channels.values()
                    if c.account_id == who.sub and c.client_id == who.client_id and not c.closed
                ]
            }
        )


@bp.delete("/v1/channels/<channel_id>")
def close_channel(channel_id: str):
    """Close a channel (202; 404 if unknown or already closed)."""
    who = web.account_caller()
    state = web.state()
    with state.lock:
        channel = state.world.channels.get(channel_id)
        if channel is None or channel.account_id != who.sub or channel.closed:
            raise errors.not_found("channel")
        channel.closed = True
        for item_id, item in list(state.world.outbox.items()):
            if item.channel_id == channel_id:
                del state.world.outbox[item_id]
        state.mark_dirty()
    return make_response("", 202)
