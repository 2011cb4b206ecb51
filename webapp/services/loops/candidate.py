"""A loop offered through a self-scheduling link, the candidate's side: its start times with the
itinerary, booking it (every session or none), what it is now, and the candidate's own move or
cancellation (the whole loop, or one session) when the link allows it, up to the cut-off before
the FIRST session.

The link's token is the key (``candidate_booking``: sealed, single use, only its SHA-256 kept);
it opens the one loop the link points at and nothing else. Everything goes through the
recruiter's paths with the candidate as the actor (on the recruiter's behalf, as for a single
interview): ``loops.availability`` (one sequenced availability call), ``loops.booking`` (the
link's use, the loop's state and every session's claims commit together, or nothing does: of
two bookings racing for the same people, from candidates or recruiters, in any process, one
wins) and ``loops.changes`` (the candidate is sent one itinerary, or one cancellation notice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Period
from models import (
    InterviewLoop,
    InterviewStatus,
    LoopState,
    Role,
    SchedulingLink,
    User,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, rowcount
from webapp.services.candidate_booking import Opened, _genuine, open_link
from webapp.services.errors import Invalid, LinkUnusable
from webapp.services.loops import availability, booking
from webapp.services.loops.compose import plan_of
from webapp.services.loops.links import plan_from
from webapp.services.loops.notices import Timed, first_names, tell_candidate
from webapp.services.loops.plan import LoopPlan
from webapp.services.loops.reading import view_loop
from webapp.services.scheduling.notices import Notify

USED = "This link has already been used to book your interviews."
ARRANGED = "Your interviews have already been arranged another way; the recruiter will be in touch."


def actor_for(session: Session, link: SchedulingLink) -> Actor:
    """The candidate acts on the recruiter's behalf (the loop is theirs), labelled candidate."""
    creator = session.get(User, link.created_by_id) if link.created_by_id else None
    return Actor(creator.id if creator else None, "candidate", link.organisation_id, Role.RECRUITER)


def loop_of(session: Session, link: SchedulingLink) -> InterviewLoop | None:
    """The loop the link offers (inside the link's organisation), or None."""
    if link.loop_id is None:
        return None
    return session.scalar(
        select(InterviewLoop).where(
            InterviewLoop.id == link.loop_id,
            InterviewLoop.organisation_id == link.organisation_id,
        )
    )


@dataclass(frozen=True)
class Offer:
    opened: Opened
    loop: InterviewLoop

    @property
    def link(self) -> SchedulingLink:
        return self.opened.link


def open_offer(session: Session, sealer: Sealer, token: str) -> Offer:
    """The open link's loop, not booked yet; LinkUnusable otherwise."""
    opened = open_link(session, sealer, token)
    loop = loop_of(session, opened.link)
    if loop is None:
        raise LinkUnusable("This link is not valid.", "unknown")
    if loop.state not in (LoopState.DRAFT, LoopState.FAILED):
        raise LinkUnusable(ARRANGED, "arranged")
    return Offer(opened, loop)


def current_plan(sealer: Sealer, loop: InterviewLoop, now: dt.datetime) -> LoopPlan | None:
    """The loop's plan from today on (None when its days are over)."""
    return plan_from(plan_of(sealer, loop), now)


def in_window(link: SchedulingLink, option: availability.Itinerary) -> bool:
    return link.window_start <= option.start and option.end <= link.window_end


def in_hours(opened: Opened, times: Sequence[tuple[dt.datetime, dt.datetime]]) -> bool:
    """Every (start, end) inside the candidate's hours the link sets (True when it sets none)."""
    if opened.candidate_hours is None or not times:
        return True
    periods = opened.within(Period(min(s for s, _e in times), max(e for _s, e in times)))
    return all(any(p.start <= s and e <= p.end for p in periods or ()) for s, e in times)


def fits(opened: Opened, option: availability.Itinerary) -> bool:
    """An itinerary the link offers: inside its window and the candidate's hours."""
    return in_window(opened.link, option) and in_hours(
        opened, [(s.start, s.end) for s in option.stops]
    )


def offered_times(
    session: Session, broker: CalendarBroker, sealer: Sealer, offer: Offer
) -> tuple[availability.Itinerary, ...]:
    """The loop's start times with their itineraries (one sequenced availability call), inside
    the link's window."""
    plan = current_plan(sealer, offer.loop, utcnow())
    if plan is None:
        return ()
    found = availability.loop_times(
        session, broker, sealer, actor_for(session, offer.link), offer.loop, plan=plan
    )
    return tuple(o for o in found.options if fits(offer.opened, o))


def interviewers(session: Session, loop: InterviewLoop) -> tuple[str, ...]:
    """Everyone the candidate meets, first names, in the order of the sessions."""
    names = first_names(session, loop)
    return tuple(dict.fromkeys(n for s in loop.sessions for n in names.get(s.ordinal, ())))


