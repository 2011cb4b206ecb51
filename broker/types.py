"""Values that cross the CalendarBroker port.

Everything here is a frozen, slotted dataclass built from plain Python types, so services can
hash, compare and pass them around without ever seeing pycronofy or raw JSON. Secrets
(access and refresh tokens) are excluded from ``repr`` so a stray ``print``/log of a value
cannot leak them.

Times are timezone-aware UTC ``datetime``s; all-day values (free/busy, events) stay
``datetime.date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: Scopes asked for when linking a person's calendar (Individual Connect).
DEFAULT_USER_SCOPE = (
    "read_account",
    "list_calendars",
    "read_events",
    "create_event",
    "delete_event",
    "read_free_busy",
)

#: Scopes an IT admin grants the service account (Enterprise Connect).
DEFAULT_SERVICE_ACCOUNT_SCOPE = (
    "service_account/accounts/manage",
    "service_account/resources/manage",
)

DataCenter = Literal["us", "uk", "de", "au", "ca", "sg"]
DATA_CENTERS: tuple[str, ...] = ("us", "uk", "de", "au", "ca", "sg")

#: Conferencing services a person can link through the aggregator (``provider_name`` of
#: ``POST /v1/conferencing_service_authorizations``; the documented list, no others). Any
#: other tool, such as Webex, is written to an event as explicit conferencing instead.
CONFERENCING_PROVIDERS: tuple[str, ...] = ("zoom", "go_to", "ms_teams")
#: ``conferencing.profile_id`` asking for a link the app supplies (``provider_description`` and
#: ``join_url``), not one the aggregator provisions.
EXPLICIT_CONFERENCING = "explicit"

TimeValue = dt.datetime | dt.date


# --- authorization ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkingProfile:
    """The calendar profile a code exchange just linked."""

    provider_name: str
    provider_service: str | None
    profile_id: str
    profile_name: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """One authorization at the aggregator (a person's account or a service account)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime
    scope: str
    #: ``acc_…`` for accounts, ``ser_…`` for service accounts; None when the response omitted it.
    sub: str | None = None
    account_id: str | None = None
    linking_profile: LinkingProfile | None = None
    service_account_id: str | None = None

    @property
    def is_service_account(self) -> bool:
        return self.service_account_id is not None or (self.sub or "").startswith("ser_")

    def expires_within(self, seconds: float, *, now: dt.datetime | None = None) -> bool:
        """True if the access token expires in less than ``seconds`` (for proactive refresh)."""
        now = now or dt.datetime.now(dt.UTC)
        return self.expires_at - now < dt.timedelta(seconds=seconds)


# --- identity, profiles, calendars ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calendar:
    calendar_id: str
    profile_id: str | None
    profile_name: str | None
    provider_name: str | None
    name: str
    readonly: bool
    deleted: bool
    primary: bool
    integrated_conferencing: bool
    #: ``sandbox`` (only the app's own events are writable) or ``unrestricted``.
    permission_level: str | None


@dataclass(frozen=True, slots=True)
class Profile:
    profile_id: str
    provider_name: str
    provider_service: str | None
    profile_name: str
    connected: bool
    relink_url: str | None = None
    initial_sync_required: bool = False
    #: Filled from userinfo; ``/v1/profiles`` does not carry calendars.
    calendars: tuple[Calendar, ...] = ()


@dataclass(frozen=True, slots=True)
class ConferencingProfile:
    profile_id: str
    provider_name: str
    profile_name: str | None
    connected: bool


@dataclass(frozen=True, slots=True)
class UserInfo:
    sub: str
    kind: Literal["account", "service_account"]
    email: str | None = None
    name: str | None = None
    zoneinfo: str | None = None
    scope: str | None = None
    status: str | None = None
    profiles: tuple[Profile, ...] = ()
    conferencing_profiles: tuple[ConferencingProfile, ...] = ()
    # service accounts only
    domain: str | None = None
    provider_name: str | None = None
    delegated_scope: str | None = None


# --- free/busy and availability ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One event of a calendar as its owner reads it: times, title and whether it makes them
    busy. Read on demand for the owner's own eyes only; never stored, never logged."""

    start: TimeValue
    end: TimeValue
    summary: str | None
    #: False for an event marked transparent (free) or cancelled.
    busy: bool

    def __repr__(self) -> str:  # a title is calendar content: never in a log line or trace
        return f"EventSummary(start={self.start!r}, end={self.end!r}, busy={self.busy})"


@dataclass(frozen=True, slots=True)
class BusyPeriod:
    calendar_id: str
    start: TimeValue
    end: TimeValue
    #: ``busy``, ``tentative``, ``free`` or ``unavailable``.
    status: str

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, dt.datetime)


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True, slots=True)
class Member:
    sub: str
    calendar_ids: tuple[str, ...] = ()
    available_periods: tuple[Period, ...] = ()
    managed_availability: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    members: tuple[Member, ...]
    #: ``"all"`` or at least N members of the group.
    required: Literal["all"] | int = "all"


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    groups: tuple[Group, ...]
    duration: dt.timedelta
    periods: tuple[Period, ...] = ()
    #: Check these exact start times instead of searching ``periods``.
    query_slots: tuple[dt.datetime, ...] = ()
    buffer_before: dt.timedelta | None = None
    buffer_after: dt.timedelta | None = None
    start_interval: dt.timedelta | None = None
    response_format: Literal["periods", "slots", "overlapping_slots"] = "slots"
    max_results: int | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    start: dt.datetime
    end: dt.datetime
    #: subs of the members free in this slot.
    participants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SequenceStep:
    """One step of a sequenced availability query (§6.2), e.g. one session of a loop.

    The gap fields bound the time between the neighbouring steps: ``gap_before_*`` between the
    previous step's end and this start, ``gap_after_*`` between this end and the next start (the
    aggregator's ``buffer.before/after.minimum/maximum``). Minimums are also free time the step's
    participants need, like availability buffers."""

    sequence_id: str
    groups: tuple[Group, ...]
    duration: dt.timedelta
    start_interval: dt.timedelta | None = None
    gap_before_min: dt.timedelta | None = None
    gap_before_max: dt.timedelta | None = None
    gap_after_min: dt.timedelta | None = None
    gap_after_max: dt.timedelta | None = None
    #: Narrows the query's periods for this step only.
    available_periods: tuple[Period, ...] = ()


