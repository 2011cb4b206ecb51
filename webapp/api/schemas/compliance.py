"""Schemas of the compliance reviewer's operations: inventory, audit trail, subject export
(webapp/api/compliance.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas.common import PageQuerySchema, page_of, plausible_day


class ColumnSchema(Schema):
    name = fields.String(required=True, metadata={"description": "Column name"})
    type = fields.String(required=True, metadata={"description": "Database type of the column"})
    category = fields.String(
        required=True,
        metadata={"description": "Kind of data held, e.g. identifier, personal, secret"},
    )
    purpose = fields.String(required=True, metadata={"description": "Why the column is stored"})
    retention = fields.String(required=True, metadata={"description": "How long values are kept"})
    encrypted = fields.Boolean(
        required=True, metadata={"description": "true when values are encrypted at rest"}
    )
    hashed = fields.Boolean(
        required=True, metadata={"description": "true when only a hash of the value is stored"}
    )
    group = fields.String(
        metadata={
            "description": "Why it is kept, as the inventory page groups it: accounts, "
            "calendars, scheduling, api or accountability"
        }
    )


class TableSchema(Schema):
    name = fields.String(required=True, metadata={"description": "Table name"})
    label = fields.String(metadata={"description": "What its records are, in plain words"})
    rows = fields.Integer(
        required=True, metadata={"description": "Rows of the caller's organisation"}
    )
    columns = fields.List(
        fields.Nested(ColumnSchema),
        required=True,
        metadata={"description": "Every column of the table, with its classification"},
    )


class RetentionRuleSchema(Schema):
    records = fields.String(
        required=True, metadata={"description": "Which records the rule covers"}
    )
    rule = fields.String(
        required=True, metadata={"description": "How long they are kept and what removes them"}
    )


class InventorySchema(Schema):
    tables = fields.List(
        fields.Nested(TableSchema),
        required=True,
        metadata={"description": "Every table holding data, with its columns"},
    )
    not_stored = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Kinds of data deliberately never stored (e.g. calendar event content)"
        },
    )
    processor = fields.String(
        required=True,
        metadata={"description": "The calendar aggregator that processes calendar data for us"},
    )
    retention = fields.List(
        fields.Nested(RetentionRuleSchema),
        required=True,
        metadata={"description": "Retention rules by kind of record"},
    )


class AuditQuerySchema(PageQuerySchema):
    actor = fields.String(
        load_default="",
        validate=validate.Length(max=320),
        metadata={"description": "Part of the actor's email"},
    )
    action = fields.String(
        load_default="",
        validate=validate.Length(max=64),
        metadata={
            "description": "Action prefix, e.g. `calendar.`, or the name of a kind of action "
            "(e.g. `erasure`, which includes `subject.erased`)"
        },
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
    id = fields.Integer(required=True, metadata={"description": "Entry id; higher is newer"})
    at = fields.DateTime(required=True, metadata={"description": "When it happened (UTC)"})
    actor_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "User id of who did it; null for the system or someone unknown"},
    )
    actor_label = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Email of who did it, as it was then"},
    )
    action = fields.String(
        required=True, metadata={"description": "What was done, e.g. `interview.created`"}
    )
    target_type = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Kind of record acted on, e.g. `interview`"},
    )
    target_id = fields.String(
        required=True, allow_none=True, metadata={"description": "Id of the record acted on"}
    )
    target_label = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "A label of the record acted on, as it was then"},
    )
    outcome = fields.String(required=True, metadata={"description": "success, failure or denied"})
    ip_address = fields.String(
        required=True, allow_none=True, metadata={"description": "Address the request came from"}
    )
    request_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The request's X-Request-ID, to match server logs"},
    )
    detail = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "Further facts about the action (never secrets or calendar content)"
        },
    )


AuditPageSchema = page_of(AuditEntrySchema, "AuditPage")


class SubjectExportSchema(Schema):
    person_id = fields.Integer(
        required=True, metadata={"description": "User id of the person exported"}
    )
    exported_at = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "When the export was made (UTC)"},
    )
    not_stored = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Kinds of data about the person that are never stored"},
    )
    records = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Dict()),
        required=True,
        metadata={
            "description": "Table name → rows stored about the person; "
            "secrets appear only as their kind"
        },
    )
