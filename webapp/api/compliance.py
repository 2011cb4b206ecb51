"""Compliance reviewer: data inventory, audit trail, subject export (read-only)."""

from __future__ import annotations

from flask import current_app

from models import Role
from webapp.api.core import actor, db, operation
from webapp.api.errors import ApiError
from webapp.api.pagination import Page, issue, position
from webapp.api.schemas import compliance as s
from webapp.services.compliance import audit as audit_trail
from webapp.services.compliance import inventory as data_inventory
from webapp.services.compliance import subjects

REVIEWER = (Role.COMPLIANCE,)


@operation(
    "GET",
    "/compliance/inventory",
    summary="Data inventory",
    tag="Compliance",
    roles=REVIEWER,
    response=s.InventorySchema,
)
def inventory():
    """Every table and column stored, with classification and live row counts."""
    return {
        "tables": data_inventory.inventory(db(), actor()),
        "not_stored": data_inventory.NOT_STORED,
        "processor": data_inventory.PROCESSOR,
        "retention": [
            {"records": r, "rule": rule}
            for r, rule in data_inventory.retention_rules(current_app.config)
        ],
    }


@operation(
    "GET",
    "/compliance/audit",
    summary="Audit trail",
    tag="Compliance",
    roles=REVIEWER,
    query=s.AuditQuerySchema,
    response=s.AuditPageSchema,
    errors=(422,),
)
def audit(query):
    """The organisation's audit trail, newest first, filtered like the reviewer's page."""
    who = actor()
    raw = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in query.items()
        if k in ("actor", "action", "target", "since", "until") and v
    }
    filters = audit_trail.parse_filters(raw)
    at = position("audit", who, query["cursor"])
    if at is not None and at.get("f") != filters.as_query():
        raise ApiError(
            422,
            "This cursor belongs to other filters. Start again without one.",
            fields={"cursor": ["This cursor was issued for other filters."]},
        )
    # Pages are fixed when the first page is served; entries added meanwhile (newer, higher ids)
    # shift the offsets, so entries already served (id >= last served) are skipped.
    limit = at["l"] if at else query["limit"]
    page = at["p"] if at else 1
    last = at["last"] if at else None
    entries, _total, pages = audit_trail.audit_page(db(), who, filters, page=page, page_size=limit)
    items = [e for e in entries if last is None or e.id < last]
    more = page < pages
    next_cursor = (
        issue(
            "audit",
            who,
            {
                "f": filters.as_query(),
                "l": limit,
                "p": page + 1,
                "last": items[-1].id if items else last,
            },
        )
        if more
        else None
    )
    return Page(items, next_cursor)


@operation(
    "GET",
    "/compliance/people/<int:user_id>/export",
    summary="Subject export",
    tag="Compliance",
    roles=REVIEWER,
    response=s.SubjectExportSchema,
    errors=(404,),
)
def subject_export(user_id: int):
    """Every local record about one person as one document; the export is audited."""
    return subjects.export_subject(db(), actor(), user_id)
