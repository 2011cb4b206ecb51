"""Candidate self-scheduling links, the recruiter's side: create a signed, expiring, single-use
link, list and revoke them, purge old ones. The candidate's side is ``candidate_booking``.

The candidate's name and email (and the interview title) are sealed inside the link's token
(AES-GCM); the database keeps the token's SHA-256, the panel's link ids, the window and the
link's state, and, encrypted with the same AES-GCM bound to the row (``link_details``), the
candidate's name, email and title (to tell links apart) and the token while the link is open
(to copy it again). Booking re-checks the slot at the aggregator, then uses the link and claims the
time for the whole panel in one transaction (``claims``): of two bookings racing for the same
time, from candidates, recruiters or the API, in any process, one gets it and the other is told it
was just taken.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Interview,
    LinkStatus,
    Organisation,
    Role,
    SchedulingLink,
    User,
    utcnow,
)
from webapp import security
from webapp.security import Sealer
from webapp.services import Actor, JobQueue, rowcount
from webapp.services.accounts import valid_email
from webapp.services.audit import record
from webapp.services.availability import model, roster
from webapp.services.connect import link_of
from webapp.services.errors import (
    Forbidden,
    Invalid,
    NotFound,
)
from webapp.services.link_details import (
    LinkDetails,
    open_details,
    open_token,
    seal_details,
    seal_token,
)
from webapp.services.scheduling import booking

PURPOSE = "candidate-link"


MAX_TOKEN = 2048


MAX_WINDOW_DAYS = 14


MAX_EXPIRY_DAYS = 30


#: The longest cut-off before the interview a recruiter may set for the candidate's changes.
MAX_CUTOFF_HOURS = 168


def check_cutoff(hours: int) -> int:
    """The recruiter's cut-off, checked (whole hours, 0 to a week)."""
    if not 0 <= hours <= MAX_CUTOFF_HOURS:
        raise Invalid(
            f"The cut-off is a whole number of hours from 0 to {MAX_CUTOFF_HOURS}.",
            field="change_cutoff_hours",
        )
    return hours


#: Providers whose calendars cannot send attendee invitations: the candidate gets a Smart Invite.
NO_INVITES = frozenset({"apple"})


def create_link(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    *,
    panel_link_ids,
    duration: int,
    start_date: dt.date,
    days: int,
    expires_days: int,
    candidate_name: str,
    candidate_email: str,
    candidate_tzid: str,
    title: str,
    video: bool = True,
    candidate_hours: tuple[int, int] | None = None,
    email_to: Callable[[str], str] | None = None,
    jobs: JobQueue | None = None,
    candidate_may_change: bool = False,
    change_cutoff_hours: int = 24,
) -> tuple[SchedulingLink, str]:
    """Create a link; returns it with the token (kept only encrypted, for the recruiter to copy
    again while the link is open).

    With ``email_to`` (the token → the link's URL) the link is emailed to the candidate by the
    ``mail.send_message`` job queued on ``jobs`` (sealed: the URL is a bearer link, never logged
    nor audited; the audit trail has the recipient's hash).

    The candidate's zone is recorded in the link (their page shows times in it; they may choose
    another display zone). ``candidate_hours`` (minutes after midnight, in that zone) limits the
    times offered to the candidate's own day, on top of every panel member's working hours.
    ``candidate_may_change``: the candidate may reschedule or cancel what they book, up to
    ``change_cutoff_hours`` before the interview (``candidate_changes``)."""
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters create self-scheduling links.")
    host = link_of(session, actor.user_id)
    if host is None or host.status is not LinkStatus.ACTIVE or not host.target_calendar_id:
        raise Invalid("Connect your calendar first: the interview is written to it.")
    members = roster.resolve_panel(session, actor, panel_link_ids)
    if duration not in model.DURATIONS:
        raise Invalid("Choose one of the listed durations.", field="duration")
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise Invalid(f"The window is 1 to {MAX_WINDOW_DAYS} days.", field="days")
    if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise Invalid(f"Links expire after 1 to {MAX_EXPIRY_DAYS} days.", field="expires_days")
    booking.check_title_and_name(title, candidate_name)
    if not valid_email(candidate_email.strip()):
        raise Invalid("Enter the candidate's email address.", field="candidate_email")
    if not model.valid_zone(candidate_tzid):
        raise Invalid("Choose the candidate's time zone from the list.", field="candidate_tzid")
    if candidate_hours is not None:
        first, last = candidate_hours
        if not (0 <= first < last <= 24 * 60):
            raise Invalid(
                "The candidate's hours must end after they start.", field="candidate_hours"
            )
        if last - first < duration:
            raise Invalid(
                "The candidate's hours are shorter than the interview.", field="candidate_hours"
            )
    tz = model.zone(candidate_tzid)
    today = utcnow().astimezone(tz).date()
    if start_date < today or start_date > today + dt.timedelta(days=365):
        raise Invalid("The window must start today or later.", field="start_date")
    window_start = max(
        dt.datetime.combine(start_date, dt.time(0), tz).astimezone(model.UTC), utcnow()
    )
    window_end = dt.datetime.combine(
        start_date + dt.timedelta(days=days), dt.time(0), tz
    ).astimezone(model.UTC)
    expires_at = utcnow() + dt.timedelta(days=expires_days)
    if window_start + dt.timedelta(minutes=duration) > expires_at:
        raise Invalid(
            f"The link would expire ({expires_at.astimezone(tz):%d %B %Y, %H:%M}) before "
            f"its first bookable day ({start_date:%d %B %Y}): let it expire later or "
            "start the window earlier.",
            field="expires_days",
        )
    token = sealer.seal_json(
        PURPOSE,
        {
            "k": secrets.token_urlsafe(
                16
            ),  # 128 random bits of its own, on top of the AES-GCM nonce
            "n": candidate_name.strip(),
            "e": candidate_email.strip(),
            "z": candidate_tzid,
            "t": title.strip(),
            **({"h": list(candidate_hours)} if candidate_hours else {}),
        },
    )
    link = SchedulingLink(
        token_hash=security.token_hash(token),
        organisation_id=actor.organisation_id,
        created_by_id=actor.user_id,
        host_link_id=host.id,
        panel_link_ids=[m.link.id for m in members],
        duration_minutes=duration,
        window_start=window_start,
        window_end=window_end,
        video=video,
        expires_at=expires_at,
        candidate_may_change=bool(candidate_may_change),
        change_cutoff_hours=check_cutoff(change_cutoff_hours),
    )
    details = LinkDetails(candidate_name.strip(), candidate_email.strip(), title.strip())
    seal_details(sealer, link, details)
    seal_token(sealer, link, token)
    session.add(link)
    session.flush()
    record(
        session,
        actor,
        "scheduling_link.created",
        target_type="scheduling_link",
        target_id=link.id,
        detail={
            "panel": len(members),
            "duration": duration,
            "expires_days": expires_days,
            "candidate_hours": candidate_hours is not None,
            "emailed": email_to is not None,
            "candidate_may_change": bool(candidate_may_change),
            "change_cutoff_hours": change_cutoff_hours,
        },
    )
    session.commit()
    if email_to is not None:
        if jobs is None:
            raise TypeError("emailing a link needs the job queue")
        _email_link(session, sealer, actor, link, details, email_to(token), candidate_tzid, jobs)
    return link, token


