"""Use-cases as plain functions: (session, [broker], actor, …) in, audit entry written, committed.

Services never import flask. Their errors are in webapp.services.errors; views turn them into
messages. Work a service sets in motion (a calendar write, revocations, sending a batch) it
queues itself, after it commits, on the ``jobs`` it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy.engine import CursorResult, Result

from models import Role

T = TypeVar("T")

#: Control characters (C0, DEL, C1) and lone surrogates; line breaks and tabs are matched too.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNPRINTABLE_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(value: str, *, multiline: bool = False) -> bool:
    """False if ``value`` holds a control character (NUL, escape, DEL…; line breaks and tabs
    only when ``multiline``) or a lone surrogate. Names, titles and addresses are written into
    calendar events, invitations and the database, where such characters break or smuggle
    something through; they are refused instead."""
    return not (_UNPRINTABLE_IN_TEXT if multiline else _UNPRINTABLE).search(value)


def in_batches(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Slices small enough for an ``IN (…)`` on every database's parameter limit."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE statement matched (``session.execute`` returns such a
    statement's CursorResult typed as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where; passed explicitly to every service."""

    user_id: int | None
    label: str | None
    organisation_id: int | None
    role: Role | None
    ip_address: str | None = None
    request_id: str | None = None


class JobQueue(Protocol):
    """The job queue as services see it (``webapp.jobs.queue.Jobs``): a task queued by its
    name, ``<area>.<verb_object>``. Services queue follow-up work after they commit, so the job
    finds what they wrote."""

    def enqueue(self, name: str, *args: Any) -> object: ...

    def enqueue_once(self, key: str, name: str, *args: Any, ttl: int = 600) -> object:
        """Enqueue unless a job under ``key`` is already waiting (bursts coalesce)."""
        ...
