"""Declarative base, naming convention and the data-classification vocabulary.

Every column says what kind of data it holds through ``info=classified(...)``. The compliance
inventory is generated from that metadata, and a test fails on any column that lacks it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

#: Stable constraint names, so Alembic migrations do not depend on the backend's defaults.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: What a column may hold. Calendar content (titles, descriptions, attendees, busy periods) is
#: deliberately absent: no column may be classified as holding it.
CATEGORIES: dict[str, str] = {
    "identifier": "Internal or external identifier (row ids, aggregator ids)",
    "personal": "Personal data about a person with an account (name, email)",
    "personal-encrypted": "Personal data encrypted at rest with AES-256-GCM (a candidate's name)",
    "configuration": "A setting chosen by a user or administrator",
    "secret-hashed": "Secret kept only as a one-way hash",
    "secret-encrypted": "Secret encrypted at rest with AES-256-GCM",
    "status": "State of a record (active, pending, linked…)",
    "timestamp": "When something happened",
    "audit": "Part of the append-only audit trail",
}


#: Why Rendezvous keeps data, as the compliance inventory groups it: (heading, why). Every table
#: names the one it serves (``kept_for``); a column serving another says so
#: (``classified(..., group=...)``). tests/models/test_schema.py checks every column has one.
PURPOSES: dict[str, tuple[str, str]] = {
    "accounts": (
        "Accounts and roles",
        "So the people of your organisation can log in, each with the role that decides what "
        "they may see and do.",
    ),
    "calendars": (
        "Calendar connections",
        "So Rendezvous can read free/busy times and write interview events through the calendar "
        "service, and revoke that access when it is no longer needed.",
    ),
    "scheduling": (
        "Interviews and scheduling",
        "To book interviews without double-booking anyone, move or cancel them, and let "
        "candidates pick a time through a link.",
    ),
    "api": (
        "Integrations (API)",
        "So tools your organisation uses can call Rendezvous with a person's own API token.",
    ),
    "accountability": (
        "Accountability",
        "To show who did what and when, and to prove that an erasure was carried out.",
    ),
}


def classified(
    category: str,
    purpose: str,
    *,
    retention: str = "while the record exists",
    group: str | None = None,
) -> dict:
    """Column ``info`` naming its data category, purpose and retention; ``group`` (a key of
    ``PURPOSES``) only where the column serves another purpose than its table."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown data category {category!r}")
    info = {"category": category, "purpose": purpose, "retention": retention}
    if group is not None:
        if group not in PURPOSES:
            raise ValueError(f"unknown purpose group {group!r}")
        info["group"] = group
    return info


def kept_for(group: str, label: str) -> dict:
    """A table's ``info``: the purpose it serves (a key of ``PURPOSES``) and what its records
    are called in plain words, for the compliance inventory."""
    if group not in PURPOSES:
        raise ValueError(f"unknown purpose group {group!r}")
    return {"info": {"group": group, "label": label}}


def purpose_of(column) -> str | None:
    """The purpose group a column serves: its own, else its table's."""
    return column.info.get("group") or column.table.info.get("group")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
