"""The rows an erasure changes, listed once: carried out by the erasure, counted by its plan.

``row_changes`` lists every delete, detach and relabel in the order the erasure performs them,
driven by the schema (every column that references a person, every personal column that may
hold their address), so a table added later is covered by both without being named here.
``apply`` executes the list and returns the receipt's counts; ``count`` runs the same
conditions as SELECTs, following what earlier changes in the list delete (and what the
database then deletes with them through ON DELETE CASCADE), so the confirmation page shows the
numbers the receipt will show rather than a second guess.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from models import AuditEntry, ProfileLink, SchedulingPreference, User
from webapp.services import in_batches, rowcount
from webapp.services.compliance.scope import (
    email_columns,
    email_hash_columns,
    holds,
    holds_hashed,
    like_escaped,
    organisation_scope,
    table_of,
    user_reference_columns,
)

#: How an audit label names two people (see coordinators.assign_coordinator).
PAIR = " → "

#: The receipt's key for audit labels that no longer name the person.
RELABELLED = "audit_labels_pseudonymised"


@dataclass(frozen=True)
class RowChange:
    """One statement of the erasure: delete the rows ``where`` selects, or (with ``values``)
    update them. ``key`` is the receipt's count it adds to."""

    key: str
    table: Table
    where: ColumnElement[bool]
    values: dict[str, Any] | None = None


def tombstone(user: User) -> str:
    """What the audit trail says instead of an erased person's address."""
    return f"erased user #{user.id}"


def row_changes(user: User, others: list[int]) -> list[RowChange]:
    """Every row change of erasing ``user``, in order. ``others`` are the ids of calendar links
    of their organisation found at their address but not theirs (deleted by id too)."""
    organisation_id = user.organisation_id
    changes: list[RowChange] = []
    # Their own scheduling preferences (their meeting-room link among them): their reference
    # may be empty, but detached they would read as an organisation default.
    preferences = table_of(SchedulingPreference)
    changes.append(
        RowChange("scheduling_preference_deleted", preferences, preferences.c.user_id == user.id)
    )
    if others:
        links = table_of(ProfileLink)
        changes.append(RowChange("profile_link_deleted", links, links.c.id.in_(others)))
    # Rows that point at the person: detach where the reference may be empty, delete otherwise.
    for table, column in reversed(list(user_reference_columns())):
        if column.nullable:
            changes.append(
                RowChange(f"{table.name}_detached", table, column == user.id, {column.name: None})
            )
        else:
            changes.append(RowChange(f"{table.name}_deleted", table, column == user.id))
    # The audit trail keeps what happened and ids, but no longer names the person. These bulk
    # updates are the one sanctioned exception to the trail being append-only.
    audit, name = table_of(AuditEntry), tombstone(user)
    in_org = organisation_scope(audit, organisation_id)
    for label_column in (audit.c.actor_label, audit.c.target_label):
        changes.append(
            RowChange(
                RELABELLED,
                audit,
                holds(label_column, user.email) & in_org,
                {label_column.name: name},
            )
        )
    # Labels naming two people ("coordinator → manager", as assignments are labelled).
    label, email = audit.c.target_label, user.email.lower()
    for pattern, relabelled in (
        (f"{like_escaped(email)}{PAIR}%", literal(name) + func.substr(label, len(email) + 1)),
        (
            f"%{PAIR}{like_escaped(email)}",
            func.substr(label, 1, func.length(label) - len(email)) + literal(name),
        ),
    ):
        changes.append(
            RowChange(
                RELABELLED,
                audit,
                func.lower(label).like(pattern, escape="\\") & in_org,
                {label.name: relabelled},
            )
        )
    # Whatever else of the organisation still holds the address.
    for table, column in email_columns():
        if table is not audit:
            changes.append(
                RowChange(
                    f"{table.name}_deleted",
                    table,
                    holds(column, user.email) & organisation_scope(table, organisation_id),
                )
            )
    # Rows keeping the address only encrypted, found by its hash (links made for the person).
    for table, column in email_hash_columns():
        changes.append(
            RowChange(
                f"{table.name}_deleted",
                table,
                holds_hashed(column, user.email) & organisation_scope(table, organisation_id),
            )
        )
    users = table_of(User)
    changes.append(RowChange("accounts_deleted", users, users.c.id == user.id))
    return changes


def apply(session: Session, changes: list[RowChange]) -> dict[str, int]:
    """Carry the changes out, in order; the receipt's count of each key that changed rows."""
    counts: Counter[str] = Counter()
    for change in changes:
        if change.values is None:
            result = session.execute(delete(change.table).where(change.where))
        else:
            result = session.execute(update(change.table).where(change.where).values(change.values))
        counts[change.key] += rowcount(result)
    return {key: n for key, n in counts.items() if n}


def count(session: Session, changes: list[RowChange]) -> dict[str, int]:
    """What ``apply`` would count, without changing anything: each change's rows that an
    earlier change has not deleted (directly or by cascade)."""
    counts: Counter[str] = Counter()
    gone: dict[Table, set[Any]] = {}
    for change in changes:
        key_column = _key(change.table)
        ids: set[Any] = set(session.scalars(select(key_column).where(change.where)))
        ids -= gone.get(change.table, set())
        counts[change.key] += len(ids)
        if change.values is None:
            _delete(session, change.table, ids, gone)
    return {key: n for key, n in counts.items() if n}


def _key(table: Table):
    (column,) = table.primary_key.columns
    return column


def _delete(session: Session, table: Table, ids: set[Any], gone: dict[Table, set[Any]]) -> None:
    """Mark rows deleted, with the rows the database deletes with them (ON DELETE CASCADE)."""
    fresh = ids - gone.get(table, set())
    if not fresh:
        return
    gone.setdefault(table, set()).update(fresh)
    for child in table.metadata.sorted_tables:
        for column in child.columns:
            for fk in column.foreign_keys:
                if fk.column.table is table and (fk.ondelete or "").upper() == "CASCADE":
                    children: set[Any] = set()
                    for batch in in_batches(sorted(fresh)):
                        children.update(
                            session.scalars(select(_key(child)).where(column.in_(batch)))
                        )
                    _delete(session, child, children, gone)
