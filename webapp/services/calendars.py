"""A linked calendar account's calendars, read from the aggregator whenever they are needed:
which one interviews are written to, which count as busy, and the account's time zone. Serves
links of either connect mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import Calendar
from models import LinkStatus, ProfileLink
from webapp.security import TokenCipher
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.connect import link_of
from webapp.services.credentials import call_broker
from webapp.services.errors import Invalid, NotFound, ServiceError
from webapp.services.zones import known_zone


def calendars_of(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink
) -> tuple[Calendar, ...]:
    """The calendars the link can see right now, read from the aggregator."""
    return call_broker(
        session,
        broker,
        cipher,
        link,
        lambda creds, on_refresh: broker.calendars(creds, on_refresh=on_refresh),
    )


def choose_calendars(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    target_calendar_id: str,
    conflict_calendar_ids: Sequence[str],
) -> ProfileLink:
    """Pick where interviews are written (writable only) and which calendars count as busy."""
    link = link_of(session, actor.user_id)
    if link is None or link.status is LinkStatus.DISCONNECTED:
        raise NotFound("You have no connected calendar.")
    calendars = {c.calendar_id: c for c in calendars_of(session, broker, cipher, link)}
    target = calendars.get(target_calendar_id or "")
    if target is None or target.deleted:
        raise Invalid("Choose one of your calendars.", field="target_calendar_id")
    if target.readonly:
        raise Invalid(
            f"“{target.name}” is read-only, so interviews cannot be written to it. "
            "Choose a writable calendar.",
            field="target_calendar_id",
        )
    unknown = [c for c in conflict_calendar_ids if c not in calendars]
    if unknown:
        raise Invalid("Choose busy calendars from the list.", field="conflict_calendar_ids")
    link.target_calendar_id = target.calendar_id
    link.conflict_calendar_ids = sorted(set(conflict_calendar_ids) | {target.calendar_id})
    record(
        session,
        actor,
        "calendar.settings_changed",
        target_type="profile_link",
        target_id=link.id,
        detail={"busy_calendars": len(link.conflict_calendar_ids)},
    )
    session.commit()
    return link


def calendar_zone(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, link: ProfileLink | None
) -> str | None:
    """The default time zone the linked calendar account reports (one userinfo call), as a
    proposal for a person who has set none; None when there is no usable answer."""
    if broker is None or link is None or link.status is not LinkStatus.ACTIVE:
        return None
    try:
        info = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.userinfo(creds, on_refresh=on_refresh),
        )
    except ServiceError:
        return None
    return known_zone(info.zoneinfo)
