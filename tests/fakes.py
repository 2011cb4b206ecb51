"""An in-memory CalendarBroker (broker/port.py) for unit tests of branch-heavy service logic.

The end-to-end tests run the real broker against the sandbox aggregator over HTTP; that proves
the wire and the flows. Some services branch on many aggregator answers (reconciliation, Enterprise
Connect's batch sending): arranging each answer through the sandbox is slow and some (a refusal
of one batch, a 429 on the third) are awkward. ``FakeBroker`` holds managed events per account in
memory, records every call, and raises the broker error a test queued for a method
(``fail("delete_event", Unavailable(...))``). What a test did not arrange is refused loudly
(``NotFaked``), never answered with made-up success.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Sequence

from broker import errors
from broker.port import OnRefresh
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

UTC = dt.UTC


class NotFaked(AssertionError):
    """The code under test asked for something the fake does not model: use the sandbox."""


def credentials(sub: str, *, hours: float = 1) -> Credentials:
    """Fresh credentials of account (``acc_…``) or service account (``ser_…``) ``sub``."""
    return Credentials(
        access_token="access-" + secrets.token_hex(8),
        refresh_token="refresh-" + secrets.token_hex(8),
        expires_at=dt.datetime.now(UTC) + dt.timedelta(hours=hours),
        scope="",
        sub=sub,
        account_id=None if sub.startswith("ser_") else sub,
        service_account_id=sub if sub.startswith("ser_") else None,
    )


class FakeBroker:
    """Managed events by account ``sub``; Enterprise Connect batches as they were sent."""

    MAX_BATCH = 50

    def __init__(self) -> None:
        #: sub → event_id → the event as the aggregator holds it (``deleted`` once deleted).
        self.events: dict[str, dict[str, ManagedEvent]] = defaultdict(dict)
        #: (method, sub or None) of every call, in order.
        self.calls: list[tuple[str, str | None]] = []
        #: Each ``authorize_service_account_users`` request that was accepted.
        self.batches: list[tuple[ServiceAccountAuthorizationRequest, ...]] = []
        self._failures: dict[str, list[Exception | None]] = defaultdict(list)

    # -- arranging and checking -----------------------------------------------------------------

    def fail(self, method: str, *failures: Exception | None) -> None:
        """The next calls of port method ``method`` raise these errors, one per call (None:
        that call is answered normally)."""
        if not callable(getattr(self, method, None)):
            raise ValueError(f"no port method {method}")
        self._failures[method].extend(failures)

    def put_event(
        self, sub: str, calendar_id: str, event_id: str | None, *, deleted: bool = False
    ) -> ManagedEvent:
        """An event already in ``sub``'s calendar (ours by ``event_id``, or someone else's)."""
        start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=2)
        event = ManagedEvent(
            event_id=event_id,
            event_uid="evt_" + secrets.token_hex(6),
            calendar_id=calendar_id,
            start=start,
            end=start + dt.timedelta(hours=1),
            status="confirmed",
            deleted=deleted,
        )
        self.events[sub][event_id or event.event_uid] = event
        return event

    def live_event_ids(self, sub: str) -> set[str]:
        return {k for k, e in self.events[sub].items() if not e.deleted and e.event_id}

    def called(self, method: str) -> int:
        return sum(1 for name, _sub in self.calls if name == method)

    def _enter(self, method: str, creds: Credentials | None = None) -> None:
        self.calls.append((method, creds.sub if creds else None))
        if self._failures[method]:
            failure = self._failures[method].pop(0)
            if failure is not None:
                raise failure

    @staticmethod
    def _not_faked(method: str) -> NotFaked:
        return NotFaked(f"FakeBroker.{method} is not faked: test this against the sandbox")

    # -- the port: what is modelled -------------------------------------------------------------

    def ping(self) -> bool:
        """True, or False once per failure queued for it (a probe never raises)."""
        self.calls.append(("ping", None))
        if self._failures["ping"]:
            self._failures["ping"].pop(0)
            return False
        return True

    def refresh(self, creds: Credentials) -> Credentials:
        self._enter("refresh", creds)
        return dataclasses.replace(
            creds,
            access_token="access-" + secrets.token_hex(8),
            expires_at=dt.datetime.now(UTC) + dt.timedelta(hours=1),
        )

    def revoke(self, token: str) -> None:
        self._enter("revoke")

    def revoke_sub(self, sub: str) -> None:
        self._enter("revoke_sub")

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
        self._enter("managed_events", creds)
        if start is not None or end is not None or last_modified is not None:
            raise self._not_faked("managed_events with a window")
        return tuple(
            e
            for e in self.events[creds.sub or ""].values()
            if (include_deleted or not e.deleted)
            and (not calendar_ids or e.calendar_id in calendar_ids)
        )

    def upsert_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event: EventWrite,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self._enter("upsert_event", creds)
        start, end = event.start, event.end
        self.events[creds.sub or ""][event.event_id] = ManagedEvent(
            event_id=event.event_id,
            event_uid="evt_" + secrets.token_hex(6),
            calendar_id=calendar_id,
            start=start,
            end=end,
            status="confirmed",
            deleted=False,
            summary=event.summary,
        )

    def delete_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event_id: str,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self._enter("delete_event", creds)
        held = self.events[creds.sub or ""].get(event_id)
        if held is not None and held.calendar_id == calendar_id:
            self.events[creds.sub or ""][event_id] = dataclasses.replace(held, deleted=True)

    def authorize_service_account_user(
        self,
        sa_creds: Credentials,
        request: ServiceAccountAuthorizationRequest,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self.authorize_service_account_users(sa_creds, [request], on_refresh=on_refresh)

    def authorize_service_account_users(
        self,
        sa_creds: Credentials,
        requests_: Sequence[ServiceAccountAuthorizationRequest],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self._enter("authorize_service_account_users", sa_creds)
        if not sa_creds.is_service_account:
            raise errors.Forbidden("only a service account may request mailboxes")
        if not 1 <= len(requests_) <= self.MAX_BATCH:
            raise errors.Invalid(f"{len(requests_)} requests in one batch (1 to 50 allowed)")
        self.batches.append(tuple(requests_))

    # -- the port: not modelled (the sandbox tests cover them) ----------------------------------

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
        raise self._not_faked("authorization_url")

    def enterprise_connect_url(
        self,
        redirect_uri: str,
        state: str,
        *,
        scope: Sequence[str] = DEFAULT_SERVICE_ACCOUNT_SCOPE,
        delegated_scope: Sequence[str] = DEFAULT_USER_SCOPE,
    ) -> str:
        raise self._not_faked("enterprise_connect_url")

    def exchange_code(self, code: str, redirect_uri: str) -> Credentials:
        raise self._not_faked("exchange_code")

    def revoke_profile(
        self, creds: Credentials, profile_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        raise self._not_faked("revoke_profile")

    def userinfo(self, creds: Credentials, *, on_refresh: OnRefresh | None = None) -> UserInfo:
        raise self._not_faked("userinfo")

    def profiles(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Profile, ...]:
        raise self._not_faked("profiles")

    def calendars(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Calendar, ...]:
        raise self._not_faked("calendars")

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
        raise self._not_faked("free_busy")

    def event_summaries(
        self,
        creds: Credentials,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        calendar_ids: Sequence[str] = (),
        tzid: str = "Etc/UTC",
        on_refresh: OnRefresh | None = None,
    ) -> tuple:
        raise self._not_faked("event_summaries")

    def availability(
        self,
        query: AvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[Slot, ...]:
        raise self._not_faked("availability")

    def sequenced_availability(
        self,
        query: SequencedAvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[SequenceOption, ...]:
        raise self._not_faked("sequenced_availability")

    def create_channel(
        self,
        creds: Credentials,
        callback_url: str,
        *,
        calendar_ids: Sequence[str] = (),
        only_managed: bool = False,
        on_refresh: OnRefresh | None = None,
    ) -> Channel:
        raise self._not_faked("create_channel")

    def channels(
        self, creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Channel, ...]:
        raise self._not_faked("channels")

    def close_channel(
        self, creds: Credentials, channel_id: str, *, on_refresh: OnRefresh | None = None
    ) -> None:
        raise self._not_faked("close_channel")

    def resources(
        self, sa_creds: Credentials, *, on_refresh: OnRefresh | None = None
    ) -> tuple[Resource, ...]:
        raise self._not_faked("resources")

    def conferencing_authorization_url(
        self,
        creds: Credentials,
        redirect_uri: str,
        *,
        provider_name: str | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> str:
        raise self._not_faked("conferencing_authorization_url")

    def upsert_smart_invite(self, invite: SmartInviteWrite) -> SmartInvite:
        raise self._not_faked("upsert_smart_invite")

    def smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        raise self._not_faked("smart_invite")

    def cancel_smart_invite(self, smart_invite_id: str, recipient_email: str) -> SmartInvite:
        raise self._not_faked("cancel_smart_invite")

    def batch(
        self,
        creds: Credentials,
        operations: Sequence[BatchOperation],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> BatchResult:
        raise self._not_faked("batch")
