"""Telling the candidate about their loop, by email: ONE itinerary for the whole loop.

The address and name come from the loop's sealed details (never stored readable, never logged;
the audit entry has the address's hash). Each session is named in the .ics by its own
interview's UID (``ics.uid_of``, as a single interview's files are), so a later file updates or
cancels exactly the entries an earlier one made. The email is sent by the ``mail.send_message``
job (``webapp.mail.queue``), sealed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Interview, InterviewLoop, ProfileLink, User
from webapp import mail
from webapp.mail import ics, loop_notices
from webapp.services import Actor, JobQueue
from webapp.services.audit import record
from webapp.services.availability import roster
from webapp.services.link_details import email_hash
from webapp.services.loops.compose import open_details
from webapp.services.scheduling.notices import Notify, _address

Change = Literal["booked", "rescheduled", "cancelled"]


@dataclass(frozen=True)
class Timed:
    """A session with its interview's uid and its time (new, after a move; as it was, for a
    cancellation)."""

    ordinal: int
    interview_uid: str
    start: dt.datetime
    end: dt.datetime


def first_names(session: Session, loop: InterviewLoop) -> dict[int, tuple[str, ...]]:
    """Each session's interviewers' first names (what the candidate is told), by ordinal: the
    booked interview's panel (pool picks included), else the people the plan names."""
    booked = {
        i.id: list(i.panel_link_ids or ())
        for i in session.scalars(
            select(Interview).where(
                Interview.id.in_([s.interview_id for s in loop.sessions if s.interview_id] or [-1]),
                Interview.organisation_id == loop.organisation_id,
            )
        )
    }
    panels = {
        s.ordinal: booked.get(s.interview_id, s.panel_link_ids)
        if s.interview_id
        else s.panel_link_ids
        for s in loop.sessions
    }
    ids = {i for panel in panels.values() for i in panel}
    names = {
        row.id: (row.name.split() or [""])[0]
        for row in session.execute(
            select(ProfileLink.id, User.name)
            .join(User, User.id == ProfileLink.user_id)
            .where(
                ProfileLink.id.in_(ids or {-1}),
                ProfileLink.organisation_id == loop.organisation_id,
            )
        )
    }
    return {
        ordinal: tuple(names[i] for i in panel if i in names) for ordinal, panel in panels.items()
    }


def candidate_zone(loop: InterviewLoop) -> str:
    return loop.candidate_tzid or loop.tzid


def tell_candidate(
    session: Session,
    notify: Notify,
    actor: Actor | None,
    loop: InterviewLoop,
    change: Change,
    *,
    live: Sequence[Timed],
    cancelled: Sequence[Timed] = (),
    jobs: JobQueue,
    change_url: str | None = None,
    change_cutoff_hours: int = 24,
) -> bool:
    """Queue the one email about ``change``: the itinerary of the ``live`` sessions (booked or
    moved), or the ``cancelled`` ones with what is left. Returns whether it was queued; a skip
    is audited with its reason. Commits."""
    details = open_details(notify.sealer, loop)
    if (
        details is None
        or (change != "cancelled" and not live)
        or (change == "cancelled" and not cancelled)
    ):
        record(
            session,
            actor,
            "loop.candidate_notice_skipped",
            outcome="failure",
            organisation_id=loop.organisation_id,
            target_type="interview_loop",
            target_id=loop.id,
            detail={
                "change": change,
                "reason": "details_unreadable" if details is None else "none",
            },
        )
        session.commit()
        return False
    titles = details.session_titles
    people = first_names(session, loop)
    names = {r.email: r.name for r in roster.room_choices(session, loop.organisation_id)}
    places = {s.ordinal: names.get(s.room_email) for s in loop.sessions if s.room_email}
    count = len(loop.sessions)

    def stops(timed: Sequence[Timed]) -> list[loop_notices.Stop]:
        return [
            loop_notices.Stop(
                ordinal=t.ordinal,
                title=titles[t.ordinal - 1]
                if t.ordinal - 1 < len(titles)
                else f"Session {t.ordinal}",
                start=t.start,
                end=t.end,
                people=people.get(t.ordinal, ()),
                ics_uid=ics.uid_of(t.interview_uid, notify.ics_domain),
                place=places.get(t.ordinal),
            )
            for t in sorted(timed, key=lambda t: (t.start, t.ordinal))
        ]

    tzid = candidate_zone(loop)
    message: mail.Mail
    if change == "cancelled":
        message = loop_notices.loop_cancelled(
            to=details.candidate_email,
            candidate_name=details.candidate_name,
            title=details.title,
            cancelled=stops(cancelled),
            remaining=stops(live),
            count=count,
            tzid=tzid,
            sequence=ics.sequence_now(),
            organizer=_address(notify.sender),
            organisation_id=loop.organisation_id,
            loop_id=loop.id,
        )
    else:
        message = loop_notices.loop_itinerary(
            to=details.candidate_email,
            candidate_name=details.candidate_name,
            title=details.title,
            stops=stops(live),
            count=count,
            tzid=tzid,
            sequence=0 if change == "booked" else ics.sequence_now(),
            organisation_id=loop.organisation_id,
            loop_id=loop.id,
            moved=change == "rescheduled",
            change_url=change_url,
            change_cutoff_hours=change_cutoff_hours,
        )
    record(
        session,
        actor,
        "loop.candidate_notice_queued",
        organisation_id=loop.organisation_id,
        target_type="interview_loop",
        target_id=loop.id,
        detail={
            "change": change,
            "sessions": len(cancelled if change == "cancelled" else live),
            "recipient_hash": email_hash(details.candidate_email),
        },
    )
    session.commit()
    mail.queue(jobs, notify.sealer, message)
    return True
