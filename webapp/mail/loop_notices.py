"""The emails a candidate gets about an interview loop: ONE itinerary, never one mail per session.

Booked (through a self-scheduling link) and rescheduled: every session still on, in order, with
its time in the candidate's zone, the interviewers' first names and an add-to-calendar link, and
one .ics (METHOD:PUBLISH) with every session as its own VEVENT, each with its own interview's
UID (a reschedule raises the SEQUENCE, so the entries already in the candidate's calendar move).
Cancelled (the whole loop or some sessions): which sessions, an .ics with METHOD:CANCEL for
exactly those, and what is left of the itinerary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import escape

from webapp.mail import Attachment, Mail
from webapp.mail.ics import Entry, google_link, itinerary_ics


@dataclass(frozen=True)
class Stop:
    """One session as the candidate is told about it."""

    ordinal: int
    title: str
    start: dt.datetime
    end: dt.datetime
    #: The interviewers' first names.
    people: tuple[str, ...]
    #: The session's calendar UID (its interview's, as every file about it carries).
    ics_uid: str
    #: Where, for a session in person (the room's name).
    place: str | None = None


def when(start: dt.datetime, end: dt.datetime, tzid: str) -> str:
    tz = ZoneInfo(tzid)
    return (
        f"{start.astimezone(tz).strftime('%A %d %B %Y, %H:%M')}–"
        f"{end.astimezone(tz).strftime('%H:%M')}"
    )


def _line(stop: Stop, tzid: str) -> str:
    minutes = int((stop.end - stop.start).total_seconds() // 60)
    who = f", with {', '.join(stop.people)}" if stop.people else ""
    where = f", in person: {stop.place}" if stop.place else ""
    return f"{stop.title}: {when(stop.start, stop.end, tzid)} ({minutes} minutes{who}{where})"


def _text_list(stops: Sequence[Stop], tzid: str) -> str:
    return "\n".join(f"  {n}. {_line(s, tzid)}" for n, s in enumerate(stops, start=1))


def _html_list(stops: Sequence[Stop], tzid: str, *, add_links: bool) -> str:
    items = []
    for s in stops:
        add = (
            f' <a href="{escape(google_link(s.title, s.start, s.end))}">Add to Google Calendar</a>'
            if add_links
            else ""
        )
        items.append(f"<li>{escape(_line(s, tzid))}{add}</li>")
    return "<ol>" + "".join(items) + "</ol>"


def _entries(stops: Sequence[Stop], loop_title: str, count: int) -> list[Entry]:
    return [
        Entry(
            uid=s.ics_uid,
            title=s.title,
            start=s.start,
            end=s.end,
            description=f"Session {s.ordinal} of {count} of {loop_title}."
            + (f" In person: {s.place}." if s.place else ""),
        )
        for s in stops
    ]


def _mail(
    *,
    kind: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    ics: str,
    method: str,
    organisation_id: int,
    loop_id: int,
) -> Mail:
    return Mail(
        to=to,
        subject=subject,
        text=text,
        html=html,
        kind=kind,
        organisation_id=organisation_id,
        target_type="interview_loop",
        target_id=str(loop_id),
        attachments=(Attachment("itinerary.ics", f"text/calendar; method={method}", ics),),
    )


def loop_itinerary(
    *,
    to: str,
    candidate_name: str,
    title: str,
    stops: Sequence[Stop],
    count: int,
    tzid: str,
    sequence: int,
    organisation_id: int,
    loop_id: int,
    moved: bool = False,
    change_url: str | None = None,
    change_cutoff_hours: int = 24,
) -> Mail:
    """The loop's itinerary: on booking (SEQUENCE 0, and the link back when the candidate may
    change it: a bearer link, sealed in the job, never logged) or after a move (a higher
    SEQUENCE: every session's entry is updated in place)."""
    span = when(stops[0].start, stops[-1].end, tzid) if stops else ""
    opening = (
        f"Your interviews for {title} have been moved. The new itinerary"
        if moved
        else f"Your interviews for {title} are booked. Your itinerary"
    )
    change = (
        "To reschedule or cancel (up to "
        f"{change_cutoff_hours} hours before the first session), open your booking page:"
        if change_url
        else ""
    )
    text = (
        f"Hello {candidate_name},\n\n"
        f"{opening} ({span}, times in {tzid}):\n\n{_text_list(stops, tzid)}\n\n"
        "The attached file puts every session in your calendar"
        + (" (it updates the entries you already have)" if moved else "")
        + ". The interviewers' calendar invitations, with the video links when there are "
        "some, follow separately.\n" + (f"\n{change}\n{change_url}\n" if change_url else "")
    )
    html = (
        f"<p>Hello {escape(candidate_name)},</p>"
        f"<p>{escape(opening)} ({escape(span)}, times in {escape(tzid)}):</p>"
        f"{_html_list(stops, tzid, add_links=True)}"
        "<p>The attached file puts every session in your calendar"
        + (" (it updates the entries you already have)" if moved else "")
        + ". The interviewers' calendar invitations, with the video links when there are "
        "some, follow separately.</p>"
        + (
            f'<p>{escape(change)} <a href="{escape(change_url)}">Reschedule or cancel</a></p>'
            if change_url
            else ""
        )
    )
    return _mail(
        kind="loop_rescheduled" if moved else "loop_booked",
        to=to,
        subject=f"{'Interviews moved' if moved else 'Interviews booked'}: {title}",
        text=text,
        html=html,
        ics=itinerary_ics(_entries(stops, title, count), sequence=sequence),
        method="PUBLISH",
        organisation_id=organisation_id,
        loop_id=loop_id,
    )


def loop_cancelled(
    *,
    to: str,
    candidate_name: str,
    title: str,
    cancelled: Sequence[Stop],
    remaining: Sequence[Stop],
    count: int,
    tzid: str,
    sequence: int,
    organizer: str,
    organisation_id: int,
    loop_id: int,
) -> Mail:
    """Sessions of the loop were cancelled (all of them, or some): an .ics with METHOD:CANCEL
    for exactly those (their UIDs, a higher SEQUENCE) and the itinerary that is left."""
    whole = not remaining
    text = (
        f"Hello {candidate_name},\n\n"
        + (
            f"Your interviews for {title} have been cancelled:\n\n"
            if whole
            else f"{'A session' if len(cancelled) == 1 else 'Some sessions'} of your interviews "
            f"for {title} {'has' if len(cancelled) == 1 else 'have'} been cancelled:\n\n"
        )
        + f"{_text_list(cancelled, tzid)}\n\n"
        + ("" if whole else f"Still on (times in {tzid}):\n\n{_text_list(remaining, tzid)}\n\n")
        + "The attached file removes the cancelled "
        + ("sessions" if len(cancelled) > 1 else "session")
        + " from your calendar. If a new time is arranged, you will hear from us separately.\n"
    )
    html = (
        f"<p>Hello {escape(candidate_name)},</p>"
        + (
            f"<p>Your interviews for {escape(title)} have been cancelled (times in "
            f"{escape(tzid)}):</p>"
            if whole
            else f"<p>{'A session' if len(cancelled) == 1 else 'Some sessions'} of your "
            f"interviews for {escape(title)} {'has' if len(cancelled) == 1 else 'have'} been "
            f"cancelled (times in {escape(tzid)}):</p>"
        )
        + _html_list(cancelled, tzid, add_links=False)
        + ("" if whole else "<p>Still on:</p>" + _html_list(remaining, tzid, add_links=False))
        + "<p>The attached file removes the cancelled "
        + ("sessions" if len(cancelled) > 1 else "session")
        + " from your calendar. If a new time is arranged, you will hear from us separately.</p>"
    )
    return _mail(
        kind="loop_cancelled",
        to=to,
        subject=f"{'Interviews cancelled' if whole else 'Interview cancelled'}: {title}",
        text=text,
        html=html,
        ics=itinerary_ics(
            _entries(cancelled, title, count),
            sequence=sequence,
            cancelled=True,
            organizer=organizer,
        ),
        method="CANCEL",
        organisation_id=organisation_id,
        loop_id=loop_id,
    )


def loop_link(
    *,
    to: str,
    candidate_name: str,
    title: str,
    sessions: int,
    minutes: int,
    recruiter: str,
    organisation_name: str,
    url: str,
    expires_at: dt.datetime,
    tzid: str,
    organisation_id: int,
    link_id: int,
) -> Mail:
    """The candidate's self-scheduling link to a loop. The URL is a bearer token: it travels
    sealed in the job, and no log or audit entry carries it."""
    expires = expires_at.astimezone(ZoneInfo(tzid)).strftime("%A %d %B %Y, %H:%M")
    hours, rest = divmod(minutes, 60)
    length = f"{hours} h {rest:02d} min" if hours else f"{rest} minutes"
    text = (
        f"Hello {candidate_name},\n\n"
        f"{recruiter} at {organisation_name} invites you to choose when to come for your "
        f"interviews:\n\n  {title} ({sessions} sessions, {length} of interviews)\n\n"
        f"Pick a start time that suits you here; you will see the whole itinerary first:\n\n"
        f"{url}\n\n"
        f"The link works once and until {expires} ({tzid}). The calendar invitations follow "
        "once you have chosen.\n"
    )
    html = (
        f"<p>Hello {escape(candidate_name)},</p>"
        f"<p>{escape(recruiter)} at {escape(organisation_name)} invites you to choose when to "
        "come for your interviews:</p>"
        f"<p><strong>{escape(title)}</strong> ({sessions} sessions, {escape(length)} of "
        "interviews)</p>"
        f'<p><a href="{escape(url)}">Pick a start time that suits you</a> (you will see the '
        "whole itinerary first)</p>"
        f"<p>The link works once and until {escape(expires)} ({escape(tzid)}). The calendar "
        "invitations follow once you have chosen.</p>"
    )
    return Mail(
        to=to,
        subject=f"Choose a time for your interviews: {title}",
        text=text,
        html=html,
        kind="scheduling_link",
        organisation_id=organisation_id,
        target_type="scheduling_link",
        target_id=str(link_id),
    )
