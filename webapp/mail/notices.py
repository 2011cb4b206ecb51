"""The emails Rendezvous sends to candidates, as ``Mail`` values (text and HTML, escaped)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from markupsafe import escape

from webapp.mail import Attachment, Mail
from webapp.mail.ics import interview_ics


def _when(start: dt.datetime, end: dt.datetime, tzid: str) -> str:
    tz = ZoneInfo(tzid)
    return (
        f"{start.astimezone(tz).strftime('%A %d %B %Y, %H:%M')}–"
        f"{end.astimezone(tz).strftime('%H:%M')} ({tzid})"
    )


def booking_confirmation(
    *,
    to: str,
    candidate_name: str,
    title: str,
    start: dt.datetime,
    end: dt.datetime,
    tzid: str,
    ics_uid: str,
    organisation_id: int,
    interview_id: int,
    change_url: str | None = None,
    change_cutoff_hours: int = 24,
) -> Mail:
    """The candidate booked through a self-scheduling link: the time, in their zone, and the
    interview as an .ics attachment. A link back (a bearer token: it travels sealed in the job
    and is never logged) only when the recruiter lets the candidate reschedule or cancel."""
    when = _when(start, end, tzid)
    change = (
        (
            f"To reschedule or cancel (up to {change_cutoff_hours} hours before the interview), "
            "open your booking page:"
        )
        if change_url
        else ""
    )
    text = (
        f"Hello {candidate_name},\n\n"
        f"Your interview is booked:\n\n  {title}\n  {when}\n\n"
        "The attached file adds it to your calendar. The calendar invitation from the "
        "interviewers, with the video link when there is one, follows separately.\n"
        + (f"\n{change}\n{change_url}\n" if change_url else "")
    )
    html = (
        f"<p>Hello {escape(candidate_name)},</p>"
        f"<p>Your interview is booked:</p>"
        f"<p><strong>{escape(title)}</strong><br>{escape(when)}</p>"
        "<p>The attached file adds it to your calendar. The calendar invitation from the "
        "interviewers, with the video link when there is one, follows separately.</p>"
        + (
            f'<p>{escape(change)} <a href="{escape(change_url)}">Reschedule or cancel</a></p>'
            if change_url
            else ""
        )
    )
    ics = interview_ics(uid=ics_uid, title=title, start=start, end=end)
    return Mail(
        to=to,
        subject=f"Interview booked: {title}",
        text=text,
        html=html,
        kind="booking_confirmation",
        organisation_id=organisation_id,
        target_type="interview",
        target_id=str(interview_id),
        attachments=(Attachment("interview.ics", "text/calendar; method=PUBLISH", ics),),
    )


def user_invitation(
    *,
    to: str,
    name: str,
    organisation_name: str,
    invited_by: str,
    url: str,
    days: int,
    organisation_id: int,
    user_id: int,
) -> Mail:
    """An account was made for ``to``: the one-time link that sets their password. The link is
    a bearer token: it travels sealed in the job and is never logged."""
    text = (
        f"Hello {name},\n\n"
        f"{invited_by} created a Rendezvous account for you at {organisation_name}.\n"
        f"Choose your password here (the link works once, for {days} days):\n\n{url}\n"
    )
    html = (
        f"<p>Hello {escape(name)},</p>"
        f"<p>{escape(invited_by)} created a Rendezvous account for you at "
        f"{escape(organisation_name)}.</p>"
        f'<p><a href="{escape(url)}">Choose your password</a> (the link works once, for '
        f"{days} days).</p>"
    )
    return Mail(
        to=to,
        subject=f"Your Rendezvous account at {organisation_name}",
        text=text,
        html=html,
        kind="user_invitation",
        organisation_id=organisation_id,
        target_type="user",
        target_id=str(user_id),
    )


def _notice(
    *,
    kind: str,
    to: str,
    subject: str,
    lines: tuple[str, ...],
    ics: str,
    organisation_id: int,
    interview_id: int,
    method: str,
) -> Mail:
    text = "\n\n".join(lines) + "\n"
    html = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return Mail(
        to=to,
        subject=subject,
        text=text,
        html=html,
        kind=kind,
        organisation_id=organisation_id,
        target_type="interview",
        target_id=str(interview_id),
        attachments=(Attachment("interview.ics", f"text/calendar; method={method}", ics),),
    )


def interview_rescheduled(
    *,
    to: str,
    candidate_name: str,
    title: str,
    old_start: dt.datetime | None,
    old_end: dt.datetime | None,
    start: dt.datetime,
    end: dt.datetime,
    tzid: str,
    ics_uid: str,
    sequence: int,
    organisation_id: int,
    interview_id: int,
) -> Mail:
    """The interview moved: the new time in the candidate's zone, and the .ics again (same UID,
    higher SEQUENCE) so the entry already in their calendar moves with it."""
    moved = f"It was {_when(old_start, old_end, tzid)}." if old_start and old_end else ""
    lines = (
        f"Hello {candidate_name},",
        f"Your interview {title} has been moved to {_when(start, end, tzid)}.",
        *((moved,) if moved else ()),
        "The attached file updates the entry in your calendar. The interviewers' calendar "
        "invitation is updated separately.",
    )
    ics = interview_ics(uid=ics_uid, title=title, start=start, end=end, sequence=sequence)
    return _notice(
        kind="interview_rescheduled",
        to=to,
        subject=f"Interview moved: {title}",
        lines=lines,
        ics=ics,
        organisation_id=organisation_id,
        interview_id=interview_id,
        method="PUBLISH",
    )


def interview_cancelled(
    *,
    to: str,
    candidate_name: str,
    title: str,
    start: dt.datetime,
    end: dt.datetime,
    tzid: str,
    ics_uid: str,
    sequence: int,
    organizer: str,
    organisation_id: int,
    interview_id: int,
) -> Mail:
    """The interview is cancelled: which one, and an .ics with METHOD:CANCEL (same UID, higher
    SEQUENCE) that removes it from the candidate's calendar."""
    lines = (
        f"Hello {candidate_name},",
        f"Your interview {title} on {_when(start, end, tzid)} has been cancelled.",
        "The attached file removes it from your calendar. If a new time is arranged, you will "
        "hear from us separately.",
    )
    ics = interview_ics(
        uid=ics_uid,
        title=title,
        start=start,
        end=end,
        sequence=sequence,
        cancelled=True,
        organizer=organizer,
    )
    return _notice(
        kind="interview_cancelled",
        to=to,
        subject=f"Interview cancelled: {title}",
        lines=lines,
        ics=ics,
        organisation_id=organisation_id,
        interview_id=interview_id,
        method="CANCEL",
    )


