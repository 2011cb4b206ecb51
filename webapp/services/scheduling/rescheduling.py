"""Moving an interview: the same event (same ``event_id``) at a new time, claimed like any
booking, with everything else it says written back as the calendar holds it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import ManagedEvent
from models import (
    EventStatus,
    Interview,
    InterviewStatus,
    LinkStatus,
    utcnow,
)
from webapp.security import Sealer, TokenCipher
from webapp.services import Actor, JobQueue, claims
from webapp.services.audit import record
from webapp.services.availability import free_slots, model, roster
from webapp.services.errors import AggregatorTrouble, Invalid, SlotTaken
from webapp.services.pools import ledger, limits, sitting
from webapp.services.scheduling import notices
from webapp.services.scheduling.access import interview_for, links_by_id, panel_members
from webapp.services.scheduling.booking import TAKEN, TAKEN_ROOM, hold_for
from webapp.services.scheduling.content import Content
from webapp.services.scheduling.reading import TAKEN_PLACE, has_started, read_events


def reschedule_interview(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    start: dt.datetime,
    query: model.Query | None = None,
    *,
    check_slot: bool = True,
    duration: int | None = None,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
) -> tuple[Interview, str]:
    """Move the interview (optionally changing its length): the event keeps its event_id, so the
    same event moves, and everything else it says is written back as the calendar holds it.
    With ``notify``, the candidate is emailed the new time (with an updated .ics)."""
    interview = interview_for(session, actor, uid)
    return move_interview(
        session,
        broker,
        cipher,
        sealer,
        actor,
        interview,
        start,
        query,
        check_slot=check_slot,
        duration=duration,
        jobs=jobs,
        notify=notify,
    )


def move_interview(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    sealer: Sealer,
    actor: Actor,
    interview: Interview,
    start: dt.datetime,
    query: model.Query | None = None,
    *,
    check_slot: bool = True,
    duration: int | None = None,
    jobs: JobQueue,
    notify: notices.Notify | None = None,
    claim_skip: Collection[tuple[str, dt.datetime]] = (),
) -> tuple[Interview, str]:
    """``reschedule_interview`` for an interview the caller has already found the actor may
    change (a candidate's own, through their link): the one path every move takes.
    ``claim_skip``: buckets the interview's siblings (a loop's other sessions) hold already."""
    if interview.status is not InterviewStatus.SCHEDULED:
        raise Invalid(
            "Only a scheduled interview can be moved."
            if interview.status is not InterviewStatus.PENDING
            else "The interview is still being written to the calendar; try again shortly."
        )
    if start.tzinfo is None or start <= utcnow():
        raise Invalid("Pick a time slot in the future.", field="slot")
    if duration is not None and duration not in model.DURATIONS:
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
    if has_started(event):
        raise Invalid(TAKEN_PLACE)
    duration = duration or _duration(event)
    links = links_by_id(session, interview.panel_link_ids)
    members = [
        m
        for m in panel_members(session, interview, links)
        if m.link.id in links and m.link.status is LinkStatus.ACTIVE
    ]
    q = query or model.Query(panel_link_ids=tuple(m.link.id for m in members), duration=duration)
    room = room_of(session, interview.organisation_id, event)
    asked = dataclasses.replace(
        q,
        duration=duration,
        room=room.email if room else None,
        on_behalf_of_id=interview.on_behalf_of_id,
    )
    # Whether its shadows are free at the new time: their own calls, beside the panel's and
    # answered before the locked part below (a move never waits on them holding its locks).
    trainees = sitting.ask_moving(
        session, broker, interview, start, duration, q.buffer_before, q.buffer_after
    )
    if check_slot:
        # The interview's own event occupies its current time: ask for the new slot only.
        if members and not free_slots.slot_is_free(
            broker,
            members,
            model.Query(
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
    answers = sitting.collect(trainees)
    # People picked from a pool keep their pick: their limits must hold on the new day too
    # (locked until the commit, so a concurrent move or booking counts this one).
    limits.check_move(session, interview.organisation_id, interview.id, start)
    content = Content.of_event(event, start, start + dt.timedelta(minutes=duration))
    interview.status = InterviewStatus.PENDING
    for ev in interview.events:
        if ev.status is EventStatus.CONFIRMED:
            ev.status = EventStatus.PENDING
    record(session, actor, "interview.rescheduled", target_type="interview", target_id=interview.id)
    # The old time is ours to give up; the new one must be claimed like any booking's.
    claims.release(session, interview.id)
    ledger.move(session, interview.id, start)
    if not claims.claim(
        session,
        interview.organisation_id,
        interview.id,
        hold_for(members, room, start, q, duration),
        skip=claim_skip,
    ):
        raise SlotTaken(
            TAKEN if room is None else TAKEN_ROOM, asked=asked, start=start, moving=interview.id
        )
    # A shadow sitting in comes along where still free, and is left out otherwise.
    content = sitting.follow_move(
        session,
        interview,
        content,
        start,
        duration,
        q.buffer_before,
        q.buffer_after,
        answers=answers,
    )
    session.commit()
    payload = sealer.seal_json(f"write:{interview.uid}", content.to_dict())
    jobs.enqueue("scheduling.write_interview", interview.id, payload)
    if notify is not None:
        notices.notify_candidate(
            session,
            notify,
            actor,
            interview,
            "rescheduled",
            event=event,
            jobs=jobs,
            start=content.start,
            end=content.end,
        )
    return interview, payload


def without_full_days(session: Session, interview: Interview, grid: model.Grid) -> model.Grid:
    """The reschedule page's grid without the times a move would be refused at because someone
    picked from a pool is at a limit there (``pools.limits``; the move checks again)."""
    slots = limits.without_full(session, interview.organisation_id, interview.id, grid.slots)
    return grid if len(slots) == len(grid.slots) else dataclasses.replace(grid, slots=slots)


def room_of(
    session: Session, organisation_id: int, event: ManagedEvent | None
) -> model.Room | None:
    """The linked room the interview's event invites, if any (it must be free at a new time)."""
    if event is None:
        return None
    rooms = {r.email: r for r in roster.room_choices(session, organisation_id)}
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
    return min(model.DURATIONS, key=lambda d: abs(d - minutes))
