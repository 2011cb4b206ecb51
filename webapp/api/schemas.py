"""marshmallow schemas for every request and response of the API (the OpenAPI document is
generated from them). Response schemas read attributes of the services' own objects."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate

from models import LinkMode, LinkStatus, Role
from webapp.api.pagination import DEFAULT_LIMIT, MAX_LIMIT


class EnumValue(fields.String):
    """An enum member as its value (documented as a string with the listed values)."""

    def __init__(self, enum_cls, **kwargs):
        kwargs.setdefault("validate", validate.OneOf([m.value for m in enum_cls]))
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return (
            None
            if value is None
            else super()._serialize(getattr(value, "value", value), attr, obj, **kwargs)
        )


class StringList(fields.List):
    """A list of strings; a missing list is an empty one."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(), **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(list(value or []), attr, obj, **kwargs)


def within_a_century(value: dt.datetime) -> None:
    """Refuse times no interview can have (and that date arithmetic cannot handle)."""
    if (
        not dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        <= value
        <= dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    ):
        raise ValidationError("Choose a time between the years 2000 and 2100.")


def plausible_day(value: dt.date) -> None:
    if not dt.date(2000, 1, 1) <= value <= dt.date(2100, 1, 1):
        raise ValidationError("Choose a day between the years 2000 and 2100.")


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True,
        metadata={"description": "Stable machine-readable code", "example": "invalid"},
    )
    message = fields.String(required=True, metadata={"description": "Safe to show a person"})
    fields = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "Per-field messages (`_schema`: the whole body)"},
    )


class ErrorSlotSchema(Schema):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)


class ErrorDetailWithSlotsSchema(ErrorDetailSchema):
    slots = fields.List(
        fields.Nested(ErrorSlotSchema),
        metadata={
            "description": "Only with `slot_taken`: the panel's free slots now, from the day asked "
            "for on (omitted when they cannot be read)"
        },
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailWithSlotsSchema, required=True)


class PageQuerySchema(Schema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Items per page, at most {MAX_LIMIT}"},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "`next_cursor` of the previous page"},
    )


