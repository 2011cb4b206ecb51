"""Each panel member's busy blocks: one free/busy read per member, concurrently, on one
long-lived pool per process (shared with the availability call).

Free/busy only (start, end and status) for everyone; the viewer's own calendar, and only it,
also has its events' titles read (``owner_id``), to label the viewer's own blocks. Titles are
calendar content: read on demand for the owner's eyes, never stored, never logged, never put on
anyone else's lane. Nothing read here is stored.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.sent import when_sent
from broker.types import Credentials, EventSummary
from models import ProfileLink
from webapp.security import TokenCipher
from webapp.services.availability.model import POOL_THREADS, UTC, Block, PanelMember
from webapp.services.credentials import (
    broker_problem,
    store_credentials,
    token_link,
    usable_credentials,
)
from webapp.services.errors import ServiceError

_POOL: ThreadPoolExecutor | None = None


_POOL_PID: int | None = None


_POOL_LOCK = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """One long-lived pool per process for the concurrent aggregator reads: no thread is started
    on a page's critical path (made lazily, so a forked worker makes its own)."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        with _POOL_LOCK:
            if _POOL is None or _POOL_PID != os.getpid():
                _POOL = ThreadPoolExecutor(
                    max_workers=POOL_THREADS, thread_name_prefix="availability"
                )
                _POOL_PID = os.getpid()
    return _POOL


P = ParamSpec("P")
T = TypeVar("T")

#: How long a page waits for its call's request to leave before it goes on with its own work
#: anyway (a call held back by the rate limiter): seconds.
SEND_WAIT = 0.05


def send_first(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Run ``fn`` (which makes an aggregator call) on the pool and return once its request is
    on the wire, it has finished, or ``SEND_WAIT`` has passed, whichever comes first. The
    caller's own work then overlaps the aggregator's answer without holding the request back:
    a pool thread that blocked (the shared rate limiter's Redis round trip, the socket's send)
    would otherwise get the interpreter back only when the caller waits on I/O or the 5 ms
    switch interval runs out (``broker.sent``)."""
    left = threading.Event()

    def run() -> T:
        try:
            with when_sent(left.set):
                return fn(*args, **kwargs)
        finally:
            left.set()

    future = pool().submit(run)
    left.wait(SEND_WAIT)
    return future


class PendingBusy:
    """Free/busy reads of each member, in flight. Times and status only, except on the lane of
    the member whose calendar is ``owner_id``'s own: their blocks carry their events' titles."""

    def __init__(
        self,
        session: Session,
        broker: CalendarBroker,
        cipher: TokenCipher,
        members: Sequence[PanelMember],
        days: Sequence[dt.date],
        tzid: str,
        *,
        owner_id: int | None = None,
    ):
        self.session, self.cipher, self.members = session, cipher, members
        self.problems: dict[int, str] = {}
        #: Refreshed credentials by the id of the link holding the tokens.
        self.refreshed: dict[int, Credentials] = {}
        self._lock = threading.Lock()
        creds: dict[int, Credentials] = {}
        #: Member link id → the link whose tokens read it (a delegated calendar: its owner's).
        self._holders: dict[int, ProfileLink] = {}
        for m in members:  # token handling touches the database: do it here, in this thread
            try:
                creds[m.link.id], _ = usable_credentials(session, broker, cipher, m.link)
                self._holders[m.link.id] = token_link(session, m.link)
            except ServiceError as exc:
                self.problems[m.link.id] = exc.message
        # Members read with one token set (an owner and the colleagues delegated to them) read
        # one after another, each with the latest tokens: a refresh mid-call is never raced.
        current = {self._holders[i].id: c for i, c in creds.items()}
        turns = {holder: threading.Lock() for holder in current}
        # The aggregator reads dates in the query's zone: from the first day shown to the day
        # after the last one, so the last local day's evening is never cut off.
        first, after = days[0], days[-1] + dt.timedelta(days=1)

        def with_tokens(member: PanelMember, call):
            holder = self._holders[member.link.id].id

            def keep(new: Credentials) -> None:
                with self._lock:
                    self.refreshed[holder] = current[holder] = new

            with turns[holder]:
                return call(
                    current[holder],
                    start=first,
                    end=after,
                    tzid=tzid,
                    calendar_ids=tuple(member.link.conflict_calendar_ids or ()),
                    on_refresh=keep,
                )

        self.futures = {
            m.link.id: pool().submit(with_tokens, m, broker.free_busy)
            for m in members
            if m.link.id in creds
        }
        #: The owner's own lane: (link id, their events' titles in flight).
        self.own: tuple[int, Future] | None = None
        if owner_id is not None:
            mine = [m for m in members if m.user.id == owner_id and m.link.id in creds]
            if mine:
                read = pool().submit(with_tokens, mine[0], broker.event_summaries)
                self.own = (mine[0].link.id, read)

    def result(self) -> tuple[dict[int, list[Block]], dict[int, str]]:
        busy: dict[int, list[Block]] = {}
        for link_id, future in self.futures.items():
            try:
                periods = future.result()
            except broker_errors.BrokerError as exc:
                self.problems[link_id] = broker_problem(exc).message
                continue
            busy[link_id] = sorted(
                (Block(as_utc(p.start), as_utc(p.end), p.status) for p in periods),
                key=lambda b: (b.start, b.end),
            )
        if self.own is not None:
            link_id, future = self.own
            try:
                events = future.result()
            except broker_errors.BrokerError:
                events = ()  # the titles are a courtesy: the busy blocks stand without them
            if link_id in busy:
                busy[link_id] = titled(busy[link_id], events)
        if self.refreshed:  # back in the request's thread: store refreshed tokens
            holders = {h.id: h for h in self._holders.values()}
            for holder_id, new in self.refreshed.items():
                store_credentials(holders[holder_id], new, self.cipher)
            self.session.commit()
        return busy, self.problems


def titled(blocks: Sequence[Block], events: Sequence[EventSummary]) -> list[Block]:
    """The owner's busy blocks, each with the titles of the busy events it overlaps (in the
    order they start; an untitled event adds nothing)."""
    spans = sorted(
        (as_utc(e.start), as_utc(e.end), e.summary.strip()) for e in events if e.busy and e.summary
    )
    out = []
    for b in blocks:
        names = tuple(dict.fromkeys(name for s, e, name in spans if s < b.end and e > b.start))
        out.append(Block(b.start, b.end, b.status, names) if names else b)
    return out


def as_utc(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC)
    return dt.datetime.combine(value, dt.time(0), UTC)
