"""Deferred work the aggregator does after answering 202: assigning conferencing links (§8)."""

from __future__ import annotations

from typing import Any

from . import events, notify
from .state import SandboxState


def run(state: SandboxState, task: dict[str, Any]) -> None:
    """Run one task; the caller holds the state lock."""
    handler = _HANDLERS.get(task.get("type", ""))
    if handler is None:
        raise ValueError(f"unknown sandbox task {task.get('type')!r}")
    handler(state, task)


def _assign_conferencing(state: SandboxState, task: dict[str, Any]) -> None:
    world = state.world
    ev = world.events_in(task["store_calendar_id"]).get(task["event_uid"])
    cal = world.calendars.get(task["calendar_id"])
    if ev is None or cal is None or ev.deleted or not ev.conferencing_request:
        return
    provider = events.conferencing_provider(state, cal, ev.conferencing_request, task["account_id"])
    if provider is None:
        _fire(state, ev, cal, "conferencing_failing")
        return
    ev.conferencing = {"provider_name": provider, "join_url": events.make_join_url(provider)}
    ev.conferencing_request = None
    events.record_change(state, ev, own=True)
    _fire(state, ev, cal, "conferencing_assigned")


def _fire(state: SandboxState, ev, cal, interaction: str) -> None:
    """POST the event's webhook subscriptions that asked for ``interaction``
    (body [unconfirmed] §16.7)."""
    payload = {
        "notification": {"type": interaction},
        "event": events.event_payload(state.world, ev, cal),
    }
    for sub in ev.subscriptions:
        if sub.get("type", "webhook") != "webhook":
            continue
        wanted = {i.get("type") for i in sub.get("interactions") or []}
        if wanted and interaction not in wanted:
            continue
        notify.enqueue_post(state, "callback", sub["uri"], payload)


_HANDLERS = {"assign_conferencing": _assign_conferencing}
