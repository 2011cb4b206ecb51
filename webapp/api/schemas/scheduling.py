"""Schemas of scheduling: panel, availability, interviews and candidate self-scheduling links
(webapp/api/scheduling.py)."""

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
    user_id = fields.Integer(required=True)
    name = fields.String(required=True)
    timezone = fields.String(
        required=True,
        metadata={
            "description": "The member's own IANA zone (the organisation's while they set none)"
        },
    )


class PanelMemberListSchema(Schema):
    items = fields.List(fields.Nested(PanelMemberSchema), required=True)


class RoomSchema(Schema):
    email = fields.String(required=True, metadata={"description": "Use as `room`"})
    name = fields.String(required=True)


class RoomListSchema(Schema):
    items = fields.List(fields.Nested(RoomSchema), required=True)


_ROOM = fields.String(
    load_default=None,
    validate=validate.Length(3, 320),
    metadata={
        "description": "A room's email from /rooms: slots need it free too, and it is invited"
    },
)


_DURATION = validate.OneOf([15, 30, 45, 60, 90, 120])


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
        load_default=60, validate=_DURATION, metadata={"description": "Interview length in minutes"}
    )
    start_date = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "First day (default today)"},
    )
    days = fields.Integer(load_default=5, validate=validate.Range(1, 14))
    required = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 10),
        metadata={"description": "Free slots need at least this many members (default: all)"},
    )
    buffer_before = fields.Integer(load_default=0, validate=validate.Range(0, 120))
    buffer_after = fields.Integer(load_default=0, validate=validate.Range(0, 120))
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
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)
    status = fields.String(required=True, metadata={"description": "busy or tentative"})


class MemberBusySchema(Schema):
    link_id = fields.Integer(required=True)
    name = fields.String(required=True)
    busy = fields.List(
        fields.Nested(BusyBlockSchema),
        allow_none=True,
        required=True,
        metadata={"description": "Busy times only (null if unreadable)"},
    )
    problem = fields.String(required=True, allow_none=True)
    working_hours = fields.Nested(
        WorkingHoursSchema,
        required=True,
        metadata={"description": "Slots fall inside these hours, in the member's own zone"},
    )


class FreeSlotSchema(Schema):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)
    free_link_ids = fields.List(fields.Integer(), required=True)


class AvailabilitySchema(Schema):
    window_start = fields.DateTime(required=True)
    window_end = fields.DateTime(required=True)
    tzid = fields.String(required=True)
    members = fields.List(fields.Nested(MemberBusySchema), required=True)
    slots = fields.List(fields.Nested(FreeSlotSchema), required=True)
    room = fields.Nested(RoomSchema, required=True, allow_none=True)


class AttendeeSchema(Schema):
    email = fields.String(required=True)
    display_name = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, allow_none=True)


class InterviewSchema(Schema):
    uid = fields.String(required=True)
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
            ]
        },
    )
    title = fields.String(
        required=True, allow_none=True, metadata={"description": "The event title the app wrote"}
    )
    start = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "null while not in the calendar"}
    )
    end = fields.DateTime(required=True, allow_none=True)
    on_behalf_of_id = fields.Integer(required=True, allow_none=True)
    panel_link_ids = fields.List(fields.Integer(), required=True)
    created_at = fields.DateTime(required=True)


InterviewPageSchema = page_of(InterviewSchema, "InterviewPage")


class InterviewDetailSchema(InterviewSchema):
    join_url = fields.String(required=True, allow_none=True)
    attendees = fields.List(fields.Nested(AttendeeSchema), required=True)
    panel = fields.List(
        fields.Nested(
            Schema.from_dict(
                {"user_id": fields.Integer(required=True), "name": fields.String(required=True)},
                name="PanelPerson",
            )
        ),
        required=True,
    )
    problem = fields.String(required=True, allow_none=True)


