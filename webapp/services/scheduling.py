"""Interviews: schedule, reschedule and cancel on calendars; read them back; follow changes.

Locally an interview is IDs and status only. What the event says (title, notes, time, attendees,
candidate) is written to the calendar and read back from the aggregator on demand. While a write
is outstanding its content travels only inside the job's arguments, sealed (AES-GCM).

Nothing lost, nothing doubled: the Interview and CreatedEvent rows (with our fixed ``event_id``s)
are committed before the first broker call; the write job upserts by ``event_id`` (a retry never
makes a second event) and is retried until confirmed; reconciliation compares the ids we hold
with the aggregator's managed events and repairs drift both ways.

One booking per slot: every booking (web form, API, candidate link, reschedule) claims its time
for each panel member and the room in the transaction that commits it (``claims``), so of two
overlapping bookings the database lets exactly one commit; the other gets SlotTaken.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import cast, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from broker.types import Attendee, EventWrite, ManagedEvent
from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    ProfileLink,
    Role,
    SchedulingPreference,
    User,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, claims, printable
from webapp.services import availability as av
from webapp.services.accounts import valid_email
from webapp.services.audit import record
from webapp.services.credentials import call_broker
from webapp.services.errors import (
    AggregatorTrouble,
    Forbidden,
    Invalid,
    NotFound,
    ReconnectNeeded,
    ServiceError,
    SlotTaken,
    WriteFailed,
)

log = logging.getLogger("webapp.services.scheduling")

EVENT_PREFIX = "rdv-"
MAX_TITLE, MAX_NOTES, MAX_NAME = 200, 2000, 200
#: A write still unconfirmed after this long (its job gave up) is reconciled as failed.
PENDING_GIVE_UP = dt.timedelta(minutes=30)
#: A sealed write carries the whole event as the calendar holds it (notes up to the aggregator's
#: 4,096 characters, the full guest list), so it may be far longer than one we compose.
MAX_WRITE_PAYLOAD = 256 * 1024


TAKEN = "That time was just taken. Pick another slot."
TAKEN_ROOM = "That time was just taken (or the room is booked). Pick another slot."


# ---------------------------------------------------------------------------------------------
# Content for jobs and links (sealed with security.Sealer)


@dataclass(frozen=True)
class Content:
    """What an interview event says. Lives in the calendar and in sealed job arguments only.

    Every write sends the whole event: an update replaces what the calendar holds (what a body
    leaves out may be dropped), so a reschedule carries everything read back from the calendar.
    Two parts are deliberately left out of updates: ``conferencing`` (an update without it keeps
    the event's conference and its join link, and the conference follows the new time) and
    reminders (never reported by reads; ``reminders_create_only`` keeps whatever the event has).
    """

    summary: str
    start: dt.datetime
    end: dt.datetime
    description: str | None = None
    attendees: tuple[tuple[str, str | None], ...] = ()
    #: The conferencing ``profile_id``; for "explicit" the tool's name and join URL below.
    conferencing: str | None = None
    conferencing_name: str | None = None
    conferencing_url: str | None = None
    tzid: str = "Etc/UTC"
    location: str | None = None
    transparency: str | None = None
    event_private: bool | None = None

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "description": self.description,
            "attendees": [list(a) for a in self.attendees],
            "conferencing": self.conferencing,
            "conferencing_name": self.conferencing_name,
            "conferencing_url": self.conferencing_url,
            "tzid": self.tzid,
            "location": self.location,
            "transparency": self.transparency,
            "event_private": self.event_private,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Content:
        return cls(
            summary=data["summary"],
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]),
            description=data.get("description"),
            attendees=tuple((a[0], a[1]) for a in data.get("attendees") or ()),
            conferencing=data.get("conferencing"),
            conferencing_name=data.get("conferencing_name"),
            conferencing_url=data.get("conferencing_url"),
            tzid=data.get("tzid") or "Etc/UTC",
            location=data.get("location"),
            transparency=data.get("transparency")
            if data.get("transparency") in ("opaque", "transparent")
            else None,
            event_private=data.get("event_private")
            if isinstance(data.get("event_private"), bool)
            else None,
        )

    @classmethod
    def of_event(cls, event: ManagedEvent, start: dt.datetime, end: dt.datetime) -> Content:
        """Everything ``event`` says as the calendar holds it now, at a new time."""
        return cls(
            summary=event.summary or "Interview",
            start=start,
            end=end,
            description=event.description,
            attendees=tuple((a.email, a.display_name) for a in event.attendees if a.email),
            conferencing=None,
            tzid=event.tzid or "Etc/UTC",
            location=event.location,
            transparency=event.transparency
            if event.transparency in ("opaque", "transparent")
            else None,
            event_private=event.event_private,
        )

    def event(self, event_id: str, *, with_attendees: bool = True) -> EventWrite:
        return EventWrite(
            event_id=event_id,
            summary=self.summary,
            start=self.start,
            end=self.end,
            description=self.description,
            tzid=self.tzid,
            location=self.location,
            attendees=tuple(Attendee(email=e, display_name=n) for e, n in self.attendees)
            if with_attendees
            else (),
            conferencing_profile_id=self.conferencing if with_attendees else None,
            conferencing_description=self.conferencing_name if with_attendees else None,
            conferencing_join_url=self.conferencing_url if with_attendees else None,
            reminders_create_only=True,
            transparency=self.transparency,  # type: ignore[arg-type]
            event_private=self.event_private,
        )


# ---------------------------------------------------------------------------------------------
# Who may see and change which interview


def _changeable(session: Session, actor: Actor):
    """A filter for the interviews the actor may change (reschedule, cancel): the ones they
    scheduled or host, and for a coordinator the ones of their assigned managers."""
    base = Interview.organisation_id == actor.organisation_id
    if actor.role is Role.COORDINATOR:
        managers = av.assigned_manager_ids(session, actor.user_id)
        return base & or_(
            Interview.created_by_id == actor.user_id,
            Interview.on_behalf_of_id.in_(managers or {-1}),
        )
    if actor.role is Role.RECRUITER:
        own_links = select(ProfileLink.id).where(ProfileLink.user_id == actor.user_id)
        return base & or_(
            Interview.created_by_id == actor.user_id,
            Interview.on_behalf_of_id == actor.user_id,
            Interview.host_link_id.in_(own_links),
        )
    raise Forbidden("Your role cannot see interviews.")


def _on_panel(session: Session, link_ids: Sequence[int]):
    """Interviews whose panel includes one of ``link_ids`` (the panel is a JSON list of ids)."""
    if not link_ids:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return or_(*(cast(Interview.panel_link_ids, JSONB).contains([i]) for i in link_ids))
    members = func.json_each(Interview.panel_link_ids).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value.in_(link_ids)))


def _visible(session: Session, actor: Actor):
    """A filter for the interviews the actor may see: those they may change and, for a
    recruiter, those where they sit on the panel."""
    changeable = _changeable(session, actor)
    if actor.role is not Role.RECRUITER:
        return changeable
    own = list(
        session.scalars(
            select(ProfileLink.id).where(
                ProfileLink.organisation_id == actor.organisation_id,
                ProfileLink.user_id == actor.user_id,
            )
        )
    )
    return or_(
        changeable, (Interview.organisation_id == actor.organisation_id) & _on_panel(session, own)
    )


def interview_for(session: Session, actor: Actor, uid: str, *, to_change: bool = True) -> Interview:
    """The interview ``uid`` if the actor may change it (or, with ``to_change=False``, see it)."""
    if not uid or len(uid) > 32:
        raise NotFound("No such interview.")
    rule = _changeable(session, actor) if to_change else _visible(session, actor)
    found = session.scalar(select(Interview).where(Interview.uid == uid, rule))
    if found is None:
        raise NotFound("No such interview.")
    return found


def may_change(session: Session, actor: Actor, interview: Interview) -> bool:
    return (
        session.scalar(
            select(Interview.id).where(Interview.id == interview.id, _changeable(session, actor))
        )
        is not None
    )


def host_link_for(
    session: Session, actor: Actor, on_behalf_of_id: int | None
) -> tuple[ProfileLink, User | None]:
    """Whose calendar holds the interview: the recruiter's own, or the assigned manager's."""
    from webapp.services.connect import link_of

    if actor.role is Role.COORDINATOR:
        if on_behalf_of_id is None:
            raise Invalid("Choose the hiring manager you are scheduling for.", field="on_behalf_of")
        if on_behalf_of_id not in av.assigned_manager_ids(session, actor.user_id):
            raise Forbidden("You can only schedule for hiring managers assigned to you.")
        manager = session.get(User, on_behalf_of_id)
        link = link_of(session, on_behalf_of_id)
        if link is None or link.status is not LinkStatus.ACTIVE or not link.target_calendar_id:
            raise ReconnectNeeded(
                f"{manager.name}'s calendar is not connected, so interviews "
                "cannot be written to it."
            )
        return link, manager
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Your role cannot schedule interviews.")
    link = link_of(session, actor.user_id)
    if link is None or link.status is not LinkStatus.ACTIVE or not link.target_calendar_id:
        raise ReconnectNeeded(
            "Connect your calendar (My profile → Calendar) before scheduling: "
            "interviews are written to it."
        )
    return link, None


def video_fields(session: Session, link: ProfileLink) -> dict[str, str | None]:
    """The conferencing the host's interviews use, as Content fields: "default" unless they
    chose a linked account, their own meeting room, or no video (then nothing)."""
    from webapp.services.video import OWN_ROOM

    pref = session.scalar(
        select(SchedulingPreference).where(
            SchedulingPreference.organisation_id == link.organisation_id,
            SchedulingPreference.user_id == link.user_id,
        )
    )
    choice = (pref.video_profile if pref and pref.video_profile else None) or "default"
    if choice == "none":
        return {}
    if choice == OWN_ROOM:
        if not pref.video_room_url or not pref.video_room_name:
            return {"conferencing": "default"}
        return {
            "conferencing": OWN_ROOM,
            "conferencing_name": pref.video_room_name,
            "conferencing_url": pref.video_room_url,
        }
    return {"conferencing": choice}


def _video_refused(session: Session, interview: Interview, link: ProfileLink) -> None:
    """The aggregator refused the host's chosen video (an account it does not know, such as a
    Webex profile from before): interviews use the default from now on, and the person's
    preferences page says why until they choose again."""
    pref = session.scalar(
        select(SchedulingPreference).where(
            SchedulingPreference.organisation_id == link.organisation_id,
            SchedulingPreference.user_id == link.user_id,
        )
    )
    if pref is not None and pref.video_profile not in (None, "default", "none"):
        pref.video_profile = None
        pref.video_fallback_at = utcnow()
    record(
        session,
        None,
        "interview.video_fallback",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
        detail={"user_id": link.user_id},
    )


# ---------------------------------------------------------------------------------------------
# Create


@dataclass(frozen=True)
class NewInterview:
    query: av.Query
    start: dt.datetime
    candidate_name: str
    candidate_email: str
    title: str
    notes: str = ""
    video: bool = True
    #: Zone the invitation shows the time in (the candidate's).
    candidate_tzid: str | None = None


#: No interview starts further ahead than this (the grid offers at most a year and a window).
MAX_AHEAD = dt.timedelta(days=400)


def check_start_in_range(start: dt.datetime) -> None:
    """Refuse a start no slot could have (far ahead, or an aware time without a zone)."""
    if start.tzinfo is None or start > utcnow() + MAX_AHEAD:
        raise Invalid("Pick a time slot from the free slots offered.", field="slot")


def check_title_and_name(title: str, candidate_name: str) -> None:
    """The event's title and the candidate's name: present, short, one printable line."""
    if not title.strip() or len(title) > MAX_TITLE or not printable(title):
        raise Invalid(
            f"Give the interview a title (up to {MAX_TITLE} characters, no control characters).",
            field="title",
        )
    if (
        not candidate_name.strip()
        or len(candidate_name) > MAX_NAME
        or not printable(candidate_name)
    ):
        raise Invalid("Enter the candidate's name (no control characters).", field="candidate_name")


def _check_details(new: NewInterview) -> None:
    check_title_and_name(new.title, new.candidate_name)
    if not valid_email(new.candidate_email.strip()):
        raise Invalid("Enter the candidate's email address.", field="candidate_email")
    if len(new.notes) > MAX_NOTES:
        raise Invalid(f"Notes are limited to {MAX_NOTES} characters.", field="notes")
    if not printable(new.notes, multiline=True):
        raise Invalid("Notes cannot contain control characters.", field="notes")
    if new.start.tzinfo is None or new.start <= utcnow():
        raise Invalid("Pick a time slot in the future.", field="slot")
    check_start_in_range(new.start)
    if new.candidate_tzid and not av.valid_zone(new.candidate_tzid):
        raise Invalid("Choose the candidate's time zone from the list.", field="candidate_tzid")


def write_targets(host: ProfileLink, members: Sequence[av.PanelMember]) -> list[ProfileLink]:
    """Calendars to write: the host's; for an Enterprise-linked host, also each Enterprise-linked
    panel member's own calendar (the organisation may write there directly)."""
    targets = [host]
    if host.mode is LinkMode.ENTERPRISE:
        for m in members:
            if (
                m.link.id != host.id
                and m.link.mode is LinkMode.ENTERPRISE
                and m.link.target_calendar_id
            ):
                targets.append(m.link)
    return targets


