"""Video for interviews: link Zoom, GoTo or Microsoft Teams through the aggregator's
conferencing-service authorization, use the calendar's own Google Meet or Teams, or, for any
other tool (Webex…), the person's own meeting-room link, sent as explicit conferencing."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from broker.types import CONFERENCING_PROVIDERS, ConferencingProfile
from models import LinkStatus
from webapp.security import TokenCipher
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.connect import link_of
from webapp.services.credentials import call_broker
from webapp.services.errors import Invalid, NotFound, ServiceError

_LABELS = {"zoom": "Zoom", "go_to": "GoTo Meeting", "ms_teams": "Microsoft Teams"}
#: Conferencing services a person can link (aggregator ``provider_name`` → label): exactly the
#: ones the aggregator supports.
PROVIDERS: dict[str, str] = {name: _LABELS[name] for name in CONFERENCING_PROVIDERS}

#: How an event's conferencing ``provider_name`` is shown (linked accounts and calendar-integrated).
PROVIDER_LABELS: dict[str, str] = {**PROVIDERS, "google_meet": "Google Meet"}

#: ``video_profile`` value meaning "the person's own meeting-room link".
OWN_ROOM = "explicit"
MAX_ROOM_URL = 500
MAX_ROOM_NAME = 40
#: Offered as suggestions for the tool's name; any other name is fine.
ROOM_TOOLS = (
    "Webex",
    "Whereby",
    "Jitsi Meet",
    "BlueJeans",
    "Google Meet",
    "Zoom",
    "Microsoft Teams",
    "GoTo Meeting",
)
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ROOM_NAME = re.compile(r"^[\w][\w .&()'+-]*$")


def provider_label(provider_name: str | None) -> str | None:
    """A person-readable name for a conferencing provider (unknown names are shown as given)."""
    return PROVIDER_LABELS.get(provider_name, provider_name) if provider_name else None


def clean_room_url(value: str | None) -> str:
    """The person's meeting-room link, or Invalid: one https address on a public-looking host,
    ASCII only, no spaces, control characters or credentials, at most MAX_ROOM_URL long."""
    url = (value or "").strip()
    problem = (
        "Enter your meeting-room link as one https:// address (for example "
        "https://yourcompany.webex.com/meet/you)."
    )
    if not url:
        raise Invalid(problem, field="video_room_url")
    if len(url) > MAX_ROOM_URL:
        raise Invalid(
            f"The meeting-room link may be at most {MAX_ROOM_URL} characters.",
            field="video_room_url",
        )
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in url):
        raise Invalid(
            "The meeting-room link may not contain spaces, control characters or "
            "non-ASCII characters.",
            field="video_room_url",
        )
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    host = parts.hostname or ""
    labels = host.split(".")
    if (
        parts.scheme.lower() != "https"
        or "@" in parts.netloc
        or not port_ok
        or len(labels) < 2
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise Invalid(problem, field="video_room_url")
    return url


def clean_room_name(value: str | None) -> str:
    """The tool's name shown with the link (e.g. Webex): 1–40 letters, digits, spaces and
    simple punctuation."""
    name = unicodedata.normalize("NFC", (value or "").strip())
    if (
        not name
        or len(name) > MAX_ROOM_NAME
        or not _ROOM_NAME.match(name)
        or any(unicodedata.category(ch)[0] == "C" for ch in name)
    ):
        raise Invalid(
            f"Name the tool of your meeting room (for example Webex), up to "
            f"{MAX_ROOM_NAME} letters, digits or spaces.",
            field="video_room_name",
        )
    return name


def _active_link(session: Session, actor: Actor):
    link = link_of(session, actor.user_id)
    if link is None or link.status is not LinkStatus.ACTIVE:
        raise NotFound("Connect your calendar first; video accounts are linked to it.")
    return link


def conferencing_profiles(
    session: Session, broker: CalendarBroker | None, cipher: TokenCipher, actor: Actor
) -> tuple[tuple[ConferencingProfile, ...], str | None]:
    """The user's linked video accounts, read from the aggregator (never stored)."""
    if broker is None:
        return (), None
    try:
        link = _active_link(session, actor)
        info = call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.userinfo(creds, on_refresh=on_refresh),
        )
    except ServiceError as exc:
        return (), exc.message
    return tuple(
        p for p in info.conferencing_profiles if p.connected and p.provider_name in PROVIDERS
    ), None


def authorization_url(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    provider: str | None,
    redirect_uri: str,
) -> str:
    """Where to send the user to link a video account."""
    if provider not in PROVIDERS:
        raise Invalid(
            "Choose Zoom, GoTo Meeting or Microsoft Teams. For Webex or another tool, "
            "save your own meeting-room link instead.",
            field="provider",
        )
    link = _active_link(session, actor)
    url = call_broker(
        session,
        broker,
        cipher,
        link,
        lambda creds, on_refresh: broker.conferencing_authorization_url(
            creds, redirect_uri, provider_name=provider, on_refresh=on_refresh
        ),
    )
    record(session, actor, "video.connect_started", detail={"provider": provider})
    session.commit()
    return url
