"""The sandbox's state: the world, its indexes, one lock, and the JSON state file."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from . import models as m
from .clock import Clock
from .config import SandboxConfig

log = logging.getLogger(__name__)

STATE_VERSION = 1

# (attribute, model class) for every persisted id → object table.
_TABLES: list[tuple[str, type]] = [
    ("domains", m.Domain),
    ("identities", m.Identity),
    ("accounts", m.Account),
    ("profiles", m.Profile),
    ("calendars", m.Calendar),
    ("grants", m.Grant),
    ("access_tokens", m.AccessToken),
    ("codes", m.AuthCode),
    ("service_accounts", m.ServiceAccount),
    ("channels", m.Channel),
    ("outbox", m.OutboxItem),
    ("conferencing_profiles", m.ConferencingProfile),
    ("pending", m.PendingRequest),
]


def new_id(prefix: str, nbytes: int = 12) -> str:
    return prefix + secrets.token_hex(nbytes)


def new_token(length: int = 32) -> str:
    """An opaque URL-safe token of exactly ``length`` characters (codes and tokens are 32, §1.1)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class World:
    """Everything that is reset by ``/_sandbox/reset`` and saved to the state file."""

    domains: dict[str, m.Domain] = field(default_factory=dict)
    identities: dict[str, m.Identity] = field(default_factory=dict)  # by lower-case email
    accounts: dict[str, m.Account] = field(default_factory=dict)
    profiles: dict[str, m.Profile] = field(default_factory=dict)
    calendars: dict[str, m.Calendar] = field(default_factory=dict)
    events: dict[str, dict[str, m.Event]] = field(
        default_factory=dict
    )  # store calendar → uid → event
    grants: dict[str, m.Grant] = field(default_factory=dict)
    access_tokens: dict[str, m.AccessToken] = field(default_factory=dict)
    codes: dict[str, m.AuthCode] = field(default_factory=dict)
    service_accounts: dict[str, m.ServiceAccount] = field(default_factory=dict)
    channels: dict[str, m.Channel] = field(default_factory=dict)
    outbox: dict[str, m.OutboxItem] = field(default_factory=dict)
    conferencing_profiles: dict[str, m.ConferencingProfile] = field(default_factory=dict)
    pending: dict[str, m.PendingRequest] = field(default_factory=dict)
    smart_invites: dict[str, dict[str, Any]] = field(default_factory=dict)
    real_time_scheduling: dict[str, dict[str, Any]] = field(default_factory=dict)
    link_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_secrets: list[str] = field(default_factory=list)
    seeded_at: str = ""

    # Derived indexes, rebuilt on load.
    refresh_index: dict[str, str] = field(default_factory=dict)  # refresh token → grant id
    managed_index: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (store cal, event_id) → uid

    def rebuild_indexes(self) -> None:
        self.refresh_index = {
            g.refresh_token: g.grant_id for g in self.grants.values() if not g.revoked
        }
        self.managed_index = {
            (cal_id, ev.event_id): uid
            for cal_id, events in self.events.items()
            for uid, ev in events.items()
            if ev.event_id is not None
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": STATE_VERSION, "seeded_at": self.seeded_at}
        for name, _cls in _TABLES:
            data[name] = {k: dataclasses.asdict(v) for k, v in getattr(self, name).items()}
        data["events"] = {
            cal: [dataclasses.asdict(ev) for ev in evs.values()] for cal, evs in self.events.items()
        }
        data["smart_invites"] = self.smart_invites
        data["real_time_scheduling"] = self.real_time_scheduling
        data["link_tokens"] = self.link_tokens
        data["client_secrets"] = self.client_secrets
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> World:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state file version {data.get('version')!r}")
        world = cls(seeded_at=data.get("seeded_at", ""))
        for name, model in _TABLES:
            setattr(world, name, {k: model(**v) for k, v in data.get(name, {}).items()})
        from .api_extras import CONFERENCING_PROVIDERS

        # A state file from before the sandbox was corrected may hold profiles of providers
        # the aggregator does not offer (``cisco_webex``): they never existed there.
        world.conferencing_profiles = {
            k: c
            for k, c in world.conferencing_profiles.items()
            if c.provider_name in CONFERENCING_PROVIDERS
        }
        world.events = {
            cal: {ev["event_uid"]: m.Event(**ev) for ev in evs}
            for cal, evs in data.get("events", {}).items()
        }
        world.smart_invites = data.get("smart_invites", {})
        world.real_time_scheduling = data.get("real_time_scheduling", {})
        world.link_tokens = data.get("link_tokens", {})
        world.client_secrets = list(data.get("client_secrets", []))
        world.rebuild_indexes()
        return world

    # ---- lookups -------------------------------------------------------------------------

    def identity(self, email: str | None) -> m.Identity | None:
        return self.identities.get((email or "").strip().lower())

    def identity_for_account(self, account_id: str) -> m.Identity | None:
        account = self.accounts.get(account_id)
        return self.identity(account.email) if account else None

    def owner_identity(self, calendar: m.Calendar) -> m.Identity | None:
        return self.identity(calendar.owner_email)

    def owner_tzid(self, store_calendar_id: str) -> str:
        cal = self.calendars.get(store_calendar_id)
        ident = self.identity(cal.owner_email) if cal else None
        return ident.tzid if ident else "Etc/UTC"

    def account_profiles(self, account_id: str, *, authorized_only: bool = True) -> list[m.Profile]:
        account = self.accounts.get(account_id)
        if not account:
            return []
        profiles = [self.profiles[p] for p in account.profile_ids if p in self.profiles]
        return [p for p in profiles if p.authorized] if authorized_only else profiles

    def profile_calendars(
        self, profile_id: str, *, include_deleted: bool = True
    ) -> list[m.Calendar]:
        return [
            c
            for c in self.calendars.values()
            if c.profile_id == profile_id and (include_deleted or not c.deleted)
        ]

    def account_calendars(
        self, account_id: str, *, authorized_only: bool = True
    ) -> list[m.Calendar]:
        result = []
        for profile in self.account_profiles(account_id, authorized_only=authorized_only):
            result.extend(self.profile_calendars(profile.profile_id))
        return result

    def own_calendars(self, account_id: str) -> list[m.Calendar]:
        """Calendars whose events make the account busy (not calendars delegated to it)."""
        return [
            c
            for c in self.account_calendars(account_id, authorized_only=False)
            if c.source_calendar_id is None and not c.deleted
        ]

    def views_of(self, store_calendar_id: str) -> list[m.Calendar]:
        """Every calendar (own or delegated) that shows the given store calendar's events."""
        return [c for c in self.calendars.values() if c.store_id == store_calendar_id]

    def events_in(self, store_calendar_id: str) -> dict[str, m.Event]:
        return self.events.setdefault(store_calendar_id, {})

    def find_event(self, uid: str) -> m.Event | None:
        for events in self.events.values():
            if uid in events:
                return events[uid]
        return None


class SandboxState:
    """The world plus runtime machinery; every access to ``world`` holds ``lock``."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.lock = threading.RLock()
        self.clock = Clock()
        self.world = World()
        self.page_cache: dict[str, dict[str, Any]] = {}
        self.delivery_log: list[dict[str, Any]] = []
        self.dirty = False

    def load_or_seed(self, seed_fn) -> None:
        path = self.config.state_file
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.world = World.from_json(json.load(fh))
            log.info("sandbox state loaded from %s", path)
        else:
            self.reset(seed_fn)

    def reset(self, seed_fn) -> None:
        with self.lock:
            self.world = seed_fn(self.config, now=self.clock.now())
            self.world.client_secrets = list(self.config.client_secrets)
            self.world.rebuild_indexes()
            self.page_cache.clear()
            self.delivery_log.clear()
            self.dirty = True

    @property
    def client_secrets(self) -> list[str]:
        return self.world.client_secrets

    def mark_dirty(self) -> None:
        self.dirty = True

    def save(self) -> None:
        """Write the state file atomically (temp file + rename) if anything changed."""
        path = self.config.state_file
        if not path or not self.dirty:
            return
        with self.lock:
            payload = json.dumps(self.world.to_json(), separators=(",", ":"))
            self.dirty = False
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def log_delivery(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.delivery_log.append(record)
            del self.delivery_log[:-500]