def create_interview(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    new: NewInterview,
    *,
    scheduling_link_id: int | None = None,
    check_slot: bool = True,
) -> tuple[Interview, str]:
    """Commit the interview and its event ids, then return it with the sealed write for the job."""
    _check_details(new)
    av.validate_query(new.query)
    members = av.resolve_panel(session, actor, new.query.panel_link_ids)
    host, manager = host_link_for(session, actor, new.query.on_behalf_of_id)
    room = av.resolve_room(session, actor, new.query.room)
    if check_slot and not av.slot_is_free(broker, members, new.query, new.start, room=room):
        raise SlotTaken(TAKEN if room is None else TAKEN_ROOM, asked=new.query, start=new.start)
    return commit_interview(
        session,
        sealer,
        actor,
        new,
        members,
        host,
        manager,
        scheduling_link_id=scheduling_link_id,
        room=room,
    )


def hold_for(
    members: Sequence[av.PanelMember],
    room: av.Room | None,
    start: dt.datetime,
    query: av.Query,
    duration: int | None = None,
) -> claims.Hold:
    """The time a booking of this panel and room claims: the one its availability check asked."""
    return claims.hold_of(
        av.subs_of(members, room),
        start,
        duration or query.duration,
        before=query.buffer_before,
        after=query.buffer_after,
    )


