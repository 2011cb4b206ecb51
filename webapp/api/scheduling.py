"""Scheduling: who may be on a panel, the panel's availability (free/busy only), and interviews.
The candidate self-scheduling links are in webapp/api/scheduling_links.py.

Same services as the web pages (webapp.services.availability and .scheduling), same jobs for the
calendar writes. Coordinators see free/busy and the app's own interviews only.
"""

from __future__ import annotations

import datetime as dt

from flask import g

from models import Organisation, Role
from webapp import deps
from webapp.api.core import actor, db, operation, required_broker
from webapp.api.pagination import by_key
from webapp.api.schemas import scheduling as s
from webapp.api.schemas.common import PageQuerySchema
from webapp.services.availability import free_slots, model, roster
from webapp.services.loops import ordinary
from webapp.services.scheduling import booking, reading
from webapp.services.scheduling.content import MAX_WRITE_PAYLOAD, Content

SCHEDULERS = (Role.RECRUITER, Role.COORDINATOR)
UID = "<string(length=32):uid>"


def requested_zone(tzid: str | None) -> str:
    if tzid:
        return tzid
    user = g.api_user
    if user.timezone:
        return user.timezone
    org = db().get(Organisation, user.organisation_id)
    return (org.timezone if org else None) or "Europe/London"


def _query(values: dict) -> model.Query:
    return model.Query(
        panel_link_ids=tuple(values["panel"]),
        duration=values["duration"],
        start_date=values.get("start_date"),
        days=values.get("days", 5),
        required=values["required"] or "all",
        buffer_before=values["buffer_before"],
        buffer_after=values["buffer_after"],
        tzid=requested_zone(values["tzid"]),
        on_behalf_of_id=values["on_behalf_of"],
        room=values.get("room"),
    )


@operation(
    "GET",
    "/panel-members",
    summary="People I may put on a panel",
    tag="Scheduling",
    roles=SCHEDULERS,
    response=s.PanelMemberListSchema,
)
def panel_members():
    """Everyone in the organisation with a usable calendar; for a coordinator, their managers."""
    choices = roster.panel_choices(db(), actor())
    org = db().get(Organisation, actor().organisation_id)
    hours = roster.hours_for(db(), [user for _link, user in choices], org)
    return {
        "items": [
            {
                "link_id": link.id,
                "user_id": user.id,
                "name": user.name,
                "timezone": hours[user.id].tzid,
            }
            for link, user in choices
        ]
    }


@operation(
    "GET",
    "/rooms",
    summary="Rooms I may book",
    tag="Scheduling",
    roles=SCHEDULERS,
    response=s.RoomListSchema,
)
def rooms():
    """Rooms the organisation's IT admin linked through Enterprise Connect."""
    return {
        "items": [
            {"email": r.email, "name": r.name}
            for r in roster.room_choices(db(), actor().organisation_id)
        ]
    }


@operation(
    "GET",
    "/availability",
    summary="Panel availability (free/busy)",
    tag="Scheduling",
    roles=SCHEDULERS,
    query=s.AvailabilityQuerySchema,
    response=s.AvailabilitySchema,
    errors=(403, 409, 503),
)
def availability(query):
    """Busy times of each panel member and the common free slots: times and status only, never
    what the events are."""
    grid = free_slots.grid(db(), required_broker(), deps.cipher(), actor(), _query(query))
    # The aggregator names who is free by account: a delegated calendar by its owner's.
    by_sub: dict[str, list[int]] = {}
    for m in grid.members:
        by_sub.setdefault(m.link.aggregator_sub, []).append(m.link.id)
    return {
        "window_start": grid.window.start,
        "window_end": grid.window.end,
        "tzid": grid.query.tzid,
        "members": [
            {
                "link_id": m.link.id,
                "name": m.user.name,
                "busy": grid.busy.get(m.link.id),
                "problem": grid.busy_problems.get(m.link.id),
                "working_hours": _hours(m.hours),
            }
            for m in grid.members
        ],
        "slots": [
            {
                "start": slot.start,
                "end": slot.end,
                "free_link_ids": sorted(i for p in slot.participants for i in by_sub.get(p, ())),
            }
            for slot in grid.slots
        ],
        "room": {"email": grid.room.email, "name": grid.room.name} if grid.room else None,
    }


def _hours(hours: model.Hours) -> dict:
    return {
        "start": f"{hours.start_minute // 60:02d}:{hours.start_minute % 60:02d}",
        "end": f"{hours.end_minute // 60:02d}:{hours.end_minute % 60:02d}",
        "weekdays": hours.weekdays,
        "tzid": hours.tzid,
        "tzid_set": hours.zone_set,
    }


def _timed(value):
    return value if isinstance(value, dt.datetime) else None


def _listed(interview, event) -> dict:
    live = event is not None and not event.deleted
    return {
        "uid": interview.uid,
        "status": interview.status.value,
        "title": event.summary if event is not None else None,
        "start": _timed(event.start) if live else None,
        "end": _timed(event.end) if live else None,
        "in_calendar": live,
        "on_behalf_of_id": interview.on_behalf_of_id,
        "panel_link_ids": list(interview.panel_link_ids or []),
        "created_at": interview.created_at,
    }


