"""Who may be on a panel: the people and rooms an actor may ask about, with their working
hours."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session, aliased

from models import (
    CoordinatorAssignment,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    Organisation,
    ProfileLink,
    Role,
    SchedulingPreference,
    ServiceAccountLink,
    User,
)
from webapp.services import Actor
from webapp.services.availability.model import (
    DEFAULT_END,
    DEFAULT_START,
    DEFAULT_WEEKDAYS,
    MAX_PANEL,
    Hours,
    PanelMember,
    Room,
)
from webapp.services.errors import Forbidden, Invalid
from webapp.services.zones import known_zone


def assigned_manager_ids(session: Session, coordinator_id: int | None) -> set[int]:
    return set(
        session.scalars(
            select(CoordinatorAssignment.manager_id).where(
                CoordinatorAssignment.coordinator_id == coordinator_id
            )
        )
    )


_Choices = Select[ProfileLink, User]


@functools.cache
def _choices_statements() -> tuple[_Choices, _Choices]:
    """The choices' query, built once per process (building it, and its aliased owner link,
    cost more than running it): the organisation's, and the one narrowed to the people behind
    some links (``among``). Only bound values change between calls."""
    owner = aliased(ProfileLink)
    everyone = (
        select(ProfileLink, User)
        .join(User, User.id == ProfileLink.user_id)
        .outerjoin(owner, owner.id == ProfileLink.delegated_from_id)
        .where(
            ProfileLink.organisation_id == bindparam("organisation_id"),
            ProfileLink.status == LinkStatus.ACTIVE,
            User.active.is_(True),
            # A colleague's delegated calendar: only while its owner's link can read it.
            or_(
                ProfileLink.delegated_calendar_id.is_(None),
                and_(owner.status == LinkStatus.ACTIVE, owner.sub == ProfileLink.account_id),
            ),
        )
        # Someone's own calendar before a delegated one of theirs.
        .order_by(User.name, ProfileLink.delegated_calendar_id.is_not(None), ProfileLink.id)
    )
    # Every link of the people behind these links: one each is chosen.
    people = select(ProfileLink.user_id).where(
        ProfileLink.id.in_(bindparam("among", expanding=True))
    )
    return everyone, everyone.where(ProfileLink.user_id.in_(people))


def panel_choices(
    session: Session, actor: Actor, *, among: Sequence[int] | None = None
) -> list[tuple[ProfileLink, User]]:
    """People the actor may put on a panel: anyone in the organisation with a usable calendar
    (accounts and directory people alike). A coordinator schedules for the hiring managers
    assigned to them, and may put any interviewer of the organisation on such a panel (free/busy
    only, like the manager); a coordinator with no assignment has nobody to choose.
    ``among``: only the choices that are these links (the same rules, reading only their
    people's links: a panel is checked without reading the whole organisation)."""
    if actor.role is Role.COORDINATOR:
        if not assigned_manager_ids(session, actor.user_id):
            return []
    elif actor.role is not Role.RECRUITER:
        raise Forbidden("Your role cannot schedule interviews.")
    everyone, narrowed = _choices_statements()
    params: dict[str, object] = {"organisation_id": actor.organisation_id}
    if among is not None:
        params["among"] = sorted(set(among))
    seen: set[int] = set()
    out = []
    for link, user in session.execute(everyone if among is None else narrowed, params):
        if user.id not in seen:  # one calendar per person
            seen.add(user.id)
            out.append((link, user))
    if among is not None:
        wanted = set(among)
        return [(link, user) for link, user in out if link.id in wanted]
    return out


@functools.cache
def _preferences_statement() -> Select[SchedulingPreference]:
    """These people's own working hours and the organisation's default (not every preference
    of a large organisation), built once: only the values are bound per call."""
    return select(SchedulingPreference).where(
        SchedulingPreference.organisation_id == bindparam("organisation_id"),
        or_(
            SchedulingPreference.user_id.is_(None),
            SchedulingPreference.user_id.in_(bindparam("user_ids", expanding=True)),
        ),
    )


def hours_for(
    session: Session, users: Sequence[User], organisation: Organisation
) -> dict[int, Hours]:
    """Working hours per user: their own override, else the organisation default, else 9–17:30;
    always in the user's own zone (the organisation's until they set one)."""
    prefs = {
        p.user_id: p
        for p in session.scalars(
            _preferences_statement(),
            {"organisation_id": organisation.id, "user_ids": sorted({u.id for u in users})},
        )
    }
    default = prefs.get(None)
    out = {}
    for user in users:
        pref = prefs.get(user.id) or default
        own = known_zone(user.timezone)
        tzid = own or organisation.timezone or "Europe/London"
        if pref is None:
            out[user.id] = Hours(
                DEFAULT_START, DEFAULT_END, DEFAULT_WEEKDAYS, tzid, own is not None
            )
        else:
            out[user.id] = Hours(
                pref.start_minute, pref.end_minute, pref.weekdays, tzid, own is not None
            )
    return out


def resolve_panel(
    session: Session,
    actor: Actor,
    link_ids: Sequence[int],
    *,
    on_behalf_of_id: int | None = None,
    choices: Sequence[tuple[ProfileLink, User]] | None = None,
    allow_empty: bool = False,
) -> list[PanelMember]:
    """The panel as PanelMembers, refusing anyone the actor may not schedule. A coordinator's
    panel is always for one of the hiring managers assigned to them (``on_behalf_of_id``).
    ``choices``: ``panel_choices(session, actor)`` when the caller has already read it;
    ``allow_empty``: nobody named is fine (the panel comes from pools)."""
    if actor.role is Role.COORDINATOR:
        if on_behalf_of_id is None:
            raise Invalid("Choose the hiring manager you are scheduling for.", field="on_behalf_of")
        if on_behalf_of_id not in assigned_manager_ids(session, actor.user_id):
            raise Forbidden("You can only schedule for hiring managers assigned to you.")
    ids = list(dict.fromkeys(link_ids))
    if not ids:
        if allow_empty:
            if choices is None:
                panel_choices(session, actor)  # the role check
            return []
        raise Invalid("Choose at least one person for the panel.", field="panel")
    if len(ids) > MAX_PANEL:
        raise Invalid(f"A panel has at most {MAX_PANEL} people.", field="panel")
    if choices is None:
        choices = panel_choices(session, actor)
    allowed = {link.id: (link, user) for link, user in choices}
    unknown = [i for i in ids if i not in allowed]
    if unknown:
        blocked = colleagues_needing_attention(session, actor, unknown)
        if blocked:
            raise Invalid(
                f"{', '.join(blocked)} cannot be on a panel now: the calendar shared through a "
                "colleague's account needs attention (that colleague must add it again from "
                "their calendar page). Choose the panel again without them.",
                field="panel",
            )
        raise Invalid("Choose the panel from the people listed.", field="panel")
    org = session.get_one(Organisation, actor.organisation_id)
    hours = hours_for(session, [allowed[i][1] for i in ids], org)
    return [PanelMember(allowed[i][0], allowed[i][1], hours[allowed[i][1].id]) for i in ids]


def colleagues_needing_attention(
    session: Session, actor: Actor, link_ids: Sequence[int] | None = None
) -> list[str]:
    """Names of the actor's organisation's people whose delegated calendar (among ``link_ids``,
    or any) needs attention, a withdrawn delegation most often: the schedule page says why they
    are not offered, and a panel naming them is refused by name, not with a bare refusal."""
    statement = (
        select(User.name)
        .join(ProfileLink, ProfileLink.user_id == User.id)
        .where(
            ProfileLink.organisation_id == actor.organisation_id,
            ProfileLink.delegated_calendar_id.is_not(None),
            ProfileLink.status == LinkStatus.NEEDS_ATTENTION,
            User.active.is_(True),
        )
        .order_by(User.name)
        .distinct()
    )
    if link_ids is not None:
        statement = statement.where(ProfileLink.id.in_(list(link_ids)))
    else:  # not someone offered anyway, through a calendar of their own
        offered = select(ProfileLink.user_id).where(
            ProfileLink.organisation_id == actor.organisation_id,
            ProfileLink.status == LinkStatus.ACTIVE,
        )
        statement = statement.where(User.id.not_in(offered))
    return list(session.scalars(statement))


def room_choices(session: Session, organisation_id: int | None) -> list[Room]:
    """Rooms the organisation linked for scheduling, through a domain that is still connected
    (from the database: no aggregator call)."""
    rows = session.execute(
        select(MailboxRequest.email, MailboxRequest.display_name, MailboxRequest.resource_sub)
        .join(ServiceAccountLink, ServiceAccountLink.id == MailboxRequest.service_account_link_id)
        .where(
            MailboxRequest.organisation_id == organisation_id,
            MailboxRequest.kind == MailboxKind.ROOM,
            MailboxRequest.status == MailboxStatus.LINKED,
            MailboxRequest.resource_sub.is_not(None),
            ServiceAccountLink.status == LinkStatus.ACTIVE,
        )
    )
    rooms = {email: Room(email, name or email, sub) for email, name, sub in rows if sub is not None}
    return sorted(rooms.values(), key=lambda r: (r.name.lower(), r.email))


def resolve_room(session: Session, actor: Actor, email: str | None) -> Room | None:
    """The chosen room, refusing anything but a room the organisation linked."""
    if not email:
        return None
    found = {r.email: r for r in room_choices(session, actor.organisation_id)}
    room = found.get(email.strip().lower())
    if room is None:
        raise Invalid("Choose one of the listed rooms.", field="room")
    return room
