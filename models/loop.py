"""Interview loops: an ordered list of sessions booked together (an onsite), IDs and settings only.

A loop is what the recruiter composed (its sessions, who sits on each, room, video, gaps) and,
once booked, which :class:`Interview` holds each session: every session is an ordinary interview
with its own event ids, panel, room and video, so reconciliation, notices, erasure and the audit
trail cover sessions as they cover any interview. Times live in the calendar events (and, until
the calendars show them, in the sessions' slot claims); the candidate's name and email and the
titles are kept only encrypted on the loop (the app's Sealer), with the address's SHA-256 beside
them for compliance lookups.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow

#: How long a loop's encrypted candidate details are kept.
LOOP_RETENTION = "while the loop exists (deleted with it, or by an erasure of the candidate)"


class LoopState(str, enum.Enum):
    DRAFT = "draft"  # composed, not booked (availability is read on demand)
    BOOKED = "booked"  # every session committed with its claim; writes queued or done
    FAILED = "failed"  # a calendar write failed: every session was taken back
    CANCELLED = "cancelled"  # the whole loop was cancelled

    @property
    def label(self) -> str:
        return {
            "draft": "Not booked yet",
            "booked": "Booked",
            "failed": "Could not be written (nothing was kept)",
            "cancelled": "Cancelled",
        }[self.value]


class InterviewLoop(Base):
    __tablename__ = "interview_loop"
    __table_args__ = kept_for(
        "scheduling", "Interview loops: their sessions' settings and ids, never their times"
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    uid: Mapped[str] = mapped_column(
        String(32), unique=True, info=classified("identifier", "Public id of the loop")
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation the loop belongs to"),
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Recruiter who composed the loop"),
    )
    #: A coordinator composes a loop for one of the hiring managers assigned to them: the
    #: sessions are written to that manager's calendar (None: the recruiter's own).
    on_behalf_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Hiring manager a coordinator composed the loop for"),
    )
    state: Mapped[LoopState] = mapped_column(
        Enum(
            LoopState,
            name="loop_state",
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        default=LoopState.DRAFT,
        info=classified("status", "Whether the loop is composed, booked, failed or cancelled"),
    )
    #: The zone whose days count ("one day", "over two days"): the candidate's.
    tzid: Mapped[str] = mapped_column(
        String(64), info=classified("configuration", "Time zone the loop's days are counted in")
    )
    start_date: Mapped[date] = mapped_column(
        Date, info=classified("configuration", "First day start times are searched on")
    )
    days: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "How many days start times are searched on")
    )
    split_days: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Whether the sessions may spread over two days"),
    )
    max_break: Mapped[int | None] = mapped_column(
        Integer,
        info=classified("configuration", "Longest break between sessions on one day (minutes)"),
    )
    #: AES-GCM (the app's Sealer) of {"n": name, "e": email, "t": loop title, "s": [titles]}.
    details_sealed: Mapped[bytes] = mapped_column(
        LargeBinary,
        info=classified(
            "personal-encrypted",
            "Candidate's name and email, the loop's and its sessions' titles",
            retention=LOOP_RETENTION,
        ),
    )
    candidate_email_hash: Mapped[str] = mapped_column(
        String(64),
        index=True,
        info=classified(
            "secret-hashed",
            "SHA-256 of the candidate's email address (finding a candidate's loops)",
            retention=LOOP_RETENTION,
        ),
    )
    candidate_tzid: Mapped[str | None] = mapped_column(
        String(64), info=classified("configuration", "Zone the invitations show times in")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the loop was composed")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change of state"),
    )

    sessions: Mapped[list[LoopSession]] = relationship(
        back_populates="loop",
        order_by="LoopSession.ordinal",
        lazy="selectin",
        cascade="all, delete-orphan",
    )


class LoopSession(Base):
    """One session of a loop: its length, who sits on it, room, video and the gaps around it;
    once booked, the interview (its own events) that holds it."""

    __tablename__ = "loop_session"
    __table_args__ = (
        UniqueConstraint("loop_id", "ordinal"),
        kept_for("scheduling", "Sessions of interview loops: settings and the interview's id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    loop_id: Mapped[int] = mapped_column(
        ForeignKey("interview_loop.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Loop the session belongs to"),
    )
    ordinal: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "Position of the session in the loop (1 first)")
    )
    duration_minutes: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "Session length")
    )
    #: Calendar links of the people named for the session (ids only).
    panel_link_ids: Mapped[list] = mapped_column(
        JSON, info=classified("identifier", "Calendar links of the people on the session")
    )
    #: A linked room's address (a resource mailbox, not a person's).
    room_email: Mapped[str | None] = mapped_column(
        String(320), info=classified("identifier", "Linked room the session needs")
    )
    video: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        info=classified("configuration", "Whether the session gets a video link"),
    )
    buffer_before: Mapped[int] = mapped_column(
        Integer,
        default=0,
        info=classified("configuration", "Free minutes the session needs before it"),
    )
    buffer_after: Mapped[int] = mapped_column(
        Integer,
        default=0,
        info=classified("configuration", "Free minutes the session needs after it"),
    )
    #: "Any ``pool_count`` from this pool", besides the people named (picked by load when the
    #: start times are shown, and again when the loop is booked).
    pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("interviewer_pool.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Interviewer pool the session picks people from"),
    )
    pool_count: Mapped[int] = mapped_column(
        Integer,
        default=0,
        server_default=text("0"),
        info=classified("configuration", "How many people the session picks from the pool"),
    )
    #: Also bring a shadow (trainee) of the pool when one is free: an extra attendee who
    #: never counts toward ``pool_count``; booked without one when none is free.
    bring_shadow: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Whether the session brings a shadow of its pool"),
    )
    interview_id: Mapped[int | None] = mapped_column(
        ForeignKey("interview.id", ondelete="SET NULL"),
        unique=True,
        info=classified("identifier", "Interview (with its event ids) that holds the session"),
    )

    loop: Mapped[InterviewLoop] = relationship(back_populates="sessions")