def commit_interview(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    new: NewInterview,
    members: Sequence[av.PanelMember],
    host: ProfileLink,
    manager: User | None,
    *,
    scheduling_link_id: int | None = None,
    invite_candidate: bool = True,
    room: av.Room | None = None,
    hold: claims.Hold | None = None,
) -> tuple[Interview, str]:
    """Commit the Interview and CreatedEvent rows (event ids fixed now) with the claim on its
    time (``hold``, by default the panel's and room's); return the sealed write. SlotTaken, with
    nothing committed, when another booking holds any of that time."""
    interview = Interview(
        uid=uuid.uuid4().hex,
        organisation_id=host.organisation_id,
        created_by_id=actor.user_id,
        on_behalf_of_id=manager.id if manager else None,
        host_link_id=host.id,
        panel_link_ids=[m.link.id for m in members],
        scheduling_link_id=scheduling_link_id,
        status=InterviewStatus.PENDING,
    )
    session.add(interview)
    session.flush()
    for n, link in enumerate(write_targets(host, members)):
        session.add(
            CreatedEvent(
                interview_id=interview.id,
                position=n,
                profile_link_id=link.id,
                calendar_id=link.target_calendar_id,
                event_id=f"{EVENT_PREFIX}{interview.uid}-{n}",
                status=EventStatus.PENDING,
            )
        )
    attendees = [(m.email, m.user.name) for m in members if m.link.id != host.id]
    if invite_candidate:
        attendees.append((new.candidate_email.strip(), new.candidate_name.strip()))
    if room is not None:  # the room accepts (or declines) the invitation like any attendee
        attendees.append((room.email, room.name))
    content = Content(
        summary=new.title.strip(),
        start=new.start,
        end=new.start + dt.timedelta(minutes=new.query.duration),
        description=new.notes.strip() or None,
        attendees=tuple(attendees),
        **(video_fields(session, host) if new.video else {}),
        tzid=new.candidate_tzid or new.query.tzid,
    )
    record(
        session,
        actor,
        "interview.scheduled",
        organisation_id=host.organisation_id,
        target_type="interview",
        target_id=interview.id,
        detail={
            "panel": len(members),
            "video": new.video,
            "room": room is not None,
            "calendars": len(write_targets(host, members)),
            "self_scheduled": scheduling_link_id is not None,
        },
    )
    if not claims.claim(
        session,
        host.organisation_id,
        interview.id,
        hold or hold_for(members, room, new.start, new.query),
    ):
        raise SlotTaken(TAKEN if room is None else TAKEN_ROOM, asked=new.query, start=new.start)
    session.commit()
    session.refresh(interview)
    return interview, sealer.seal_json(f"write:{interview.uid}", content.to_dict())


