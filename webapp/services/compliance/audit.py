"""The audit trail: filtered pages, exports (CSV safe from formula injection, or JSON), and its
retention."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Role,
    utcnow,
)
from webapp.services import Actor, rowcount
from webapp.services.audit import record
from webapp.services.audit_codes import AREAS_BY_KEY, area_named
from webapp.services.compliance.scope import like_escaped, require, table_of
from webapp.services.errors import Invalid


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    #: A kind of action (an ``audit_codes`` area key) from the page's list.
    area: str = ""
    #: A code prefix ("user.role") or an area's name ("erasure").
    action: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None

    def as_query(self) -> dict[str, str]:
        values = {
            "actor": self.actor,
            "area": self.area,
            "action": self.action,
            "target": self.target,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in values.items() if v}


def parse_filters(args: dict[str, str]) -> AuditFilters:
    """Filters from a query string; a malformed date is an Invalid naming the field."""

    def day(name: str) -> date | None:
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise Invalid(f"“{raw[:20]}” is not a date; use YYYY-MM-DD.", field=name) from None

    area = (args.get("area") or "").strip()
    if area and area not in AREAS_BY_KEY:
        raise Invalid("Choose a kind of action from the list.", field="area")
    filters = AuditFilters(
        actor=(args.get("actor") or "").strip()[:320],
        area=area,
        action=(args.get("action") or "").strip()[:64],
        target=(args.get("target") or "").strip()[:320],
        since=day("since"),
        until=day("until"),
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise Invalid("The start date is after the end date.", field="since")
    return filters


def _audit_query(actor: Actor, filters: AuditFilters):
    query = select(AuditEntry).where(AuditEntry.organisation_id == actor.organisation_id)
    if filters.actor:
        query = query.where(
            AuditEntry.actor_label.ilike(f"%{like_escaped(filters.actor)}%", escape="\\")
        )
    if filters.area:
        query = query.where(AuditEntry.action.in_(AREAS_BY_KEY[filters.area].codes))
    if filters.action:
        # A code prefix, or the name of a kind of action: "erasure" finds ``subject.erased``
        # too, whose code predates the area's name.
        matches = AuditEntry.action.like(f"{like_escaped(filters.action)}%", escape="\\")
        area = area_named(filters.action)
        query = query.where(or_(matches, AuditEntry.action.in_(area.codes)) if area else matches)
    if filters.target:
        needle = f"%{like_escaped(filters.target)}%"
        query = query.where(
            or_(
                AuditEntry.target_label.ilike(needle, escape="\\"),
                AuditEntry.target_id == filters.target,
            )
        )
    if filters.since:
        query = query.where(AuditEntry.at >= datetime.combine(filters.since, time.min, UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, UTC)
        query = query.where(AuditEntry.at < end)
    return query


def audit_page(
    session: Session, actor: Actor, filters: AuditFilters, *, page: int, page_size: int = 50
) -> tuple[list[AuditEntry], int, int]:
    """One page of matching entries (newest first), the total and the number of pages."""
    require(actor, Role.COMPLIANCE)
    query = _audit_query(actor, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max((total + page_size - 1) // page_size, 1)
    page = min(max(page, 1), pages)
    entries = list(
        session.scalars(
            query.order_by(AuditEntry.id.desc()).limit(page_size).offset((page - 1) * page_size)
        )
    )
    return entries, total, pages


AUDIT_FIELDS = (
    "id",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "outcome",
    "ip_address",
    "request_id",
    "detail",
)


def _entry_dict(entry: AuditEntry) -> dict[str, Any]:
    out = {name: getattr(entry, name) for name in AUDIT_FIELDS}
    out["at"] = entry.at.isoformat()
    return out


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not execute (formula injection: = + - @ tab CR)."""
    text = (
        ""
        if value is None
        else (json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value))
    )
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_audit(session: Session, actor: Actor, filters: AuditFilters, fmt: str) -> str:
    """All matching entries as CSV or JSON; the export itself is audited."""
    require(actor, Role.COMPLIANCE)
    if fmt not in ("csv", "json"):
        raise Invalid("Choose CSV or JSON.", field="format")
    entries = [
        _entry_dict(e)
        for e in session.scalars(_audit_query(actor, filters).order_by(AuditEntry.id))
    ]
    record(
        session,
        actor,
        "audit.exported",
        detail={"format": fmt, "entries": len(entries), "filters": filters.as_query()},
    )
    session.commit()
    if fmt == "json":
        return json.dumps({"entries": entries}, indent=2, default=str)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_FIELDS)
    for entry in entries:
        writer.writerow([safe_cell(entry[name]) for name in AUDIT_FIELDS])
    return buffer.getvalue()


def purge_expired(session: Session, *, audit_retention_days: int) -> dict[str, int]:
    """Delete audit entries past retention (the other purges register as jobs of their own)."""
    cutoff = utcnow() - timedelta(days=audit_retention_days)
    audit = table_of(AuditEntry)
    result = session.execute(delete(audit).where(audit.c.at < cutoff))
    purged = {"audit_entries": rowcount(result)}
    if purged["audit_entries"]:
        record(session, None, "retention.purged", detail=purged)
    session.commit()
    return purged
