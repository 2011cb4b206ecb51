"""Me, my calendar links and their calendars."""

from __future__ import annotations

from flask import g

from models import LinkStatus, Role
from webapp import deps
from webapp.api.core import actor, db, operation, required_broker
from webapp.api.errors import ApiError
from webapp.api.pagination import by_key
from webapp.api.schemas import me as s
from webapp.api.schemas.common import PageQuerySchema
from webapp.security import ANY_USER
from webapp.services import accounts, calendars, connect
from webapp.services.zones import known_zone

CALENDAR_USERS = (Role.RECRUITER, Role.COORDINATOR)


@operation(
    "GET", "/me", summary="Who the token acts as", tag="Me", roles=ANY_USER, response=s.MeSchema
)
def me():
    """The token's owner, their current role and organisation, and the token used."""
    return _me()


def _me() -> dict:
    user = g.api_user
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "timezone": user.timezone,
        "effective_timezone": known_zone(user.timezone)
        or user.organisation.timezone
        or "Europe/London",
        "organisation": user.organisation,
        "token": g.api_token,
    }


@operation(
    "PATCH",
    "/me",
    summary="Set my time zone",
    tag="Me",
    roles=ANY_USER,
    body=s.MeUpdateSchema,
    response=s.MeSchema,
    errors=(422,),
)
def update_me(body):
    """Set my own time zone (an IANA name): my working hours are in it. The change is audited;
    a name that is not an IANA zone is refused and nothing changes."""
    accounts.set_timezone(db(), actor(), actor().user_id, body["timezone"])
    db().refresh(g.api_user)
    return _me()


def _own_link(link_id: int):
    link = connect.link_of(db(), actor().user_id)
    if link is None or link.id != link_id:
        raise ApiError(404, "You have no calendar link with this id.")
    return link


@operation(
    "GET",
    "/calendar-links",
    summary="My calendar links",
    tag="Calendar",
    roles=CALENDAR_USERS,
    query=PageQuerySchema,
    response=s.CalendarLinkPageSchema,
    errors=(422,),
)
def calendar_links(query):
    """The calendar account linked to my profile (Business or Enterprise Connect), if any."""
    link = connect.link_of(db(), actor().user_id)
    return by_key(
        "calendar-links",
        actor(),
        [link] if link else [],
        lambda found: found.id,
        limit=query["limit"],
        cursor=query["cursor"],
    )


@operation(
    "GET",
    "/calendar-links/<int:link_id>/calendars",
    summary="Calendars a link can see",
    tag="Calendar",
    roles=CALENDAR_USERS,
    response=s.CalendarListSchema,
    errors=(404, 409, 503),
)
def link_calendars(link_id: int):
    """The calendars my linked account can see right now, read from the calendar service."""
    link = _own_link(link_id)
    if link.status is LinkStatus.DISCONNECTED:
        raise ApiError(409, "This calendar link is disconnected.", code="disconnected")
    return {"items": calendars.calendars_of(db(), required_broker(), deps.cipher(), link)}


@operation(
    "DELETE",
    "/calendar-links/<int:link_id>",
    summary="Disconnect my calendar",
    tag="Calendar",
    roles=CALENDAR_USERS,
    response=s.DisconnectReportSchema,
    errors=(403, 404),
)
def disconnect_link(link_id: int):
    """Revoke the link at the calendar service and delete its tokens (its event ids are kept)."""
    link = _own_link(link_id)
    if link.status is LinkStatus.DISCONNECTED:
        raise ApiError(404, "This calendar link is already disconnected.")
    return connect.disconnect(db(), deps.broker(), deps.cipher(), actor())
