"""People with an account, their role, and which hiring managers a coordinator may schedule for."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.organisation import Organisation


class Role(str, enum.Enum):
    RECRUITER = "recruiter"
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    COMPLIANCE = "compliance"
    #: A directory person: a mailbox linked through Enterprise Connect (or a colleague's
    #: calendar delegated to a Business Connect user) who has no login. They sit on panels and
    #: have working hours; inviting them to log in gives them one of LOGIN_ROLES.
    INTERVIEWER = "interviewer"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def can_log_in(self) -> bool:
        return self is not Role.INTERVIEWER


ROLE_LABELS = {
    Role.RECRUITER: "Recruiter / hiring manager",
    Role.COORDINATOR: "Coordinator",
    Role.ADMIN: "IT admin",
    Role.COMPLIANCE: "Compliance reviewer",
    Role.INTERVIEWER: "Interviewer (no login)",
}

#: The roles a login has: what an invitation, a role change or an access policy may name.
LOGIN_ROLES = (Role.RECRUITER, Role.COORDINATOR, Role.ADMIN, Role.COMPLIANCE)


class User(Base):
    """A person of one organisation: an account, or a directory person without a login
    (``Role.INTERVIEWER``: no password, no invitation, refused at every login path). One
    address may have a row in several organisations (each its own role and password); inside an
    organisation an address is unique."""

    __tablename__ = "user_account"
    __table_args__ = (
        UniqueConstraint("organisation_id", "email"),
        # One account per identity at the organisation's provider.
        UniqueConstraint(
            "organisation_id", "sso_issuer", "sso_sub", name="uq_user_account_sso_identity"
        ),
        kept_for("accounts", "People's accounts: name, email address, role, a password hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation the user belongs to"),
    )
    email: Mapped[str] = mapped_column(
        String(320), index=True, info=classified("personal", "Login name and contact address")
    )
    name: Mapped[str] = mapped_column(String(200), info=classified("personal", "Display name"))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="user_role",
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        info=classified("configuration", "What the user may do in the app"),
    )
    #: argon2id hash; NULL until the user accepts their invitation and chooses a password.
    password_hash: Mapped[str | None] = mapped_column(
        String(255), info=classified("secret-hashed", "Verifies the user's password")
    )
    active: Mapped[bool] = mapped_column(
        Boolean, default=True, info=classified("status", "Deactivated users cannot log in")
    )
    #: Bumped on logout, deactivation, role and password changes; sessions carrying an older
    #: version are refused on their next request.
    session_version: Mapped[int] = mapped_column(
        Integer, default=1, info=classified("status", "Invalidates existing sessions")
    )
    timezone: Mapped[str | None] = mapped_column(
        String(64), info=classified("configuration", "The user's own time zone, if set")
    )
    invite_token_hash: Mapped[str | None] = mapped_column(
        String(64),
        unique=True,
        info=classified(
            "secret-hashed",
            "SHA-256 of the one-time invitation link",
            retention="until used or expired",
        ),
    )
    invite_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the invitation link stops working")
    )
    #: Single sign-on binds the account to the provider's (issuer, sub) on its first sign-in;
    #: later sign-ins are matched by them, not by the address (which the provider may change).
    sso_issuer: Mapped[str | None] = mapped_column(
        String(500),
        info=classified("configuration", "Identity provider the account signs in with"),
    )
    sso_sub: Mapped[str | None] = mapped_column(
        String(255),
        info=classified(
            "personal", "The person's identifier at the identity provider (OpenID Connect sub)"
        ),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the account was created")
    )
    last_login_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "Most recent successful login")
    )

    organisation: Mapped[Organisation] = relationship()

    # Flask-Login protocol, kept here so the model works without importing flask.
    @property
    def is_active(self) -> bool:
        return bool(self.active) and self.role is not Role.INTERVIEWER

    @property
    def is_directory_person(self) -> bool:
        """No login: a mailbox or delegated calendar's person, until invited."""
        return self.role is Role.INTERVIEWER

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class CoordinatorAssignment(Base):
    """A coordinator may schedule on behalf of this hiring manager (free/busy only)."""

    __tablename__ = "coordinator_assignment"
    __table_args__ = (
        UniqueConstraint("coordinator_id", "manager_id"),
        kept_for("accounts", "Which coordinator schedules for which hiring manager"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of both users"),
    )
    coordinator_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The coordinator"),
    )
    manager_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The hiring manager they schedule for"),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the assignment was made")
    )

    coordinator: Mapped[User] = relationship(foreign_keys=[coordinator_id])
    manager: Mapped[User] = relationship(foreign_keys=[manager_id])