# ---------------------------------------------------------------------------------------------
# The write, delete and reschedule jobs (idempotent; raise WriteFailed so the queue retries)


def _links(session: Session, ids: Iterable[int]) -> dict[int, ProfileLink]:
    ids = set(ids)
    if not ids:
        return {}
    return {l.id: l for l in session.scalars(select(ProfileLink).where(ProfileLink.id.in_(ids)))}


def run_write(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    interview_id: int,
    sealed: str,
) -> str:
    """Upsert every pending event of the interview under its fixed event_id."""
    interview = session.get(Interview, interview_id)
    if interview is None:
        return "gone"
    content = sealer.open_json(f"write:{interview.uid}", sealed, max_length=MAX_WRITE_PAYLOAD)
    if content is None:
        log.error("interview %s: write payload could not be opened", interview.id)
        return "unreadable"
    if interview.status not in (InterviewStatus.PENDING, InterviewStatus.SCHEDULED):
        return "skipped"  # cancelled meanwhile: nothing may be (re)written
    data = Content.from_dict(content)
    links = _links(session, (e.profile_link_id for e in interview.events))
    failed = None
    for ev in interview.events:
        if ev.status is not EventStatus.PENDING:
            continue
        link = links[ev.profile_link_id]
        event = data.event(ev.event_id, with_attendees=ev.position == 0)
        try:
            fell_back = call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: _upsert(broker, creds, ev.calendar_id, event, on_refresh),
            )
        except ServiceError as exc:
            failed = exc
            continue
        if fell_back:
            _video_refused(session, interview, link)
        session.refresh(interview)
        if interview.status not in (InterviewStatus.PENDING, InterviewStatus.SCHEDULED):
            # Cancelled while we wrote: the cancel job or reconciliation removes the event.
            session.commit()
            return "cancelled meanwhile"
        ev.status = EventStatus.CONFIRMED
        session.commit()
    if failed is not None:
        raise WriteFailed(
            f"interview {interview.id}: calendar write not confirmed "
            f"({type(failed).__name__}); will retry"
        )
    if interview.status is InterviewStatus.PENDING:
        interview.status = InterviewStatus.SCHEDULED
        record(
            session,
            None,
            "interview.written",
            organisation_id=interview.organisation_id,
            target_type="interview",
            target_id=interview.id,
        )
    session.commit()
    return "written"