def scheduling_link(
    *,
    to: str,
    candidate_name: str,
    title: str,
    duration: int,
    recruiter: str,
    organisation_name: str,
    url: str,
    expires_at: dt.datetime,
    tzid: str,
    organisation_id: int,
    link_id: int,
) -> Mail:
    """The candidate's self-scheduling link, from the link form. The URL is a bearer token: it
    travels sealed in the job, and no log or audit entry carries it."""
    expires = expires_at.astimezone(ZoneInfo(tzid)).strftime("%A %d %B %Y, %H:%M")
    text = (
        f"Hello {candidate_name},\n\n"
        f"{recruiter} at {organisation_name} invites you to choose a time for your interview:\n\n"
        f"  {title} ({duration} minutes)\n\n"
        f"Pick a time that suits you here:\n\n{url}\n\n"
        f"The link works once and until {expires} ({tzid}). The calendar invitation follows "
        "once you have chosen.\n"
    )
    html = (
        f"<p>Hello {escape(candidate_name)},</p>"
        f"<p>{escape(recruiter)} at {escape(organisation_name)} invites you to choose a time "
        f"for your interview:</p>"
        f"<p><strong>{escape(title)}</strong> ({duration} minutes)</p>"
        f'<p><a href="{escape(url)}">Pick a time that suits you</a></p>'
        f"<p>The link works once and until {escape(expires)} ({escape(tzid)}). The calendar "
        "invitation follows once you have chosen.</p>"
    )
    return Mail(
        to=to,
        subject=f"Choose a time for your interview: {title}",
        text=text,
        html=html,
        kind="scheduling_link",
        organisation_id=organisation_id,
        target_type="scheduling_link",
        target_id=str(link_id),
    )
