"""What every compliance lookup is narrowed by: the actor's role and organisation.

Each table's rows are narrowed to the organisation by ``organisation_scope`` (its
``organisation_id``, or the foreign key to a table that has one), so an address another
organisation also holds never reaches into its records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, String, Table, func, select
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.expression import ColumnElement

from models import (
    Base,
    Organisation,
    Role,
    User,
)
from webapp.services import Actor
from webapp.services.errors import Forbidden, NotFound


def require(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden("Your role cannot do this.")


def organisation_scope(
    table: Table, organisation_id: int | None, _through: tuple[Table, ...] = ()
) -> ColumnElement[bool]:
    """The condition selecting the rows of ``table`` that belong to one organisation: its own
    ``organisation_id`` where it has one, otherwise through a foreign key to a table that belongs
    to one (an OAuth state through its user, an event through its interview). Raises LookupError
    for a table with no such path (tests/webapp/test_compliance.py checks there is none)."""
    if table is table_of(Organisation):
        return table.c.id == organisation_id
    if "organisation_id" in table.c:
        return table.c.organisation_id == organisation_id
    # Required references first: a row with an empty optional one would fall out of scope.
    for column in sorted(table.columns, key=lambda c: bool(c.nullable)):
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


def table_of(model: type[Base]) -> Table:
    """A model's table, as the metadata holds it."""
    return Base.metadata.tables[model.__tablename__]


def like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def holds(column: ColumnElement[Any] | QueryableAttribute[Any], email: str) -> ColumnElement[bool]:
    return func.lower(column) == email.lower()


def org_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("There is no such person in your organisation.")
    return user


def user_reference_columns() -> Iterable[tuple[Table, Column]]:
    user_table = table_of(User)
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table is user_table for fk in column.foreign_keys):
                yield table, column


def email_columns() -> Iterable[tuple[Table, Column]]:
    """Personal-data text columns that may hold someone's email outside a user reference."""
    for table in Base.metadata.sorted_tables:
        if table is table_of(User):
            continue
        for column in table.columns:
            if (
                column.info.get("category") == "personal"
                and isinstance(column.type, String)
                and ("email" in column.name or column.name.endswith("_label"))
            ):
                yield table, column


def email_hash_columns() -> Iterable[tuple[Table, Column]]:
    """Columns holding the SHA-256 of someone's address (``link_details.email_hash``) where the
    address itself is kept only encrypted (a self-scheduling link's candidate)."""
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.info.get("category") == "secret-hashed" and column.name.endswith(
                "email_hash"
            ):
                yield table, column


def holds_hashed(column: Column, email: str) -> ColumnElement[bool]:
    from webapp.services.link_details import email_hash

    return column == email_hash(email)
