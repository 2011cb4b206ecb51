"""Candidate self-scheduling links, the candidate's side: open a link (no account), see the
panel's real-time slots in their own time zone, book one, and the Smart Invite answers.

Booking re-checks the slot at the aggregator, then uses the link and claims the time for the
whole panel in one transaction (``claims``): of two bookings racing for the same time, from
candidates, recruiters or the API, in any process, one gets it and the other is told it was
just taken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Period, Slot, SmartInviteWrite
from models import (
    Interview,
    InterviewStatus,
    LinkStatus,
    Organisation,
    ProfileLink,
    Role,
    SchedulingLink,
    User,
    utcnow,
)
from webapp import security
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, claims, rowcount
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, roster, windows
from webapp.services.candidate_links import MAX_TOKEN, NO_INVITES, PURPOSE
from webapp.services.errors import (
    Invalid,
    LinkUnusable,
    SlotTaken,
    Unavailable,
    WriteFailed,
)
from webapp.services.scheduling import booking, content, reading, writes


@dataclass(frozen=True)
class Opened:
    link: SchedulingLink
    candidate_name: str
    candidate_email: str
    candidate_tzid: str
    title: str
    #: (start, end) minutes after midnight in the candidate's zone: only times inside are offered
    #: (None: the panel's own hours are the only limit).
    candidate_hours: tuple[int, int] | None = None

    def within(self, window: Period) -> tuple[Period, ...] | None:
        """The candidate's hours inside ``window``, in UTC (None when the link sets none)."""
        if self.candidate_hours is None:
            return None
        start, end = self.candidate_hours
        return windows.working_periods(
            model.Hours(start, end, "1234567", self.candidate_tzid), window
        )


@dataclass(frozen=True)
class Booking:
    interview: Interview
    start: dt.datetime
    end: dt.datetime
    tzid: str
    title: str
    invite_ics: str | None
    #: Set when the write did not go through yet: the retrying job was queued with it.
    retry_payload: str | None = None
    #: Whom the confirmation goes to (from the sealed token; never stored).
    candidate_name: str = ""
    candidate_email: str = ""


def _genuine(session: Session, sealer: Sealer, token: str) -> tuple[SchedulingLink, dict]:
    """The link behind a genuine token, whatever its state."""
    if not token or len(token) > MAX_TOKEN:
        raise LinkUnusable("This link is not valid.", "unknown")
    link = session.scalar(
        select(SchedulingLink).where(SchedulingLink.token_hash == security.token_hash(token))
    )
    payload = sealer.open_json(PURPOSE, token, max_length=MAX_TOKEN) if link is not None else None
    if link is None or payload is None:
        raise LinkUnusable("This link is not valid.", "unknown")
    return link, payload


def open_link(session: Session, sealer: Sealer, token: str) -> Opened:
    """The link behind a token, if it may still be used."""
    link, payload = _genuine(session, sealer, token)
    state = link.state
    if state != "open":
        raise LinkUnusable(
            {
                "used": "This link has already been used to book an interview.",
                "revoked": "This link was withdrawn by the recruiter.",
                "expired": "This link has expired. Ask the recruiter for a new one.",
            }[state],
            state,
        )
    return opened_from(link, payload)


def opened_from(link: SchedulingLink, payload: dict) -> Opened:
    """The link with what its token carries (the caller has checked the token is genuine)."""
    hours = payload.get("h")
    return Opened(
        link,
        payload["n"],
        payload["e"],
        payload["z"],
        payload["t"],
        (int(hours[0]), int(hours[1])) if hours else None,
    )


@dataclass(frozen=True)
class Facts:
    """What the booking page says about who the candidate meets."""

    organisation: str
    #: The panel's first names, in the order the recruiter chose them.
    interviewers: tuple[str, ...]


def facts(session: Session, link: SchedulingLink) -> Facts:
    names = {
        row.id: row.name
        for row in session.execute(
            select(ProfileLink.id, User.name)
            .join(User, User.id == ProfileLink.user_id)
            .where(
                ProfileLink.id.in_(link.panel_link_ids or [-1]),
                ProfileLink.organisation_id == link.organisation_id,
            )
        )
    }
    org = session.get_one(Organisation, link.organisation_id)
    return Facts(
        org.name,
        tuple((names[i].split() or [""])[0] for i in link.panel_link_ids if i in names),
    )


def _members(session: Session, link: SchedulingLink) -> list[model.PanelMember]:
    ids = list(dict.fromkeys([*link.panel_link_ids, link.host_link_id]))
    links = {
        member.id: member
        for member in session.scalars(
            select(ProfileLink).where(
                ProfileLink.id.in_(ids), ProfileLink.organisation_id == link.organisation_id
            )
        )
    }
    if any(i not in links or links[i].status is not LinkStatus.ACTIVE for i in ids):
        raise Unavailable(
            "The interviewers' calendars cannot be reached right now. Please contact the recruiter."
        )
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({member.user_id for member in links.values()}))
        )
    }
    org = session.get_one(Organisation, link.organisation_id)
    hours = roster.hours_for(session, list(users.values()), org)
    return [
        model.PanelMember(links[i], users[links[i].user_id], hours[links[i].user_id]) for i in ids
    ]


