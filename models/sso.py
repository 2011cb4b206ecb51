"""Single sign-on: an organisation's OpenID Connect identity provider, and the one-time states
of the sign-ins started with it.

The client secret is kept encrypted (AES-GCM under the token key ring, bound to its table,
column and row, like calendar tokens). A sign-in state is kept as SHA-256 hashes only: the
``state`` and ``nonce`` sent to the provider and the browser session it was started in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.calendar_link import _enum
from models.user import Role


class SsoConfig(Base):
    """How one organisation signs in through its identity provider (at most one per
    organisation), and whether its people may still log in with a password."""

    __tablename__ = "sso_config"
    __table_args__ = kept_for(
        "accounts", "Single sign-on settings: identity provider, encrypted client secret"
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        unique=True,
        info=classified("identifier", "Organisation that signs in through this provider"),
    )
    issuer: Mapped[str] = mapped_column(
        String(500), info=classified("configuration", "Identity provider's issuer URL")
    )
    client_id: Mapped[str] = mapped_column(
        String(255), info=classified("configuration", "Our client id at the identity provider")
    )
    client_secret: Mapped[bytes] = mapped_column(
        LargeBinary,
        info=classified(
            "secret-encrypted",
            "Our client secret at the identity provider",
            retention="until replaced or the configuration is removed",
        ),
    )
    #: Which key of the token key ring encrypted the client secret.
    key_id: Mapped[str] = mapped_column(
        String(16), info=classified("configuration", "Encryption key id of the client secret")
    )
    enabled: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Whether people may sign in through the provider"),
    )
    #: People of the verified domains without an account get one on their first sign-in.
    create_accounts: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Whether a first sign-in creates the account"),
    )
    default_role: Mapped[Role] = mapped_column(
        _enum(Role, "user_role"),
        default=Role.RECRUITER,
        info=classified("configuration", "Role of accounts created on first sign-in"),
    )
    password_login: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        server_default=true(),
        info=classified("configuration", "Whether people may still log in with a password"),
    )
    #: The IT admin kept on password login while it is off for everyone else.
    break_glass_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        info=classified("identifier", "IT admin who keeps password login (break-glass)"),
    )
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        info=classified("identifier", "IT admin who last changed the configuration"),
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change to the configuration"),
    )


class SsoState(Base):
    """One sign-in sent to an identity provider: used once, in the browser that started it,
    within minutes (RFC 9700 §2.1, §4.7)."""

    __tablename__ = "sso_state"
    __table_args__ = kept_for("accounts", "Single sign-ins in progress (one-time)")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation whose provider the sign-in went to"),
    )
    state_hash: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        info=classified(
            "secret-hashed",
            "SHA-256 of the one-time state",
            retention="deleted once expired, or a day after use",
        ),
    )
    nonce_hash: Mapped[str] = mapped_column(
        String(64),
        info=classified(
            "secret-hashed",
            "SHA-256 of the ID token nonce",
            retention="deleted once expired, or a day after use",
        ),
    )
    #: SHA-256 of a nonce kept in the browser's session: the sign-in completes only there.
    session_binding: Mapped[str] = mapped_column(
        String(64),
        info=classified(
            "secret-hashed",
            "Binds the sign-in to the browser session",
            retention="deleted once expired, or a day after use",
        ),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the sign-in started")
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=classified("timestamp", "After this the state is refused")
    )
    used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the state was used (single use)")
    )
