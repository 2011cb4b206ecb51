"""The append-only audit trail: who did what to which record, and whether it worked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, classified, kept_for, utcnow

AUDIT_RETENTION = "configured audit retention (default 400 days)"


class AuditEntry(Base):
    """One action. Never holds secrets or calendar content; rows are never updated."""

    __tablename__ = "audit_entry"
    __table_args__ = kept_for("accountability", "The audit trail")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        index=True,
        info=classified("audit", "When it happened", retention=AUDIT_RETENTION),
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"),
        index=True,
        info=classified(
            "identifier", "Organisation the action belongs to", retention=AUDIT_RETENTION
        ),
    )
    #: Deliberately not a foreign key: the trail must outlive the account it names.
    actor_id: Mapped[int | None] = mapped_column(
        index=True, info=classified("identifier", "User who acted", retention=AUDIT_RETENTION)
    )
    actor_label: Mapped[str | None] = mapped_column(
        String(320),
        info=classified("personal", "Email of the actor at the time", retention=AUDIT_RETENTION),
    )
    action: Mapped[str] = mapped_column(
        String(64), index=True, info=classified("audit", "What was done", retention=AUDIT_RETENTION)
    )
    target_type: Mapped[str | None] = mapped_column(
        String(64), info=classified("audit", "Kind of record acted on", retention=AUDIT_RETENTION)
    )
    target_id: Mapped[str | None] = mapped_column(
        String(64),
        info=classified("identifier", "Id of the record acted on", retention=AUDIT_RETENTION),
    )
    target_label: Mapped[str | None] = mapped_column(
        String(320),
        info=classified(
            "personal", "Human-readable target (e.g. an email)", retention=AUDIT_RETENTION
        ),
    )
    outcome: Mapped[str] = mapped_column(
        String(16),
        info=classified("audit", "success, failure or denied", retention=AUDIT_RETENTION),
    )
    ip_address: Mapped[str | None] = mapped_column(
        String(64),
        info=classified("personal", "Client address of the request", retention=AUDIT_RETENTION),
    )
    request_id: Mapped[str | None] = mapped_column(
        String(32),
        info=classified("identifier", "Correlates with log lines", retention=AUDIT_RETENTION),
    )
    #: Small structured facts (old/new role, counts).
    #: Callers pass only non-secret, non-calendar values.
    detail: Mapped[dict | None] = mapped_column(
        JSON,
        info=classified("audit", "Structured details of the action", retention=AUDIT_RETENTION),
    )


class AuditEntryImmutable(RuntimeError):
    """Raised when code tries to change or delete an audit entry through the ORM."""


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(mapper, connection, target):  # pragma: no cover - exercised by a test
    raise AuditEntryImmutable("audit entries are append-only")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise AuditEntryImmutable("audit entries are append-only; retention purges in bulk")
