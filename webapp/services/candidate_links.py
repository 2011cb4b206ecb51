"""Candidate self-scheduling links: a recruiter sends a signed, expiring, single-use link; the
candidate (no account) sees the panel's real-time slots in their own time zone and books one.

The candidate's name and email (and the interview title) are sealed inside the link's token
(AES-GCM); the database keeps only the token's SHA-256, the panel's link ids, the window and the
link's state. Booking re-checks the slot at the aggregator, then uses the link and claims the
time for the whole panel in one transaction (``claims``): of two bookings racing for the same
time, from candidates, recruiters or the API, in any process, one gets it and the other is told it
was just taken.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Period, Slot, SmartInviteWrite
from models import (
    Interview,
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
from webapp.services import Actor, claims
from webapp.services.accounts import valid_email
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, roster, windows
from webapp.services.connect import link_of
from webapp.services.errors import (
    Forbidden,
    Invalid,
    LinkUnusable,
    NotFound,
    SlotTaken,
    Unavailable,
    WriteFailed,
)
from webapp.services.scheduling import booking, content, reading, writes

PURPOSE = "candidate-link"
MAX_TOKEN = 2048
MAX_WINDOW_DAYS = 14
MAX_EXPIRY_DAYS = 30
#: Providers whose calendars cannot send attendee invitations: the candidate gets a Smart Invite.
NO_INVITES = frozenset({"apple"})


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
    #: Set when the write did not go through yet: the caller queues the retrying job with it.
    retry_payload: str | None = None


# ---------------------------------------------------------------------------------------------
# Recruiter side


def create_link(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    *,
    panel_link_ids,
    duration: int,
    start_date: dt.date,
    days: int,
    expires_days: int,
    candidate_name: str,
    candidate_email: str,
    candidate_tzid: str,
    title: str,
    video: bool = True,
    candidate_hours: tuple[int, int] | None = None,
) -> tuple[SchedulingLink, str]:
    """Create a link; returns it with the token (shown once, never stored).

    The candidate's zone is recorded in the link (their page shows times in it; they may choose
    another display zone). ``candidate_hours`` (minutes after midnight, in that zone) limits the
    times offered to the candidate's own day, on top of every panel member's working hours."""
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters create self-scheduling links.")
    host = link_of(session, actor.user_id)
    if host is None or host.status is not LinkStatus.ACTIVE or not host.target_calendar_id:
        raise Invalid("Connect your calendar first: the interview is written to it.")
    members = roster.resolve_panel(session, actor, panel_link_ids)
    if duration not in model.DURATIONS:
        raise Invalid("Choose one of the listed durations.", field="duration")
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise Invalid(f"The window is 1 to {MAX_WINDOW_DAYS} days.", field="days")
    if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise Invalid(f"Links expire after 1 to {MAX_EXPIRY_DAYS} days.", field="expires_days")
    booking.check_title_and_name(title, candidate_name)
    if not valid_email(candidate_email.strip()):
        raise Invalid("Enter the candidate's email address.", field="candidate_email")
    if not model.valid_zone(candidate_tzid):
        raise Invalid("Choose the candidate's time zone from the list.", field="candidate_tzid")
    if candidate_hours is not None:
        first, last = candidate_hours
        if not (0 <= first < last <= 24 * 60):
            raise Invalid(
                "The candidate's hours must end after they start.", field="candidate_hours"
            )
        if last - first < duration:
            raise Invalid(
                "The candidate's hours are shorter than the interview.", field="candidate_hours"
            )
    tz = model.zone(candidate_tzid)
    today = utcnow().astimezone(tz).date()
    if start_date < today or start_date > today + dt.timedelta(days=365):
        raise Invalid("The window must start today or later.", field="start_date")
    window_start = max(
        dt.datetime.combine(start_date, dt.time(0), tz).astimezone(model.UTC), utcnow()
    )
    window_end = dt.datetime.combine(
        start_date + dt.timedelta(days=days), dt.time(0), tz
    ).astimezone(model.UTC)
    expires_at = utcnow() + dt.timedelta(days=expires_days)
    if window_start + dt.timedelta(minutes=duration) > expires_at:
        raise Invalid(
            f"The link would expire ({expires_at.astimezone(tz):%d %B %Y, %H:%M}) before "
            f"its first bookable day ({start_date:%d %B %Y}): let it expire later or "
            "start the window earlier.",
            field="expires_days",
        )
    token = sealer.seal_json(
        PURPOSE,
        {
            "k": secrets.token_urlsafe(
                16
            ),  # 128 random bits of its own, on top of the AES-GCM nonce
            "n": candidate_name.strip(),
            "e": candidate_email.strip(),
            "z": candidate_tzid,
            "t": title.strip(),
            **({"h": list(candidate_hours)} if candidate_hours else {}),
        },
    )
    link = SchedulingLink(
        token_hash=security.token_hash(token),
        organisation_id=actor.organisation_id,
        created_by_id=actor.user_id,
        host_link_id=host.id,
        panel_link_ids=[m.link.id for m in members],
        duration_minutes=duration,
        window_start=window_start,
        window_end=window_end,
        video=video,
        expires_at=expires_at,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor,
        "scheduling_link.created",
        target_type="scheduling_link",
        target_id=link.id,
        detail={
            "panel": len(members),
            "duration": duration,
            "expires_days": expires_days,
            "candidate_hours": candidate_hours is not None,
        },
    )
    session.commit()
    return link, token


def links_of(session: Session, actor: Actor) -> list[tuple[SchedulingLink, Interview | None]]:
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters have self-scheduling links.")
    links = list(
        session.scalars(
            select(SchedulingLink)
            .where(
                SchedulingLink.organisation_id == actor.organisation_id,
                SchedulingLink.created_by_id == actor.user_id,
            )
            .order_by(SchedulingLink.id.desc())
            .limit(100)
        )
    )
    booked = {
        i.scheduling_link_id: i
        for i in session.scalars(
            select(Interview).where(Interview.scheduling_link_id.in_([l.id for l in links] or [-1]))
        )
    }
    return [(l, booked.get(l.id)) for l in links]


def revoke(session: Session, actor: Actor, link_id: int) -> SchedulingLink:
    link = session.get(SchedulingLink, link_id)
    if (
        link is None
        or link.organisation_id != actor.organisation_id
        or link.created_by_id != actor.user_id
    ):
        raise NotFound("No such link.")
    if link.revoked_at is None and link.used_at is None:
        link.revoked_at = utcnow()
        record(
            session,
            actor,
            "scheduling_link.revoked",
            target_type="scheduling_link",
            target_id=link.id,
        )
        session.commit()
    return link


# ---------------------------------------------------------------------------------------------
# Candidate side


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
    hours = payload.get("h")
    return Opened(
        link,
        payload["n"],
        payload["e"],
        payload["z"],
        payload["t"],
        (int(hours[0]), int(hours[1])) if hours else None,
    )


def _members(session: Session, link: SchedulingLink) -> list[model.PanelMember]:
    ids = list(dict.fromkeys([*link.panel_link_ids, link.host_link_id]))
    links = {
        l.id: l
        for l in session.scalars(
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
            select(User).where(User.id.in_({l.user_id for l in links.values()}))
        )
    }
    org = session.get(Organisation, link.organisation_id)
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
) -> Booking:
    """Book ``start`` for the candidate: re-check, claim the link once, write the event.

    When the host's calendar cannot invite, the candidate gets a Smart Invite whose answers
    the aggregator reports to ``invite_callback_url(interview id)``."""
    opened = open_link(session, sealer, token)
    link = opened.link
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
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
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
    return Booking(
        interview,
        start,
        start + dt.timedelta(minutes=link.duration_minutes),
        opened.candidate_tzid,
        opened.title,
        invite,
        None if written else payload,
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
    if not interview.status.live:
        return Booked(title, tzid, "cancelled")
    if broker is None or not interview.events:
        return Booked(title, tzid, "unknown")
    host_event = interview.events[0]
    found, problems = reading.read_events(
        session, broker, cipher, [host_event], {interview.host_link_id: interview.host_link}
    )
    event = found.get(host_event.event_id)
    if event is not None and event.deleted:
        return Booked(title, tzid, "cancelled")
    if event is None or not isinstance(event.start, dt.datetime):
        if problems:
            return Booked(title, tzid, "unknown")
        # Not in the calendar yet (a double-click lands here): the time our claim holds.
        return Booked(
            title, tzid, "pending", *(claims.booked_time(session, interview.id) or (None, None))
        )
    return Booked(title, tzid, "booked", event.start, event.end)


#: Expired, used and revoked links are deleted after this (the interview keeps no reference).
PURGE_AFTER = dt.timedelta(days=30)


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Delete links expired, used or revoked more than PURGE_AFTER ago; returns how many."""
    from sqlalchemy import delete, or_

    cutoff = (now or utcnow()) - PURGE_AFTER
    result = session.execute(
        delete(SchedulingLink).where(
            or_(
                SchedulingLink.expires_at < cutoff,
                SchedulingLink.used_at < cutoff,
                SchedulingLink.revoked_at < cutoff,
            )
        )
    )
    session.commit()
    return result.rowcount or 0