def _email_link(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    link: SchedulingLink,
    details: LinkDetails,
    url: str,
    tzid: str,
    jobs: JobQueue,
) -> None:
    from webapp import mail
    from webapp.mail import notices

    sender = session.get(User, actor.user_id) if actor.user_id else None
    organisation = session.get(Organisation, link.organisation_id)
    mail.queue(
        jobs,
        sealer,
        notices.scheduling_link(
            to=details.email,
            candidate_name=details.name,
            title=details.title,
            duration=link.duration_minutes,
            recruiter=sender.name if sender else "The hiring team",
            organisation_name=organisation.name if organisation else "Rendezvous",
            url=url,
            expires_at=link.expires_at,
            tzid=tzid,
            organisation_id=link.organisation_id,
            link_id=link.id,
        ),
    )


@dataclass(frozen=True)
class ListedLink:
    """A link in the recruiter's list: what it is for (decrypted; None for a link made before
    that was kept, or one that does not open), the interview booked through it, and the token
    while the link is open (to copy the link again)."""

    link: SchedulingLink
    interview: Interview | None
    details: LinkDetails | None
    token: str | None


def listed_links(session: Session, sealer: Sealer, actor: Actor) -> list[ListedLink]:
    """The actor's own links (the latest 100, newest first), inside their organisation."""
    return [
        ListedLink(
            link,
            interview,
            open_details(sealer, link),
            open_token(sealer, link) if link.state == "open" else None,
        )
        for link, interview in links_of(session, actor)
    ]


def links_of(session: Session, actor: Actor) -> list[tuple[SchedulingLink, Interview | None]]:
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters have self-scheduling links.")
    links = list(
        session.scalars(
            select(SchedulingLink)
            .where(
                SchedulingLink.organisation_id == actor.organisation_id,
                SchedulingLink.created_by_id == actor.user_id,
            )
            .order_by(SchedulingLink.id.desc())
            .limit(100)
        )
    )
    booked = {
        i.scheduling_link_id: i
        for i in session.scalars(
            select(Interview).where(
                Interview.scheduling_link_id.in_([sl.id for sl in links] or [-1])
            )
        )
    }
    return [(sl, booked.get(sl.id)) for sl in links]


def revoke(session: Session, actor: Actor, link_id: int) -> SchedulingLink:
    link = session.get(SchedulingLink, link_id)
    if (
        link is None
        or link.organisation_id != actor.organisation_id
        or link.created_by_id != actor.user_id
    ):
        raise NotFound("You have no self-scheduling link with this id.")
    if link.revoked_at is None and link.used_at is None:
        link.revoked_at = utcnow()
        link.token_sealed = None
        record(
            session,
            actor,
            "scheduling_link.revoked",
            target_type="scheduling_link",
            target_id=link.id,
        )
        session.commit()
    return link


#: Expired, used and revoked links are deleted after this (the interview keeps no reference).
PURGE_AFTER = dt.timedelta(days=30)


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Delete links expired, used or revoked more than PURGE_AFTER ago; returns how many. A used
    link that lets the candidate change their booking is its key to it: it is kept until
    PURGE_AFTER after its window ends (the interview cannot be later)."""
    from sqlalchemy import and_, delete, not_, or_

    cutoff = (now or utcnow()) - PURGE_AFTER
    still_a_key = and_(
        SchedulingLink.used_at.is_not(None),
        SchedulingLink.candidate_may_change.is_(True),
        SchedulingLink.window_end >= cutoff,
    )
    result = session.execute(
        delete(SchedulingLink).where(
            or_(
                SchedulingLink.expires_at < cutoff,
                SchedulingLink.used_at < cutoff,
                SchedulingLink.revoked_at < cutoff,
            ),
            not_(still_a_key),
        )
    )
    session.commit()
    return rowcount(result)