class NewInterviewSchema(Schema):
    panel = fields.List(
        fields.Integer(validate=validate.Range(1, 2**31 - 1)),
        required=True,
        validate=validate.Length(1, 10),
    )
    start = fields.AwareDateTime(
        required=True,
        validate=within_a_century,
        metadata={"description": "A free slot's start (from /availability), with its UTC offset"},
    )
    duration = fields.Integer(load_default=60, validate=_DURATION)
    title = fields.String(required=True, validate=validate.Length(1, 200))
    candidate_name = fields.String(required=True, validate=validate.Length(1, 200))
    candidate_email = fields.String(required=True, validate=validate.Length(3, 320))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))
    video = fields.Boolean(load_default=True)
    tzid = fields.String(load_default=None, validate=validate.Length(1, 64))
    candidate_tzid = fields.String(load_default=None, validate=validate.Length(1, 64))
    required = fields.Integer(load_default=None, validate=validate.Range(1, 10))
    buffer_before = fields.Integer(load_default=0, validate=validate.Range(0, 120))
    buffer_after = fields.Integer(load_default=0, validate=validate.Range(0, 120))
    room = _ROOM
    on_behalf_of = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1))


class RescheduleSchema(Schema):
    start = fields.AwareDateTime(
        required=True, validate=within_a_century, metadata={"description": "The new start"}
    )
    duration = fields.Integer(
        load_default=None,
        validate=_DURATION,
        metadata={
            "description": "New length in minutes; by default the interview keeps its length"
        },
    )


# ---------------------------------------------------------------------------------------------
# Candidate self-scheduling links (recruiters)


class SchedulingLinkSchema(Schema):
    id = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"enum": ["open", "used", "revoked", "expired"]})
    panel_link_ids = fields.List(fields.Integer(), required=True)
    duration_minutes = fields.Integer(required=True)
    window_start = fields.DateTime(required=True)
    window_end = fields.DateTime(required=True)
    video = fields.Boolean(required=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    used_at = fields.DateTime(required=True, allow_none=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)
    interview_uid = fields.String(
        required=True, allow_none=True, metadata={"description": "The interview booked through it"}
    )


SchedulingLinkPageSchema = page_of(SchedulingLinkSchema, "SchedulingLinkPage")


_CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


class CandidateHoursSchema(Schema):
    start = fields.String(
        required=True,
        validate=validate.Regexp(_CLOCK),
        metadata={"description": "HH:MM in the candidate's zone"},
    )
    end = fields.String(
        required=True,
        validate=validate.Regexp(_CLOCK),
        metadata={"description": "HH:MM in the candidate's zone, after start"},
    )


class NewSchedulingLinkSchema(Schema):
    panel = fields.List(
        fields.Integer(validate=validate.Range(1, 2**31 - 1)),
        required=True,
        validate=validate.Length(1, 10),
    )
    duration = fields.Integer(load_default=60, validate=_DURATION)
    start_date = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "First day offered (default today)"},
    )
    days = fields.Integer(load_default=5, validate=validate.Range(1, 14))
    expires_days = fields.Integer(load_default=7, validate=validate.Range(1, 30))
    candidate_name = fields.String(required=True, validate=validate.Length(1, 200))
    candidate_email = fields.String(required=True, validate=validate.Length(3, 320))
    candidate_tzid = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={
            "description": "The candidate's IANA zone, recorded in the link (default: yours)"
        },
    )
    title = fields.String(required=True, validate=validate.Length(1, 200))
    video = fields.Boolean(load_default=True)
    candidate_hours = fields.Nested(
        CandidateHoursSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                "Offer only times inside these hours of the candidate's "
                "day, in candidate_tzid (default: no such limit; the "
                "panel's own working hours always apply)"
            )
        },
    )


class CreatedSchedulingLinkSchema(SchedulingLinkSchema):
    url = fields.String(
        required=True,
        metadata={"description": "The link to send the candidate; shown only in this response"},
    )
