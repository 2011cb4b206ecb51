"""Calendar files (RFC 5545) and add-to-calendar links for a booked interview.

Built with the ``icalendar`` library, which does the line folding (75 octets), escaping and
UTC date-times RFC 5545 requires. The file is ``METHOD:PUBLISH``: it adds the interview to the
candidate's calendar as it is; the invitation itself (``REQUEST``, with the organiser who can
change it) comes from the host's calendar, through the aggregator. The UID is stable per
interview, so importing the file again after a change updates the same entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from icalendar import Calendar, Event

PRODID = "-//Rendezvous//Interview scheduling//EN"

#: SEQUENCE counts seconds from here: every later file about the same interview (a reschedule or
#: cancel notice) carries a higher one than any before it, without a counter kept per interview.
#: The booking confirmation's file has 0. Fits RFC 5545's 32-bit INTEGER until 2092.
SEQUENCE_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sequence_now(now: dt.datetime | None = None) -> int:
    """The SEQUENCE of a file written now: higher than any written earlier for the interview."""
    return int(((now or dt.datetime.now(dt.UTC)) - SEQUENCE_EPOCH).total_seconds())


def uid_of(interview_uid: str, domain: str) -> str:
    return f"interview-{interview_uid}@{domain}"


def interview_ics(
    *,
    uid: str,
    title: str,
    start: dt.datetime,
    end: dt.datetime,
    description: str = "",
    sequence: int = 0,
    cancelled: bool = False,
    organizer: str | None = None,
) -> str:
    """One VEVENT in a VCALENDAR; times in UTC. ``cancelled`` gives METHOD:CANCEL (RFC 5546
    wants an ORGANIZER there: the address the notice comes from)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", dt.datetime.now(dt.UTC).replace(microsecond=0))
    event.add("dtstart", start.astimezone(dt.UTC))
    event.add("dtend", end.astimezone(dt.UTC))
    event.add("summary", title)
    if organizer:
        event.add("organizer", f"mailto:{organizer}")
    if description:
        event.add("description", description)
    event.add("sequence", sequence)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()


@dataclass(frozen=True)
class Entry:
    """One VEVENT of an itinerary (a loop's session): its own UID, title and time."""

    uid: str
    title: str
    start: dt.datetime
    end: dt.datetime
    description: str = ""


def itinerary_ics(
    entries: Sequence[Entry],
    *,
    sequence: int = 0,
    cancelled: bool = False,
    organizer: str | None = None,
) -> str:
    """Several VEVENTs in one VCALENDAR (an interview loop: one per session, each with the UID
    of its own interview), all with one SEQUENCE. ``cancelled``: METHOD:CANCEL for these
    entries (the sessions cancelled), with the ORGANIZER RFC 5546 asks for."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for entry in entries:
        event = Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", entry.start.astimezone(dt.UTC))
        event.add("dtend", entry.end.astimezone(dt.UTC))
        event.add("summary", entry.title)
        if organizer:
            event.add("organizer", f"mailto:{organizer}")
        if entry.description:
            event.add("description", entry.description)
        event.add("sequence", sequence)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical().decode()


def _compact(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def google_link(title: str, start: dt.datetime, end: dt.datetime, details: str = "") -> str:
    query = {"action": "TEMPLATE", "text": title, "dates": f"{_compact(start)}/{_compact(end)}"}
    if details:
        query["details"] = details
    return "https://calendar.google.com/calendar/render?" + urlencode(query)


def outlook_link(
    title: str, start: dt.datetime, end: dt.datetime, details: str = "", *, work: bool = False
) -> str:
    """Outlook on the web: outlook.live.com (personal) or outlook.office.com (work accounts)."""
    host = "outlook.office.com" if work else "outlook.live.com"
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": title,
        "startdt": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "enddt": end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if details:
        query["body"] = details
    return f"https://{host}/calendar/0/deeplink/compose?" + urlencode(query)
