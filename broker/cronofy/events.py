"""Calendar reads and writes of CronofyBroker: free/busy, availability, managed events, batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pycronofy
from pycronofy.batch import BatchBuilder
from pycronofy.exceptions import PyCronofyPartialSuccessError

from broker.cronofy import decode, encode
from broker.cronofy.requestor import Requestor
from broker.port import OnRefresh
from broker.types import (
    AvailabilityQuery,
    BatchOperation,
    BatchResult,
    BusyPeriod,
    Credentials,
    EventSummary,
    EventWrite,
    ManagedEvent,
    SequencedAvailabilityQuery,
    SequenceOption,
    Slot,
)


class EventCalls:
    """Part of CronofyBroker (see ``broker.cronofy.broker``); calls through its ``_api``."""

    _api: Requestor

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
        """Busy blocks of the days from ``start`` up to ``end`` (exclusive) in ``tzid``, across
        all pages. Give dates; instants are widened to the local days that hold them."""
        from_, to = encode.query_days(start, end, tzid)

        def call(c: pycronofy.Client) -> tuple[BusyPeriod, ...]:
            pages = c.read_free_busy(
                calendar_ids=tuple(calendar_ids),
                from_date=from_,
                to_date=to,
                tzid=tzid,
                include_managed=include_managed,
            )
            return tuple(decode.busy_period(b) for b in pages.all())

        return self._api.user_call("free_busy", creds, on_refresh, call, idempotent=True)

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
        """Every event of the days (ours included, deleted ones not) with its title, across all
        pages: for the calendar's owner only (read on demand, never stored)."""
        from_, to = encode.query_days(start, end, tzid)

        def call(c: pycronofy.Client) -> tuple[EventSummary, ...]:
            pages = c.read_events(
                calendar_ids=tuple(calendar_ids),
                from_date=from_,
                to_date=to,
                tzid=tzid,
                only_managed=False,
                include_managed=True,
                include_deleted=False,
            )
            return tuple(decode.event_summary(e) for e in pages.all() if not e.get("deleted"))

        return self._api.user_call("event_summaries", creds, on_refresh, call, idempotent=True)

    def availability(
        self,
        query: AvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[Slot, ...]:
        """Common free time of several members. Without ``creds`` the app's API key is used
        (the documented way for multi-account queries); with ``creds`` the user's token."""
        body = encode.availability_body(query)

        def call(c: pycronofy.Client) -> tuple[Slot, ...]:
            data = c.request_handler.post(endpoint="availability", data=body).json()
            return decode.slots(data, query.response_format)

        if creds is None:
            return self._api.app_call("availability", call)
        return self._api.user_call("availability", creds, on_refresh, call, idempotent=True)

    def sequenced_availability(
        self,
        query: SequencedAvailabilityQuery,
        *,
        creds: Credentials | None = None,
        on_refresh: OnRefresh | None = None,
    ) -> tuple[SequenceOption, ...]:
        """Ways to hold every step of a sequence in order, in one call (§6.2). Sent through
        the request handler because pycronofy's ``sequenced_availability`` can only send the
        older ``available_periods`` name and mutates the steps it is given."""
        body = encode.sequenced_availability_body(query)

        def call(c: pycronofy.Client) -> tuple[SequenceOption, ...]:
            data = c.request_handler.post(endpoint="sequenced_availability", data=body).json()
            return decode.sequences(data, query)

        if creds is None:
            return self._api.app_call("sequenced_availability", call)
        return self._api.user_call(
            "sequenced_availability", creds, on_refresh, call, idempotent=True
        )

    # -- managed events ------------------------------------------------------------------------

    def upsert_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event: EventWrite,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        """Create or update our event ``event.event_id`` (idempotent: safe to retry)."""
        body = encode.event_body(event)
        self._api.user_call(
            "upsert_event",
            creds,
            on_refresh,
            lambda c: c.upsert_event(calendar_id, dict(body)),
            idempotent=True,
        )

    def delete_event(
        self,
        creds: Credentials,
        calendar_id: str,
        event_id: str,
        *,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self._api.user_call(
            "delete_event",
            creds,
            on_refresh,
            lambda c: c.delete_event(calendar_id, event_id),
            idempotent=True,
        )

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
        """The app's own events (``only_managed``), across all pages; read on demand, not stored.

        ``start``/``end`` bound the days in ``tzid`` (``end`` exclusive), as for free/busy.
        ``localized`` asks for ``localized_times``, so each event says its own zone (``tzid``)."""
        from_, to = encode.query_days(start, end, tzid)
        since = (
            encode.fmt_time(last_modified, "last_modified") if last_modified is not None else None
        )

        def call(c: pycronofy.Client) -> tuple[ManagedEvent, ...]:
            pages = c.read_events(
                calendar_ids=tuple(calendar_ids),
                from_date=from_,
                to_date=to,
                last_modified=since,
                tzid=tzid,
                only_managed=True,
                include_managed=True,
                include_deleted=include_deleted,
                localized_times=localized,
            )
            return tuple(decode.managed_event(e) for e in pages.all())

        return self._api.user_call("managed_events", creds, on_refresh, call, idempotent=True)

    # -- batch ---------------------------------------------------------------------------------

    def batch(
        self,
        creds: Credentials,
        operations: Sequence[BatchOperation],
        *,
        on_refresh: OnRefresh | None = None,
    ) -> BatchResult:
        """Up to 50 upserts/deletes in one request; per-entry outcome, never a partial raise."""
        ops = tuple(operations)
        bodies = encode.batch_entries(ops)

        def call(c: pycronofy.Client) -> BatchResult:
            builder = BatchBuilder()
            for kind, calendar_id, body in bodies:
                if kind == "upsert":
                    builder.upsert_event(calendar_id, dict(body))
                else:
                    builder.delete_event(calendar_id, body["event_id"])
            response = None
            try:
                response = c.batch(builder)
            except PyCronofyPartialSuccessError as partial:
                # pycronofy counts 200/201/204 as errors (status % 100 == 2); judge ourselves.
                response = partial.batch_response
            return decode.batch_result(ops, response.entries, (c.auth.access_token or "",))

        # Upserts with fixed event_ids and deletes are idempotent, so the batch is too.
        return self._api.user_call("batch", creds, on_refresh, call, idempotent=True)
