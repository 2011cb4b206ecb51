"""What an interview event says, and how it travels sealed.

Locally an interview is IDs and status only. What the event says (title, notes, time, attendees,
candidate) is written to the calendar and read back from the aggregator on demand. While a write
is outstanding its content travels only inside the job's arguments, sealed with
``security.Sealer`` (AES-GCM).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from broker.types import Attendee, EventWrite, ManagedEvent

EVENT_PREFIX = "rdv-"


MAX_TITLE, MAX_NOTES, MAX_NAME = 200, 2000, 200


#: A sealed write carries the whole event as the calendar holds it (notes up to the aggregator's
#: 4,096 characters, the full guest list), so it may be far longer than one we compose.
MAX_WRITE_PAYLOAD = 256 * 1024


@dataclass(frozen=True)
class Content:
    """What an interview event says. Lives in the calendar and in sealed job arguments only.

    Every write sends the whole event: an update replaces what the calendar holds (what a body
    leaves out may be dropped), so a reschedule carries everything read back from the calendar.
    Two parts are deliberately left out of updates: ``conferencing`` (an update without it keeps
    the event's conference and its join link, and the conference follows the new time) and
    reminders (never reported by reads; ``reminders_create_only`` keeps whatever the event has).
    """

    summary: str
    start: dt.datetime
    end: dt.datetime
    description: str | None = None
    attendees: tuple[tuple[str, str | None], ...] = ()
    #: The conferencing ``profile_id``; for "explicit" the tool's name and join URL below.
    conferencing: str | None = None
    conferencing_name: str | None = None
    conferencing_url: str | None = None
    tzid: str = "Etc/UTC"
    location: str | None = None
    transparency: str | None = None
    event_private: bool | None = None
    #: Addresses to take off the event's invitation (a shadow left out of a moved session).
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "description": self.description,
            "attendees": [list(a) for a in self.attendees],
            "conferencing": self.conferencing,
            "conferencing_name": self.conferencing_name,
            "conferencing_url": self.conferencing_url,
            "tzid": self.tzid,
            "location": self.location,
            "transparency": self.transparency,
            "event_private": self.event_private,
            **({"removed": list(self.removed)} if self.removed else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Content:
        return cls(
            summary=data["summary"],
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]),
            description=data.get("description"),
            attendees=tuple((a[0], a[1]) for a in data.get("attendees") or ()),
            conferencing=data.get("conferencing"),
            conferencing_name=data.get("conferencing_name"),
            conferencing_url=data.get("conferencing_url"),
            tzid=data.get("tzid") or "Etc/UTC",
            location=data.get("location"),
            transparency=data.get("transparency")
            if data.get("transparency") in ("opaque", "transparent")
            else None,
            event_private=data.get("event_private")
            if isinstance(data.get("event_private"), bool)
            else None,
            removed=tuple(str(e) for e in data.get("removed") or ()),
        )

    @classmethod
    def of_event(cls, event: ManagedEvent, start: dt.datetime, end: dt.datetime) -> Content:
        """Everything ``event`` says as the calendar holds it now, at a new time."""
        return cls(
            summary=event.summary or "Interview",
            start=start,
            end=end,
            description=event.description,
            attendees=tuple((a.email, a.display_name) for a in event.attendees if a.email),
            conferencing=None,
            tzid=event.tzid or "Etc/UTC",
            location=event.location,
            transparency=event.transparency
            if event.transparency in ("opaque", "transparent")
            else None,
            event_private=event.event_private,
        )

    def event(self, event_id: str, *, with_attendees: bool = True) -> EventWrite:
        return EventWrite(
            event_id=event_id,
            summary=self.summary,
            start=self.start,
            end=self.end,
            description=self.description,
            tzid=self.tzid,
            location=self.location,
            attendees=tuple(Attendee(email=e, display_name=n) for e, n in self.attendees)
            if with_attendees
            else (),
            remove_attendees=self.removed if with_attendees else (),
            conferencing_profile_id=self.conferencing if with_attendees else None,
            conferencing_description=self.conferencing_name if with_attendees else None,
            conferencing_join_url=self.conferencing_url if with_attendees else None,
            reminders_create_only=True,
            transparency=self.transparency,  # type: ignore[arg-type]
            event_private=self.event_private,
        )
