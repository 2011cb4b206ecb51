"""Schemas of Enterprise Connect for the IT admin: domains, mailboxes, mailbox requests
(webapp/api/enterprise.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import LinkStatus
from webapp.api.schemas.common import EnumValue, PageQuerySchema, page_of

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
