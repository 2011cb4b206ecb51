"""Enterprise Connect: an organisation's service account for one domain, and one request per
mailbox the IT admin asked to link through it.

Like ProfileLink, these rows hold identifiers, statuses and encrypted tokens only. The one-time
``state`` sent with each mailbox request is kept as a SHA-256 hash.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, classified, kept_for, utcnow
from models.calendar_link import EncryptedTokens, LinkStatus, _enum


class MailboxStatus(str, enum.Enum):
    QUEUED = "queued"  # accepted by us, not yet sent to the aggregator
    PENDING = "pending"  # sent (or being sent); waiting for the aggregator's callback
    LINKED = "linked"  # callback came with a code, exchanged: a ProfileLink(mode=enterprise)
    FAILED = "failed"  # the aggregator (or we) could not link it; error_key says why
    UNLINKED = "unlinked"  # the admin unlinked it, or the domain was disconnected


class ServiceAccountLink(EncryptedTokens, Base):
    """The service account an IT admin authorized for a domain (Exchange, Office 365, Google)."""

    _tokens_of = "Service-account"

    __tablename__ = "service_account_link"
    __table_args__ = (
        UniqueConstraint("organisation_id", "domain"),
        kept_for("calendars", "Domains connected through Enterprise Connect"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation that linked the domain"),
    )
    provider: Mapped[str] = mapped_column(
        String(32), info=classified("configuration", "exchange, office365 or google")
    )
    domain: Mapped[str] = mapped_column(
        String(255), info=classified("configuration", "Email domain the service account covers")
    )
    sub: Mapped[str] = mapped_column(
        String(64), info=classified("identifier", "Aggregator service-account id (ser_…)")
    )
    account_email: Mapped[str | None] = mapped_column(
        String(320), info=classified("identifier", "Email of the service account")
    )
    scope: Mapped[str | None] = mapped_column(
        String(500), info=classified("configuration", "Service-account scopes granted")
    )
    delegated_scope: Mapped[str | None] = mapped_column(
        String(500), info=classified("configuration", "Most a mailbox may be granted")
    )
    status: Mapped[LinkStatus] = mapped_column(
        _enum(LinkStatus, "service_account_status"),
        default=LinkStatus.ACTIVE,
        info=classified("status", "Active, needs attention, or disconnected"),
    )
    connected_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        info=classified("identifier", "IT admin who connected the domain"),
    )
    #: Mailbox callbacks that came without a signature and were accepted on the sealed
    #: reference and one-time state alone (no source confirms the aggregator signs them).
    unsigned_callbacks: Mapped[int] = mapped_column(
        Integer,
        default=0,
        server_default="0",
        info=classified("status", "Aggregator callbacks accepted without a signature"),
    )
    linked_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the domain was connected")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change to the link"),
    )

    @property
    def account_id(self) -> None:
        """Service accounts have no account id (keeps the token helpers uniform)."""
        return None


class MailboxKind(str, enum.Enum):
    MAILBOX = "mailbox"  # a person's mailbox: linking it makes their ProfileLink
    ROOM = "room"  # a room (resource) mailbox: linking it gives its sub for availability


class MailboxRequest(Base):
    """One mailbox the admin asked to link through a service account, and how that went.

    Rooms go through the same request, callback and code exchange as people's mailboxes; a
    linked room keeps only its aggregator ``sub`` (availability is asked with the application's
    key, so no room token is stored) and its directory name for the room picker.
    """

    __tablename__ = "mailbox_request"
    __table_args__ = (
        UniqueConstraint("service_account_link_id", "email"),
        kept_for("calendars", "Mailboxes and rooms linked through a connected domain"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info=classified("identifier", "Row id"))
    service_account_link_id: Mapped[int] = mapped_column(
        ForeignKey("service_account_link.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Service account the request goes through"),
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation of the mailbox's user"),
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Rendezvous user whose mailbox this is"),
    )
    email: Mapped[str] = mapped_column(
        String(320), info=classified("personal", "Mailbox address to link")
    )
    kind: Mapped[MailboxKind] = mapped_column(
        _enum(MailboxKind, "mailbox_kind"),
        default=MailboxKind.MAILBOX,
        server_default=MailboxKind.MAILBOX.value,
        index=True,
        info=classified("configuration", "A person's mailbox or a room"),
    )
    #: A room's name as the domain's directory lists it (rooms are not people).
    display_name: Mapped[str | None] = mapped_column(
        String(200), info=classified("configuration", "Room name from the domain's directory")
    )
    #: A linked room's aggregator id (``res_…``), put into availability queries.
    resource_sub: Mapped[str | None] = mapped_column(
        String(64),
        info=classified(
            "identifier", "Aggregator id of a linked room", retention="until the room is unlinked"
        ),
    )
    status: Mapped[MailboxStatus] = mapped_column(
        _enum(MailboxStatus, "mailbox_status"),
        default=MailboxStatus.QUEUED,
        index=True,
        info=classified("status", "Queued, pending, linked, failed or unlinked"),
    )
    #: SHA-256 of the one-time ``state`` sent with the latest attempt; the callback must match it.
    state_hash: Mapped[str | None] = mapped_column(
        String(64),
        info=classified(
            "secret-hashed",
            "Hash of the one-time state of the request",
            retention="until the request is finished or retried",
        ),
    )
    #: Set atomically by the first callback carrying the state: a second one is a replay.
    state_used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When a callback used the state")
    )
    #: Exactly what was sent as ``callback_url``; the code exchange must repeat it.
    callback_url: Mapped[str | None] = mapped_column(
        String(400), info=classified("configuration", "Callback URL with an opaque reference")
    )
    #: Marks the rows one worker claimed for the batch it is sending.
    claim: Mapped[str | None] = mapped_column(
        String(32), index=True, info=classified("identifier", "Batch claim of a worker")
    )
    attempts: Mapped[int] = mapped_column(
        Integer, default=0, info=classified("status", "How many times the request was sent")
    )
    error_key: Mapped[str | None] = mapped_column(
        String(64), info=classified("status", "Why linking failed (aggregator's error key)")
    )
    error_text: Mapped[str | None] = mapped_column(
        String(500), info=classified("status", "Explanation of the failure")
    )
    profile_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("profile_link.id", ondelete="SET NULL"),
        info=classified("identifier", "The calendar link this request produced"),
    )
    requested_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, info=classified("timestamp", "When the admin asked")
    )
    sent_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When the aggregator accepted the request")
    )
    completed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=classified("timestamp", "When it was linked or failed")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        info=classified("timestamp", "Last change to the request"),
    )

    service_account: Mapped[ServiceAccountLink] = relationship()


#: How long a pasted list's summary (and its rejected lines) is kept.
LIST_RETENTION = "24 hours after the list was sent, or until the person is erased"


class MailboxList(Base):
    """One pasted list or CSV file of mailboxes an IT admin sent, for its summary page: how many
    were queued, and (in :class:`MailboxListLine`) the lines that were not. Deleted after a day."""

    __tablename__ = "mailbox_list"
    __table_args__ = kept_for("calendars", "Summaries of mailbox lists an IT admin sent")

    id: Mapped[int] = mapped_column(
        primary_key=True, info=classified("identifier", "Row id", retention=LIST_RETENTION)
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Organisation that sent the list", retention=LIST_RETENTION),
    )
    service_account_link_id: Mapped[int] = mapped_column(
        ForeignKey("service_account_link.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "Domain the list was for", retention=LIST_RETENTION),
    )
    sent_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"),
        info=classified("identifier", "IT admin who sent the list", retention=LIST_RETENTION),
    )
    queued: Mapped[int] = mapped_column(
        Integer, info=classified("status", "Mailboxes queued from it", retention=LIST_RETENTION)
    )
    rejected: Mapped[int] = mapped_column(
        Integer, info=classified("status", "Lines not used", retention=LIST_RETENTION)
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        index=True,
        info=classified("timestamp", "When the list was sent", retention=LIST_RETENTION),
    )


class MailboxListLine(Base):
    """A line of a sent list that was not used, and why (for the summary and its download)."""

    __tablename__ = "mailbox_list_line"
    __table_args__ = kept_for("calendars", "Lines of mailbox lists that could not be used")

    id: Mapped[int] = mapped_column(
        primary_key=True, info=classified("identifier", "Row id", retention=LIST_RETENTION)
    )
    mailbox_list_id: Mapped[int] = mapped_column(
        ForeignKey("mailbox_list.id", ondelete="CASCADE"),
        index=True,
        info=classified("identifier", "The list it was on", retention=LIST_RETENTION),
    )
    line: Mapped[int | None] = mapped_column(
        Integer, info=classified("identifier", "Line number in the list", retention=LIST_RETENTION)
    )
    email: Mapped[str | None] = mapped_column(
        String(320),
        info=classified("personal", "The address on the line, if any", retention=LIST_RETENTION),
    )
    entry: Mapped[str] = mapped_column(
        String(300),
        info=classified("personal", "The line as written (shortened)", retention=LIST_RETENTION),
    )
    reason: Mapped[str] = mapped_column(
        String(200), info=classified("status", "Why it was not used", retention=LIST_RETENTION)
    )
