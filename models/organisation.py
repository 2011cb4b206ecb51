"""The customer organisation: the tenant every other record belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, classified, kept_for, utcnow


class Organisation(Base):
    __tablename__ = "organisation"
    __table_args__ = kept_for("accounts", "Your organisation and its settings")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    name: Mapped[str] = mapped_column(
        String(200), info=classified("configuration", "Organisation name shown in the app")
    )
    #: IANA zone used for working hours when a user has not chosen their own.
    timezone: Mapped[str] = mapped_column(
        String(64),
        default="Europe/London",
        info=classified("configuration", "Default time zone for working hours"),
    )
    #: While off, recruiters are not offered to link their own calendars.
    business_connect_enabled: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Whether users may link their own calendars"),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        info=classified("timestamp", "When the organisation was created"),
    )

    def __repr__(self) -> str:
        return f"<Organisation {self.id}>"
