"""Offering a composed loop through a self-scheduling link (the recruiter's side).

The link is an ordinary self-scheduling link (``candidate_links``: a sealed single-use token
of which only the SHA-256 is kept, the candidate's details encrypted on the row, an expiry,
"candidate may change" with its cut-off) that points at the loop: the loop's plan (its sessions,
people, rooms, video, gaps and days) is the link's settings, kept where the loop keeps them
(ids and sealed titles; no calendar content). The candidate's side is ``loops.candidate``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    InterviewLoop,
    LinkStatus,
    LoopState,
    Organisation,
    Role,
    SchedulingLink,
    User,
    utcnow,
)
from webapp import security
from webapp.security import Sealer
from webapp.services import Actor, JobQueue
from webapp.services.audit import record
from webapp.services.availability import model
from webapp.services.candidate_links import MAX_EXPIRY_DAYS, PURPOSE, check_cutoff
from webapp.services.connect import link_of
from webapp.services.errors import Forbidden, Invalid
from webapp.services.link_details import LinkDetails, seal_details, seal_token
from webapp.services.loops.checking import check_plan
from webapp.services.loops.compose import loop_for, open_details, plan_of
from webapp.services.loops.plan import LoopPlan


def window_of(plan: LoopPlan) -> tuple[dt.datetime, dt.datetime]:
    """The loop's days (from its first day, in its zone) as a UTC window."""
    tz = model.zone(plan.tzid)
    start = dt.datetime.combine(plan.start_date, dt.time(0), tz).astimezone(model.UTC)
    end = dt.datetime.combine(
        plan.start_date + dt.timedelta(days=plan.days), dt.time(0), tz
    ).astimezone(model.UTC)
    return start, end


def offer_loop(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    uid: str,
    *,
    expires_days: int,
    email_to: Callable[[str], str] | None = None,
    jobs: JobQueue | None = None,
    candidate_may_change: bool = False,
    change_cutoff_hours: int = 24,
    candidate_hours: tuple[int, int] | None = None,
) -> tuple[SchedulingLink, str]:
    """A single-use link for the candidate of the draft loop ``uid`` (the actor's own) to pick
    its start time; returns it with its token. ``email_to`` (token → URL) emails it to them.
    ``candidate_hours`` (minutes after midnight in the candidate's zone): every session offered
    is inside them, on top of each interviewer's working hours."""
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Only recruiters create self-scheduling links.")
    loop = loop_for(session, actor, uid)
    if loop.state is not LoopState.DRAFT:
        raise Invalid("Only a loop that is not booked yet can be offered.", field="loop")
    if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise Invalid(f"Links expire after 1 to {MAX_EXPIRY_DAYS} days.", field="expires_days")
    cutoff = check_cutoff(change_cutoff_hours)
    if candidate_hours is not None:
        first, last = candidate_hours
        if not (0 <= first < last <= 24 * 60):
            raise Invalid(
                "The candidate's hours must end after they start.", field="candidate_hours"
            )
        if last - first < max(s.duration_minutes for s in loop.sessions):
            raise Invalid(
                "The candidate's hours are shorter than a session.", field="candidate_hours"
            )
    host = link_of(session, actor.user_id)
    if host is None or host.status is not LinkStatus.ACTIVE or not host.target_calendar_id:
        raise Invalid("Connect your calendar first: the interviews are written to it.")
    details = open_details(sealer, loop)
    if details is None:
        raise Invalid("This loop's details cannot be read any more; compose it again.")
    now = utcnow()
    if open_link_of(session, loop, now) is not None:
        raise Invalid(
            "This loop already has an open link: copy it from your list, or revoke it first.",
            field="loop",
        )
    plan = plan_of(sealer, loop)
    window_start, window_end = window_of(plan)
    window_start = max(window_start, now)
    if window_end <= window_start + dt.timedelta(hours=1):
        raise Invalid("The loop's days are over: compose it again with later days.", field="loop")
    check_plan(session, actor, _from_today(plan, now))  # its people and rooms, as of today
    expires_at = now + dt.timedelta(days=expires_days)
    if window_start >= expires_at:
        raise Invalid(
            "The link would expire before the loop's first day: let it expire later.",
            field="expires_days",
        )
    tzid = loop.candidate_tzid or loop.tzid
    token = sealer.seal_json(
        PURPOSE,
        {
            "k": secrets.token_urlsafe(16),
            "n": details.candidate_name,
            "e": details.candidate_email,
            "z": tzid,
            "t": details.title,
            **({"h": list(candidate_hours)} if candidate_hours else {}),
        },
    )
    link = SchedulingLink(
        token_hash=security.token_hash(token),
        organisation_id=actor.organisation_id,
        created_by_id=actor.user_id,
        host_link_id=host.id,
        panel_link_ids=list(dict.fromkeys(i for s in loop.sessions for i in s.panel_link_ids)),
        duration_minutes=sum(s.duration_minutes for s in loop.sessions),
        window_start=window_start,
        window_end=window_end,
        video=any(s.video for s in loop.sessions),
        expires_at=expires_at,
        candidate_may_change=bool(candidate_may_change),
        change_cutoff_hours=cutoff,
        loop_id=loop.id,
    )
    link_details = LinkDetails(details.candidate_name, details.candidate_email, details.title)
    seal_details(sealer, link, link_details)
    seal_token(sealer, link, token)
    session.add(link)
    session.flush()
    record(
        session,
        actor,
        "loop.offered",
        target_type="interview_loop",
        target_id=loop.id,
        detail={
            "scheduling_link": link.id,
            "sessions": len(loop.sessions),
            "expires_days": expires_days,
            "emailed": email_to is not None,
            "candidate_may_change": bool(candidate_may_change),
            "change_cutoff_hours": cutoff,
            "candidate_hours": candidate_hours is not None,
        },
    )
    session.commit()
    if email_to is not None:
        if jobs is None:
            raise TypeError("emailing a link needs the job queue")
        _email(session, sealer, actor, link, loop, link_details, email_to(token), tzid, jobs)
    return link, token


