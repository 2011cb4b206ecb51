"""Compliance: the data inventory, the audit trail, everything stored about a person, subject
export, erasure and retention.

The inventory and the per-person view are generated from the models' metadata (each column's
``info``), never written by hand, so a new table shows up here as soon as it exists: records
about a person are every row that points at their user id through a foreign key, every audit
entry about them, and every ``personal`` column holding their email.

Everything here stays inside the actor's organisation: each table's rows are narrowed to the
organisation by ``organisation_scope`` (its ``organisation_id``, or the foreign key to a table
that has one), so an address another organisation also holds never reaches into its records.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Column, String, Table, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Base,
    ErasureRequest,
    LinkStatus,
    MailboxRequest,
    Organisation,
    ProfileLink,
    Role,
    User,
    utcnow,
)
from webapp.services import Actor, revocations
from webapp.services.audit import record
from webapp.services.errors import Forbidden, Invalid, NotFound, ServiceError, WriteFailed

#: What Rendezvous deliberately does not store, shown with the inventory.
NOT_STORED = (
    "Calendar content: event titles, descriptions, locations, attendees and notes are written to "
    "and read from the calendar through the aggregator when a page needs them, never stored.",
    "Free/busy periods and availability: computed by the aggregator for each request, never stored.",
    "Candidate names and email addresses: they travel inside the signed self-scheduling link and "
    "the calendar invitation, not in Rendezvous's database.",
    "Calendar account passwords: people sign in at the aggregator's consent page; Rendezvous only "
    "receives OAuth tokens, which it encrypts.",
)

PROCESSOR = (
    "Cronofy (the calendar aggregator) processes calendar data on Rendezvous's behalf: it "
    "holds the calendar authorizations and synchronises events with Google, Microsoft, "
    "Exchange and Apple."
)


# ---------------------------------------------------------------------------------------------
# Inventory


@dataclass(frozen=True)
class ColumnEntry:
    name: str
    type: str
    category: str
    purpose: str
    retention: str
    encrypted: bool
    hashed: bool


@dataclass(frozen=True)
class TableEntry:
    name: str
    rows: int
    columns: tuple[ColumnEntry, ...]


def _require(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role cannot do this.")


def organisation_scope(table: Table, organisation_id: int, _through: tuple[Table, ...] = ()):
    """The condition selecting the rows of ``table`` that belong to one organisation: its own
    ``organisation_id`` where it has one, otherwise through a foreign key to a table that belongs
    to one (an OAuth state through its user, an event through its interview). Raises LookupError
    for a table with no such path (tests/webapp/test_compliance.py checks there is none)."""
    if table is Organisation.__table__:
        return table.c.id == organisation_id
    if "organisation_id" in table.c:
        return table.c.organisation_id == organisation_id
    # Required references first: a row with an empty optional one would fall out of scope.
    for column in sorted(table.columns, key=lambda c: c.nullable):
        for fk in column.foreign_keys:
            parent = fk.column.table
            if parent is table or parent in _through:
                continue
            try:
                inner = organisation_scope(parent, organisation_id, (*_through, table))
            except LookupError:
                continue
            return column.in_(select(fk.column).where(inner))
    raise LookupError(f"table {table.name} has no path to an organisation")


def inventory(session: Session, actor: Actor) -> list[TableEntry]:
    """Every table and column with its classification and the organisation's live row count."""
    _require(actor, Role.COMPLIANCE)
    tables = []
    for table in Base.metadata.sorted_tables:
        rows = (
            session.scalar(
                select(func.count())
                .select_from(table)
                .where(organisation_scope(table, actor.organisation_id))
            )
            or 0
        )
        columns = tuple(
            ColumnEntry(
                name=c.name,
                type=str(c.type.compile(dialect=session.get_bind().dialect)),
                category=c.info["category"],
                purpose=c.info["purpose"],
                retention=c.info["retention"],
                encrypted=c.info["category"] == "secret-encrypted",
                hashed=c.info["category"] == "secret-hashed",
            )
            for c in table.columns
        )
        tables.append(TableEntry(table.name, rows, columns))
    return tables


