"""The CalendarBroker port: everything services may ask of the calendar aggregator.

Services depend on this protocol, never on pycronofy or HTTP. Implementations return the frozen
values of ``broker.types`` and raise only ``broker.errors``. The broker never touches the
database: whenever it had to refresh a token it hands the new Credentials to ``on_refresh`` and
the service stores them (the refresh token may have rotated — always persist it).

Per-user operations take ``creds`` (the link's Credentials) and keyword ``on_refresh``. An
expired access token is refreshed once and the call retried; if that fails the caller gets
``NeedsReauth`` (or ``ProfileDisconnected``) naming the link in ``link_hint``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from broker.types import (
    DEFAULT_SERVICE_ACCOUNT_SCOPE,
    DEFAULT_USER_SCOPE,
    AvailabilityQuery,
    BatchOperation,
    BatchResult,
    BusyPeriod,
    Calendar,
    Channel,
    Credentials,
    EventSummary,
    EventWrite,
    ManagedEvent,
    Profile,
    Resource,
    SequencedAvailabilityQuery,
    SequenceOption,
    ServiceAccountAuthorizationRequest,
    Slot,
    SmartInvite,
    SmartInviteWrite,
    UserInfo,
)

OnRefresh = Callable[[Credentials], None]


@runtime_checkable
class CalendarBroker(Protocol):
    def ping(self) -> bool:
        """True if the aggregator answers at all (readiness probes; no credentials used, never
        raises). Cached briefly and within the rate limit, so probes cannot flood it."""
        ...

    # -- authorization -------------------------------------------------------------------------

    def authorization_url(
        self,
        redirect_uri: str,
        state: str,
        *,
        scope: Sequence[str] = DEFAULT_USER_SCOPE,
        provider_name: str | None = None,
        delegated_scope: Sequence[str] | None = None,
        link_token: str | None = None,
    ) -> str:
        """URL that lets a person link a calendar account (``avoid_linking=true``)."""
        ...

    def enterprise_connect_url(
        self,
        redirect_uri: str,
        state: str,
        *,
        scope: Sequence[str] = DEFAULT_SERVICE_ACCOUNT_SCOPE,
        delegated_scope: Sequence[str] = DEFAULT_USER_SCOPE,
    ) -> str:
        """URL that lets an IT admin authorize a service account for the domain."""
        ...

    def exchange_code(self, code: str, redirect_uri: str) -> Credentials:
        """Redeem a code; ``redirect_uri`` must equal the one used (the callback_url for
        Enterprise Connect users)."""
        ...

    def refresh(self, creds: Credentials) -> Credentials:
        """Refresh now; persist the result (the refresh token may rotate)."""
        ...

    def revoke(self, token: str) -> None:
        """Revoke a whole authorization by token (prefer the refresh token)."""
        ...

    def revoke_sub(self, sub: str) -> None:
        """Revoke a whole authorization by ``sub``."""
        ...

    def revoke_profile(
        self, creds: Credentials, profile_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        """Unlink one calendar profile."""
        ...

    # -- identity, profiles, calendars ---------------------------------------------------------

    def userinfo(self, creds: Credentials, *, on_refresh: OnRefresh | None = None) -> UserInfo:
        """Account or service-account identity, with profiles and calendars for accounts."""
        ...

    def profiles(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Profile, ...]:
        """Calendar profiles of the account (connected flag, relink URL)."""
        ...

    def calendars(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Calendar, ...]:
        """All calendars visible to the link, including delegated ones (see ``readonly``)."""
        ...

    # -- free/busy and availability ------------------------------------------------------------

    def free_busy(
        self,
        creds: Credentials,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        calendar_ids: Sequence[str] = (),
        tzid: str = "Etc/UTC",
        include_managed: bool = True,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[BusyPeriod, ...]:
        """Busy blocks of the days ``start`` to ``end`` (exclusive) in ``tzid`` (all pages).

        The aggregator takes dates here; an instant is widened to the local day holding it."""
        ...

    def event_summaries(
        self,
        creds: Credentials,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        calendar_ids: Sequence[str] = (),
        tzid: str = "Etc/UTC",
        on_refresh: OnRefresh | None = None,
    ) -> tuple[EventSummary, ...]:
        """Every event of the days ``start`` to ``end`` (exclusive) in ``tzid`` with its title,
        ours included, deleted ones left out (all pages; scope ``read_events``). For the
        calendar's owner's own eyes only: never stored, never shown to anyone else."""
        ...

    def availability(
        self,
        query: AvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[Slot, ...]:
        """Common availability of groups of members (app API key unless ``creds`` is given)."""
        ...

    def sequenced_availability(
        self,
        query: SequencedAvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[SequenceOption, ...]:
        """Ways to hold every step of a sequence (an interview loop) in order, one call; each
        option's slots in step order, earliest option first."""
        ...

    # -- managed events ------------------------------------------------------------------------

    def upsert_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event: EventWrite,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Create or update our event by its fixed ``event_id`` (safe to retry)."""
        ...

    def delete_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event_id: str,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Delete our event by ``event_id``."""
        ...

    def managed_events(
        self,
        creds: Credentials,
        *,
        calendar_ids: Sequence[str] = (),
        start: dt.datetime | dt.date | None = None,
        end: dt.datetime | dt.date | None = None,
        last_modified: dt.datetime | None = None,
        include_deleted: bool = False,
        tzid: str = "Etc/UTC",
        localized: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[ManagedEvent, ...]:
        """Our own events as the aggregator sees them now (read on demand, never stored);
        ``start``/``end`` are days in ``tzid`` as for ``free_busy``; ``localized`` reports each
        event's own zone."""
        ...

    # -- push notification channels ------------------------------------------------------------

    def create_channel(
        self,
        creds: Credentials,
        callback_url: str,
        *,
        calendar_ids: Sequence[str] = (),
        only_managed: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> Channel:
        """Open a push channel (≤ 128-char HTTPS callback URL)."""
        ...

    def channels(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Channel, ...]:
        """Open channels of the account."""
        ...

    def close_channel(
        self, creds: Credentials, channel_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        """Close a channel."""
        ...

    # -- Enterprise Connect --------------------------------------------------------------------

    def authorize_service_account_user(
        self,
        sa_creds: Credentials,
        request: ServiceAccountAuthorizationRequest,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Request access to one mailbox; the result arrives at its callback_url."""
        ...

    def authorize_service_account_users(
        self,
        sa_creds: Credentials,
        requests_: Sequence[ServiceAccountAuthorizationRequest],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Request access to 1–50 mailboxes at once."""
        ...

    def resources(
        self, sa_creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Resource, ...]:
        """Rooms and other resources of the service account's domain."""
        ...

    # -- conferencing, Smart Invites, batch ----------------------------------------------------

    def conferencing_authorization_url(
        self,
        creds: Credentials,
        redirect_uri: str,
        *,
        provider_name: str | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> str:
        """URL that lets a person connect a conferencing service (``zoom``, ``go_to`` or
        ``ms_teams``; anything else is refused before a request is sent)."""
        ...

    def upsert_smart_invite(self, invite: SmartInviteWrite) -> SmartInvite:
        """Create or update a Smart Invite (returns the ICS to email)."""
        ...

    def smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        """Current status of a Smart Invite for one recipient."""
        ...

    def cancel_smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        """Cancel a Smart Invite (returns the cancelling ICS)."""
        ...

    def batch(
        self,
        creds: Credentials,
        operations: Sequence[BatchOperation],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> BatchResult:
        """Up to 50 event upserts/deletes in one request, with a result per entry."""
        ...