def plan_from(plan: LoopPlan, now: dt.datetime) -> LoopPlan | None:
    """The plan with its days from today on (in its zone): what a link still offers days after
    the loop was composed. None when its days are over."""
    today = now.astimezone(model.zone(plan.tzid)).date()
    if plan.start_date >= today:
        return plan
    days = plan.days - (today - plan.start_date).days
    if days < 1:
        return None
    return dataclasses.replace(plan, start_date=today, days=days)


def _from_today(plan: LoopPlan, now: dt.datetime) -> LoopPlan:
    return plan_from(plan, now) or plan


def open_link_of(
    session: Session, loop: InterviewLoop, now: dt.datetime | None = None
) -> SchedulingLink | None:
    """The loop's link that can still be used, if any."""
    return session.scalar(
        select(SchedulingLink).where(
            SchedulingLink.loop_id == loop.id,
            SchedulingLink.organisation_id == loop.organisation_id,
            SchedulingLink.used_at.is_(None),
            SchedulingLink.revoked_at.is_(None),
            SchedulingLink.expires_at > (now or utcnow()),
        )
    )


def _email(
    session: Session,
    sealer: Sealer,
    actor: Actor,
    link: SchedulingLink,
    loop: InterviewLoop,
    details: LinkDetails,
    url: str,
    tzid: str,
    jobs: JobQueue,
) -> None:
    from webapp import mail
    from webapp.mail import loop_notices

    sender = session.get(User, actor.user_id) if actor.user_id else None
    organisation = session.get(Organisation, link.organisation_id)
    mail.queue(
        jobs,
        sealer,
        loop_notices.loop_link(
            to=details.email,
            candidate_name=details.name,
            title=details.title,
            sessions=len(loop.sessions),
            minutes=link.duration_minutes,
            recruiter=sender.name if sender else "The hiring team",
            organisation_name=organisation.name if organisation else "Rendezvous",
            url=url,
            expires_at=link.expires_at,
            tzid=tzid,
            organisation_id=link.organisation_id,
            link_id=link.id,
        ),
    )