def _upsert(broker: CalendarBroker, creds, calendar_id: str, event: EventWrite, on_refresh) -> bool:
    """Upsert the event; if the aggregator refuses its chosen conferencing, write it again with
    the default conferencing (the interview still gets a link). True if it fell back."""
    try:
        broker.upsert_event(creds, calendar_id, event, on_refresh=on_refresh)
        return False
    except broker_errors.Invalid as exc:
        if "conferencing" not in exc.fields or event.conferencing_profile_id in (None, "default"):
            raise
    broker.upsert_event(
        creds,
        calendar_id,
        replace(
            event,
            conferencing_profile_id="default",
            conferencing_description=None,
            conferencing_join_url=None,
        ),
        on_refresh=on_refresh,
    )
    return True


def run_delete(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, interview_id: int
) -> str:
    """Delete every event of a cancelled interview (by our event_id; gone already is fine)."""
    interview = session.get(Interview, interview_id)
    if interview is None:
        return "gone"
    links = _links(session, (e.profile_link_id for e in interview.events))
    failed = None
    for ev in interview.events:
        if ev.status is not EventStatus.DELETING:
            continue
        link = links[ev.profile_link_id]
        try:
            _delete_event(session, broker, cipher, link, ev)
        except ServiceError as exc:
            failed = exc
            continue
        ev.status = EventStatus.DELETED
        session.commit()
    if failed is not None:
        raise WriteFailed(
            f"interview {interview.id}: calendar delete not confirmed "
            f"({type(failed).__name__}); will retry"
        )
    if interview.status is InterviewStatus.CANCELLING:
        interview.status = InterviewStatus.CANCELLED
        session.commit()
    return "deleted"


def _delete_event(session, broker, cipher, link: ProfileLink, ev: CreatedEvent) -> None:
    if link.status is LinkStatus.DISCONNECTED or not link.has_tokens:
        return  # nothing we can reach any more; the calendar owner keeps their copy

    def delete(creds, on_refresh):
        try:
            broker.delete_event(creds, ev.calendar_id, ev.event_id, on_refresh=on_refresh)
        except broker_errors.NotFound:
            pass  # already gone: that is what we wanted

    call_broker(session, broker, cipher, link, delete)


# ---------------------------------------------------------------------------------------------
# Cancel and reschedule


