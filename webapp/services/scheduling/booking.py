"""Booking an interview and cancelling it.

One booking per slot: every booking (web form, API, candidate link, reschedule) claims its time
for each panel member and the room in the transaction that commits it (``claims``), so of two
overlapping bookings the database lets exactly one commit; the other gets SlotTaken.

Nothing lost, nothing doubled: the Interview and CreatedEvent rows (with our fixed ``event_id``s)
are committed before the first broker call; the write job (``writes``) then upserts by
``event_id``, so a retry never makes a second event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewLoad,
    InterviewStatus,
    LinkMode,
    Pool,
    ProfileLink,
    SchedulingPreference,
    User,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, claims, printable
from webapp.services.accounts import valid_email
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, roster, windows
from webapp.services.errors import Invalid, SlotTaken
from webapp.services.loops import ends
from webapp.services.pools import asks as pool_asks
from webapp.services.pools import ledger, picking, sitting
from webapp.services.scheduling import notices
from webapp.services.scheduling.access import host_link_for, interview_for
from webapp.services.scheduling.content import (
    EVENT_PREFIX,
    MAX_NAME,
    MAX_NOTES,
    MAX_TITLE,
    Content,
)
from webapp.services.scheduling.reading import TAKEN_PLACE, has_started

TAKEN = "That time was just taken. Pick another slot."


TAKEN_ROOM = "That time was just taken (or the room is booked). Pick another slot."


TAKEN_POOL = (
    "Nobody from the pool can take that time any more (booked meanwhile, or at their limit). "
    "Pick another slot."
)


@dataclass(frozen=True)
class NewInterview:
    query: model.Query
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
    if new.candidate_tzid and not model.valid_zone(new.candidate_tzid):
        raise Invalid("Choose the candidate's time zone from the list.", field="candidate_tzid")


class Conferencing(TypedDict, total=False):
    """The conferencing fields of ``Content`` a host's interviews get."""

    conferencing: str
    conferencing_name: str
    conferencing_url: str


def video_fields(session: Session, link: ProfileLink) -> Conferencing:
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
    if choice == OWN_ROOM and pref is not None:  # (only a saved preference names it)
        if not pref.video_room_url or not pref.video_room_name:
            return {"conferencing": "default"}
        return {
            "conferencing": OWN_ROOM,
            "conferencing_name": pref.video_room_name,
            "conferencing_url": pref.video_room_url,
        }
    return {"conferencing": choice}


def write_targets(host: ProfileLink, members: Sequence[model.PanelMember]) -> list[ProfileLink]:
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
    jobs: JobQueue,
) -> tuple[Interview, str]:
    """Commit the interview and its event ids, queue the ``scheduling.write_interview`` job,
    and return the interview with the sealed write the job was given."""
    _check_details(new)
    windows.validate_query(new.query)
    members = roster.resolve_panel(
        session,
        actor,
        new.query.panel_link_ids,
        on_behalf_of_id=new.query.on_behalf_of_id,
        allow_empty=bool(new.query.pools),
    )
    asks = pool_asks.resolve(session, actor, new.query, members)
    host, manager = host_link_for(session, actor, new.query.on_behalf_of_id)
    room = roster.resolve_room(session, actor, new.query.room)
    picked_from: dict[int, int] = {}
    brought: list[tuple[model.PanelMember, int]] = []
    if asks:  # who is free comes from the aggregator: pool picks always check the slot
        q = new.query
        trainees = [  # who of the shadows is free: their own call, beside the panel's
            (a, sitting.ask_free(broker, a.pool, a.shadows, new.start, q.duration, *_buffers(q)))
            for a in asks
            if a.shadows
        ]
        free = free_slots.free_at(broker, members, new.query, new.start, room=room, asks=asks)
        if free is None:
            raise SlotTaken(TAKEN if room is None else TAKEN_ROOM, asked=new.query, start=new.start)
        end = new.start + dt.timedelta(minutes=new.query.duration)
        if trainees:  # everyone the booking may seat, locked at once (one order: no deadlock)
            picking.lock_people(
                session,
                host.organisation_id,
                [m.user.id for a in asks for m in (*a.candidates, *a.shadows)],
            )
        picks = pool_asks.pick_at_booking(
            session, actor, asks, new.query, new.start, end, free, members
        )
        if picks is None:
            raise SlotTaken(TAKEN_POOL, asked=new.query, start=new.start)
        picked, picked_from = pool_asks.members_of(picks)
        members = members + picked
        for a, pending in trainees:
            found = sitting.choose(
                session,
                host.organisation_id,
                a.pool,
                a.shadows,
                sitting.answer(pending),
                new.start,
                q.duration,
                *_buffers(q),
                on_panel={m.user.id for m in members},
                avoid={m.user.id for m, _p in brought},
            )
            if found is not None:
                brought.append((found[0], a.pool.id))
    elif check_slot and not free_slots.slot_is_free(
        broker, members, new.query, new.start, room=room
    ):
        raise SlotTaken(TAKEN if room is None else TAKEN_ROOM, asked=new.query, start=new.start)
    interview, payload = commit_interview(
        session,
        sealer,
        actor,
        new,
        members,
        host,
        manager,
        scheduling_link_id=scheduling_link_id,
        room=room,
        picked_from=picked_from,
        shadows=brought,
    )
    jobs.enqueue("scheduling.write_interview", interview.id, payload)
    return interview, payload


def _buffers(query: model.Query) -> tuple[int, int]:
    return query.buffer_before, query.buffer_after


