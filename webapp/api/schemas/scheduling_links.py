"""Schemas of candidate self-scheduling links, for recruiters (webapp/api/scheduling_links.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas.common import page_of, plausible_day
from webapp.api.schemas.scheduling import DURATION


class SchedulingLinkSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "Link id; use in the revoke path"})
    candidate_name = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The candidate the link was made for (kept encrypted); null for "
            "links made before names were kept"
        },
    )
    title = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The interview's title; null for links made before it was kept"},
    )
    url = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The link to send the candidate while it is open (a bearer link: "
            "keep it private); null once used, revoked or expired"
        },
    )
    state = fields.String(
        required=True,
        metadata={
            "enum": ["open", "used", "revoked", "expired"],
            "description": "open: the candidate can book; used, revoked or expired: not any more",
        },
    )
    panel_link_ids = fields.List(
        fields.Integer(), required=True, metadata={"description": "Calendar link ids of the panel"}
    )
    duration_minutes = fields.Integer(
        required=True, metadata={"description": "Interview length in minutes"}
    )
    window_start = fields.DateTime(required=True, metadata={"description": "Earliest time offered"})
    window_end = fields.DateTime(required=True, metadata={"description": "Latest time offered"})
    video = fields.Boolean(
        required=True, metadata={"description": "The interview gets a video meeting"}
    )
    expires_at = fields.DateTime(
        required=True, metadata={"description": "When the link stops working"}
    )
    created_at = fields.DateTime(
        required=True, metadata={"description": "When the link was created"}
    )
    used_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When the candidate booked through it; null until then"},
    )
    revoked_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When it was withdrawn; null unless it was"},
    )
    interview_uid = fields.String(
        required=True, allow_none=True, metadata={"description": "The interview booked through it"}
    )
    candidate_may_change = fields.Boolean(
        required=True,
        metadata={
            "description": "The candidate may reschedule or cancel what they booked, from "
            "their confirmation page or email"
        },
    )
    change_cutoff_hours = fields.Integer(
        required=True,
        metadata={"description": "Up to how many hours before the interview they may"},
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
        metadata={"description": "Calendar link ids of the panel (see /panel-members), 1–10"},
    )
    duration = fields.Integer(
        load_default=60,
        validate=DURATION,
        metadata={"description": "Interview length in minutes: 15, 30, 45, 60, 90 or 120"},
    )
    start_date = fields.Date(
        load_default=None,
        validate=plausible_day,
        metadata={"description": "First day offered (default today)"},
    )
    days = fields.Integer(
        load_default=5,
        validate=validate.Range(1, 14),
        metadata={"description": "How many days to offer, 1–14"},
    )
    expires_days = fields.Integer(
        load_default=7,
        validate=validate.Range(1, 30),
        metadata={"description": "Days until the link stops working, 1–30"},
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
    candidate_tzid = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={
            "description": "The candidate's IANA zone, recorded in the link (default: yours)"
        },
    )
    title = fields.String(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "The calendar event's title"},
    )
    video = fields.Boolean(
        load_default=True, metadata={"description": "Add a video meeting to the event"}
    )
    email_candidate = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Also email the link to candidate_email (plain text and HTML; "
            "default false)"
        },
    )
    candidate_may_change = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Let the candidate reschedule (within the link's window) or cancel "
            "what they book, from their confirmation page or email (default false)"
        },
    )
    change_cutoff_hours = fields.Integer(
        load_default=24,
        validate=validate.Range(0, 168),
        metadata={
            "description": "Up to how many hours before the interview the candidate may "
            "change it, 0–168 (default 24)"
        },
    )
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
        metadata={"description": "The link to send the candidate (a bearer link: keep it private)"},
    )
