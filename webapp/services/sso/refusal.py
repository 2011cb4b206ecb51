"""A sign-in refused: the error the person sees and the audit entry of why (every refusal is
audited and changes nothing else)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.errors import Forbidden


class SsoRefused(Forbidden):
    """The provider signed someone in whom we do not let in; ``reason`` is for the audit."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def refuse(
    session: Session,
    actor: Actor,
    organisation_id: int | None,
    reason: str,
    *,
    label: str | None = None,
) -> None:
    record(
        session,
        actor,
        "sso.login_refused",
        outcome="denied",
        organisation_id=organisation_id,
        target_label=label,
        detail={"reason": reason},
    )
    session.commit()
