"""Video accounts: link Zoom or Webex through the aggregator's conferencing-service
authorization, and list the conferencing profiles a user can pick for their interviews."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import ConferencingProfile
from models import LinkStatus
from webapp.security import TokenCipher
from webapp.services import Actor, Invalid, NotFound, ServiceError
from webapp.services.audit import record
from webapp.services.connect import call_broker, link_of

#: Conferencing services a person can link (aggregator ``provider_name`` → label).
PROVIDERS: dict[str, str] = {"zoom": "Zoom", "cisco_webex": "Webex", "go_to": "GoTo Meeting"}

#: How an event's conferencing ``provider_name`` is shown (linked accounts and calendar-integrated).
PROVIDER_LABELS: dict[str, str] = {**PROVIDERS, "google_meet": "Google Meet",
                                   "ms_teams": "Microsoft Teams"}


def provider_label(provider_name: str | None) -> str | None:
    """A person-readable name for a conferencing provider (unknown names are shown as given)."""
    return PROVIDER_LABELS.get(provider_name, provider_name) if provider_name else None


def _active_link(session: Session, actor: Actor):
    link = link_of(session, actor.user_id)
    if link is None or link.status is not LinkStatus.ACTIVE:
        raise NotFound("Connect your calendar first; video accounts are linked to it.")
    return link


def conferencing_profiles(session: Session, broker: CalendarBroker | None, cipher: TokenCipher,
                          actor: Actor) -> tuple[tuple[ConferencingProfile, ...], str | None]:
    """The user's linked video accounts, read from the aggregator (never stored)."""
    if broker is None:
        return (), None
    try:
        link = _active_link(session, actor)
        info = call_broker(session, broker, cipher, link,
                           lambda creds, on_refresh: broker.userinfo(creds, on_refresh=on_refresh))
    except ServiceError as exc:
        return (), exc.message
    return tuple(p for p in info.conferencing_profiles if p.connected), None


def authorization_url(session: Session, broker: CalendarBroker, cipher: TokenCipher, actor: Actor,
                      *, provider: str | None, redirect_uri: str) -> str:
    """Where to send the user to link a video account."""
    if provider not in PROVIDERS:
        raise Invalid("Choose Zoom or Webex.", field="provider")
    link = _active_link(session, actor)
    url = call_broker(session, broker, cipher, link,
                      lambda creds, on_refresh: broker.conferencing_authorization_url(
                          creds, redirect_uri, provider_name=provider, on_refresh=on_refresh))
    record(session, actor, "video.connect_started", detail={"provider": provider})
    session.commit()
    return url
