"""Schemas of the token's owner and their calendar links (webapp/api/me.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import LinkMode, LinkStatus, Role
from webapp.api.schemas.common import EnumValue, StringList, page_of


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
            "description": "Your IANA time zone, e.g. America/New_York; "
            "your working hours are in it"
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
