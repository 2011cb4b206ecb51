"""The data inventory: every table and column with its classification, generated from the
models' metadata (each column's ``info``), never written by hand, and the retention rules."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Base,
    Role,
)
from models.base import PURPOSES, purpose_of
from webapp.services import Actor
from webapp.services.compliance.scope import organisation_scope, require

#: What Rendezvous deliberately does not store, shown with the inventory.
NOT_STORED = (
    "Calendar content: event titles, descriptions, locations, attendees and notes are written to "
    "and read from the calendar through the aggregator when a page needs them, never stored.",
    "Free/busy periods and availability: computed by the aggregator for each request, "
    "never stored.",
    "Candidate names and email addresses in readable form: they travel inside the signed "
    "self-scheduling link and the calendar invitation; the link's row keeps them only encrypted "
    "(AES-256-GCM) with a hash of the address, deleted with the link.",
    "Calendar account passwords: people sign in at the aggregator's consent page; Rendezvous only "
    "receives OAuth tokens, which it encrypts.",
)


PROCESSOR = (
    "Cronofy (the calendar aggregator) processes calendar data on Rendezvous's behalf: it "
    "holds the calendar authorizations and synchronises events with Google, Microsoft, "
    "Exchange and Apple."
)


@dataclass(frozen=True)
class ColumnEntry:
    name: str
    type: str
    category: str
    purpose: str
    retention: str
    encrypted: bool
    hashed: bool
    #: The purpose group it serves (a key of ``models.base.PURPOSES``).
    group: str = ""


@dataclass(frozen=True)
class TableEntry:
    name: str
    rows: int
    columns: tuple[ColumnEntry, ...]
    #: What its records are called in plain words.
    label: str = ""


#: The column retention every record has unless it says otherwise, in plain words.
UNTIL_DELETED = "until the record is deleted (with its owner, or by an erasure)"


@dataclass(frozen=True)
class Kept:
    """One kind of record, as a non-engineer reads it: what it is, which personal data and
    secrets it holds, how long it is kept, and how many your organisation has."""

    label: str
    table: str
    rows: int
    personal: tuple[str, ...]
    secrets: tuple[str, ...]
    retention: tuple[str, ...]


@dataclass(frozen=True)
class Purpose:
    key: str
    title: str
    why: str
    kept: tuple[Kept, ...]


def by_purpose(tables: list[TableEntry]) -> list[Purpose]:
    """The inventory grouped by why we keep it, generated from the columns' classification:
    each table's columns under the purpose group they serve (their table's unless a column
    says otherwise), in the order of ``PURPOSES``."""
    kept: dict[str, list[Kept]] = {key: [] for key in PURPOSES}
    for table in tables:
        groups: dict[str, list[ColumnEntry]] = {}
        for column in table.columns:
            groups.setdefault(column.group, []).append(column)
        for group, columns in groups.items():
            # The retention most of its columns share is the record's; others are named.
            main = Counter(c.retention for c in columns).most_common(1)[0][0]
            retention = [_plain(main)] + [
                f"{c.purpose}: {_plain(c.retention)}" for c in columns if c.retention != main
            ]
            kept[group].append(
                Kept(
                    label=table.label or table.name,
                    table=table.name,
                    rows=table.rows,
                    personal=_unique(c.purpose for c in columns if c.category == "personal"),
                    secrets=_unique(
                        f"{c.purpose} ({'encrypted' if c.encrypted else 'one-way hash'})"
                        for c in columns
                        if c.encrypted or c.hashed
                    ),
                    retention=_unique(retention),
                )
            )
    return [
        Purpose(key, title, why, tuple(kept[key]))
        for key, (title, why) in PURPOSES.items()
        if kept[key]
    ]


def _plain(retention: str) -> str:
    return UNTIL_DELETED if retention == "while the record exists" else retention


def _unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def inventory(session: Session, actor: Actor) -> list[TableEntry]:
    """Every table and column with its classification and the organisation's live row count."""
    require(actor, Role.COMPLIANCE)
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
                encrypted=c.info["category"] in ("secret-encrypted", "personal-encrypted"),
                hashed=c.info["category"] == "secret-hashed",
                group=purpose_of(c) or "",
            )
            for c in table.columns
        )
        tables.append(TableEntry(table.name, rows, columns, table.info.get("label", "")))
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
        (
            "Unused lines of pasted mailbox lists",
            "deleted 24 hours after the list was sent, and at once on erasure of an "
            "address they hold",
        ),
        ("Erasure receipts", "kept: they are the tombstone proving the erasure"),
    ]
