"""Everything stored about a person, and subject export.

Records about a person are every row that points at their user id through a foreign key, every
audit entry about them, and every ``personal`` column holding their email, all inside their
organisation. A candidate's interviews are found through the aggregator (no candidate email is
stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Table, or_, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Base,
    LinkStatus,
    ProfileLink,
    Role,
    User,
    utcnow,
)
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.compliance.inventory import NOT_STORED
from webapp.services.compliance.scope import (
    email_columns,
    email_hash_columns,
    holds,
    holds_hashed,
    like_escaped,
    org_user,
    organisation_scope,
    require,
    table_of,
    user_reference_columns,
)
from webapp.services.errors import Invalid, ServiceError


def _shown(column: Column, value: Any, row: Mapping[Any, Any]) -> Any:
    category = column.info.get("category")
    if value is None:
        return None
    if category == "secret-encrypted":
        return f"encrypted (key {row['key_id']})" if row.get("key_id") else "encrypted"
    if category == "personal-encrypted":
        return "encrypted (AES-256-GCM)"
    if category == "secret-hashed":
        return "hashed (not reversible)"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return getattr(value, "value", value)


def _rows(session: Session, table: Table, condition) -> list[dict[str, Any]]:
    rows = []
    for row in session.execute(select(table).where(condition)).mappings():
        rows.append({c.name: _shown(c, row[c.name], row) for c in table.columns})
    return rows


def person_records(session: Session, actor: Actor, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every local record about a user, table by table, secrets shown only as their kind."""
    require(actor, Role.COMPLIANCE)
    user = org_user(session, actor, user_id)
    return _collect(session, user)


def _collect(session: Session, user: User) -> dict[str, list[dict[str, Any]]]:
    """By foreign key first, then by email; either way only the person's organisation's rows."""
    records: dict[str, list[dict[str, Any]]] = {}
    user_table = table_of(User)
    records[user_table.name] = _rows(session, user_table, user_table.c.id == user.id)
    seen: dict[str, set] = {}
    conditions: dict[str, list] = {}
    for table, column in user_reference_columns():
        conditions.setdefault(table.name, []).append(column == user.id)
    audit = table_of(AuditEntry)
    conditions.setdefault(audit.name, []).extend(
        [
            audit.c.actor_id == user.id,
            (audit.c.target_type == "user") & (audit.c.target_id == str(user.id)),
        ]
    )
    for table, column in email_columns():
        conditions.setdefault(table.name, []).append(holds(column, user.email))
    for table, column in email_hash_columns():
        conditions.setdefault(table.name, []).append(holds_hashed(column, user.email))
    for name, conds in conditions.items():
        table = Base.metadata.tables[name]
        rows = _rows(session, table, or_(*conds) & organisation_scope(table, user.organisation_id))
        if rows:
            key = [c.name for c in table.primary_key.columns]
            unique = []
            for row in rows:
                ident = tuple(row[k] for k in key)
                if ident not in seen.setdefault(name, set()):
                    seen[name].add(ident)
                    unique.append(row)
            records[name] = unique
    return records


def find_people(session: Session, actor: Actor, query: str) -> list[User]:
    require(actor, Role.COMPLIANCE)
    needle = f"%{like_escaped(query.strip()[:320])}%"
    return list(
        session.scalars(
            select(User)
            .where(
                User.organisation_id == actor.organisation_id,
                or_(User.email.ilike(needle, escape="\\"), User.name.ilike(needle, escape="\\")),
            )
            .order_by(User.name)
            .limit(50)
        )
    )


def email_records(session: Session, actor: Actor, email: str) -> dict[str, list[dict[str, Any]]]:
    """Rows holding an email that belongs to no account (for example a candidate's)."""
    require(actor, Role.COMPLIANCE)
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise Invalid("Enter an email address.", field="email")
    records: dict[str, list[dict[str, Any]]] = {}
    for table, column in email_columns():
        rows = _rows(
            session, table, holds(column, email) & organisation_scope(table, actor.organisation_id)
        )
        if rows:
            records.setdefault(table.name, []).extend(rows)
    # Where the address is kept only encrypted (a link's candidate), by the hash beside it.
    for table, column in email_hash_columns():
        rows = _rows(
            session,
            table,
            holds_hashed(column, email) & organisation_scope(table, actor.organisation_id),
        )
        if rows:
            records.setdefault(table.name, []).extend(rows)
    return records


@dataclass(frozen=True)
class CandidateInterview:
    uid: str
    status: str


def candidate_interviews(
    session: Session, broker, cipher, actor: Actor, email: str
) -> list[CandidateInterview]:
    """Interviews whose calendar event invites ``email``, found through the aggregator.

    Rendezvous stores no candidate email, so the answer comes from reading the organisation's
    managed events (one read per calendar link that hosts interviews) and matching attendees;
    only interview ids and statuses come back. The lookup is audited without the email.
    """
    from models import CreatedEvent, Interview
    from webapp.services import credentials

    require(actor, Role.COMPLIANCE)
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise Invalid("Enter an email address.", field="email")
    if broker is None:
        return []
    hosts = list(
        session.scalars(
            select(ProfileLink).where(
                ProfileLink.organisation_id == actor.organisation_id,
                ProfileLink.status == LinkStatus.ACTIVE,
                ProfileLink.id.in_(select(CreatedEvent.profile_link_id)),
            )
        )
    )
    matched: set[str] = set()
    unreachable = 0
    for link in hosts:
        try:
            events = credentials.call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.managed_events(creds, on_refresh=on_refresh),
            )
        except ServiceError:
            unreachable += 1
            continue
        matched.update(
            e.event_id
            for e in events
            if e.event_id and any(a.email.lower() == email for a in e.attendees)
        )
    found = []
    if matched:
        # By id through a subquery: DISTINCT over the JSON column is not portable (PostgreSQL).
        for interview in session.scalars(
            select(Interview)
            .where(
                Interview.organisation_id == actor.organisation_id,
                Interview.id.in_(
                    select(CreatedEvent.interview_id).where(CreatedEvent.event_id.in_(matched))
                ),
            )
            .order_by(Interview.id)
        ):
            found.append(CandidateInterview(interview.uid, interview.status.value))
    record(
        session,
        actor,
        "subject.candidate_lookup",
        detail={
            "interviews": len(found),
            "calendars_read": len(hosts) - unreachable,
            "calendars_unreachable": unreachable,
        },
    )
    session.commit()
    return found


def export_subject(session: Session, actor: Actor, user_id: int) -> dict[str, Any]:
    """One JSON document of every local record about a person; audited."""
    records = person_records(session, actor, user_id)
    record(
        session,
        actor,
        "subject.exported",
        target_type="user",
        target_id=user_id,
        detail={"tables": sorted(records), "rows": sum(len(r) for r in records.values())},
    )
    session.commit()
    return {
        "person_id": user_id,
        "exported_at": utcnow().isoformat(),
        "not_stored": list(NOT_STORED),
        "records": records,
    }
