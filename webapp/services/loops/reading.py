"""A booked loop as its itinerary: each session's interview with its time read back from the
calendar (one aggregator read for the host's events), or, while its write is outstanding, the
time its slot claim holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import ManagedEvent
from models import Interview, InterviewLoop, LoopSession, LoopState, Pool, User
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, claims
from webapp.services.availability import model, roster
from webapp.services.errors import AggregatorTrouble, Invalid
from webapp.services.loops import shadows
from webapp.services.loops.compose import loop_for, open_details
from webapp.services.loops.plan import LoopDetails
from webapp.services.scheduling.access import links_by_id
from webapp.services.scheduling.reading import has_started, read_events


@dataclass(frozen=True)
class BookedSession:
    ordinal: int
    title: str
    duration: int
    session: LoopSession
    interview: Interview | None
    event: ManagedEvent | None
    start: dt.datetime | None
    end: dt.datetime | None
    people: tuple[str, ...]
    room: model.Room | None
    video: bool
    #: Shadows sitting in (names, from the load ledger's ids): never among ``people``' count.
    shadows: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.interview is not None and self.interview.status.live

    @property
    def started(self) -> bool:
        return has_started(self.event)


@dataclass(frozen=True)
class LoopView:
    loop: InterviewLoop
    details: LoopDetails | None
    sessions: list[BookedSession]
    problem: str | None = None


def _times(event: ManagedEvent | None, interview: Interview | None, session: Session):
    if event is not None and not event.deleted and isinstance(event.start, dt.datetime):
        end = event.end if isinstance(event.end, dt.datetime) else None
        return event.start, end
    if interview is not None:
        held = claims.booked_time(session, interview.id)
        if held is not None:
            return held
    return None, None


def view_loop(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    loop: InterviewLoop,
) -> LoopView:
    """The loop with each session's people, room and (once booked) interview and times."""
    details = open_details(sealer, loop)
    titles = details.session_titles if details else ()
    interviews = {
        i.id: i
        for i in session.scalars(
            select(Interview).where(
                Interview.id.in_([s.interview_id for s in loop.sessions if s.interview_id])
            )
        )
    }
    events: dict[str, ManagedEvent] = {}
    problem = None
    host_events = [i.events[0] for i in interviews.values() if i.events]
    if broker is not None and host_events:
        links = links_by_id(session, (e.profile_link_id for e in host_events))
        events, problems = read_events(session, broker, cipher, host_events, links, localized=True)
        problem = next(iter(problems.values()), None)

    def who(s: LoopSession, interview: Interview | None) -> list[int]:
        # A booked session's panel is its interview's (pool picks included).
        return list(interview.panel_link_ids) if interview is not None else list(s.panel_link_ids)

    link_ids = {
        i
        for s in loop.sessions
        for i in who(s, interviews.get(s.interview_id) if s.interview_id else None)
    }
    links = links_by_id(session, link_ids)
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({link.user_id for link in links.values()}))
        )
    }
    people = {
        link_id: users[link.user_id].name if link.user_id in users else "Someone"
        for link_id, link in links.items()
    }
    rooms = {r.email: r for r in roster.room_choices(session, loop.organisation_id)}
    pools = {
        p.id: p.name
        for p in session.scalars(
            select(Pool).where(Pool.id.in_({s.pool_id for s in loop.sessions if s.pool_id}))
        )
    }
    sitting_in = shadows.names(session, list(interviews))
    out = []
    for s in loop.sessions:
        interview = interviews.get(s.interview_id) if s.interview_id else None
        trainees = tuple(sitting_in.get(interview.id, ())) if interview is not None else ()
        event = events.get(interview.events[0].event_id) if interview and interview.events else None
        start, end = _times(event, interview, session)
        out.append(
            BookedSession(
                ordinal=s.ordinal,
                title=titles[s.ordinal - 1]
                if s.ordinal - 1 < len(titles)
                else f"Session {s.ordinal}",
                duration=s.duration_minutes,
                session=s,
                interview=interview,
                event=event,
                start=start,
                end=end,
                people=tuple(people.get(i, "Someone no longer linked") for i in who(s, interview))
                + (
                    (f"any {s.pool_count} from {pools[s.pool_id]}",)
                    if interview is None and s.pool_id in pools
                    else ()
                )
                + tuple(f"{name} (shadow)" for name in trainees),
                room=rooms.get(s.room_email) if s.room_email else None,
                video=s.video,
                shadows=trainees,
            )
        )
    return LoopView(loop, details, out, problem)


def booked_loop(session: Session, actor: Actor, uid: str) -> InterviewLoop:
    """The loop ``uid`` the actor composed, if it is booked (only then can it change)."""
    loop = loop_for(session, actor, uid)
    if loop.state is not LoopState.BOOKED:
        raise Invalid("Only a booked loop can be changed.")
    return loop


def read_booked(session, broker, cipher, sealer, loop) -> list[BookedSession]:
    """The booked loop's sessions as the calendar holds them (refused if it cannot be read)."""
    view = view_loop(session, broker, cipher, sealer, loop)
    if view.problem:
        raise AggregatorTrouble(view.problem)
    return view.sessions
