"""Links to calendar accounts at the aggregator, and the one-time OAuth states that create them.

A ProfileLink holds identifiers and encrypted tokens only: never a calendar's name, an event or a
free/busy period. Calendars are read from the aggregator when a page needs them.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.user import User


class LinkMode(str, enum.Enum):
    BUSINESS = "business"  # the person authorized their own (or a delegated) account
    ENTERPRISE = "enterprise"  # linked by the organisation's service account


class LinkStatus(str, enum.Enum):
    ACTIVE = "active"
    NEEDS_ATTENTION = "needs_attention"  # aggregator lost access: see ProfileLink.attention
    DISCONNECTED = "disconnected"  # tokens deleted; kept so created events stay cancellable


class Attention(str, enum.Enum):
    """Why a calendar link needs attention, which decides how it comes back."""

    #: The provider dropped the profile's credentials at the aggregator. The person relinks
    #: through the aggregator's own email or page, and the link recovers by itself once the
    #: aggregator reports the profile connected again (checked, not assumed).
    PROFILE_DISCONNECTED = "profile_disconnected"
    #: Our own authorization was refused (invalid_grant, 401): only linking again in
    #: Rendezvous (or, for Enterprise Connect, the admin's relink) brings it back.
    RECONNECT = "reconnect"


def _enum(cls, name):
    return Enum(
        cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


TOKEN_RETENTION = "until disconnected; deleted at once on disconnect"


class EncryptedTokens:
    """The token set of one aggregator authorization, encrypted at rest (AES-GCM, bound to the
    table, column and row; see webapp.security.TokenCipher). Shared by calendar links and
    service-account links so both are stored, rotated and forgotten alike."""

    #: Whose tokens these are, for the columns' classification.
    _tokens_of = "Aggregator"

    @declared_attr
    def access_token(cls) -> Mapped[bytes | None]:
        return mapped_column(
            LargeBinary,
            info=classified(
                "secret-encrypted", f"{cls._tokens_of} access token", retention=TOKEN_RETENTION
            ),
        )

    @declared_attr
    def refresh_token(cls) -> Mapped[bytes | None]:
        return mapped_column(
            LargeBinary,
            info=classified(
                "secret-encrypted", f"{cls._tokens_of} refresh token", retention=TOKEN_RETENTION
            ),
        )

    token_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the access token expires")
    )
    #: Which key of the ring encrypted both tokens (rotation re-encrypts and updates it).
    key_id: Mapped[str | None] = mapped_column(
        String(16), info=classified("configuration", "Encryption key id of the tokens")
    )

    @property
    def has_tokens(self) -> bool:
        return self.refresh_token is not None


class ProfileLink(EncryptedTokens, Base):
    __tablename__ = "profile_link"
    __table_args__ = (
        UniqueConstraint("sub"),
        kept_for("calendars", "Calendar links: whose calendar account, encrypted access tokens"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of the linked user"),
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "User whose calendar this is"),
    )
    mode: Mapped[LinkMode] = mapped_column(
        _enum(LinkMode, "link_mode"),
        info=classified("configuration", "Business or Enterprise Connect"),
    )
    sub: Mapped[str] = mapped_column(
        String(64), info=classified("identifier", "Aggregator account id (sub)")
    )
    account_id: Mapped[str | None] = mapped_column(
        String(64), info=classified("identifier", "Aggregator account id")
    )
    profile_id: Mapped[str | None] = mapped_column(
        String(64), info=classified("identifier", "Aggregator calendar profile id")
    )
    provider: Mapped[str | None] = mapped_column(
        String(32),
        info=classified("configuration", "Calendar provider (google, office365, exchange…)"),
    )
    account_email: Mapped[str | None] = mapped_column(
        String(320), info=classified("personal", "Email of the linked calendar account")
    )
    status: Mapped[LinkStatus] = mapped_column(
        _enum(LinkStatus, "link_status"),
        default=LinkStatus.ACTIVE,
        info=classified("status", "Active, needs attention, or disconnected"),
    )
    #: Set with NEEDS_ATTENTION; empty for links marked before the reason was kept (checked
    #: like a disconnected profile, which settles it).
    attention: Mapped[Attention | None] = mapped_column(
        _enum(Attention, "link_attention"),
        info=classified("status", "Why the link needs attention (decides how it recovers)"),
    )
    target_calendar_id: Mapped[str | None] = mapped_column(
        String(200), info=classified("configuration", "Calendar interviews are written to")
    )
    conflict_calendar_ids: Mapped[list | None] = mapped_column(
        JSON, info=classified("configuration", "Calendars whose events count as busy")
    )
    #: The push channel opened for this link: a notification naming another channel (say, one
    #: captured from someone else's account and replayed to this link's URL) is ignored.
    channel_id: Mapped[str | None] = mapped_column(
        String(64), info=classified("identifier", "Aggregator push channel id of the link")
    )
    #: A colleague's calendar delegated to a Business Connect user: this link has no tokens of
    #: its own; its free/busy is read through the owner's link, restricted to this calendar.
    #: Kept when the owner's link goes (the link then needs attention, never vanishes).
    delegated_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("profile_link.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Calendar link whose account sees this delegated calendar"),
    )
    delegated_calendar_id: Mapped[str | None] = mapped_column(
        String(200),
        info=classified("identifier", "Aggregator id of the delegated calendar in that account"),
    )
    linked_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the calendar was linked")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change to the link"),
    )

    user: Mapped[User] = relationship()

    @property
    def is_delegated(self) -> bool:
        """A colleague's calendar seen through another person's link (no tokens of its own)."""
        return self.delegated_calendar_id is not None

    @property
    def aggregator_sub(self) -> str:
        """Whom availability asks about: the link's own account, or for a delegated calendar
        the owner's (kept in ``account_id`` when it was added)."""
        return (self.account_id or self.sub) if self.is_delegated else self.sub


