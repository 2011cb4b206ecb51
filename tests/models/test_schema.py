"""The schema: migrations match the models, every column is classified, the audit trail is append-
only."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import models
from models import AuditEntry, AuditEntryImmutable, Base, migrate
from models.base import CATEGORIES, PURPOSES, classified, kept_for, purpose_of


def test_migrations_produce_exactly_the_models_schema(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrations_downgrade_to_nothing_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)


def test_every_column_is_classified():
    problems = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            info = column.info
            if (
                info.get("category") not in CATEGORIES
                or not info.get("purpose")
                or not info.get("retention")
            ):
                problems.append(f"{table.name}.{column.name}")
    assert not problems, "unclassified columns: " + ", ".join(problems)


def test_every_column_serves_a_purpose_the_inventory_groups_by():
    """Each table says what it is kept for (``kept_for``) and what its records are called; a
    column may name another purpose. The inventory's plain-words page is grouped by these."""
    problems = []
    for table in Base.metadata.sorted_tables:
        if not table.info.get("label"):
            problems.append(f"{table.name} has no label")
        for column in table.columns:
            if purpose_of(column) not in PURPOSES:
                problems.append(f"{table.name}.{column.name}")
    assert not problems, "no purpose group: " + ", ".join(problems)
    assert classified("personal", "x", group="api")["group"] == "api"
    for bad in (lambda: classified("personal", "x", group="marketing"), lambda: kept_for("x", "y")):
        with pytest.raises(ValueError, match="unknown purpose group"):
            bad()


CALENDAR_CONTENT_WORDS = (
    "summary",
    "description",
    "attendee",
    "title",
    "location",
    "busy",
    "body",
    "notes",
    "subject",
)


def test_no_column_is_shaped_to_hold_calendar_content():
    offenders = [
        f"{t.name}.{c.name}"
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if any(word in c.name for word in CALENDAR_CONTENT_WORDS)
    ]
    assert not offenders, offenders


def test_audit_entries_cannot_be_changed_or_deleted(session):
    entry = AuditEntry(action="test.action", outcome="success")
    session.add(entry)
    session.commit()
    entry.action = "rewritten"
    with pytest.raises(AuditEntryImmutable):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEntry, entry.id))
    with pytest.raises(AuditEntryImmutable):
        session.commit()
    session.rollback()


def test_models_never_import_webapp_or_broker():
    import ast
    from pathlib import Path

    root = Path(models.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("webapp", "broker", "flask")), f"{path}: imports {name}"


def test_erasures_completed_before_receipt_pages_get_their_own_address(tmp_path):
    """Migration 0019 gives every completed erasure an unguessable receipt reference (and none
    to a proposed or rejected one), so older receipts can be reopened too."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'receipts.sqlite3'}"
    migrate.upgrade(url, "0018")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisation (id, name, timezone, business_connect_enabled, "
                "created_at) VALUES (1, 'N', 'UTC', 0, '2026-01-01 00:00:00')"
            )
        )
        for request_id, status in ((1, "completed"), (2, "rejected"), (3, "completed")):
            conn.execute(
                text(
                    "INSERT INTO erasure_request (id, organisation_id, person_id, status, "
                    "future_interviews, proposed_at) VALUES (:id, 1, 9, :status, 'keep', "
                    "'2026-01-01 00:00:00')"
                ),
                {"id": request_id, "status": status},
            )
    migrate.upgrade(url, "0019")
    with engine.connect() as conn:
        refs = dict(conn.execute(text("SELECT id, receipt_ref FROM erasure_request")).all())
    engine.dispose()
    assert refs[2] is None
    assert len(refs[1]) >= 32 and len(refs[3]) >= 32 and refs[1] != refs[3]
