"""Reading interviews back: their events as the aggregator holds them now, one call per
calendar link."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import ManagedEvent
from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    ProfileLink,
    Role,
    User,
    utcnow,
)
from webapp.security import TokenCipher
from webapp.services import Actor
from webapp.services.credentials import call_broker
from webapp.services.errors import ServiceError
from webapp.services.scheduling.access import (
    changeable,
    interview_for,
    links_by_id,
    may_change,
    visible,
)


def read_events(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    events: Sequence[CreatedEvent],
    links: dict[int, ProfileLink],
    *,
    include_deleted: bool = True,
    localized: bool = False,
) -> tuple[dict[str, ManagedEvent], dict[int, str]]:
    """Our managed events, read from the aggregator: one call per calendar link."""
    by_link: dict[int, list[CreatedEvent]] = defaultdict(list)
    for ev in events:
        by_link[ev.profile_link_id].append(ev)
    found: dict[str, ManagedEvent] = {}
    problems: dict[int, str] = {}
    for link_id, evs in by_link.items():
        link = links[link_id]
        calendars = tuple(sorted({e.calendar_id for e in evs}))
        try:
            got = call_broker(
                session,
                broker,
                cipher,
                link,
                partial(
                    broker.managed_events,
                    calendar_ids=calendars,
                    include_deleted=include_deleted,
                    localized=localized,
                ),
            )
        except ServiceError as exc:
            problems[link_id] = exc.message
            continue
        wanted = {e.event_id for e in evs}
        for item in got:
            if item.event_id in wanted:
                found[item.event_id] = item
    return found, problems


@dataclass
class InterviewView:
    interview: Interview
    event: ManagedEvent | None
    problem: str | None = None
    panel: list[User] = field(default_factory=list)
    on_behalf_of: User | None = None
    #: False for a panel member who sees the interview but did not schedule or host it.
    can_change: bool = True

    @property
    def start(self):
        return self.event.start if self.event and not self.event.deleted else None

    @property
    def started(self) -> bool:
        """Whether its time has come (as its event says): it can no longer be moved or
        cancelled, so its page offers neither."""
        return has_started(self.event)


#: Why a move or cancellation of an interview whose time has come is refused.
TAKEN_PLACE = "This interview has already taken place."


def has_started(event: ManagedEvent | None, now: dt.datetime | None = None) -> bool:
    """Whether ``event`` (the interview's, as the calendar holds it) has begun by ``now``
    (default: the current time). An event that cannot be read or is gone says nothing."""
    if event is None or event.deleted or not isinstance(event.start, dt.datetime):
        return False
    return event.start <= (now or utcnow())


def view_interview(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, actor: Actor, uid: str
) -> InterviewView:
    """The interview with what its calendar event says now (time, attendees' responses, join
    link)."""
    interview = interview_for(session, actor, uid, to_change=False)
    links = links_by_id(session, interview.panel_link_ids)
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(
                User.id.in_(
                    {link.user_id for link in links.values()} | {interview.on_behalf_of_id or -1}
                )
            )
        )
    }
    panel = [
        users[links[i].user_id]
        for i in interview.panel_link_ids
        if i in links and links[i].user_id in users
    ]
    view = InterviewView(
        interview,
        None,
        panel=panel,
        on_behalf_of=users.get(interview.on_behalf_of_id) if interview.on_behalf_of_id else None,
        can_change=may_change(session, actor, interview),
    )
    if interview.needs_notice and actor.user_id in (
        interview.created_by_id,
        interview.on_behalf_of_id,
    ):
        interview.needs_notice = False
        session.commit()
    host_event = interview.events[0] if interview.events else None
    if (
        broker is None
        or host_event is None
        or host_event.status is EventStatus.DELETED
        and interview.status is not InterviewStatus.CANCELLED_IN_CALENDAR
    ):
        return view
    found, problems = read_events(
        session, broker, cipher, [host_event], {interview.host_link_id: interview.host_link}
    )
    view.event = found.get(host_event.event_id)
    if problems:
        view.problem = next(iter(problems.values()))
    return view


#: Statuses that change by themselves once the aggregator answers a write or a delete.
SETTLING = (InterviewStatus.PENDING, InterviewStatus.CANCELLING)
#: How long after its last change a settling interview's page keeps refreshing itself without
#: JavaScript (after that the page offers a Refresh link only).
AUTO_REFRESH_FOR = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Progress:
    """Where an interview's calendar write stands: its status only, no calendar content."""

    status: InterviewStatus
    updated_at: dt.datetime

    @property
    def settling(self) -> bool:
        return self.status in SETTLING

    def refreshing(self, now: dt.datetime) -> bool:
        """Whether a page without JavaScript should still reload itself to follow the write."""
        return self.settling and now - self.updated_at < AUTO_REFRESH_FOR


def progress_of(session: Session, actor: Actor, uid: str) -> Progress:
    """The interview's status, for whoever may see the interview (its page polls this; no
    aggregator call, so polling costs the calendar nothing)."""
    interview = interview_for(session, actor, uid, to_change=False)
    return Progress(interview.status, interview.updated_at)


@dataclass
class ListedInterview:
    interview: Interview
    event: ManagedEvent | None

    @property
    def start(self) -> dt.datetime | None:
        if (
            self.event is None
            or self.event.deleted
            or not isinstance(self.event.start, dt.datetime)
        ):
            return None
        return self.event.start

    @property
    def planned_start(self) -> dt.datetime | None:
        """When it was (or is) to take place, from its event even once deleted."""
        if self.event is None or not isinstance(self.event.start, dt.datetime):
            return None
        return self.event.start


@dataclass
class InterviewList:
    upcoming: list[ListedInterview]
    past: list[ListedInterview]
    #: Cancelled (here or in a calendar) or never written: neither upcoming nor past.
    cancelled: list[ListedInterview]
    problems: list[str]

    @property
    def all(self) -> list[ListedInterview]:
        return self.upcoming + self.past + self.cancelled


def list_interviews(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, actor: Actor
) -> InterviewList:
    """The actor's interviews — scheduled or hosted by them, or with them on the panel — with
    times read from the aggregator (one call per calendar link, a constant number of database
    queries)."""
    interviews = list(
        session.scalars(
            select(Interview)
            .where(visible(session, actor))
            .order_by(Interview.created_at.desc())
            .limit(200)
        )
    )
    host_events = [i.events[0] for i in interviews if i.events]
    links = {i.host_link_id: i.host_link for i in interviews}
    found: dict[str, ManagedEvent] = {}
    problems: dict[int, str] = {}
    if broker is not None and host_events:
        found, problems = read_events(session, broker, cipher, host_events, links)
    now = utcnow()
    listed = [
        ListedInterview(i, found.get(i.events[0].event_id) if i.events else None)
        for i in interviews
    ]
    live = [x for x in listed if x.interview.status.live]

    def is_upcoming(x: ListedInterview) -> bool:
        return x.start is None or x.start >= now  # not in a calendar yet: still to come

    upcoming = sorted(
        (x for x in live if is_upcoming(x)), key=lambda x: (x.start is None, x.start or now)
    )
    past = sorted(
        (x for x in live if not is_upcoming(x)),
        key=lambda x: (x.start is not None, x.start or now),
        reverse=True,
    )
    cancelled = sorted(
        (x for x in listed if not x.interview.status.live),
        key=lambda x: (x.planned_start is not None, x.planned_start or now),
        reverse=True,
    )
    return InterviewList(upcoming, past, cancelled, sorted(set(problems.values())))


def notices_for(session: Session, actor: Actor) -> int:
    """How many interviews changed in a calendar since the scheduler last looked."""
    if actor.role not in (Role.RECRUITER, Role.COORDINATOR):
        return 0
    return (
        session.scalar(
            select(func.count(Interview.id)).where(
                changeable(session, actor), Interview.needs_notice.is_(True)
            )
        )
        or 0
    )