def book(
    session: Session,
    broker: CalendarBroker,
    sealer: Sealer,
    token: str,
    starts: Sequence[dt.datetime],
    *,
    jobs: JobQueue,
    notify: Notify | None = None,
    change_url: str | None = None,
) -> InterviewLoop:
    """Book every session at ``starts`` (an offered itinerary) or none, using the link once.
    With ``notify`` the candidate is emailed their itinerary (``change_url``, the way back to
    change it, only when the link allows changes)."""
    offer = open_offer(session, sealer, token)
    link = offer.link
    if not starts or starts[0] < link.window_start:
        raise Invalid("Pick one of the start times offered.", field="option")
    plan = current_plan(sealer, offer.loop, utcnow())
    if plan is None:
        raise Invalid("There are no times left for these interviews.", field="option")
    # A second submit of the same form after the first committed: it is booked.
    if (
        session.scalar(select(SchedulingLink.used_at).where(SchedulingLink.id == link.id))
        is not None
    ):
        session.rollback()
        raise LinkUnusable(USED, "used")

    def use_link() -> None:
        now = utcnow()
        used = session.execute(
            update(SchedulingLink)
            .where(
                SchedulingLink.id == link.id,
                SchedulingLink.used_at.is_(None),
                SchedulingLink.revoked_at.is_(None),
                SchedulingLink.expires_at > now,
            )
            .values(used_at=now, token_sealed=None)
            .execution_options(synchronize_session=False)
        )
        if rowcount(used) != 1:
            session.rollback()
            raise LinkUnusable(USED, "used")

    loop = offer.loop
    durations = [s.duration_minutes for s in loop.sessions]
    if len(starts) == len(durations) and (
        starts[-1] + dt.timedelta(minutes=durations[-1]) > link.window_end
        or not in_hours(
            offer.opened,
            [(s, s + dt.timedelta(minutes=d)) for s, d in zip(starts, durations, strict=True)],
        )
    ):
        raise Invalid("Pick one of the start times offered.", field="option")
    try:
        booking.book_loop(
            session,
            broker,
            sealer,
            actor_for(session, link),
            loop.uid,
            starts,
            jobs=jobs,
            before_claims=use_link,
            plan=plan,
        )
    except Invalid as exc:
        session.rollback()
        if exc.message == booking.ALREADY:
            # This link's own earlier submit (a double click) booked it: show that booking.
            used = session.scalar(
                select(SchedulingLink.used_at).where(SchedulingLink.id == link.id)
            )
            if used is not None:
                raise LinkUnusable(USED, "used") from None
            raise LinkUnusable(ARRANGED, "arranged") from None
        raise
    except Exception:
        session.rollback()
        raise
    if notify is not None:
        session.refresh(loop)
        timed = _booked_times(session, loop, starts)
        tell_candidate(
            session,
            notify,
            actor_for(session, link),
            loop,
            "booked",
            live=timed,
            jobs=jobs,
            change_url=change_url if link.candidate_may_change else None,
            change_cutoff_hours=link.change_cutoff_hours,
        )
    return loop


def _booked_times(
    session: Session, loop: InterviewLoop, starts: Sequence[dt.datetime]
) -> list[Timed]:
    from models import Interview

    out = []
    for s, start in zip(loop.sessions, starts, strict=True):
        interview = session.get(Interview, s.interview_id) if s.interview_id else None
        if interview is not None:
            out.append(
                Timed(
                    s.ordinal,
                    interview.uid,
                    start,
                    start + dt.timedelta(minutes=s.duration_minutes),
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# After booking: what it is now (the candidate's changes: loops.candidate_changes)


@dataclass(frozen=True)
class ShownSession:
    ordinal: int
    title: str
    duration: int
    start: dt.datetime | None
    end: dt.datetime | None
    people: tuple[str, ...]
    video: bool
    live: bool
    #: The room the session is held in (its name), for a session in person.
    room: str | None
    #: The session's interview's uid (its .ics UID), once booked.
    interview_uid: str | None


@dataclass(frozen=True)
class ShownLoop:
    title: str
    tzid: str
    #: ``booked``; ``pending`` (not in every calendar yet); ``cancelled``; ``failed`` (could not
    #: be written: nothing was kept); ``unknown`` (the calendar could not be read just now).
    state: str
    sessions: tuple[ShownSession, ...]

    @property
    def live(self) -> tuple[ShownSession, ...]:
        return tuple(s for s in self.sessions if s.live)

    @property
    def cancelled(self) -> tuple[ShownSession, ...]:
        return tuple(s for s in self.sessions if not s.live)

    @property
    def start(self) -> dt.datetime | None:
        starts = [s.start for s in self.live if s.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> dt.datetime | None:
        ends = [s.end for s in self.live if s.end is not None]
        return max(ends) if ends else None


def used_loop(session: Session, sealer: Sealer, token: str):
    link, payload = _genuine(session, sealer, token)
    loop = loop_of(session, link)
    if loop is None:
        raise LinkUnusable("This link is not valid.", "unknown")
    if link.used_at is None:
        raise LinkUnusable("This link has not been used to book your interviews.", link.state)
    return link, payload, loop


def shown(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
) -> ShownLoop:
    """What the link's loop is now: each session with its time read from the calendar (or held
    by its claim while its write is outstanding). LinkUnusable unless the token is genuine, its
    link offers a loop and was used to book it."""
    link, payload, loop = used_loop(session, sealer, token)
    title, tzid = payload["t"], payload["z"]
    view = view_loop(session, broker, cipher, sealer, loop)
    names = first_names(session, loop)
    sessions = tuple(
        ShownSession(
            ordinal=b.ordinal,
            title=b.title,
            duration=b.duration,
            start=b.start,
            end=b.end,
            people=names.get(b.ordinal, ()),
            video=b.video,
            live=b.live,
            room=b.room.name if b.room is not None else None,
            interview_uid=b.interview.uid if b.interview is not None else None,
        )
        for b in view.sessions
    )
    live = [b for b in view.sessions if b.live]
    if loop.state is LoopState.FAILED:
        state = "failed"
    elif loop.state is LoopState.CANCELLED or not live:
        state = "cancelled"
    elif any(b.start is None for b in live):
        state = "unknown"
    elif any(
        b.interview is not None and b.interview.status is InterviewStatus.PENDING for b in live
    ):
        state = "pending"
    elif view.problem:
        state = "unknown"
    else:
        state = "booked"
    return ShownLoop(title, tzid, state, sessions)
