"""Interviewer pools ("Backend interviewers", "Bar raisers"): people of one organisation a panel
can draw "any N" from, each with their own limits, and the ledger of our own bookings that
tells how loaded each person is.

The ledger (:class:`InterviewLoad`) holds ids and the start time of interviews Rendezvous
itself booked (what :class:`models.SlotClaim` holds too), never anything read from a calendar:
a person's load is the number of Rendezvous-booked interviews they sit on, not their calendar.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.user import User


class Pool(Base):
    """A named set of interviewers of one organisation."""

    __tablename__ = "interviewer_pool"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        kept_for("scheduling", "Interviewer pools: a name, a note and who is in them"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation the pool belongs to"),
    )
    name: Mapped[str] = mapped_column(
        String(80), info=classified("configuration", "Name of the pool (e.g. Bar raisers)")
    )
    #: What the pool is for, as the recruiter or admin wrote it (not calendar content).
    about: Mapped[str] = mapped_column(
        String(300), default="", info=classified("configuration", "What the pool is for")
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Who created the pool"),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the pool was created")
    )

    members: Mapped[list[PoolMember]] = relationship(
        back_populates="pool",
        order_by="PoolMember.id",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class PoolMember(Base):
    """One person in one pool, with their limits. The person is always of the pool's
    organisation (an account or a directory interviewer)."""

    __tablename__ = "pool_member"
    __table_args__ = (
        UniqueConstraint("pool_id", "user_id"),
        kept_for("scheduling", "Who is in which interviewer pool, with their limits"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of the pool and the person"),
    )
    pool_id: Mapped[int] = mapped_column(
        ForeignKey("interviewer_pool.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The pool"),
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The person in the pool"),
    )
    #: At most this many Rendezvous interviews on one day (NULL: no limit).
    max_per_day: Mapped[int | None] = mapped_column(
        Integer, info=classified("configuration", "At most this many interviews a day")
    )
    #: At most this many Rendezvous interviews in one week, Monday to Sunday (NULL: no limit).
    max_per_week: Mapped[int | None] = mapped_column(
        Integer, info=classified("configuration", "At most this many interviews a week")
    )
    #: A shadow (trainee) is never picked to make up the N a panel asks for.
    is_shadow: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified("configuration", "Shadow or trainee: not picked to make up a panel"),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the person was added")
    )

    pool: Mapped[Pool] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")


#: How long a ledger row is kept (the compliance inventory shows this).
LOAD_RETENTION = (
    "until 29 days after the interview's time (longer than any limit or fairness window looks "
    "back), or until the interview or the person is deleted"
)


class InterviewLoad(Base):
    """One person on one interview Rendezvous booked, at its start time: what a pool pick
    counts (the person's load and limits) instead of reading anyone's calendar."""

    __tablename__ = "interview_load"
    __table_args__ = (
        UniqueConstraint("interview_id", "user_id"),
        kept_for("scheduling", "Who sits on which of our interviews, when: how loaded they are"),
    )

    id: Mapped[int] = mapped_column(
        primary_key=True, info=classified("identifier", "Row id", retention=LOAD_RETENTION)
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        info=classified("identifier", "Organisation that booked", retention=LOAD_RETENTION),
    )
    interview_id: Mapped[int] = mapped_column(
        ForeignKey("interview.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Our interview", retention=LOAD_RETENTION),
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The person on its panel", retention=LOAD_RETENTION),
    )
    #: The pool they were picked from; NULL when they were named on the panel.
    pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("interviewer_pool.id", ondelete="SET NULL"),
        index=True,
        info=classified("identifier", "Pool they were picked from", retention=LOAD_RETENTION),
    )
    #: Sat in as a shadow (trainee) of ``pool_id``: invited, counted in their own load and
    #: limits, never toward the interviewers the panel needs (nor held to a pool limit on a move).
    is_shadow: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        info=classified(
            "configuration",
            "Sat in as a shadow (trainee), not as a panellist",
            retention=LOAD_RETENTION,
        ),
    )
    starts_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        index=True,
        info=classified("timestamp", "Start of our own booked interview", retention=LOAD_RETENTION),
    )
    booked_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        info=classified(
            "timestamp",
            "When the booking was made (least recently picked first)",
            retention=LOAD_RETENTION,
        ),
    )
