"""What every area's schemas share: enum and list fields, plausible-date validators, the
error body, the page query and the page of items."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate

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
    message = fields.String(
        required=True,
        metadata={"description": "A sentence saying what went wrong, safe to show a person"},
    )
    fields = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "Per-field messages (`_schema`: the whole body)"},
    )


class ErrorSlotSchema(Schema):
    start = fields.DateTime(required=True, metadata={"description": "When the free slot starts"})
    end = fields.DateTime(required=True, metadata={"description": "When the free slot ends"})


class ErrorDetailWithSlotsSchema(ErrorDetailSchema):
    slots = fields.List(
        fields.Nested(ErrorSlotSchema),
        metadata={
            "description": "Only with `slot_taken`: the panel's free slots now, from the day asked "
            "for on (omitted when they cannot be read)"
        },
    )


class ErrorSchema(Schema):
    error = fields.Nested(
        ErrorDetailWithSlotsSchema,
        required=True,
        metadata={"description": "What went wrong; nothing was changed unless it says so"},
    )


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
            "items": fields.List(
                fields.Nested(item_schema),
                required=True,
                metadata={"description": "This page's items"},
            ),
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
