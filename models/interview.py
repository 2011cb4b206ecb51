"""Interviews the app wrote to calendars, and candidate self-scheduling links: IDs and status only.

Titles, notes, times, attendees and the candidate's name and email live only in the calendar
event at the aggregator (and, for a self-scheduling link, sealed inside the link's token and,
encrypted with AES-GCM, on the link's row so the recruiter can tell their links apart). The
interview page reads them back on demand.

The one exception is :class:`SlotClaim`: the time of a booking we made, kept per person (or room)
only until that person's calendar shows the interview, so that two bookings cannot both take it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.calendar_link import ProfileLink


def _enum(cls, name):
    return Enum(
        cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


class InterviewStatus(str, enum.Enum):
    PENDING = "pending"  # rows committed, calendar write not yet confirmed
    SCHEDULED = "scheduled"  # every event confirmed at the aggregator
    CANCELLING = "cancelling"  # cancel requested, deletes not yet confirmed
    CANCELLED = "cancelled"  # cancelled from the app
    CANCELLED_IN_CALENDAR = "cancelled_in_calendar"  # someone deleted the event in their calendar
    FAILED = "failed"  # the write never got through; nothing is left at the aggregator

    @property
    def label(self) -> str:
        return {
            "pending": "Being written to the calendar",
            "scheduled": "Scheduled",
            "cancelling": "Being cancelled",
            "cancelled": "Cancelled",
            "cancelled_in_calendar": "Cancelled in calendar",
            "failed": "Could not be written",
        }[self.value]

    @property
    def live(self) -> bool:
        return self in (InterviewStatus.PENDING, InterviewStatus.SCHEDULED)


class EventStatus(str, enum.Enum):
    PENDING = "pending"  # upsert not yet confirmed
    CONFIRMED = "confirmed"  # the aggregator holds the event
    DELETING = "deleting"  # delete not yet confirmed
    DELETED = "deleted"  # gone at the aggregator (by us or in the calendar)


class Interview(Base):
    __tablename__ = "interview"
    __table_args__ = kept_for("scheduling", "Interviews: ids and status only, never their content")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    #: Public id in URLs and the base of our event ids (fixed before the first write).
    uid: Mapped[str] = mapped_column(
        String(32), unique=True, info=classified("identifier", "Public id of the interview")
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation the interview belongs to"),
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "User who scheduled it (none for candidate bookings)"),
    )
    on_behalf_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Hiring manager a coordinator scheduled for"),
    )
    host_link_id: Mapped[int] = mapped_column(
        ForeignKey("profile_link.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Calendar link whose calendar holds the interview"),
    )
    #: Links of the panel (ids only), so availability can be re-checked on reschedule.
    panel_link_ids: Mapped[list] = mapped_column(
        JSON, info=classified("identifier", "Calendar links of the interview panel")
    )
    scheduling_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduling_link.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Self-scheduling link the candidate booked through"),
    )
    status: Mapped[InterviewStatus] = mapped_column(
        _enum(InterviewStatus, "interview_status"),
        default=InterviewStatus.PENDING,
        info=classified("status", "Where the interview is in its life"),
    )
    #: Set when something happened in a calendar the scheduler has not seen yet.
    needs_notice: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("status", "The scheduler must be told about a change"),
    )
    #: When the host's calendar cannot invite, the candidate gets a Smart Invite; the
    #: aggregator reports their answer (accepted, tentative or declined) to our callback.
    candidate_reply: Mapped[str | None] = mapped_column(
        String(16), info=classified("status", "Candidate's answer to the invitation (Smart Invite)")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When it was scheduled")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change of status"),
    )

    events: Mapped[list[CreatedEvent]] = relationship(
        back_populates="interview", order_by="CreatedEvent.position", lazy="selectin"
    )
    host_link: Mapped[ProfileLink] = relationship(lazy="joined")


class CreatedEvent(Base):
    """One event the app wrote (or is writing) to one calendar, under our own ``event_id``."""

    __tablename__ = "created_event"
    __table_args__ = (
        UniqueConstraint("event_id"),
        kept_for("scheduling", "Ids of the calendar events Rendezvous wrote"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interview.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Interview the event belongs to"),
    )
    position: Mapped[int] = mapped_column(
        Integer, default=0, info=classified("identifier", "Order of the event within the interview")
    )
    profile_link_id: Mapped[int] = mapped_column(
        ForeignKey("profile_link.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Calendar link the event was written with"),
    )
    calendar_id: Mapped[str] = mapped_column(
        String(200), info=classified("identifier", "Aggregator calendar id")
    )
    event_id: Mapped[str] = mapped_column(
        String(80), info=classified("identifier", "Our event id at the aggregator")
    )
    status: Mapped[EventStatus] = mapped_column(
        _enum(EventStatus, "created_event_status"),
        default=EventStatus.PENDING,
        info=classified("status", "Whether the aggregator confirmed the write or delete"),
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last status change"),
    )

    interview: Mapped[Interview] = relationship(back_populates="events")


#: How long a self-scheduling link's row (with its encrypted candidate details) is kept.
LINK_RETENTION = (
    "until the link is purged (30 days after it expires, is used or revoked), or erased"
)


class SchedulingLink(Base):
    """A candidate self-scheduling link. The token (with the candidate's name and email sealed in
    it) is only in the URL sent to the candidate; we keep its SHA-256. The candidate's name,
    email and the interview title are also kept encrypted (``candidate_sealed``, AES-GCM bound
    to this link's token hash) so the recruiter's list tells links apart and the candidate can be
    emailed; they go with the row (purge, erasure, organisation deletion)."""

    __tablename__ = "scheduling_link"
    __table_args__ = kept_for("scheduling", "Self-scheduling links sent to candidates")

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    token_hash: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        info=classified("secret-hashed", "SHA-256 of the link token", retention="until purged"),
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of the link"),
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Recruiter who created the link"),
    )
    host_link_id: Mapped[int] = mapped_column(
        ForeignKey("profile_link.id", ondelete="CASCADE"),
        info=classified("identifier", "Calendar link the interview is written with"),
    )
    panel_link_ids: Mapped[list] = mapped_column(
        JSON, info=classified("identifier", "Calendar links of the panel")
    )
    duration_minutes: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "Interview length")
    )
    window_start: Mapped[datetime] = mapped_column(
        UTCDateTime, info=classified("configuration", "First moment a slot may start")
    )
    window_end: Mapped[datetime] = mapped_column(
        UTCDateTime, info=classified("configuration", "Last moment a slot may end")
    )
    video: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        server_default=true(),
        info=classified("configuration", "Whether the interview gets a video link"),
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=classified("timestamp", "After this the link is refused")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the link was created")
    )
    used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the candidate booked (single use)")
    )
    #: AES-GCM (the app's Sealer) of {"n": name, "e": email, "t": title}; services/link_details.py.
    candidate_sealed: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        info=classified(
            "personal-encrypted",
            "Candidate's name and email and the interview title, so the recruiter can tell "
            "links apart and the candidate can be emailed",
            retention=LINK_RETENTION,
        ),
    )
    #: The link's token, AES-GCM (the app's Sealer) bound to this row: the recruiter copies the
    #: link again from their list while it is open. Cleared when the link is used or revoked.
    token_sealed: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        info=classified(
            "secret-encrypted",
            "The link's token, so the recruiter can copy the link again while it is open",
            retention="until the link is used, revoked or purged, or erased",
        ),
    )
    #: SHA-256 of the lower-cased address (as the audit trail hashes mail recipients): how a
    #: compliance reviewer holding a candidate's address finds, exports and erases their links.
    candidate_email_hash: Mapped[str | None] = mapped_column(
        String(64),
        index=True,
        info=classified(
            "secret-hashed",
            "SHA-256 of the candidate's email address (finding a candidate's links)",
            retention=LINK_RETENTION,
        ),
    )
    revoked_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the recruiter revoked the link")
    )
    candidate_may_change: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified(
            "configuration", "Whether the candidate may reschedule or cancel what they booked"
        ),
    )
    change_cutoff_hours: Mapped[int] = mapped_column(
        Integer,
        default=24,
        server_default=text("24"),
        info=classified(
            "configuration",
            "Up to how many hours before the interview the candidate may reschedule or cancel",
        ),
    )

    #: The composed loop the link offers (its sessions, people, rooms and video are the
    #: settings; the loop keeps them sealed and by id): None for a link to one interview.
    loop_id: Mapped[int | None] = mapped_column(
        ForeignKey("interview_loop.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Interview loop the link offers (none: one interview)"),
    )

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.used_at is not None:
            return "used"
        if self.expires_at <= utcnow():
            return "expired"
        return "open"


class SchedulingPreference(Base):
    """Working hours (when interviews may be offered) and video provider: the organisation default
    (user_id NULL) or a user's own override."""

    __tablename__ = "scheduling_preference"
    __table_args__ = (
        UniqueConstraint("organisation_id", "user_id"),
        kept_for("scheduling", "Working hours and video preferences"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation"),
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "User whose override this is (none = organisation default)"),
    )
    start_minute: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "Working day starts (minutes after midnight)")
    )
    end_minute: Mapped[int] = mapped_column(
        Integer, info=classified("configuration", "Working day ends (minutes after midnight)")
    )
    #: ISO weekdays as digits, e.g. "12345" for Monday to Friday.
    weekdays: Mapped[str] = mapped_column(
        String(7), info=classified("configuration", "Working weekdays")
    )
    #: Preferred video provider: a conferencing profile id, "default", "explicit" (the person's
    #: own meeting room below) or "none".
    video_profile: Mapped[str | None] = mapped_column(
        String(64), info=classified("configuration", "Video provider used for interviews")
    )
    #: An https link the person entered for a tool the aggregator cannot provision (e.g. their
    #: Webex personal room); sent as explicit conferencing. Settings, not calendar content.
    video_room_url: Mapped[str | None] = mapped_column(
        String(500),
        info=classified(
            "personal",
            "The person's own meeting-room link, entered by them",
            retention="until the person clears it; deleted with their account",
        ),
    )
    video_room_name: Mapped[str | None] = mapped_column(
        String(40), info=classified("configuration", "Name of the tool of that link (e.g. Webex)")
    )
    #: Set when the chosen video account was refused and interviews fell back to the calendar's
    #: own video; the preferences page says so until the person chooses again.
    video_fallback_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the chosen video account stopped working")
    )