def _query(link: SchedulingLink, members, tzid: str) -> model.Query:
    return model.Query(
        panel_link_ids=tuple(m.link.id for m in members), duration=link.duration_minutes, tzid=tzid
    )


def slots(session: Session, broker: CalendarBroker, opened: Opened) -> tuple[Slot, ...]:
    """Real-time free slots of the panel within the link's window (one aggregator call)."""
    link = opened.link
    members = _members(session, link)
    start = max(link.window_start, windows.round_up(utcnow() + model.LEAD_TIME))
    if link.window_end <= start:
        return ()
    query = _query(link, members, opened.candidate_tzid)
    window = Period(start, link.window_end)
    found = free_slots.common_slots(broker, members, query, window, within=opened.within(window))
    return free_slots.without_held(
        free_slots.held_for(session, members, window), found, members, query
    )


def book(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
    start: dt.datetime,
    *,
    invite_callback_url: Callable[[int], str] | None = None,
    organizer_email: str | None = None,
    jobs: JobQueue,
) -> Booking:
    """Book ``start`` for the candidate: re-check, claim the link once, write the event.

    When the host's calendar cannot invite, the candidate gets a Smart Invite whose answers
    the aggregator reports to ``invite_callback_url(interview id)``."""
    opened = open_link(session, sealer, token)
    link = opened.link
    if link.loop_id is not None:  # its own pages book it (loops.candidate), all sessions at once
        raise Invalid("This link offers a series of interviews: pick a start time on its page.")
    if (
        start.tzinfo is None
        or not (
            link.window_start <= start
            and start + dt.timedelta(minutes=link.duration_minutes) <= link.window_end
        )
        or start <= utcnow()
    ):
        raise Invalid("Pick one of the times offered.", field="slot")
    end = start + dt.timedelta(minutes=link.duration_minutes)
    within = opened.within(Period(start, end))
    if within is not None and not any(p.start <= start and end <= p.end for p in within):
        raise Invalid("Pick one of the times offered.", field="slot")
    members = _members(session, link)
    query = _query(link, members, opened.candidate_tzid)
    host = next(m for m in members if m.link.id == link.host_link_id)
    taken = "That time was just taken. Please pick another one."
    # A second submit of the same form (a double-click) after the first committed: it is booked.
    # (Sooner, the update of the link below finds it used, or waits for the first and then does.)
    if (
        session.scalar(select(SchedulingLink.used_at).where(SchedulingLink.id == link.id))
        is not None
    ):
        session.rollback()
        raise LinkUnusable("This link has already been used to book an interview.", "used")
    if not free_slots.slot_is_free(broker, members, query, start):
        session.rollback()
        raise SlotTaken(taken)
    now = utcnow()
    used = session.execute(
        update(SchedulingLink)
        .where(
            SchedulingLink.id == link.id,
            SchedulingLink.used_at.is_(None),
            SchedulingLink.revoked_at.is_(None),
            SchedulingLink.expires_at > now,
        )
        .values(used_at=now, token_sealed=None)  # the recruiter copies only open links
        .execution_options(synchronize_session=False)
    )
    if rowcount(used) != 1:
        session.rollback()
        raise LinkUnusable("This link has already been used to book an interview.", "used")
    creator = session.get(User, link.created_by_id) if link.created_by_id else None
    actor = Actor(
        creator.id if creator else None, "candidate", link.organisation_id, Role.RECRUITER
    )
    invite_by_calendar = host.link.provider not in NO_INVITES
    new = booking.NewInterview(
        query=query,
        start=start,
        candidate_name=opened.candidate_name,
        candidate_email=opened.candidate_email,
        title=opened.title,
        video=link.video,
        candidate_tzid=opened.candidate_tzid,
    )
    panel = [m for m in members if m.link.id in link.panel_link_ids]
    try:
        # The link's use, the interview and the claim on the whole panel's (host included)
        # time commit together, or not at all.
        interview, payload = booking.commit_interview(
            session,
            sealer,
            actor,
            new,
            panel,
            host.link,
            None,
            scheduling_link_id=link.id,
            invite_candidate=invite_by_calendar,
            hold=booking.hold_for(members, None, start, query),
        )
    except SlotTaken:
        raise SlotTaken(taken) from None
    # Written now, so the candidate's confirmation can say it is in the calendar.
    try:
        writes.run_write(session, broker, cipher, sealer, interview.id, payload)
        written = True
    except WriteFailed:
        written = False
    invite = None
    if not invite_by_calendar:
        invite = _smart_invite(
            broker,
            interview,
            opened,
            start,
            link,
            host,
            invite_callback_url(interview.id) if invite_callback_url else None,
            organizer_email,
        )
    session.refresh(interview)
    if not written:  # the job retries it until the calendar confirms
        jobs.enqueue("scheduling.write_interview", interview.id, payload)
    return Booking(
        interview,
        start,
        start + dt.timedelta(minutes=link.duration_minutes),
        opened.candidate_tzid,
        opened.title,
        invite,
        None if written else payload,
        opened.candidate_name,
        opened.candidate_email,
    )


