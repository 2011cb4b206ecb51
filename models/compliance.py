"""Erasure requests: proposed by a compliance reviewer, confirmed by an IT admin, and afterwards
kept as the minimal tombstone of an erased person (ids and counts, never their name or email)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, classified, kept_for, utcnow

TOMBSTONE = "kept as the erasure receipt (tombstone)"


class ErasureRequest(Base):
    __tablename__ = "erasure_request"
    __table_args__ = kept_for("accountability", "Erasure requests and their receipts")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of the person", retention=TOMBSTONE),
    )
    #: Not a foreign key: the person's row is deleted by the erasure, this id remains.
    person_id: Mapped[int] = mapped_column(
        index=True, info=classified("identifier", "Id of the person to erase", retention=TOMBSTONE)
    )
    status: Mapped[str] = mapped_column(
        String(16),
        info=classified("status", "proposed, completed or rejected", retention=TOMBSTONE),
    )
    #: What to do with the person's future interviews: "cancel" or "keep".
    future_interviews: Mapped[str] = mapped_column(
        String(8),
        info=classified("configuration", "Cancel or keep future interviews", retention=TOMBSTONE),
    )
    proposed_by_id: Mapped[int | None] = mapped_column(
        info=classified("identifier", "Reviewer who proposed it", retention=TOMBSTONE)
    )
    proposed_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        info=classified("timestamp", "When it was proposed", retention=TOMBSTONE),
    )
    decided_by_id: Mapped[int | None] = mapped_column(
        info=classified("identifier", "Who confirmed or rejected it", retention=TOMBSTONE)
    )
    decided_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        info=classified("timestamp", "When it was confirmed or rejected", retention=TOMBSTONE),
    )
    #: The receipt page's address (/compliance/erasures/receipts/<ref>): random, so receipts
    #: cannot be enumerated; set when the erasure completes.
    receipt_ref: Mapped[str | None] = mapped_column(
        String(64),
        unique=True,
        info=classified(
            "identifier", "Unguessable address of the erasure's receipt page", retention=TOMBSTONE
        ),
    )
    #: Counts of what was revoked, deleted and cancelled: the receipt.
    receipt: Mapped[dict | None] = mapped_column(
        JSON, info=classified("audit", "What the erasure did (counts only)", retention=TOMBSTONE)
    )
