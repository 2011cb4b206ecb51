"""Schemas of the token's owner and their calendar links (webapp/api/me.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import LinkMode, LinkStatus, Role
from webapp.api.schemas.common import EnumValue, StringList, page_of


class OrganisationSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "Organisation id"})
    name = fields.String(required=True, metadata={"description": "Organisation name"})


class TokenInfoSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "Token id"})
    name = fields.String(required=True, metadata={"description": "The name you gave the token"})
    prefix = fields.String(
        required=True, metadata={"description": "The token's first characters, to recognise it"}
    )
    expires_at = fields.DateTime(
        required=True, metadata={"description": "When the token stops working"}
    )


class MeSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "Your user id"})
    email = fields.String(
        required=True, metadata={"description": "Your email address (your login)"}
    )
    name = fields.String(required=True, metadata={"description": "Your name"})
    role = EnumValue(
        Role,
        required=True,
        metadata={"description": "Your role now; it decides which operations you may use"},
    )
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
    organisation = fields.Nested(
        OrganisationSchema,
        required=True,
        metadata={"description": "The organisation you belong to"},
    )
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
            "description": "Your IANA time zone, e.g. America/New_York; "
            "your working hours are in it"
        },
    )


class CalendarLinkSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "Calendar link id"})
    mode = EnumValue(
        LinkMode,
        required=True,
        metadata={
            "description": "How it was linked: by you (Business Connect) or by your IT admin "
            "(Enterprise Connect)"
        },
    )
    provider = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Calendar provider, e.g. google or exchange"},
    )
    account_email = fields.String(
        required=True, allow_none=True, metadata={"description": "The calendar account's address"}
    )
    status = EnumValue(
        LinkStatus, required=True, metadata={"description": "Whether the link works now"}
    )
    target_calendar_id = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The calendar interviews are written to; null until you choose one"
        },
    )
    conflict_calendar_ids = StringList(
        required=True,
        metadata={"description": "Calendars whose events count as busy; empty: all of them"},
    )
    linked_at = fields.DateTime(
        required=True, metadata={"description": "When the calendar was linked"}
    )


CalendarLinkPageSchema = page_of(CalendarLinkSchema, "CalendarLinkPage")


class CalendarSchema(Schema):
    calendar_id = fields.String(
        required=True, metadata={"description": "The calendar's id at the calendar service"}
    )
    name = fields.String(required=True, metadata={"description": "The calendar's name"})
    profile_name = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The account the calendar belongs to"},
    )
    provider_name = fields.String(
        required=True, allow_none=True, metadata={"description": "Calendar provider, e.g. google"}
    )
    readonly = fields.Boolean(
        required=True, metadata={"description": "true when interviews cannot be written to it"}
    )
    primary = fields.Boolean(
        required=True, metadata={"description": "true for the account's main calendar"}
    )
    deleted = fields.Boolean(
        required=True,
        metadata={"description": "true when the calendar was deleted at the provider"},
    )


class CalendarListSchema(Schema):
    items = fields.List(
        fields.Nested(CalendarSchema),
        required=True,
        metadata={"description": "The calendars the linked account can see"},
    )


class DisconnectReportSchema(Schema):
    account_email = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The calendar account that was disconnected"},
    )
    revoked_at_aggregator = fields.Boolean(
        required=True,
        metadata={"description": "true when the calendar service confirmed the revocation at once"},
    )
    revocation_queued = fields.Boolean(
        required=True,
        metadata={
            "description": "true when the calendar service did not take the revocation at "
            "once and it is retried in the background until it does"
        },
    )
    tokens_deleted = fields.Boolean(
        required=True,
        metadata={"description": "true when the link's access tokens were deleted here"},
    )
