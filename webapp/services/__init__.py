"""Use-cases as plain functions: (session, [broker], actor, …) in, audit entry written, committed.

Services never import flask. Views turn their exceptions into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence, TypeVar

from models import Role

T = TypeVar("T")


def in_batches(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Slices small enough for an ``IN (…)`` on every database's parameter limit."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where; passed explicitly to every service."""

    user_id: int | None
    label: str | None
    organisation_id: int | None
    role: Role | None
    ip_address: str | None = None
    request_id: str | None = None


class ServiceError(Exception):
    """Base of the errors a service raises on purpose; ``message`` is safe to show a user."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(ServiceError):
    """The input was refused; nothing was changed."""


class NotFound(ServiceError):
    """No such record visible to this actor (also used for other organisations' records)."""


class Forbidden(ServiceError):
    """The actor may not do this."""