def _requested(interview, payload: str, *, with_title: bool) -> dict:
    """An interview just created or moved: its times (and for a new one its title) as requested,
    since the calendar write is queued and there is no event to read yet; ``in_calendar`` false
    says so. A move answers without the title: it was not part of the request, and an answer may
    be kept (sealed) for an Idempotency-Key, where calendar content must not rest; a new
    interview's title is echoed from the request instead (``echoed``)."""
    out = _listed(interview, None)
    content = deps.sealer().open_json(
        f"write:{interview.uid}", payload, max_length=MAX_WRITE_PAYLOAD
    )
    if content is not None:
        asked = Content.from_dict(content)
        out.update(start=asked.start, end=asked.end)
        if with_title:
            out["title"] = asked.summary
    return out


def _detail(view: reading.InterviewView) -> dict:
    event = view.event
    out = _listed(view.interview, event)
    out.update(
        join_url=event.join_url if event is not None else None,
        attendees=list(event.attendees) if event is not None else [],
        panel=[{"user_id": u.id, "name": u.name} for u in view.panel],
        problem=view.problem,
    )
    return out


@operation(
    "GET",
    "/interviews",
    summary="My interviews",
    tag="Scheduling",
    roles=SCHEDULERS,
    query=PageQuerySchema,
    response=s.InterviewPageSchema,
)
def interviews(query):
    """Interviews I scheduled, host or sit on the panel of, or (coordinators) scheduled for my
    managers; newest first.
    Times come from the calendar."""
    listed = reading.list_interviews(db(), deps.broker(), deps.cipher(), actor())
    page = by_key(
        "interviews",
        actor(),
        listed.all,
        lambda x: x.interview.id,
        limit=query["limit"],
        cursor=query["cursor"],
        descending=True,
    )
    return {
        "items": [_listed(x.interview, x.event) for x in page.items],
        "next_cursor": page.next_cursor,
    }


@operation(
    "POST",
    "/interviews",
    summary="Schedule an interview",
    tag="Scheduling",
    roles=SCHEDULERS,
    body=s.NewInterviewSchema,
    response=s.InterviewSchema,
    status=201,
    errors=(403, 409, 503),
    echoed=("title",),
)
def create_interview(body):
    """Check the slot is still free, record the interview and write it to the host's calendar
    (asynchronously: the status is `pending` until the calendar confirms). The response carries
    the requested title and times, with `in_calendar` false until the calendar confirms them."""
    query = _query({**body, "start_date": None, "days": 5})
    new = booking.NewInterview(
        query=query,
        start=body["start"],
        candidate_name=body["candidate_name"],
        candidate_email=body["candidate_email"],
        title=body["title"],
        notes=body["notes"],
        video=body["video"],
        candidate_tzid=body["candidate_tzid"] or query.tzid,
    )
    interview, payload = booking.create_interview(
        db(), required_broker(), deps.cipher(), deps.sealer(), actor(), new, jobs=deps.jobs()
    )
    db().refresh(interview)
    return _requested(interview, payload, with_title=True)


@operation(
    "GET",
    f"/interviews/{UID}",
    summary="One interview",
    tag="Scheduling",
    roles=SCHEDULERS,
    response=s.InterviewDetailSchema,
)
def interview(uid: str):
    """The interview as its calendar event says now: time, responses, join link."""
    return _detail(reading.view_interview(db(), deps.broker(), deps.cipher(), actor(), uid))


@operation(
    "POST",
    f"/interviews/{UID}/reschedule",
    summary="Move an interview",
    tag="Scheduling",
    roles=SCHEDULERS,
    body=s.RescheduleSchema,
    response=s.InterviewSchema,
    errors=(409, 503),
)
def reschedule(uid: str, body):
    """Move the interview to a new free slot (optionally with a new length); the same calendar
    event moves, and everything else it says (title, notes, guests, room, video link) stays. The
    response carries the new times as requested (and no title), with `in_calendar` false until
    the calendar confirms them."""
    interview, payload = ordinary.reschedule_interview(
        db(),
        required_broker(),
        deps.cipher(),
        deps.sealer(),
        actor(),
        uid,
        body["start"],
        duration=body["duration"],
        jobs=deps.jobs(),
        notify=deps.candidate_notify(),
    )
    db().refresh(interview)
    return _requested(interview, payload, with_title=False)


@operation(
    "POST",
    f"/interviews/{UID}/cancel",
    summary="Cancel an interview",
    tag="Scheduling",
    roles=SCHEDULERS,
    response=s.InterviewSchema,
)
def cancel(uid: str):
    """Cancel the interview; its calendar events are deleted and attendees told by the calendar."""
    interview = ordinary.cancel_interview(
        db(),
        deps.broker(),
        deps.cipher(),
        deps.sealer(),
        actor(),
        uid,
        jobs=deps.jobs(),
        notify=deps.candidate_notify(),
    )
    db().refresh(interview)
    return _listed(interview, None)