def retention_rules(config: dict) -> list[tuple[str, str]]:
    """The retention rules the scheduled purge applies, for the inventory page."""
    return [
        ("Audit entries", f"deleted after {config['AUDIT_RETENTION_DAYS']} days"),
        ("OAuth states", "deleted once expired or a day after use"),
        ("Self-scheduling links", "deleted once expired, used or revoked for 30 days"),
        (
            "Slot claims (times of our own bookings, per panel member or room)",
            "deleted once that person's or room's calendar shows the interview, when the booking "
            "fails, moves or is cancelled, and once its time has passed",
        ),
        ("Calendar tokens", "deleted at once on disconnect, reset or erasure"),
        (
            "Revocations awaiting the calendar service",
            "an account id only (no token); deleted once the calendar service confirms",
        ),
        (
            "API tokens",
            "stored only as a hash; deleted 30 days after they expire or are revoked, "
            "and at once on erasure",
        ),
        (
            "API idempotency keys",
            "the key and request as hashes, the first response sealed; "
            "deleted 24 hours after the first request, and at once on "
            "erasure",
        ),
        ("Erasure receipts", "kept: they are the tombstone proving the erasure"),
    ]


# ---------------------------------------------------------------------------------------------
# Audit trail


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None

    def as_query(self) -> dict[str, str]:
        values = {
            "actor": self.actor,
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

    filters = AuditFilters(
        actor=(args.get("actor") or "").strip()[:320],
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
        query = query.where(AuditEntry.actor_label.ilike(f"%{_like(filters.actor)}%", escape="\\"))
    if filters.action:
        query = query.where(AuditEntry.action.like(f"{_like(filters.action)}%", escape="\\"))
    if filters.target:
        needle = f"%{_like(filters.target)}%"
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


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def audit_page(
    session: Session, actor: Actor, filters: AuditFilters, *, page: int, page_size: int = 50
) -> tuple[list[AuditEntry], int, int]:
    """One page of matching entries (newest first), the total and the number of pages."""
    _require(actor, Role.COMPLIANCE)
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
    _require(actor, Role.COMPLIANCE)
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


# ---------------------------------------------------------------------------------------------
# Everything stored about a person


def _user_reference_columns() -> Iterable[tuple[Table, Column]]:
    user_table = User.__table__
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table is user_table for fk in column.foreign_keys):
                yield table, column


def _email_columns() -> Iterable[tuple[Table, Column]]:
    """Personal-data text columns that may hold someone's email outside a user reference."""
    for table in Base.metadata.sorted_tables:
        if table is User.__table__:
            continue
        for column in table.columns:
            if (
                column.info.get("category") == "personal"
                and isinstance(column.type, String)
                and ("email" in column.name or column.name.endswith("_label"))
            ):
                yield table, column


def _shown(column: Column, value: Any, row: dict[str, Any]) -> Any:
    category = column.info.get("category")
    if value is None:
        return None
    if category == "secret-encrypted":
        return f"encrypted (key {row.get('key_id') or '?'})"
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


def _org_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("No such person in your organisation.")
    return user


def _holds(column: Column, email: str):
    return func.lower(column) == email.lower()


def person_records(session: Session, actor: Actor, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every local record about a user, table by table, secrets shown only as their kind."""
    _require(actor, Role.COMPLIANCE)
    user = _org_user(session, actor, user_id)
    return _collect(session, user)


def _collect(session: Session, user: User) -> dict[str, list[dict[str, Any]]]:
    """By foreign key first, then by email; either way only the person's organisation's rows."""
    records: dict[str, list[dict[str, Any]]] = {}
    user_table = User.__table__
    records[user_table.name] = _rows(session, user_table, user_table.c.id == user.id)
    seen: dict[str, set] = {}
    conditions: dict[str, list] = {}
    for table, column in _user_reference_columns():
        conditions.setdefault(table.name, []).append(column == user.id)
    audit = AuditEntry.__table__
    conditions.setdefault(audit.name, []).extend(
        [
            audit.c.actor_id == user.id,
            (audit.c.target_type == "user") & (audit.c.target_id == str(user.id)),
        ]
    )
    for table, column in _email_columns():
        conditions.setdefault(table.name, []).append(_holds(column, user.email))
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
    _require(actor, Role.COMPLIANCE)
    needle = f"%{_like(query.strip()[:320])}%"
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
    _require(actor, Role.COMPLIANCE)
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise Invalid("Enter an email address.", field="email")
    records: dict[str, list[dict[str, Any]]] = {}
    for table, column in _email_columns():
        rows = _rows(
            session, table, _holds(column, email) & organisation_scope(table, actor.organisation_id)
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
    from models import CreatedEvent, Interview, LinkStatus
    from webapp.services import credentials

    _require(actor, Role.COMPLIANCE)
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


# ---------------------------------------------------------------------------------------------
# Erasure


#: Steps other features add (e.g. cancelling future interviews); each gets
#: (session, broker, cipher, user, choice) and returns counts for the receipt.
ErasureStep = Callable[..., dict[str, int]]
ERASURE_STEPS: list[ErasureStep] = []


#: How an audit label names two people (see accounts.assign_coordinator).
PAIR = " → "


def erasure_step(fn: ErasureStep) -> ErasureStep:
    ERASURE_STEPS.append(fn)
    return fn


def pending_erasures(session: Session, actor: Actor) -> list[ErasureRequest]:
    _require(actor, Role.COMPLIANCE, Role.ADMIN)
    return list(
        session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.organisation_id == actor.organisation_id,
                ErasureRequest.status == "proposed",
            )
            .order_by(ErasureRequest.id)
        )
    )


def erasure_history(session: Session, actor: Actor) -> list[ErasureRequest]:
    _require(actor, Role.COMPLIANCE, Role.ADMIN)
    return list(
        session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.organisation_id == actor.organisation_id,
                ErasureRequest.status != "proposed",
            )
            .order_by(ErasureRequest.id.desc())
            .limit(100)
        )
    )


def propose_erasure(
    session: Session, actor: Actor, user_id: int, future_interviews: str
) -> ErasureRequest:
    """A compliance reviewer proposes erasing a person; an IT admin (or the configured role) confirms."""
    _require(actor, Role.COMPLIANCE)
    user = _org_user(session, actor, user_id)
    if future_interviews not in ("cancel", "keep"):
        raise Invalid(
            "Choose whether to cancel or keep their future interviews.", field="future_interviews"
        )
    if user.id == actor.user_id:
        raise Invalid("You cannot propose erasing your own account.")
    if session.scalar(
        select(ErasureRequest.id).where(
            ErasureRequest.person_id == user.id, ErasureRequest.status == "proposed"
        )
    ):
        raise Invalid("An erasure of this person is already waiting for confirmation.")
    request = ErasureRequest(
        organisation_id=actor.organisation_id,
        person_id=user.id,
        status="proposed",
        future_interviews=future_interviews,
        proposed_by_id=actor.user_id,
    )
    session.add(request)
    session.flush()
    record(
        session,
        actor,
        "erasure.proposed",
        target_type="user",
        target_id=user.id,
        detail={"request": request.id, "future_interviews": future_interviews},
    )
    session.commit()
    return request


def decide_erasure(
    session: Session,
    broker,
    cipher,
    actor: Actor,
    request_id: int,
    *,
    approve: bool,
    confirm_role: Role,
) -> ErasureRequest:
    """Confirm (and carry out) or reject a proposed erasure."""
    request = session.get(ErasureRequest, request_id)
    if request is None or request.organisation_id != actor.organisation_id:
        raise NotFound("No such erasure request.")
    if actor.role is not confirm_role:
        raise Forbidden("Your role cannot confirm erasures.")
    if request.status != "proposed":
        raise Invalid("This erasure request has already been decided.")
    if confirm_role is not Role.COMPLIANCE and request.proposed_by_id == actor.user_id:
        raise Forbidden("Another person must confirm an erasure you proposed.")
    if request.person_id == actor.user_id:
        raise Invalid("You cannot erase your own account.")
    if not approve:
        request.decided_by_id = actor.user_id
        request.decided_at = utcnow()
        request.status = "rejected"
        record(
            session,
            actor,
            "erasure.rejected",
            target_type="user",
            target_id=request.person_id,
            detail={"request": request.id},
        )
        session.commit()
        return request
    user = session.get(User, request.person_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("The person no longer exists.")
    if (
        user.role is Role.ADMIN
        and session.scalar(
            select(func.count(User.id)).where(
                User.organisation_id == user.organisation_id,
                User.role == Role.ADMIN,
                User.active.is_(True),
                User.id != user.id,
            )
        )
        == 0
    ):
        raise Invalid("The organisation's last IT admin cannot be erased.")
    receipt = _erase(session, broker, cipher, user, request.future_interviews)
    # Decided only now: cancelling interviews commits on the way, and a request that failed
    # half-way must stay open to be confirmed again.
    request.decided_by_id = actor.user_id
    request.decided_at = utcnow()
    request.receipt = receipt
    request.status = "completed"
    record(
        session,
        actor,
        "subject.erased",
        target_type="user",
        target_id=request.person_id,
        target_label=f"erased user #{request.person_id}",
        detail={"request": request.id, **request.receipt},
    )
    session.commit()
    return request


def _person_links(session: Session, user: User) -> list[ProfileLink]:
    """The person's calendar links: theirs by reference, and any other link of their
    organisation to a calendar account at their address. Never another organisation's: an
    address is only ever this person's inside their own organisation."""
    return list(
        session.scalars(
            select(ProfileLink)
            .where(
                ProfileLink.organisation_id == user.organisation_id,
                or_(ProfileLink.user_id == user.id, _holds(ProfileLink.account_email, user.email)),
            )
            .order_by(ProfileLink.id)
        )
    )


def _count(receipt: dict[str, int], key: str, value: int | None) -> None:
    if value:
        receipt[key] = receipt.get(key, 0) + value


def _erase(session: Session, broker, cipher, user: User, choice: str) -> dict[str, int]:
    from webapp.services import credentials

    organisation_id = user.organisation_id
    receipt: dict[str, int] = {"links_revoked": 0, "tokens_deleted": 0, "revocations_queued": 0}
    # Feature steps first: cancelling interviews needs the person's calendar access.
    for step in ERASURE_STEPS:
        for key, value in step(session, broker, cipher, user, choice).items():
            _count(receipt, key, value)
    # Every grant of a link that goes is revoked: at once where the aggregator answers, else
    # queued for the revocations job (no grant outlives the erasure unnoticed).
    links = _person_links(session, user)
    to_revoke: list[str] = []
    for link in links:
        if link.has_tokens:
            if broker is not None and credentials.revoke_at_aggregator(
                broker, cipher, link, whole_account=True
            ):
                receipt["links_revoked"] += 1
            else:
                to_revoke.append(link.sub)
            receipt["tokens_deleted"] += 1
        elif link.status is not LinkStatus.DISCONNECTED:
            to_revoke.append(link.sub)
        credentials.forget_tokens(link)
        link.status = LinkStatus.DISCONNECTED
    # Rooms and mailboxes of the organisation requested at the person's address.
    requests_ = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.organisation_id == organisation_id,
                _holds(MailboxRequest.email, user.email),
            )
        )
    )
    to_revoke += [r.resource_sub for r in requests_ if r.resource_sub]
    receipt["revocations_queued"] = revocations.queue(
        session, to_revoke, organisation_id=organisation_id, reason="subject.erased"
    )
    session.flush()
    # The links found by address are someone else's rows: deleted by id, like the person's.
    others = [link.id for link in links if link.user_id != user.id]
    if others:
        _count(
            receipt,
            "profile_link_deleted",
            session.execute(
                delete(ProfileLink.__table__).where(ProfileLink.__table__.c.id.in_(others))
            ).rowcount,
        )
    # Rows that point at the person: detach where the reference may be empty, delete otherwise.
    for table, column in reversed(list(_user_reference_columns())):
        if column.nullable:
            result = session.execute(
                update(table).where(column == user.id).values({column.name: None})
            )
            key = f"{table.name}_detached"
        else:
            result = session.execute(delete(table).where(column == user.id))
            key = f"{table.name}_deleted"
        _count(receipt, key, result.rowcount)
    # The audit trail keeps what happened and ids, but no longer names the person. This bulk
    # update is the one sanctioned exception to the trail being append-only.
    tombstone = f"erased user #{user.id}"
    audit = AuditEntry.__table__
    receipt["audit_labels_pseudonymised"] = 0
    for column in (audit.c.actor_label, audit.c.target_label):
        result = session.execute(
            update(audit)
            .where(_holds(column, user.email), organisation_scope(audit, organisation_id))
            .values({column.name: tombstone})
        )
        _count(receipt, "audit_labels_pseudonymised", result.rowcount)
    # Labels naming two people ("coordinator → manager", as assignments are labelled).
    label, email = audit.c.target_label, user.email.lower()
    for pattern, value in (
        (f"{_like(email)}{PAIR}%", literal(tombstone) + func.substr(label, len(email) + 1)),
        (
            f"%{PAIR}{_like(email)}",
            func.substr(label, 1, func.length(label) - len(email)) + literal(tombstone),
        ),
    ):
        result = session.execute(
            update(audit)
            .where(
                func.lower(label).like(pattern, escape="\\"),
                organisation_scope(audit, organisation_id),
            )
            .values({label.name: value})
        )
        _count(receipt, "audit_labels_pseudonymised", result.rowcount)
    # Whatever else of the organisation still holds the address.
    for table, column in _email_columns():
        if table is audit:
            continue
        result = session.execute(
            delete(table).where(
                _holds(column, user.email), organisation_scope(table, organisation_id)
            )
        )
        _count(receipt, f"{table.name}_deleted", result.rowcount)
    session.execute(delete(User.__table__).where(User.__table__.c.id == user.id))
    session.expunge(user)
    receipt["accounts_deleted"] = 1
    return receipt


