"""Writing the audit trail. Callers pass only non-secret, non-calendar details."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from models import AuditEntry
from webapp.services import Actor
from webapp.services.audit_codes import CODES

log = logging.getLogger(__name__)

#: The test suite sets this: an action code missing from ``audit_codes`` then fails the test
#: that records it. In production such an entry is still written (the trail must not lose an
#: event over a missing legend line) and the omission logged.
STRICT_CODES = False


class UnknownAuditAction(ValueError):
    """An action code that ``webapp/services/audit_codes.py`` does not define."""


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    outcome: str = "success",
    target_type: str | None = None,
    target_id: object = None,
    target_label: str | None = None,
    organisation_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to ``session`` (the caller commits with the change it describes)."""
    if action not in CODES:
        if STRICT_CODES:
            raise UnknownAuditAction(
                f"audit action {action!r} is not defined in webapp/services/audit_codes.py"
            )
        log.warning("audit action %s has no entry in the legend", action)
    entry = AuditEntry(
        organisation_id=organisation_id
        if organisation_id is not None
        else (actor.organisation_id if actor else None),
        actor_id=actor.user_id if actor else None,
        actor_label=actor.label if actor else None,
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        target_label=target_label,
        ip_address=actor.ip_address if actor else None,
        request_id=actor.request_id if actor else None,
        detail=detail,
    )
    session.add(entry)
    return entry
