"""Candidate self-scheduling links through the API: list, create (the link is returned once) and
revoke; recruiters only, like the web page (webapp/views/candidate_links.py)."""

from __future__ import annotations

import datetime as dt

from models import Role
from webapp import deps
from webapp.api.core import actor, db, operation
from webapp.api.pagination import by_key
from webapp.api.scheduling import requested_zone
from webapp.api.schemas import scheduling_links as s
from webapp.api.schemas.common import PageQuerySchema
from webapp.services.availability import model
from webapp.services.scheduling import preferences

RECRUITERS = (Role.RECRUITER,)


def _scheduling_link(link, interview=None, details=None, token=None) -> dict:
    from webapp.public_urls import external_url

    return {
        "id": link.id,
        "candidate_name": details.name if details is not None else None,
        "title": details.title if details is not None else None,
        "url": external_url("candidate.page", token=token) if token else None,
        "state": link.state,
        "panel_link_ids": list(link.panel_link_ids or []),
        "duration_minutes": link.duration_minutes,
        "window_start": link.window_start,
        "window_end": link.window_end,
        "video": link.video,
        "expires_at": link.expires_at,
        "created_at": link.created_at,
        "used_at": link.used_at,
        "revoked_at": link.revoked_at,
        "interview_uid": interview.uid if interview is not None else None,
        "candidate_may_change": link.candidate_may_change,
        "change_cutoff_hours": link.change_cutoff_hours,
    }


@operation(
    "GET",
    "/scheduling-links",
    summary="My self-scheduling links",
    tag="Scheduling",
    roles=RECRUITERS,
    query=PageQuerySchema,
    response=s.SchedulingLinkPageSchema,
)
def scheduling_links(query):
    """The candidate self-scheduling links I created (the latest 100), newest first, with the
    candidate's name and the title they were made for, and the link itself while it is open."""
    from webapp.services import candidate_links

    page = by_key(
        "scheduling-links",
        actor(),
        candidate_links.listed_links(db(), deps.sealer(), actor()),
        lambda item: item.link.id,
        limit=query["limit"],
        cursor=query["cursor"],
        descending=True,
    )
    return {
        "items": [
            _scheduling_link(item.link, item.interview, item.details, item.token)
            for item in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@operation(
    "POST",
    "/scheduling-links",
    summary="Create a self-scheduling link",
    tag="Scheduling",
    roles=RECRUITERS,
    body=s.NewSchedulingLinkSchema,
    response=s.CreatedSchedulingLinkSchema,
    status=201,
)
def create_scheduling_link(body):
    """A signed, expiring, single-use link for a candidate to book one of the panel's free slots.
    With `email_candidate` it is also emailed to the candidate. The candidate's name and email,
    the title and the link are kept encrypted; `GET /scheduling-links` returns the link again
    while it is open."""
    from webapp.services import candidate_links
    from webapp.services.link_details import open_details

    zone = requested_zone(body["candidate_tzid"])
    start_date = body["start_date"] or dt.datetime.now(model.zone(zone)).date()
    link, token = candidate_links.create_link(
        db(),
        deps.sealer(),
        actor(),
        panel_link_ids=body["panel"],
        duration=body["duration"],
        start_date=start_date,
        days=body["days"],
        expires_days=body["expires_days"],
        candidate_name=body["candidate_name"],
        candidate_email=body["candidate_email"],
        candidate_tzid=zone,
        title=body["title"],
        video=body["video"],
        candidate_hours=_candidate_hours(body["candidate_hours"]),
        email_to=_url_of if body["email_candidate"] else None,
        jobs=deps.jobs(),
        candidate_may_change=body["candidate_may_change"],
        change_cutoff_hours=body["change_cutoff_hours"],
    )
    return _scheduling_link(link, details=open_details(deps.sealer(), link), token=token)


def _url_of(token: str) -> str:
    from webapp.public_urls import external_url

    return external_url("candidate.page", token=token)


def _candidate_hours(hours: dict | None) -> tuple[int, int] | None:
    if not hours:
        return None
    return (
        preferences.parse_minutes(hours["start"], "candidate_hours.start"),
        preferences.parse_minutes(hours["end"], "candidate_hours.end"),
    )


@operation(
    "POST",
    "/scheduling-links/<int:link_id>/revoke",
    summary="Withdraw a self-scheduling link",
    tag="Scheduling",
    roles=RECRUITERS,
    response=s.SchedulingLinkSchema,
)
def revoke_scheduling_link(link_id: int):
    """The link stops working at once (a used link stays as it is)."""
    from webapp.services import candidate_links
    from webapp.services.link_details import open_details

    link = candidate_links.revoke(db(), actor(), link_id)
    return _scheduling_link(link, details=open_details(deps.sealer(), link))
