"""Schemas of Enterprise Connect for the IT admin: domains, mailboxes, mailbox requests
(webapp/api/enterprise.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import LinkStatus
from webapp.api.schemas.common import EnumValue, PageQuerySchema, page_of

MAILBOX_STATUSES = ["queued", "pending", "linked", "failed", "unlinked"]


class MailboxCountsSchema(Schema):
    queued = fields.Integer(
        required=True, metadata={"description": "Waiting to be sent to the calendar service"}
    )
    pending = fields.Integer(
        required=True, metadata={"description": "Sent; the calendar service has not confirmed yet"}
    )
    linked = fields.Integer(
        required=True, metadata={"description": "Linked and usable for scheduling"}
    )
    failed = fields.Integer(
        required=True, metadata={"description": "Could not be linked (see each mailbox's error)"}
    )
    unlinked = fields.Integer(
        required=True, metadata={"description": "Linked once, since unlinked"}
    )
    waiting = fields.Integer(required=True, metadata={"description": "queued + pending"})
    total = fields.Integer(required=True, metadata={"description": "All but unlinked"})


class DomainSchema(Schema):
    id = fields.Integer(
        required=True, metadata={"description": "Domain id; use in the mailbox paths"}
    )
    provider = fields.String(
        required=True, metadata={"description": "The service account's calendar provider"}
    )
    domain = fields.String(
        required=True, metadata={"description": "The email domain the service account covers"}
    )
    status = EnumValue(
        LinkStatus, required=True, metadata={"description": "State of the domain's service account"}
    )
    linked_at = fields.DateTime(
        required=True, metadata={"description": "When the domain was connected"}
    )
    mailboxes = fields.Nested(
        MailboxCountsSchema,
        required=True,
        metadata={"description": "How many of its mailboxes are in each state"},
    )


class DomainListSchema(Schema):
    items = fields.List(
        fields.Nested(DomainSchema),
        required=True,
        metadata={"description": "The organisation's connected domains"},
    )


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
    id = fields.Integer(required=True, metadata={"description": "Mailbox id"})
    email = fields.String(required=True, metadata={"description": "The mailbox's address"})
    status = fields.String(
        required=True,
        metadata={"enum": MAILBOX_STATUSES, "description": "Where the mailbox is in linking"},
    )
    error_key = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Stable code of the last failure; null unless failed"},
    )
    error_text = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The last failure, in a sentence; null unless failed"},
    )
    requested_at = fields.DateTime(
        required=True, metadata={"description": "When linking was last requested"}
    )
    completed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "When the calendar service last confirmed or refused; null while waiting"
        },
    )


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
    email = fields.String(required=True, metadata={"description": "The address as sent"})
    reason = fields.String(
        required=True, metadata={"description": "Why it was not queued, in a sentence"}
    )


class MailboxRequestReportSchema(Schema):
    queued = fields.Integer(
        required=True, metadata={"description": "Requests sent in the background"}
    )
    rejected = fields.List(
        fields.Nested(RejectedSchema),
        required=True,
        metadata={"description": "Addresses not queued, each with the reason"},
    )