def cancel_interview(session: Session, actor: Actor, uid: str) -> Interview:
    """Mark the interview cancelling; the delete job removes its events."""
    interview = interview_for(session, actor, uid)
    if interview.status in (
        InterviewStatus.CANCELLED,
        InterviewStatus.CANCELLING,
        InterviewStatus.CANCELLED_IN_CALENDAR,
        InterviewStatus.FAILED,
    ):
        raise Invalid("This interview is already cancelled.")
    interview.status = InterviewStatus.CANCELLING
    interview.needs_notice = False
    for ev in interview.events:
        if ev.status is not EventStatus.DELETED:
            ev.status = EventStatus.DELETING
    claims.release(session, interview.id)
    record(session, actor, "interview.cancelled", target_type="interview", target_id=interview.id)
    session.commit()
    return interview


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
                lambda creds, on_refresh: broker.managed_events(
                    creds,
                    calendar_ids=calendars,
                    include_deleted=include_deleted,
                    localized=localized,
                    on_refresh=on_refresh,
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


def reschedule_interview(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    start: dt.datetime,
    query: av.Query | None = None,
    *,
    check_slot: bool = True,
    duration: int | None = None,
) -> tuple[Interview, str]:
    """Move the interview (optionally changing its length): the event keeps its event_id, so the
    same event moves, and everything else it says is written back as the calendar holds it."""
    interview = interview_for(session, actor, uid)
    if interview.status is not InterviewStatus.SCHEDULED:
        raise Invalid(
            "Only a scheduled interview can be moved."
            if interview.status is not InterviewStatus.PENDING
            else "The interview is still being written to the calendar; try again shortly."
        )
    if start.tzinfo is None or start <= utcnow():
        raise Invalid("Pick a time slot in the future.", field="slot")
    if duration is not None and duration not in av.DURATIONS:
        raise Invalid("Choose one of the listed durations.", field="duration")
    host_event = interview.events[0]
    current, problems = read_events(
        session,
        broker,
        cipher,
        [host_event],
        {interview.host_link_id: interview.host_link},
        localized=True,
    )
    if problems:
        raise AggregatorTrouble(next(iter(problems.values())))
    event = current.get(host_event.event_id)
    if event is None or event.deleted:
        raise Invalid("The event is no longer in the calendar, so it cannot be moved.")
    duration = duration or _duration(event)
    links = _links(session, interview.panel_link_ids)
    members = [
        m
        for m in _members_for(session, interview, links)
        if m.link.id in links and m.link.status is LinkStatus.ACTIVE
    ]
    q = query or av.Query(panel_link_ids=tuple(m.link.id for m in members), duration=duration)
    room = room_of(session, interview.organisation_id, event)
    asked = dataclasses.replace(
        q,
        duration=duration,
        room=room.email if room else None,
        on_behalf_of_id=interview.on_behalf_of_id,
    )
    if check_slot:
        # The interview's own event occupies its current time: ask for the new slot only.
        if members and not av.slot_is_free(
            broker,
            members,
            av.Query(
                panel_link_ids=q.panel_link_ids,
                duration=duration,
                required=q.required,
                buffer_before=q.buffer_before,
                buffer_after=q.buffer_after,
                tzid=q.tzid,
            ),
            start,
            room=room,
        ):
            raise SlotTaken(
                "That time is not free for the panel"
                + (" or the room" if room else "")
                + ". Pick another slot.",
                asked=asked,
                start=start,
                moving=interview.id,
            )
    content = Content.of_event(event, start, start + dt.timedelta(minutes=duration))
    interview.status = InterviewStatus.PENDING
    for ev in interview.events:
        if ev.status is EventStatus.CONFIRMED:
            ev.status = EventStatus.PENDING
    record(session, actor, "interview.rescheduled", target_type="interview", target_id=interview.id)
    # The old time is ours to give up; the new one must be claimed like any booking's.
    claims.release(session, interview.id)
    if not claims.claim(
        session,
        interview.organisation_id,
        interview.id,
        hold_for(members, room, start, q, duration),
    ):
        raise SlotTaken(
            TAKEN if room is None else TAKEN_ROOM, asked=asked, start=start, moving=interview.id
        )
    session.commit()
    return interview, sealer.seal_json(f"write:{interview.uid}", content.to_dict())


def room_of(session: Session, organisation_id: int, event: ManagedEvent | None) -> av.Room | None:
    """The linked room the interview's event invites, if any (it must be free at a new time)."""
    if event is None:
        return None
    rooms = {r.email: r for r in av.room_choices(session, organisation_id)}
    return next((rooms[a.email.lower()] for a in event.attendees if a.email.lower() in rooms), None)


def _duration(event: ManagedEvent | None) -> int:
    if (
        event is not None
        and isinstance(event.start, dt.datetime)
        and isinstance(event.end, dt.datetime)
    ):
        return max(5, int((event.end - event.start).total_seconds() // 60))
    return 60


def duration_of(event: ManagedEvent | None) -> int:
    """The interview's length as its event says, snapped to an offered duration."""
    minutes = _duration(event)
    return min(av.DURATIONS, key=lambda d: abs(d - minutes))


def _members_for(
    session: Session, interview: Interview, links: dict[int, ProfileLink]
) -> list[av.PanelMember]:
    from models import Organisation

    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({l.user_id for l in links.values()} or {-1}))
        )
    }
    org = session.get(Organisation, interview.organisation_id)
    hours = av.hours_for(session, list(users.values()), org)
    return [
        av.PanelMember(links[i], users[links[i].user_id], hours[links[i].user_id])
        for i in interview.panel_link_ids
        if i in links and links[i].user_id in users
    ]


# ---------------------------------------------------------------------------------------------
# Reading interviews back


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


