"""The sandbox's world: provider-side identities and Cronofy-side objects (§14 A).

Every class holds only JSON-friendly values so the whole world can be written to the state file
with ``dataclasses.asdict`` and read back with ``cls(**data)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def wire_provider_name(provider_name: str) -> str:
    """The ``provider_name`` Cronofy reports: Microsoft 365 profiles come back as ``exchange``
    with ``provider_service: office365`` (cronofy-csharp test fixture GetProfiles.cs). The
    sandbox keeps ``office365`` inside to tell them from on-premises Exchange."""
    return "exchange" if provider_name == "office365" else provider_name


@dataclass
class Domain:
    """A mail domain and the calendar service that hosts it."""

    name: str
    provider_name: str  # google | office365 | exchange | live_connect | apple
    provider_service: str  # gsuite | gmail | office365 | outlook_com | exchange | icloud
    organisation: bool  # False for personal mail services
    ews_url: str | None = None
    #: Mailboxes the Exchange/Workspace service account may not impersonate.
    impersonation_excluded: list[str] = field(default_factory=list)


@dataclass
class Identity:
    """A person, room or admin as the calendar provider knows them (what the consent page
    checks)."""

    email: str
    name: str
    password: str
    domain: str
    kind: str  # person | room | assistant | admin | service_account
    tzid: str
    account_id: str  # acc_… (people) or res_… (rooms)
    #: The domain this identity may authorize Enterprise Connect for.
    admin_of: str | None = None


@dataclass
class Account:
    account_id: str
    email: str
    name: str
    default_tzid: str
    profile_ids: list[str] = field(default_factory=list)


@dataclass
class Profile:
    profile_id: str
    account_id: str
    email: str
    provider_name: str
    provider_service: str
    connected: bool = True
    #: False until someone authorizes it, and again after ``/v1/profiles/{id}/revoke``.
    authorized: bool = False
    initial_sync_required: bool = False
    #: While disconnected nothing syncs: the earliest change not yet notified (``updated`` as
    #: seconds), notified once the profile is connected again.
    missed_since_ts: int | None = None


@dataclass
class Calendar:
    calendar_id: str
    profile_id: str
    name: str
    owner_email: str
    readonly: bool = False
    deleted: bool = False
    primary: bool = False
    permission_level: str = "sandbox"  # sandbox | unrestricted
    integrated_conferencing: bool = False
    color: str | None = None
    #: For a delegated calendar: the owner's calendar whose events this one shows.
    source_calendar_id: str | None = None

    @property
    def store_id(self) -> str:
        """The calendar whose event store this calendar reads and writes."""
        return self.source_calendar_id or self.calendar_id


@dataclass
class Event:
    event_uid: str
    calendar_id: str  # always the owning (store) calendar
    summary: str
    start: str  # "…Z" or "YYYY-MM-DD"
    end: str
    start_tzid: str
    end_tzid: str
    start_ts: int
    end_ts: int
    created: str
    updated: str
    event_id: str | None = None  # set only for events the app manages
    description: str = ""
    location: dict[str, Any] | None = None
    url: str | None = None
    attendees: list[dict[str, Any]] = field(default_factory=list)
    organizer: dict[str, Any] | None = None
    transparency: str = "opaque"
    status: str = "confirmed"
    participation_status: str = "accepted"
    event_private: bool = False
    color: str | None = None
    reminders: list[dict[str, Any]] = field(default_factory=list)
    recurring: bool = False
    series_identifier: str | None = None
    conferencing: dict[str, Any] | None = None
    conferencing_request: dict[str, Any] | None = None
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    updated_ts: int = 0
    #: Earlier (start_ts, end_ts) spans, for ``include_moved``.
    previous_spans: list[list[int]] = field(default_factory=list)
    #: Accounts holding an invitation copy of this event in their own calendar.
    invited_accounts: list[str] = field(default_factory=list)
    #: On an invitation copy: ``[store calendar id, event uid]`` of the organizer's event.
    invitation_of: list[str] | None = None

    @property
    def managed(self) -> bool:
        return self.event_id is not None

    @property
    def all_day(self) -> bool:
        return len(self.start) == 10


@dataclass
class Grant:
    """One authorization of one account (or service account) for the application."""

    grant_id: str
    client_id: str
    kind: str  # account | service_account
    sub: str
    scope: str
    refresh_token: str
    created_at: int
    delegated_scope: str = ""
    revoked: bool = False
    #: For mailboxes linked through Enterprise Connect: the service account that asked.
    via_service_account: str | None = None
    #: The profile this authorization linked (reported as ``linking_profile``).
    linking_profile_id: str | None = None


@dataclass
class AccessToken:
    token: str
    grant_id: str
    expires_at: int
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    expires_at: int
    kind: str  # account | service_account
    sub: str
    scope: str
    delegated_scope: str = ""
    via_service_account: str | None = None
    linking_profile_id: str | None = None
    used: bool = False


@dataclass
class ServiceAccount:
    service_account_id: str
    client_id: str
    domain: str
    email: str
    provider_name: str
    scope: str
    delegated_scope: str


@dataclass
class Channel:
    channel_id: str
    client_id: str
    account_id: str
    callback_url: str
    filters: dict[str, Any]
    created_at: int
    closed: bool = False
    failing_since: int | None = None


@dataclass
class OutboxItem:
    """An outbound POST (notification or callback) or a deferred task, waiting to run."""

    item_id: str
    kind: str  # notification | callback | task
    created_at: float
    next_attempt_at: float
    url: str = ""
    body: str = ""
    channel_id: str | None = None
    task: dict[str, Any] | None = None
    attempts: int = 0
    first_failure_at: float | None = None
    last_status: str | None = None
    #: Whether the POST carries Cronofy-HMAC-SHA256 (service-account callbacks may not).
    signed: bool = True


@dataclass
class ConferencingProfile:
    profile_id: str
    account_id: str
    provider_name: str  # zoom | go_to | ms_teams
    profile_name: str
    connected: bool = True


@dataclass
class PendingRequest:
    """A browser step started through the API: elevated permissions or conferencing auth."""

    token: str
    kind: str  # permissions | conferencing
    account_id: str
    redirect_uri: str | None
    data: dict[str, Any] = field(default_factory=dict)
    done: bool = False