#: How long a claim row is kept (the compliance inventory shows this).
CLAIM_RETENTION = (
    "until the person's or room's calendar shows the interview (checked every few "
    "minutes), the booking fails, is moved or cancelled, or its time has passed"
)


def _claim(category: str, purpose: str) -> dict:
    return classified(category, purpose, retention=CLAIM_RETENTION)


class SlotClaim(Base):
    """One 5-minute stretch of one person's (or room's) time, held by one of our own bookings.

    Interval overlap cannot be a unique constraint, but equal buckets can: a booking inserts one
    row per bucket covering [start - buffer, end + buffer) for every panel member and the room,
    in the transaction that commits its Interview, so the database itself refuses the second of
    two overlapping bookings, whichever process or path makes them. The rows hold ids and times
    of our own bookings only, and are deleted once the calendar shows the interview for that
    person (then the aggregator's availability protects it) or the booking goes away.
    """

    __tablename__ = "slot_claim"
    __table_args__ = (
        UniqueConstraint("organisation_id", "sub", "bucket_start"),
        kept_for("scheduling", "Holds on booked times, so nobody is double-booked"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=_claim("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        info=_claim("identifier", "Organisation that booked"),
    )
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interview.id", ondelete="CASCADE"),
        index=True,
        info=_claim("identifier", "Our interview holding the time"),
    )
    #: The aggregator id (sub) of a panel member's calendar account or of a room.
    sub: Mapped[str] = mapped_column(
        String(64), info=_claim("identifier", "Aggregator id of the person or room held")
    )
    bucket_start: Mapped[datetime] = mapped_column(
        UTCDateTime,
        info=_claim(
            "timestamp",
            "Start of a 5-minute stretch the booking holds (interview time plus its buffers)",
        ),
    )
    starts_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=_claim("timestamp", "Start of our own booked interview")
    )
    ends_at: Mapped[datetime] = mapped_column(
        UTCDateTime, info=_claim("timestamp", "End of our own booked interview")
    )
    checked_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=_claim("timestamp", "When we last asked whether the calendar shows it")
    )
    #: Set when the calendar first showed the interview; the row goes a grace period later.
    confirmed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=_claim("timestamp", "When the calendar first showed the interview")
    )