def view_interview(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, actor: Actor, uid: str
) -> InterviewView:
    """The interview with what its calendar event says now (time, attendees' responses, join link)."""
    interview = interview_for(session, actor, uid, to_change=False)
    links = _links(session, interview.panel_link_ids)
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(
                User.id.in_({l.user_id for l in links.values()} | {interview.on_behalf_of_id or -1})
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
        on_behalf_of=users.get(interview.on_behalf_of_id),
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
            .where(_visible(session, actor))
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
                _changeable(session, actor), Interview.needs_notice.is_(True)
            )
        )
        or 0
    )


# ---------------------------------------------------------------------------------------------
# Changes flowing back


def _mark_cancelled_in_calendar(session: Session, interview: Interview) -> None:
    interview.status = InterviewStatus.CANCELLED_IN_CALENDAR
    interview.needs_notice = True
    claims.release(session, interview.id)
    record(
        session,
        None,
        "interview.cancelled_in_calendar",
        organisation_id=interview.organisation_id,
        target_type="interview",
        target_id=interview.id,
    )


def apply_changes(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link_id: int,
    changes_since: dt.datetime | None,
) -> dict[str, int]:
    """Read our events changed since ``changes_since`` for one link and update their status."""
    link = session.get(ProfileLink, link_id)
    counts = {"seen": 0, "cancelled_in_calendar": 0, "confirmed": 0}
    if link is None or link.status is not LinkStatus.ACTIVE:
        return counts
    try:
        changed = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.managed_events(
                creds, last_modified=changes_since, include_deleted=True, on_refresh=on_refresh
            ),
        )
    except ServiceError as exc:
        raise WriteFailed(
            f"link {link_id}: changes could not be read ({type(exc).__name__})"
        ) from None
    ids = {e.event_id: e for e in changed if e.event_id and e.event_id.startswith(EVENT_PREFIX)}
    if not ids:
        return counts
    rows = list(
        session.scalars(
            select(CreatedEvent).where(
                CreatedEvent.profile_link_id == link_id, CreatedEvent.event_id.in_(ids)
            )
        )
    )
    for row in rows:
        event = ids[row.event_id]
        counts["seen"] += 1
        interview = row.interview
        if event.deleted:
            if (
                row.status is EventStatus.CONFIRMED
                and interview.status is InterviewStatus.SCHEDULED
            ):
                row.status = EventStatus.DELETED
                _mark_cancelled_in_calendar(session, interview)
                counts["cancelled_in_calendar"] += 1
        elif row.status is EventStatus.PENDING and interview.status is InterviewStatus.PENDING:
            pass  # the write job confirms it
    session.commit()
    return counts


def reconcile(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, now: dt.datetime | None = None
) -> dict[str, int]:
    """Compare the ids we hold with each link's managed events and repair drift both ways.

    Only links we ever wrote an event to are read: our events carry ids from CreatedEvent rows,
    committed before any write, so a calendar without such rows cannot hold one of ours. A
    domain of thousands of linked mailboxes costs one read per interviewing calendar, not one
    per mailbox."""
    now = now or utcnow()
    counts = defaultdict(int)
    links = list(
        session.scalars(
            select(ProfileLink).where(
                ProfileLink.status == LinkStatus.ACTIVE,
                ProfileLink.id.in_(select(CreatedEvent.profile_link_id).distinct()),
            )
        )
    )
    for link in links:
        try:
            events = call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.managed_events(
                    creds, include_deleted=True, on_refresh=on_refresh
                ),
            )
        except ServiceError:
            counts["links_unreachable"] += 1
            continue
        held = {
            r.event_id: r
            for r in session.scalars(
                select(CreatedEvent).where(CreatedEvent.profile_link_id == link.id)
            )
        }
        present = {e.event_id: e for e in events if e.event_id and not e.deleted}
        # Theirs, not ours: events carrying our prefix that no live interview holds.
        for event_id, event in present.items():
            if not event_id.startswith(EVENT_PREFIX):
                continue
            row = held.get(event_id)
            if row is None or row.interview.status not in (
                InterviewStatus.PENDING,
                InterviewStatus.SCHEDULED,
            ):
                try:
                    _delete_event(
                        session, broker, cipher, link, _Orphan(event.calendar_id, event_id)
                    )
                    counts["orphans_deleted"] += 1
                    if row is not None:
                        row.status = EventStatus.DELETED
                except ServiceError:
                    counts["orphans_left"] += 1
        # Ours, not theirs.
        for event_id, row in held.items():
            interview = row.interview
            there = event_id in present
            if row.status is EventStatus.CONFIRMED and not there:
                row.status = EventStatus.DELETED
                if interview.status is InterviewStatus.SCHEDULED:
                    _mark_cancelled_in_calendar(session, interview)
                    counts["cancelled_in_calendar"] += 1
            elif (
                row.status is EventStatus.PENDING
                and there
                and interview.status is InterviewStatus.SCHEDULED
            ):
                row.status = EventStatus.CONFIRMED  # a reschedule whose job never confirmed
                counts["confirmed"] += 1
            elif (
                row.status is EventStatus.PENDING
                and not there
                and interview.status is InterviewStatus.PENDING
                and now - interview.updated_at > PENDING_GIVE_UP
            ):
                row.status = EventStatus.DELETED
                interview.status = InterviewStatus.FAILED
                interview.needs_notice = True
                claims.release(session, interview.id)
                record(
                    session,
                    None,
                    "interview.write_failed",
                    organisation_id=interview.organisation_id,
                    target_type="interview",
                    target_id=interview.id,
                )
                counts["failed"] += 1
            elif (
                row.status is EventStatus.PENDING
                and there
                and interview.status is InterviewStatus.PENDING
                and now - interview.updated_at > PENDING_GIVE_UP
            ):
                row.status = EventStatus.CONFIRMED
                counts["confirmed"] += 1
            elif row.status is EventStatus.DELETING and not there:
                row.status = EventStatus.DELETED
                counts["deleted"] += 1
        session.commit()
    # Interviews whose events are all settled move to their final status.
    for interview in session.scalars(
        select(Interview).where(
            Interview.status.in_((InterviewStatus.PENDING, InterviewStatus.CANCELLING))
        )
    ):
        states = {e.status for e in interview.events}
        if interview.status is InterviewStatus.PENDING and states == {EventStatus.CONFIRMED}:
            interview.status = InterviewStatus.SCHEDULED
        elif interview.status is InterviewStatus.CANCELLING and states <= {EventStatus.DELETED}:
            interview.status = InterviewStatus.CANCELLED
    session.commit()
    return dict(counts)


