"""Database wiring: one engine per app, one SQLAlchemy session per request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from webapp import deps


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def create_private_file(path: str | Path) -> None:
    """Create ``path`` empty and readable by this user alone (0600, like instance/secrets.json)
    unless it exists (or its folder does not: then opening it fails as it would have). SQLite
    gives its journal and WAL files the database file's mode; left to itself it would create
    them all world-readable (umask 022), calendar tokens included."""
    try:
        os.close(os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database_file = make_url(url).database
        if database_file and database_file != ":memory:" and not database_file.startswith("file:"):
            create_private_file(database_file)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Readers and the writer do not wait for each other (one writer at a time still):
            # a bulk link's callbacks, people's pages and the jobs all use the database at once.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    deps.database.install(
        app, Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
    )
    app.teardown_appcontext(close_session)


def db_session() -> Session:
    """The session of the current request (or app context), created on first use."""
    if "db_session" not in g:
        g.db_session = deps.database().sessions()
    return g.db_session


def close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
