"""Schemas of the compliance reviewer's operations: inventory, audit trail, subject export
(webapp/api/compliance.py)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.api.schemas.common import PageQuerySchema, page_of, plausible_day


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