def _smart_invite(
    broker: CalendarBroker,
    interview: Interview,
    opened: Opened,
    start: dt.datetime,
    link: SchedulingLink,
    host: model.PanelMember,
    callback_url: str | None,
    organizer_email: str | None,
) -> str | None:
    """An invitation the candidate can add to any calendar, when the host's cannot invite."""
    try:
        invite = broker.upsert_smart_invite(
            SmartInviteWrite(
                smart_invite_id=smart_invite_id(interview),
                recipient_email=opened.candidate_email,
                summary=opened.title,
                start=start,
                end=start + dt.timedelta(minutes=link.duration_minutes),
                tzid=opened.candidate_tzid,
                organizer_name=host.user.name,
                organizer_email=organizer_email,
                callback_url=callback_url,
            )
        )
    except broker_errors.BrokerError:
        return None
    return invite.icalendar


def smart_invite_id(interview: Interview) -> str:
    return f"{content.EVENT_PREFIX}{interview.uid}"


#: What the interview page says about the candidate's answer to a Smart Invite.
REPLIES = {
    "pending": "No reply yet",
    "accepted": "Accepted",
    "tentative": "Tentative",
    "declined": "Declined",
}


def invite_answered(session: Session, interview_id: int, invite_id: str, status: str) -> str:
    """Keep the candidate's answer to their Smart Invite (a verified callback for the interview
    sealed in its URL). A decline is a change the scheduler is told about. Returns the outcome."""
    interview = session.get(Interview, interview_id)
    if interview is None:
        return "unknown"
    if invite_id != smart_invite_id(interview) or status not in REPLIES:
        record(
            session,
            None,
            "callback.forged",
            outcome="denied",
            organisation_id=interview.organisation_id,
            target_type="interview",
            target_id=interview.id,
            detail={"reason": "not this interview's invitation"},
        )
        session.commit()
        return "mismatch"
    if interview.candidate_reply == status:
        return "unchanged"
    interview.candidate_reply = status
    if status == "declined" and interview.status.live:
        interview.needs_notice = True
    record(
        session,
        None,
        "interview.candidate_replied",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
        detail={"reply": status},
    )
    session.commit()
    return "recorded"


@dataclass(frozen=True)
class Booked:
    """What a used link booked, as the calendar says now (shown again to the candidate)."""

    title: str
    tzid: str
    #: ``booked``; ``pending`` (not in the calendar yet); ``cancelled``; ``unknown`` (the
    #: calendar could not be read just now).
    state: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    #: The interview's stable id (the .ics UID), once there is an interview.
    interview_uid: str | None = None


def booked(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    sealer: Sealer,
    token: str,
) -> Booked:
    """What the link's booking is now; raises LinkUnusable unless the token is genuine and was
    used to book. The time is read from the calendar (it is not stored here)."""
    link, payload = _genuine(session, sealer, token)
    if link.used_at is None:
        raise LinkUnusable("This link has not been used to book an interview.", link.state)
    title, tzid = payload["t"], payload["z"]
    interview = session.scalar(select(Interview).where(Interview.scheduling_link_id == link.id))
    if interview is None:
        return Booked(title, tzid, "pending")
    uid = interview.uid
    if not interview.status.live:
        return Booked(title, tzid, "cancelled", interview_uid=uid)
    held = claims.booked_time(session, interview.id)
    if interview.status is InterviewStatus.PENDING and held:
        # Booked or moved, not confirmed in the calendar yet: the time our claim holds.
        return Booked(title, tzid, "pending", held[0], held[1], interview_uid=uid)
    if broker is None or not interview.events:
        return Booked(title, tzid, "unknown", interview_uid=uid)
    host_event = interview.events[0]
    found, problems = reading.read_events(
        session, broker, cipher, [host_event], {interview.host_link_id: interview.host_link}
    )
    event = found.get(host_event.event_id)
    if event is not None and event.deleted:
        return Booked(title, tzid, "cancelled", interview_uid=uid)
    if (
        event is None
        or not isinstance(event.start, dt.datetime)
        or not isinstance(event.end, dt.datetime)
    ):
        if problems:
            return Booked(title, tzid, "unknown", interview_uid=uid)
        # Not in the calendar yet (a double-click lands here): the time our claim holds.
        return Booked(
            title,
            tzid,
            "pending",
            held[0] if held else None,
            held[1] if held else None,
            interview_uid=uid,
        )
    return Booked(title, tzid, "booked", event.start, event.end, interview_uid=uid)