def page_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """A response schema ``{"items": [...], "next_cursor": str|null}``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(
                required=True,
                allow_none=True,
                metadata={
                    "description": "Pass as `cursor` for the next page; null on the last page"
                },
            ),
        },
        name=name,
    )


# ---------------------------------------------------------------------------------------------
# Me and my calendar


class OrganisationSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class TokenInfoSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class MeSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = EnumValue(Role, required=True)
    timezone = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Your own IANA time zone (null until you set it)"},
    )
    effective_timezone = fields.String(
        required=True,
        metadata={
            "description": "The zone your working hours use now: yours, else your organisation's"
        },
    )
    organisation = fields.Nested(OrganisationSchema, required=True)
    token = fields.Nested(
        TokenInfoSchema,
        required=True,
        metadata={"description": "The token this request was made with"},
    )


class MeUpdateSchema(Schema):
    timezone = fields.String(
        required=True,
        validate=validate.Length(1, 64),
        metadata={
            "description": "Your IANA time zone, e.g. America/New_York; your working hours are in it"
        },
    )


class CalendarLinkSchema(Schema):
    id = fields.Integer(required=True)
    mode = EnumValue(LinkMode, required=True)
    provider = fields.String(required=True, allow_none=True)
    account_email = fields.String(required=True, allow_none=True)
    status = EnumValue(LinkStatus, required=True)
    target_calendar_id = fields.String(required=True, allow_none=True)
    conflict_calendar_ids = StringList(required=True)
    linked_at = fields.DateTime(required=True)


CalendarLinkPageSchema = page_of(CalendarLinkSchema, "CalendarLinkPage")


class CalendarSchema(Schema):
    calendar_id = fields.String(required=True)
    name = fields.String(required=True)
    profile_name = fields.String(required=True, allow_none=True)
    provider_name = fields.String(required=True, allow_none=True)
    readonly = fields.Boolean(required=True)
    primary = fields.Boolean(required=True)
    deleted = fields.Boolean(required=True)


class CalendarListSchema(Schema):
    items = fields.List(fields.Nested(CalendarSchema), required=True)


class DisconnectReportSchema(Schema):
    account_email = fields.String(required=True, allow_none=True)
    revoked_at_aggregator = fields.Boolean(required=True)
    tokens_deleted = fields.Boolean(required=True)


# ---------------------------------------------------------------------------------------------
# Compliance


class ColumnSchema(Schema):
    name = fields.String(required=True)
    type = fields.String(required=True)
    category = fields.String(required=True)
    purpose = fields.String(required=True)
    retention = fields.String(required=True)
    encrypted = fields.Boolean(required=True)
    hashed = fields.Boolean(required=True)


class TableSchema(Schema):
    name = fields.String(required=True)
    rows = fields.Integer(
        required=True, metadata={"description": "Rows of the caller's organisation"}
    )
    columns = fields.List(fields.Nested(ColumnSchema), required=True)


class RetentionRuleSchema(Schema):
    records = fields.String(required=True)
    rule = fields.String(required=True)


class InventorySchema(Schema):
    tables = fields.List(fields.Nested(TableSchema), required=True)
    not_stored = fields.List(fields.String(), required=True)
    processor = fields.String(required=True)
    retention = fields.List(fields.Nested(RetentionRuleSchema), required=True)


class AuditQuerySchema(PageQuerySchema):
    actor = fields.String(
        load_default="",
        validate=validate.Length(max=320),
        metadata={"description": "Part of the actor's email"},
    )
    action = fields.String(
        load_default="",
        validate=validate.Length(max=64),
        metadata={"description": "Action prefix, e.g. `calendar.`"},
    )
    target = fields.String(
        load_default="",
        validate=validate.Length(max=320),
        metadata={"description": "Part of the target label, or its id"},
    )
    since = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "First day (UTC), inclusive"},
    )
    until = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "Last day (UTC), inclusive"},
    )


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(required=True, allow_none=True)
    actor_label = fields.String(required=True, allow_none=True)
    action = fields.String(required=True)
    target_type = fields.String(required=True, allow_none=True)
    target_id = fields.String(required=True, allow_none=True)
    target_label = fields.String(required=True, allow_none=True)
    outcome = fields.String(required=True)
    ip_address = fields.String(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)
    detail = fields.Dict(required=True, allow_none=True)


AuditPageSchema = page_of(AuditEntrySchema, "AuditPage")


class SubjectExportSchema(Schema):
    person_id = fields.Integer(required=True)
    exported_at = fields.String(required=True, metadata={"format": "date-time"})
    not_stored = fields.List(fields.String(), required=True)
    records = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Dict()),
        required=True,
        metadata={
            "description": "Table name → rows stored about the person; "
            "secrets appear only as their kind"
        },
    )


# ---------------------------------------------------------------------------------------------
# Scheduling: panel, availability, interviews


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
# Enterprise Connect (IT admin)

MAILBOX_STATUSES = ["queued", "pending", "linked", "failed", "unlinked"]


class MailboxCountsSchema(Schema):
    queued = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    linked = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    unlinked = fields.Integer(required=True)
    waiting = fields.Integer(required=True, metadata={"description": "queued + pending"})
    total = fields.Integer(required=True, metadata={"description": "All but unlinked"})


class DomainSchema(Schema):
    id = fields.Integer(required=True)
    provider = fields.String(required=True)
    domain = fields.String(required=True)
    status = EnumValue(LinkStatus, required=True)
    linked_at = fields.DateTime(required=True)
    mailboxes = fields.Nested(MailboxCountsSchema, required=True)


class DomainListSchema(Schema):
    items = fields.List(fields.Nested(DomainSchema), required=True)


class MailboxQuerySchema(PageQuerySchema):
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(MAILBOX_STATUSES + ["waiting"]),
        metadata={"description": "Only mailboxes in this state"},
    )
    q = fields.String(
        load_default=None,
        validate=validate.Length(max=100),
        metadata={"description": "Part of the email address"},
    )


class MailboxSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": MAILBOX_STATUSES})
    error_key = fields.String(required=True, allow_none=True)
    error_text = fields.String(required=True, allow_none=True)
    requested_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(required=True, allow_none=True)


MailboxPageSchema = page_of(MailboxSchema, "MailboxPage")


class MailboxRequestBodySchema(Schema):
    emails = fields.List(
        fields.String(validate=validate.Length(1, 400)),
        load_default=list,
        validate=validate.Length(max=5000),
        metadata={"description": "Mailboxes to link (at most 5,000)"},
    )
    all_users = fields.Boolean(
        load_default=False,
        metadata={"description": "Every active user of the organisation on this domain instead"},
    )


class RejectedSchema(Schema):
    email = fields.String(required=True)
    reason = fields.String(required=True)


class MailboxRequestReportSchema(Schema):
    queued = fields.Integer(
        required=True, metadata={"description": "Requests sent in the background"}
    )
    rejected = fields.List(fields.Nested(RejectedSchema), required=True)


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