@dataclass(frozen=True)
class _Orphan:
    calendar_id: str
    event_id: str


# ---------------------------------------------------------------------------------------------
# Preferences: working hours and video provider


def preference_of(
    session: Session, organisation_id: int, user_id: int | None
) -> SchedulingPreference | None:
    query = select(SchedulingPreference).where(
        SchedulingPreference.organisation_id == organisation_id
    )
    query = query.where(
        SchedulingPreference.user_id.is_(None)
        if user_id is None
        else SchedulingPreference.user_id == user_id
    )
    return session.scalar(query)


def parse_minutes(value: str, name: str) -> int:
    """``HH:MM`` (00:00–24:00) as minutes after midnight."""
    try:
        hh, mm = value.split(":")
        total = int(hh) * 60 + int(mm)
    except (ValueError, AttributeError):
        raise Invalid("Times look like 09:00.", field=name) from None
    if not 0 <= total <= 24 * 60 or not 0 <= int(mm) < 60:
        raise Invalid("Times look like 09:00.", field=name)
    return total


def save_preferences(
    session: Session,
    actor: Actor,
    *,
    start: str,
    end: str,
    weekdays: Sequence[str],
    video_profile: str | None,
    allowed_video: Iterable[str] = (),
    video_room_url: str | None = None,
    video_room_name: str | None = None,
) -> SchedulingPreference:
    """Save the user's own working hours (in their own time zone) and video provider (with
    their own meeting-room link, if they give one)."""
    from webapp.services import video

    start_minute, end_minute = parse_minutes(start, "start"), parse_minutes(end, "end")
    if end_minute <= start_minute:
        raise Invalid("The working day must end after it starts.", field="end")
    days = "".join(sorted({d for d in weekdays if d in "1234567" and len(d) == 1}))
    if not days:
        raise Invalid("Choose at least one working day.", field="weekdays")
    allowed = {"default", "none", video.OWN_ROOM, *allowed_video}
    if video_profile and video_profile not in allowed:
        raise Invalid("Choose one of the listed video providers.", field="video_profile")
    room_url = room_name = None
    if (video_room_url or "").strip() or video_profile == video.OWN_ROOM:
        room_url = video.clean_room_url(video_room_url)
        room_name = video.clean_room_name(video_room_name)
    pref = preference_of(session, actor.organisation_id, actor.user_id)
    if pref is None:
        pref = SchedulingPreference(organisation_id=actor.organisation_id, user_id=actor.user_id)
        session.add(pref)
    pref.start_minute, pref.end_minute, pref.weekdays = start_minute, end_minute, days
    pref.video_profile = video_profile or None
    pref.video_room_url, pref.video_room_name = room_url, room_name
    pref.video_fallback_at = None
    record(
        session,
        actor,
        "scheduling.preferences_changed",
        target_type="user",
        target_id=actor.user_id,
    )
    session.commit()
    return pref
