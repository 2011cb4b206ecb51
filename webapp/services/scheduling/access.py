"""Who may see and change which interview, and whose calendar holds it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import cast, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session

from models import (
    Interview,
    LinkStatus,
    ProfileLink,
    Role,
    User,
)
from webapp.services import Actor
from webapp.services.availability import model, roster
from webapp.services.errors import Forbidden, Invalid, NotFound, ReconnectNeeded


def changeable(session: Session, actor: Actor):
    """A filter for the interviews the actor may change (reschedule, cancel): the ones they
    scheduled or host, and for a coordinator the ones of their assigned managers."""
    base = Interview.organisation_id == actor.organisation_id
    if actor.role is Role.COORDINATOR:
        managers = roster.assigned_manager_ids(session, actor.user_id)
        return base & or_(
            Interview.created_by_id == actor.user_id,
            Interview.on_behalf_of_id.in_(managers or {-1}),
        )
    if actor.role is Role.RECRUITER:
        own_links = select(ProfileLink.id).where(ProfileLink.user_id == actor.user_id)
        return base & or_(
            Interview.created_by_id == actor.user_id,
            Interview.on_behalf_of_id == actor.user_id,
            Interview.host_link_id.in_(own_links),
        )
    raise Forbidden("Your role cannot see interviews.")


def on_panel(session: Session, link_ids: Sequence[int]):
    """Interviews whose panel includes one of ``link_ids`` (the panel is a JSON list of ids)."""
    if not link_ids:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return or_(*(cast(Interview.panel_link_ids, JSONB).contains([i]) for i in link_ids))
    members = func.json_each(Interview.panel_link_ids).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value.in_(link_ids)))


def visible(session: Session, actor: Actor):
    """A filter for the interviews the actor may see: those they may change and, for a
    recruiter, those where they sit on the panel."""
    theirs = changeable(session, actor)
    if actor.role is not Role.RECRUITER:
        return theirs
    own = list(
        session.scalars(
            select(ProfileLink.id).where(
                ProfileLink.organisation_id == actor.organisation_id,
                ProfileLink.user_id == actor.user_id,
            )
        )
    )
    return or_(
        theirs, (Interview.organisation_id == actor.organisation_id) & on_panel(session, own)
    )


def interview_for(session: Session, actor: Actor, uid: str, *, to_change: bool = True) -> Interview:
    """The interview ``uid`` if the actor may change it (or, with ``to_change=False``, see it)."""
    if not uid or len(uid) > 32:
        raise NotFound("There is no interview with this id that you can see.")
    rule = changeable(session, actor) if to_change else visible(session, actor)
    found = session.scalar(select(Interview).where(Interview.uid == uid, rule))
    if found is None:
        raise NotFound("There is no interview with this id that you can see.")
    return found


def may_change(session: Session, actor: Actor, interview: Interview) -> bool:
    return (
        session.scalar(
            select(Interview.id).where(Interview.id == interview.id, changeable(session, actor))
        )
        is not None
    )


def host_link_for(
    session: Session, actor: Actor, on_behalf_of_id: int | None
) -> tuple[ProfileLink, User | None]:
    """Whose calendar holds the interview: the recruiter's own, or the assigned manager's."""
    from webapp.services.connect import link_of

    if actor.role is Role.COORDINATOR:
        if on_behalf_of_id is None:
            raise Invalid("Choose the hiring manager you are scheduling for.", field="on_behalf_of")
        if on_behalf_of_id not in roster.assigned_manager_ids(session, actor.user_id):
            raise Forbidden("You can only schedule for hiring managers assigned to you.")
        manager = session.get_one(User, on_behalf_of_id)
        link = link_of(session, on_behalf_of_id)
        if link is None or link.status is not LinkStatus.ACTIVE or not link.target_calendar_id:
            raise ReconnectNeeded(
                f"{manager.name}'s calendar is not connected, so interviews "
                "cannot be written to it."
            )
        return link, manager
    if actor.role is not Role.RECRUITER:
        raise Forbidden("Your role cannot schedule interviews.")
    link = link_of(session, actor.user_id)
    if link is None or link.status is not LinkStatus.ACTIVE or not link.target_calendar_id:
        raise ReconnectNeeded(
            "Connect your calendar (My profile → Calendar) before scheduling: "
            "interviews are written to it."
        )
    return link, None


def links_by_id(session: Session, ids: Iterable[int]) -> dict[int, ProfileLink]:
    ids = set(ids)
    if not ids:
        return {}
    return {
        link.id: link
        for link in session.scalars(select(ProfileLink).where(ProfileLink.id.in_(ids)))
    }


def panel_members(
    session: Session, interview: Interview, links: dict[int, ProfileLink]
) -> list[model.PanelMember]:
    from models import Organisation

    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({link.user_id for link in links.values()} or {-1}))
        )
    }
    org = session.get_one(Organisation, interview.organisation_id)
    hours = roster.hours_for(session, list(users.values()), org)
    return [
        model.PanelMember(links[i], users[links[i].user_id], hours[links[i].user_id])
        for i in interview.panel_link_ids
        if i in links and links[i].user_id in users
    ]