def _ends_after(end, moment) -> bool:
    """An event end (a time, or an all-day end date) after ``moment``."""
    if isinstance(end, datetime):
        return end > moment
    return datetime.combine(end, time(0), UTC) > moment


@erasure_step
def _future_interviews(session: Session, broker, cipher, user: User, choice: str) -> dict[str, int]:
    """Cancel (delete from every calendar) or keep the person's future hosted interviews.

    Interview times are not stored here, so "future" is read from the aggregator: the managed
    events of the person's links from now on. A cancelled interview goes through the same
    delete path as one a recruiter cancels (``writes.run_delete``). Kept interviews stay in
    the calendars; their local rows go with the person's calendar link.
    """
    from models import EventStatus, Interview, InterviewStatus
    from webapp.services import credentials
    from webapp.services.scheduling import writes

    links = [link for link in _person_links(session, user) if link.status is LinkStatus.ACTIVE]
    if not links or broker is None:
        return {}
    future: set[str] = set()
    now = utcnow()
    for link in links:
        try:
            # The aggregator reads from a date (today, UTC); "from now on" is decided here.
            events = credentials.call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.managed_events(
                    creds, start=now.date(), on_refresh=on_refresh
                ),
            )
        except ServiceError:
            continue  # unreachable now: these interviews can only be kept
        future.update(
            e.event_id for e in events if e.event_id and not e.deleted and _ends_after(e.end, now)
        )
    hosted = list(
        session.scalars(
            select(Interview).where(
                Interview.organisation_id == user.organisation_id,
                Interview.host_link_id.in_([link.id for link in links]),
                Interview.status.in_([InterviewStatus.PENDING, InterviewStatus.SCHEDULED]),
            )
        )
    )
    upcoming = [i for i in hosted if any(e.event_id in future for e in i.events)]
    if choice == "keep":
        return {"future_interviews_kept": len(upcoming)}
    cancelled = 0
    for interview in upcoming:
        interview.status = InterviewStatus.CANCELLING
        interview.needs_notice = False
        for event in interview.events:
            if event.status is not EventStatus.DELETED:
                event.status = EventStatus.DELETING
        session.commit()
        try:
            writes.run_delete(session, broker, cipher, interview.id)
        except WriteFailed:
            continue  # some calendar did not confirm; counted below
        session.refresh(interview)
        cancelled += interview.status is InterviewStatus.CANCELLED
    session.flush()
    return {
        "future_interviews_cancelled": cancelled,
        "future_interviews_not_cancelled": len(upcoming) - cancelled,
    }


@erasure_step
def _own_preferences(session: Session, broker, cipher, user: User, choice: str) -> dict[str, int]:
    """Delete the person's own scheduling preferences, their meeting-room link among them: their
    reference may be empty, but detached they would read as an organisation default."""
    from models import SchedulingPreference

    result = session.execute(
        delete(SchedulingPreference).where(SchedulingPreference.user_id == user.id)
    )
    return {"scheduling_preference_deleted": result.rowcount} if result.rowcount else {}


# ---------------------------------------------------------------------------------------------
# Retention


def purge_expired(session: Session, *, audit_retention_days: int) -> dict[str, int]:
    """Delete audit entries past retention (the other purges register as jobs of their own)."""
    cutoff = utcnow() - timedelta(days=audit_retention_days)
    result = session.execute(delete(AuditEntry.__table__).where(AuditEntry.__table__.c.at < cutoff))
    purged = {"audit_entries": result.rowcount or 0}
    if purged["audit_entries"]:
        record(session, None, "retention.purged", detail=purged)
    session.commit()
    return purged