@dataclass(frozen=True, slots=True)
class SequencedAvailabilityQuery:
    #: In order: the first step is ``ordinal`` 1.
    steps: tuple[SequenceStep, ...]
    periods: tuple[Period, ...]


@dataclass(frozen=True, slots=True)
class SequenceOption:
    """One way to hold every step: a slot per step, in the query's step order."""

    slots: tuple[tuple[str, Slot], ...]

    @property
    def start(self) -> dt.datetime:
        return self.slots[0][1].start

    @property
    def end(self) -> dt.datetime:
        return self.slots[-1][1].end

    def slot(self, sequence_id: str) -> Slot:
        return next(slot for sid, slot in self.slots if sid == sequence_id)


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    display_name: str | None = None
    #: ``needs_action``, ``accepted``, ``declined``, ``tentative`` or ``unknown`` (reads only).
    status: str | None = None


@dataclass(frozen=True, slots=True)
class EventWrite:
    """A managed event to create or update; ``event_id`` is ours and fixed before the first try."""

    event_id: str
    summary: str
    start: TimeValue
    end: TimeValue
    description: str | None = None
    tzid: str = "Etc/UTC"
    attendees: tuple[Attendee, ...] = ()
    remove_attendees: tuple[str, ...] = ()
    location: str | None = None
    #: ``"default"``, ``"integrated"``, a conferencing ``pro_…`` id, ``"explicit"`` (with the
    #: two fields below), or None to leave as is.
    conferencing_profile_id: str | None = None
    #: Explicit conferencing only: the tool's name (e.g. "Webex") and its https join URL.
    conferencing_description: str | None = None
    conferencing_join_url: str | None = None
    #: Webhook for conferencing_assigned / conferencing_failing callbacks.
    subscription_url: str | None = None
    url: str | None = None
    reminders_minutes: tuple[int, ...] = ()
    #: Apply ``reminders_minutes`` only when the event is created: an update leaves the event's
    #: reminders (which reads do not report) as they are.
    reminders_create_only: bool = False
    transparency: Literal["opaque", "transparent"] | None = None
    event_private: bool | None = None


@dataclass(frozen=True, slots=True)
class ManagedEvent:
    """An event the app created, as the aggregator reports it (read on demand, never stored)."""

    event_id: str | None
    event_uid: str
    calendar_id: str
    start: TimeValue
    end: TimeValue
    status: str | None
    deleted: bool
    summary: str | None = None
    attendees: tuple[Attendee, ...] = ()
    participation_status: str | None = None
    join_url: str | None = None
    conferencing_provider: str | None = None
    location: str | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    #: The notes, as the calendar holds them now (read to write the event back whole).
    description: str | None = None
    #: The zone the event's start is shown in (only when read with ``localized``).
    tzid: str | None = None
    transparency: str | None = None
    event_private: bool | None = None


# --- push notifications -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str
    callback_url: str
    calendar_ids: tuple[str, ...] = ()
    only_managed: bool = False


# --- Enterprise Connect -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccountAuthorizationRequest:
    email: str
    callback_url: str
    scope: str
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    email: str
    name: str | None = None


# --- Smart Invites ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmartInviteWrite:
    smart_invite_id: str
    recipient_email: str
    summary: str
    start: TimeValue
    end: TimeValue
    tzid: str = "Etc/UTC"
    description: str | None = None
    location: str | None = None
    #: Where the aggregator reports the recipient's answers (signed like push notifications).
    callback_url: str | None = None
    organizer_name: str | None = None
    #: A custom organizer address; mail to it must be forwarded to the aggregator's organizer
    #: address for its data center, or replies are not processed.
    organizer_email: str | None = None


@dataclass(frozen=True, slots=True)
class SmartInviteReply:
    email: str
    status: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class SmartInvite:
    smart_invite_id: str
    recipient_email: str | None
    #: ``pending``, ``accepted``, ``tentative``, ``declined``.
    recipient_status: str | None
    callback_url: str | None = None
    #: The iCalendar text the app emails itself.
    icalendar: str | None = None
    replies: tuple[SmartInviteReply, ...] = ()
    #: The event's times as the aggregator answers them (``{time, tzid}`` objects on the wire).
    start: TimeValue | None = None
    end: TimeValue | None = None


# --- batch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchUpsert:
    calendar_id: str
    event: EventWrite


@dataclass(frozen=True, slots=True)
class BatchDelete:
    calendar_id: str
    event_id: str


BatchOperation = BatchUpsert | BatchDelete


@dataclass(frozen=True, slots=True)
class BatchEntryResult:
    operation: BatchUpsert | BatchDelete
    status: int
    #: ``{param: (error key, …)}`` for a rejected entry; descriptions are dropped.
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class BatchResult:
    entries: tuple[BatchEntryResult, ...]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    @property
    def failures(self) -> tuple[BatchEntryResult, ...]:
        return tuple(e for e in self.entries if not e.ok)
