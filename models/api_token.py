"""Personal API tokens: a person's key to the JSON API, acting as them with their current role.

Only the SHA-256 of a token is stored; the token itself is shown once, when it is created.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.user import User

TOKEN_RETENTION = "until 30 days after it expires or is revoked, or its owner is erased"


def _info(category: str, purpose: str) -> dict:
    return classified(category, purpose, retention=TOKEN_RETENTION)


class ApiToken(Base):
    __tablename__ = "api_token"
    __table_args__ = kept_for("api", "Personal API tokens (kept only as a hash)")

    id: Mapped[int] = mapped_column(primary_key=True, info=_info("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=_info("identifier", "Organisation of the token's owner"),
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=_info("identifier", "Person the token acts as"),
    )
    name: Mapped[str] = mapped_column(
        String(100), info=_info("configuration", "What the owner called the token")
    )
    #: SHA-256 (hex) of the whole token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        info=_info("secret-hashed", "Recognises the token on each API request"),
    )
    #: The first characters of the token (``rdv_`` + 4), so its owner can tell tokens apart.
    prefix: Mapped[str] = mapped_column(
        String(16), info=_info("identifier", "Recognisable start of the token")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=_info("timestamp", "When the token was created")
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=_info("timestamp", "When the token stops working")
    )
    last_used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=_info("timestamp", "Most recent accepted request (to the minute)")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=_info("timestamp", "When the owner revoked it")
    )

    user: Mapped[User] = relationship()

    def usable(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and self.expires_at > now

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > utcnow() else "expired"