def picked_names(session: Session, interview: Interview) -> str:
    """Who was picked from a pool for the interview ("Sam Patel (Backend)"), or ""."""
    rows = session.execute(
        select(User.name, Pool.name)
        .join(InterviewLoad, InterviewLoad.user_id == User.id)
        .join(Pool, Pool.id == InterviewLoad.pool_id)
        .where(InterviewLoad.interview_id == interview.id, InterviewLoad.is_shadow.is_(False))
        .order_by(User.name)
    ).all()
    return ", ".join(f"{person} ({pool})" for person, pool in rows)


def hold_for(
    members: Sequence[model.PanelMember],
    room: model.Room | None,
    start: dt.datetime,
    query: model.Query,
    duration: int | None = None,
) -> claims.Hold:
    """The time a booking of this panel and room claims: the one its availability check asked."""
    return claims.hold_of(
        free_slots.subs_of(members, room),
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
    members: Sequence[model.PanelMember],
    host: ProfileLink,
    manager: User | None,
    *,
    scheduling_link_id: int | None = None,
    invite_candidate: bool = True,
    room: model.Room | None = None,
    hold: claims.Hold | None = None,
    picked_from: Mapping[int, int] | None = None,
    shadows: Sequence[tuple[model.PanelMember, int]] = (),
) -> tuple[Interview, str]:
    """Commit the Interview and CreatedEvent rows (event ids fixed now) with the claim on its
    time (``hold``, by default the panel's and room's) and the panel's rows of the load ledger
    (``picked_from``: user id → pool, for members picked from a pool); return the sealed
    write. SlotTaken, with nothing committed, when another booking holds any of that time."""
    interview, content = stage_interview(
        session,
        actor,
        new,
        members,
        host,
        manager,
        scheduling_link_id=scheduling_link_id,
        invite_candidate=invite_candidate,
        room=room,
        picked_from=picked_from,
    )
    if not claims.claim(
        session,
        host.organisation_id,
        interview.id,
        hold or hold_for(members, room, new.start, new.query),
    ):
        raise SlotTaken(TAKEN if room is None else TAKEN_ROOM, asked=new.query, start=new.start)
    seen: set[tuple[str, dt.datetime]] = set()
    for member, pool_id in shadows:  # ``shadows``: (person, pool) sitting in, when still free
        content = (
            sitting.seat(
                session,
                host.organisation_id,
                interview.id,
                member,
                pool_id,
                content,
                *_buffers(new.query),
                seen,
            )
            or content
        )
    session.commit()
    session.refresh(interview)
    return interview, seal_write(sealer, interview, content)


def seal_write(sealer: Sealer, interview: Interview, content: Content) -> str:
    """The write job's sealed argument: the event content, bound to the interview."""
    return sealer.seal_json(f"write:{interview.uid}", content.to_dict())


def stage_interview(
    session: Session,
    actor: Actor,
    new: NewInterview,
    members: Sequence[model.PanelMember],
    host: ProfileLink,
    manager: User | None,
    *,
    scheduling_link_id: int | None = None,
    invite_candidate: bool = True,
    room: model.Room | None = None,
    description: str | None = None,
    picked_from: Mapping[int, int] | None = None,
) -> tuple[Interview, Content]:
    """Add (and flush) the Interview and CreatedEvent rows, the panel's rows of the load
    ledger and the audit entry, and return what its event says; the caller claims its time and
    commits (one booking, or every session of a loop in one transaction)."""
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
    ledger.write(
        session,
        host.organisation_id,
        interview.id,
        [m.user.id for m in members],
        new.start,
        picked_from,
    )
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
        description=description or new.notes.strip() or None,
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
            **({"pool_picks": len(picked_from)} if picked_from else {}),
        },
    )
    return interview, content


def cancel_interview(
    session: Session,
    actor: Actor,
    uid: str,
    *,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
) -> Interview:
    """Mark the interview cancelling; the delete job removes its events. With ``notify``, the
    candidate is emailed (their address and the time read from the event before it goes), and an
    interview whose event has begun is refused (its time has passed: nothing to cancel)."""
    return cancel_found(
        session, actor, interview_for(session, actor, uid), jobs=jobs, notify=notify
    )


def cancel_found(
    session: Session,
    actor: Actor,
    interview: Interview,
    *,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
) -> Interview:
    """``cancel_interview`` for an interview the caller has already found the actor may change
    (a candidate's own, through their link)."""
    if interview.status in (
        InterviewStatus.CANCELLED,
        InterviewStatus.CANCELLING,
        InterviewStatus.CANCELLED_IN_CALENDAR,
        InterviewStatus.FAILED,
    ):
        raise Invalid("This interview is already cancelled.")
    event = (
        notices.current_event(session, notify.broker, notify.cipher, interview)
        if notify is not None
        else None
    )
    if has_started(event):  # the calendar has told everyone; it cannot be taken back
        raise Invalid(TAKEN_PLACE)
    mark_cancelling(session, interview, actor)
    record(session, actor, "interview.cancelled", target_type="interview", target_id=interview.id)
    session.commit()
    jobs.enqueue("scheduling.delete_interview", interview.id)
    if notify is not None:
        notices.notify_candidate(
            session, notify, actor, interview, "cancelled", event=event, jobs=jobs
        )
    return interview


def mark_cancelling(session: Session, interview: Interview, actor: Actor | None = None) -> None:
    """The interview is being cancelled: each of its events is to be deleted (``writes.run_delete``
    does it, counting an event already gone as deleted) and its time is free for other bookings.
    A loop whose last live session this was is cancelled with it (``loops.ends``). The caller
    audits the interview's cancellation and commits."""
    interview.status = InterviewStatus.CANCELLING
    interview.needs_notice = False
    for ev in interview.events:
        if ev.status is not EventStatus.DELETED:
            ev.status = EventStatus.DELETING
    claims.release(session, interview.id)
    ends.end_if_done(session, interview, actor)
