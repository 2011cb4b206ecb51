"""Schemas of scheduling: panel, availability and interviews (webapp/api/scheduling.py). The
self-scheduling links' schemas are in scheduling_links.py."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas.common import page_of, plausible_day, within_a_century


class WorkingHoursSchema(Schema):
    start = fields.String(required=True, metadata={"description": "HH:MM in `tzid`"})
    end = fields.String(required=True, metadata={"description": "HH:MM in `tzid`"})
    weekdays = fields.String(required=True, metadata={"description": "ISO weekdays, e.g. 12345"})
    tzid = fields.String(required=True, metadata={"description": "The member's own IANA zone"})
    tzid_set = fields.Boolean(
        required=True,
        metadata={
            "description": "false while the member has set no zone (the organisation's is assumed)"
        },
    )


class PanelMemberSchema(Schema):
    link_id = fields.Integer(required=True, metadata={"description": "Use in `panel`"})
    user_id = fields.Integer(required=True, metadata={"description": "The member's user id"})
    name = fields.String(required=True, metadata={"description": "The member's name"})
    timezone = fields.String(
        required=True,
        metadata={
            "description": "The member's own IANA zone (the organisation's while they set none)"
        },
    )


class PanelMemberListSchema(Schema):
    items = fields.List(
        fields.Nested(PanelMemberSchema),
        required=True,
        metadata={"description": "Everyone you may put on a panel"},
    )


class RoomSchema(Schema):
    email = fields.String(required=True, metadata={"description": "Use as `room`"})
    name = fields.String(required=True, metadata={"description": "The room's name"})


class RoomListSchema(Schema):
    items = fields.List(
        fields.Nested(RoomSchema), required=True, metadata={"description": "Rooms you may book"}
    )


_ROOM = fields.String(
    load_default=None,
    validate=validate.Length(3, 320),
    metadata={
        "description": "A room's email from /rooms: slots need it free too, and it is invited"
    },
)


DURATION = validate.OneOf([15, 30, 45, 60, 90, 120])


class AvailabilityQuerySchema(Schema):
    panel = fields.List(
        fields.Integer(validate=validate.Range(1, 2**31 - 1)),
        required=True,
        validate=validate.Length(1, 10),
        metadata={
            "description": "Calendar link ids of the panel (see "
            "/panel-members), 1–10; repeat the parameter"
        },
    )
    duration = fields.Integer(
        load_default=60, validate=DURATION, metadata={"description": "Interview length in minutes"}
    )
    start_date = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "First day (default today)"},
    )
    days = fields.Integer(
        load_default=5,
        validate=validate.Range(1, 14),
        metadata={"description": "How many days to show, 1–14"},
    )
    required = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 10),
        metadata={"description": "Free slots need at least this many members (default: all)"},
    )
    buffer_before = fields.Integer(
        load_default=0,
        validate=validate.Range(0, 120),
        metadata={"description": "Minutes each member must also be free before a slot, 0–120"},
    )
    buffer_after = fields.Integer(
        load_default=0,
        validate=validate.Range(0, 120),
        metadata={"description": "Minutes each member must also be free after a slot, 0–120"},
    )
    tzid = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={"description": "IANA time zone for days and working hours (default: yours)"},
    )
    room = _ROOM
    on_behalf_of = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "Coordinators: the hiring manager's user id"},
    )


class BusyBlockSchema(Schema):
    start = fields.DateTime(required=True, metadata={"description": "When the busy time starts"})
    end = fields.DateTime(required=True, metadata={"description": "When the busy time ends"})
    status = fields.String(required=True, metadata={"description": "busy or tentative"})


class MemberBusySchema(Schema):
    link_id = fields.Integer(
        required=True, metadata={"description": "The member's calendar link id"}
    )
    name = fields.String(required=True, metadata={"description": "The member's name"})
    busy = fields.List(
        fields.Nested(BusyBlockSchema),
        allow_none=True,
        required=True,
        metadata={"description": "Busy times only (null if unreadable)"},
    )
    problem = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Why busy times could not be read, in a sentence; null when they were"
        },
    )
    working_hours = fields.Nested(
        WorkingHoursSchema,
        required=True,
        metadata={"description": "Slots fall inside these hours, in the member's own zone"},
    )


class FreeSlotSchema(Schema):
    start = fields.DateTime(
        required=True,
        metadata={"description": "When the slot starts; send it as `start` to schedule"},
    )
    end = fields.DateTime(required=True, metadata={"description": "When the slot ends"})
    free_link_ids = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "Calendar link ids of the members free then"},
    )


class AvailabilitySchema(Schema):
    window_start = fields.DateTime(
        required=True, metadata={"description": "Start of the window searched"}
    )
    window_end = fields.DateTime(
        required=True, metadata={"description": "End of the window searched"}
    )
    tzid = fields.String(
        required=True, metadata={"description": "The IANA zone the days were laid out in"}
    )
    members = fields.List(
        fields.Nested(MemberBusySchema),
        required=True,
        metadata={"description": "Each panel member's busy times and working hours"},
    )
    slots = fields.List(
        fields.Nested(FreeSlotSchema),
        required=True,
        metadata={"description": "Times the panel (and the room, if asked) is free"},
    )
    room = fields.Nested(
        RoomSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The room asked for; null when none"},
    )


class AttendeeSchema(Schema):
    email = fields.String(required=True, metadata={"description": "The guest's address"})
    display_name = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The guest's name, if the calendar has one"},
    )
    status = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Their response, e.g. accepted, declined, tentative or needs_action"
        },
    )


class InterviewSchema(Schema):
    uid = fields.String(
        required=True, metadata={"description": "The interview's id; use in the interview paths"}
    )
    status = fields.String(
        required=True,
        metadata={
            "enum": [
                "pending",
                "scheduled",
                "cancelling",
                "cancelled",
                "cancelled_in_calendar",
                "failed",
            ],
            "description": "pending while the calendar write is queued; scheduled once the "
            "calendar confirmed it",
        },
    )
    title = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The event's title: as the calendar says when `in_calendar` is true; "
            "in the answer to a create, as requested; otherwise null"
        },
    )
    start = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "When it starts: as the calendar says when `in_calendar` is true; in "
            "the answer to a create or move, as requested; otherwise null"
        },
    )
    end = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When it ends; as for start"}
    )
    in_calendar = fields.Boolean(
        required=True,
        metadata={
            "description": "true when title, start and end were read from the calendar event "
            "for this answer; false when they are what was requested (the answer to a create or "
            "move: the calendar write is queued, and `status` is `pending` until the calendar "
            "confirms it) or unknown (null)"
        },
    )
    on_behalf_of_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "The hiring manager a coordinator scheduled for; null otherwise"},
    )
    panel_link_ids = fields.List(
        fields.Integer(), required=True, metadata={"description": "Calendar link ids of the panel"}
    )
    created_at = fields.DateTime(required=True, metadata={"description": "When it was scheduled"})


InterviewPageSchema = page_of(InterviewSchema, "InterviewPage")


class InterviewDetailSchema(InterviewSchema):
    join_url = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The video meeting's join link; null without video or until the "
            "calendar has one"
        },
    )
    attendees = fields.List(
        fields.Nested(AttendeeSchema),
        required=True,
        metadata={"description": "The event's guests and their responses, as the calendar says"},
    )
    panel = fields.List(
        fields.Nested(
            Schema.from_dict(
                {
                    "user_id": fields.Integer(
                        required=True, metadata={"description": "The member's user id"}
                    ),
                    "name": fields.String(
                        required=True, metadata={"description": "The member's name"}
                    ),
                },
                name="PanelPerson",
            )
        ),
        required=True,
        metadata={"description": "The people on the panel"},
    )
    problem = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Why the calendar event could not be read, in a sentence; null when "
            "it was"
        },
    )


class NewInterviewSchema(Schema):
    panel = fields.List(
        fields.Integer(validate=validate.Range(1, 2**31 - 1)),
        required=True,
        validate=validate.Length(1, 10),
        metadata={"description": "Calendar link ids of the panel (see /panel-members), 1–10"},
    )
    start = fields.AwareDateTime(
        required=True,
        validate=within_a_century,
        metadata={"description": "A free slot's start (from /availability), with its UTC offset"},
    )
    duration = fields.Integer(
        load_default=60,
        validate=DURATION,
        metadata={"description": "Length in minutes: 15, 30, 45, 60, 90 or 120"},
    )
    title = fields.String(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "The calendar event's title"},
    )
    candidate_name = fields.String(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "The candidate's name, shown in the event"},
    )
    candidate_email = fields.String(
        required=True,
        validate=validate.Length(3, 320),
        metadata={"description": "The candidate's address; they are invited to the event"},
    )
    notes = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "Notes for the event's description, at most 2,000 characters"},
    )
    video = fields.Boolean(
        load_default=True, metadata={"description": "Add a video meeting to the event"}
    )
    tzid = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={
            "description": "IANA zone of the slot search (default: yours); as in /availability"
        },
    )
    candidate_tzid = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={"description": "The candidate's IANA zone, for the invitation (default: tzid)"},
    )
    required = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 10),
        metadata={
            "description": "As in /availability: free slots need at least this many members "
            "(default: all)"
        },
    )
    buffer_before = fields.Integer(
        load_default=0,
        validate=validate.Range(0, 120),
        metadata={"description": "As in /availability: minutes free before, 0–120"},
    )
    buffer_after = fields.Integer(
        load_default=0,
        validate=validate.Range(0, 120),
        metadata={"description": "As in /availability: minutes free after, 0–120"},
    )
    room = _ROOM
    on_behalf_of = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "Coordinators: the hiring manager's user id; the event is written to "
            "their calendar"
        },
    )


class RescheduleSchema(Schema):
    start = fields.AwareDateTime(
        required=True, validate=within_a_century, metadata={"description": "The new start"}
    )
    duration = fields.Integer(
        load_default=None,
        validate=DURATION,
        metadata={
            "description": "New length in minutes; by default the interview keeps its length"
        },
    )
