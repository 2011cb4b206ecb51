"""Outbound POSTs (push notifications and callbacks) and deferred tasks, with retries
(§7, §2.4, §8.3).

Everything goes through one outbox. A background thread delivers what is due; tests that want
determinism turn it off and call :func:`deliver_now` (``POST /_sandbox/deliver``). HTTP calls are
made without holding the state lock so a callback handler may call back into the sandbox.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import requests

from . import models as m
from .signing import HEADER, sign
from .state import SandboxState, new_id

log = logging.getLogger(__name__)


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def channel_payload(channel: m.Channel) -> dict[str, Any]:
    return {
        "channel_id": channel.channel_id,
        "callback_url": channel.callback_url,
        "filters": channel.filters,
    }


def _add(state: SandboxState, item: m.OutboxItem) -> m.OutboxItem:
    state.world.outbox[item.item_id] = item
    state.mark_dirty()
    deliverer = getattr(state, "deliverer", None)
    if deliverer is not None:
        deliverer.wake()
    return item


def enqueue_post(
    state: SandboxState,
    kind: str,
    url: str,
    payload: dict[str, Any],
    *,
    channel_id: str | None = None,
    delay: float = 0.0,
    signed: bool = True,
) -> m.OutboxItem:
    now = state.clock.time()
    return _add(
        state,
        m.OutboxItem(
            item_id=new_id("out_", 8),
            kind=kind,
            created_at=now,
            next_attempt_at=now + delay,
            url=url,
            body=_dump(payload),
            channel_id=channel_id,
            signed=signed,
        ),
    )


def schedule_task(state: SandboxState, task: dict[str, Any], *, delay: float = 0.0) -> m.OutboxItem:
    now = state.clock.time()
    return _add(
        state,
        m.OutboxItem(
            item_id=new_id("tsk_", 8),
            kind="task",
            created_at=now,
            next_attempt_at=now + delay,
            task=task,
        ),
    )


def notify_channel(
    state: SandboxState, channel: m.Channel, notification: dict[str, Any]
) -> m.OutboxItem:
    return enqueue_post(
        state,
        "notification",
        channel.callback_url,
        {"notification": notification, "channel": channel_payload(channel)},
        channel_id=channel.channel_id,
    )


def notify_account(state: SandboxState, account_id: str, notification_type: str) -> int:
    """Send a typed notification (e.g. ``profile_disconnected``) to each open channel of an
    account."""
    count = 0
    for channel in list(state.world.channels.values()):
        if channel.account_id == account_id and not channel.closed:
            notify_channel(state, channel, {"type": notification_type})
            count += 1
    return count


def enqueue_change(state: SandboxState, ev: m.Event) -> None:
    """Queue a ``change`` for every open channel that can see ``ev`` (coalescing queued ones)."""
    world = state.world
    views = []
    for view in world.views_of(ev.calendar_id):
        profile = world.profiles.get(view.profile_id)
        if profile is not None and not profile.connected:
            # A disconnected profile does not sync: the change is noticed once it is back.
            if profile.missed_since_ts is None or ev.updated_ts < profile.missed_since_ts:
                profile.missed_since_ts = ev.updated_ts
            continue
        views.append(view)
    pending = {
        item.channel_id
        for item in world.outbox.values()
        if item.kind == "notification" and item.attempts == 0 and '"type":"change"' in item.body
    }
    for channel in list(world.channels.values()):
        if channel.closed or channel.channel_id in pending:
            continue
        mine = {c.calendar_id for c in world.account_calendars(channel.account_id)}
        seen_as = [v.calendar_id for v in views if v.calendar_id in mine]
        if not seen_as:
            continue
        wanted = channel.filters.get("calendar_ids") or []
        if wanted and not set(wanted) & set(seen_as):
            continue
        if channel.filters.get("only_managed") and not ev.managed:
            continue
        notify_channel(state, channel, {"type": "change", "changes_since": ev.updated})


def resume_profile(state: SandboxState, profile: m.Profile) -> int:
    """The profile is connected again (relinked): syncing resumes, and what changed meanwhile
    is notified like any change (docs FAQ profile-reconnection-process). Returns the events."""
    world = state.world
    profile.connected = True
    since, profile.missed_since_ts = profile.missed_since_ts, None
    state.mark_dirty()
    if since is None:
        return 0
    stores = {c.store_id for c in world.profile_calendars(profile.profile_id)}
    missed = sorted(
        (
            ev
            for store in stores
            for ev in world.events_in(store).values()
            if ev.updated_ts >= since
        ),
        key=lambda ev: ev.updated_ts,
    )
    for ev in missed:
        enqueue_change(state, ev)
    return len(missed)


# ---- delivery ------------------------------------------------------------------------------------


class _Claims:
    """Items being worked on, so the thread and ``deliver_now`` never send the same one twice."""

    def __init__(self) -> None:
        self.ids: set[str] = set()


def _claim(state: SandboxState, item_ids: list[str]) -> list[m.OutboxItem]:
    claims: _Claims = state.__dict__.setdefault("_claims", _Claims())
    with state.lock:
        claimed = []
        for item_id in item_ids:
            item = state.world.outbox.get(item_id)
            if item is not None and item_id not in claims.ids:
                claims.ids.add(item_id)
                claimed.append(item)
        return claimed


def _release(state: SandboxState, item_id: str) -> None:
    with state.lock:
        state.__dict__["_claims"].ids.discard(item_id)


def _post(state: SandboxState, item: m.OutboxItem) -> tuple[bool, str]:
    body = item.body.encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Cronofy-Sandbox"}
    if item.signed:
        with state.lock:
            headers[HEADER] = sign(body, list(state.client_secrets))
    try:
        response = requests.post(
            item.url,
            data=body,
            headers=headers,
            timeout=state.config.delivery_timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return False, type(exc).__name__
    return 200 <= response.status_code < 300, str(response.status_code)


def process(state: SandboxState, item: m.OutboxItem) -> dict[str, Any]:
    """Run one claimed item once; keep it queued with backoff if a POST failed."""
    try:
        if item.kind == "task":
            from . import tasks  # tasks need events, which need this module

            with state.lock:
                state.world.outbox.pop(item.item_id, None)
                state.mark_dirty()
                try:
                    tasks.run(state, item.task or {})
                    ok = True
                except Exception:  # a broken task is dropped, not retried forever
                    log.exception("sandbox task %s failed", item.task)
                    ok = False
            return {
                "item_id": item.item_id,
                "kind": "task",
                "task": (item.task or {}).get("type"),
                "ok": ok,
            }
        ok, status = _post(state, item)
        record = {
            "item_id": item.item_id,
            "kind": item.kind,
            "url": item.url,
            "ok": ok,
            "status": status,
            "attempt": item.attempts + 1,
            "channel_id": item.channel_id,
            "body": json.loads(item.body),
            "signed": item.signed,
            "at": state.clock.time(),
        }
        state.log_delivery(record)
        with state.lock:
            _after_attempt(state, item, ok, status)
        return record
    finally:
        _release(state, item.item_id)


def _after_attempt(state: SandboxState, item: m.OutboxItem, ok: bool, status: str) -> None:
    world = state.world
    config = state.config
    now = state.clock.time()
    item.attempts += 1
    item.last_status = status
    state.mark_dirty()
    channel = world.channels.get(item.channel_id or "")
    if ok:
        world.outbox.pop(item.item_id, None)
        if channel:
            channel.failing_since = None
        return
    if item.first_failure_at is None:
        item.first_failure_at = now
    if channel and channel.failing_since is None:
        channel.failing_since = int(now)
    if now - item.first_failure_at >= config.retry_window_seconds:
        world.outbox.pop(item.item_id, None)
        if channel:
            channel.closed = True  # Cronofy closes channels that keep failing (§7.2)
        return
    delay = min(config.retry_initial_delay * (2 ** (item.attempts - 1)), config.retry_max_delay)
    item.next_attempt_at = now + delay


def deliver_now(state: SandboxState, *, max_rounds: int = 5) -> list[dict[str, Any]]:
    """Run every queued item once, including ones scheduled later; repeat for items they create."""
    results: list[dict[str, Any]] = []
    attempted: set[str] = set()
    for _ in range(max_rounds):
        with state.lock:
            pending = sorted(
                (i for i in state.world.outbox.values() if i.item_id not in attempted),
                key=lambda i: (i.kind != "task", i.created_at),
            )
            ids = [i.item_id for i in pending]
        if not ids:
            break
        for item in _claim(state, ids):
            attempted.add(item.item_id)
            results.append(process(state, item))
    return results


class Deliverer(threading.Thread):
    """The background thread that delivers due items (``auto_deliver``)."""

    def __init__(self, state: SandboxState):
        super().__init__(name="sandbox-deliverer", daemon=True)
        self.state = state
        self._wake = threading.Event()
        self._halt = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        while not self._halt.is_set():
            with self.state.lock:
                now = self.state.clock.time()
                due = [
                    i.item_id
                    for i in sorted(
                        self.state.world.outbox.values(), key=lambda i: i.next_attempt_at
                    )
                    if i.next_attempt_at <= now
                ]
                upcoming = [
                    i.next_attempt_at
                    for i in self.state.world.outbox.values()
                    if i.next_attempt_at > now
                ]
            claimed = _claim(self.state, due)
            for item in claimed:
                if self._halt.is_set():
                    _release(self.state, item.item_id)
                    break
                try:
                    process(self.state, item)
                except Exception:  # a bug in one item must not stop delivery of the rest
                    log.exception("sandbox delivery of %s failed", item.item_id)
            if claimed:
                continue
            timeout = min([1.0] + [max(0.0, t - self.state.clock.time()) for t in upcoming])
            self._wake.wait(timeout)
            self._wake.clear()
