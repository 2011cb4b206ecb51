"""Use-cases as plain functions: (session, [broker], actor, …) in, audit entry written, committed.

Services never import flask. Views turn their exceptions into messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import Role


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