class OAuthState(Base):
    """A one-time ``state`` for an authorization redirect: hashed, session-bound, 10 minutes."""

    __tablename__ = "oauth_state"
    __table_args__ = kept_for(
        "calendars", "Calendar sign-ins in progress (one-time, expire within a day)"
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    state_hash: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        info=classified(
            "secret-hashed",
            "SHA-256 of the state sent to the aggregator",
            retention="purged after expiry",
        ),
    )
    flow: Mapped[str] = mapped_column(
        String(32), info=classified("configuration", "Which authorization this state belongs to")
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "User who started the authorization"),
    )
    #: SHA-256 of a nonce kept in the user's session: a state only completes in that browser.
    session_binding: Mapped[str] = mapped_column(
        String(64), info=classified("secret-hashed", "Binds the state to the browser session")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the redirect started")
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=classified("timestamp", "After this the state is refused")
    )
    used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the state was consumed (single use)")
    )


class PendingRevocation(Base):
    """An authorization to revoke at the aggregator, queued when links are disconnected in
    bulk. The links' tokens are already deleted when the row is written; accounts are revoked
    by ``sub`` (documented; the application's own credentials suffice), a service account by
    its refresh token, kept here encrypted until then. A job works the queue and deletes each
    row once the aggregator confirms, so a domain of 10,000 mailboxes is disconnected at once
    locally and revoked remotely at the pace the aggregator allows, surviving restarts."""

    __tablename__ = "pending_revocation"
    __table_args__ = (
        UniqueConstraint("sub"),
        kept_for("calendars", "Calendar authorizations waiting to be revoked"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Organisation whose link this was"),
    )
    sub: Mapped[str] = mapped_column(
        String(64),
        info=classified(
            "identifier",
            "Aggregator id of the authorization to revoke",
            retention="until the aggregator confirms the revocation",
        ),
    )
    reason: Mapped[str] = mapped_column(
        String(40), info=classified("configuration", "What asked for the revocation")
    )
    requested_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When it was queued")
    )
    next_attempt_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        index=True,
        info=classified("timestamp", "Not tried again before this"),
    )
    attempts: Mapped[int] = mapped_column(
        default=0, info=classified("status", "Failed attempts so far")
    )
    last_error: Mapped[str | None] = mapped_column(
        String(64), info=classified("status", "Why the last attempt failed")
    )
    #: A service account's refresh token, moved here from its link when the domain was
    #: disconnected: revoking by token is the documented way, by a ``ser_…`` sub it is not
    #: confirmed. Deleted with the row once the aggregator confirms.
    refresh_token: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        info=classified(
            "secret-encrypted",
            "Refresh token to revoke with",
            retention="until the aggregator confirms the revocation",
        ),
    )
    key_id: Mapped[str | None] = mapped_column(
        String(16), info=classified("configuration", "Encryption key id of the refresh token")
    )
    #: Set when the aggregator refused the revocation (or kept failing): no more automatic
    #: attempts; an IT admin sees it and tries again or confirms it was revoked elsewhere.
    refused_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the revocation was given up on")
    )
