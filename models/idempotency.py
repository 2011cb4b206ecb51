"""Idempotency keys of the JSON API: the first response to a POST, replayed for a retry.

A client that sends ``Idempotency-Key`` with a POST gets, for the same key and the same request
within 24 hours, the first response again instead of a second execution (Stripe's semantics).
The key and the request are kept only as SHA-256 hashes; the response is sealed (AES-GCM), since
it may carry a one-time link. Rows are deleted 24 hours after the first request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, classified, kept_for, utcnow

KEY_RETENTION = "24 hours after the first request with the key, or until its owner is erased"


def _info(category: str, purpose: str) -> dict:
    return classified(category, purpose, retention=KEY_RETENTION)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("user_id", "key_hash"),
        kept_for("api", "Recent API requests, so a retried request does not act twice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=_info("identifier", "Row id"))
    #: Keys are scoped to the person the API token acts as.
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        info=_info("identifier", "Person whose API request it was"),
    )
    key_hash: Mapped[str] = mapped_column(
        String(64), info=_info("identifier", "SHA-256 of the client's Idempotency-Key")
    )
    #: SHA-256 of method, path and the canonical JSON of the request, to refuse a reused key.
    request_hash: Mapped[str] = mapped_column(
        String(64), info=_info("identifier", "SHA-256 of the first request")
    )
    status_code: Mapped[int | None] = mapped_column(
        Integer, info=_info("status", "HTTP status of the first response (none while it runs)")
    )
    sealed_response: Mapped[str | None] = mapped_column(
        Text, info=_info("secret-encrypted", "The first response, sealed with AES-GCM")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        index=True,
        info=_info("timestamp", "When the first request with the key arrived"),
    )
