"""A linked calendar profile disconnecting and coming back: the push notifications that say so
(checked to be for the link they arrive for), the block they put on the link, and the checks
against the aggregator that lift it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.port import CalendarBroker
from models import Attention, LinkStatus, ProfileLink, utcnow
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import JobQueue
from webapp.services.audit import record
from webapp.services.credentials import (
    attention_for,
    call_broker,
    fresh_credentials,
    mark_needs_attention,
)
from webapp.services.errors import AggregatorTrouble, ReconnectNeeded, ServiceError

# ---------------------------------------------------------------------------------------------
# Push notifications about a link


def not_from_its_channel(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link: ProfileLink,
    channel_id: str | None,
    profile_id: str | None = None,
) -> str | None:
    """Why a correctly signed notification that arrived at ``link``'s URL is not for it, or None
    when it is. The signature only proves the aggregator sent it, to somebody: a body captured
    from one's own channel can be replayed to any link's URL. So it must name the channel
    opened for this link, and a profile it names must be the link's. For a link from before
    channel ids were stored, the channel is confirmed once in the account's own channel list
    at the aggregator (another account's channel is never there) and stored."""
    if not channel_id:
        return "no channel"
    if (
        link.channel_id is None
        and broker is not None
        and link.has_tokens
        and link.status is LinkStatus.ACTIVE
    ):
        try:
            channels = call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.channels(creds, on_refresh=on_refresh),
            )
        except ServiceError:
            return "channel unconfirmed"
        if any(c.channel_id == channel_id for c in channels):
            link.channel_id = channel_id
            session.commit()
    if link.channel_id != channel_id:
        return "another channel"
    if profile_id and link.profile_id and profile_id != link.profile_id:
        return "another profile"
    return None


def ignore_notification(
    session: Session,
    link: ProfileLink,
    reason: str,
    *,
    notification_type: str,
    channel_id: str | None,
    first_time: Callable[[str], bool],
) -> str:
    """Audit a notification that was not for ``link`` (once per link, channel, type and reason:
    replaying it a thousand times writes one entry) and change nothing."""
    if first_time(f"{link.id}/{channel_id}/{notification_type}/{reason}"):
        record(
            session,
            None,
            "webhook.foreign_notification",
            outcome="denied",
            organisation_id=link.organisation_id,
            target_type="profile_link",
            target_id=link.id,
            detail={
                "type": notification_type[:40],
                "reason": reason,
                "channel_id": (channel_id or "")[:64] or None,
            },
        )
        session.commit()
    return f"ignored ({reason})"


def handle_push(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    link_id: int,
    notification_type: str,
    *,
    channel_id: str | None,
    profile_id: str | None = None,
    first_time: Callable[[str], bool],
    jobs: JobQueue,
) -> str:
    """Apply a verified push notification for a link; idempotent. Returns what was done:
    for ``profile_disconnected`` naming no profile, "check" means the ``calendar.check_profile``
    job is queued to run :func:`check_profile` (which of the account's profiles it concerns,
    the aggregator says).

    (``change`` notifications never get here: the webhook queues the scheduling job directly,
    which makes the same channel check.)"""
    link = session.get(ProfileLink, link_id)
    if link is None or link.status is LinkStatus.DISCONNECTED:
        return "ignored"
    if notification_type != "profile_disconnected":
        return "acknowledged"  # verification and the like change nothing
    reason = not_from_its_channel(session, broker, cipher, link, channel_id, profile_id)
    if reason is not None:
        return ignore_notification(
            session,
            link,
            reason,
            notification_type=notification_type,
            channel_id=channel_id,
            first_time=first_time,
        )
    if link.status is LinkStatus.NEEDS_ATTENTION:
        return "already marked"
    if not profile_id:  # another profile of the same account must leave this link alone
        jobs.enqueue("calendar.check_profile", link.id)
        return "check"
    mark_needs_attention(
        session, link, "profile_disconnected notification", Attention.PROFILE_DISCONNECTED
    )
    session.commit()
    return "marked"


# ---------------------------------------------------------------------------------------------
# A disconnected profile coming back
#
# When the provider drops a profile's credentials, the aggregator emails the person a link to
# sign in again (also ``profile_relink_url``); once they do, syncing resumes, ``change``
# notifications come again and ``profile_connected`` is true in userinfo/profiles. So a link
# blocked for that reason is checked against the aggregator, on the next ``change`` for its
# channel and periodically, and unblocked when its own profile is connected again.


@dataclass(frozen=True)
class ProfileCheck:
    #: connected (was fine), recovered, disconnected, refused (our authorization is gone),
    #: unreachable (try later) or skipped (nothing the aggregator could tell us).
    outcome: str
    #: Where the person signs in again at the aggregator, while disconnected.
    relink_url: str | None = None


def recoverable(link: ProfileLink) -> bool:
    """Whether the aggregator alone can bring the link back (a disconnected profile)."""
    return (
        link.status is LinkStatus.NEEDS_ATTENTION
        and link.has_tokens
        and link.attention is not Attention.RECONNECT
    )


def check_profile(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ProfileLink
) -> ProfileCheck:
    """Ask the aggregator whether the link's own calendar profile is connected, and block or
    unblock the link accordingly (audited). Only that profile counts: another profile of the
    same account being disconnected leaves this link alone."""
    if (
        link.status is LinkStatus.DISCONNECTED
        or not link.has_tokens
        or (link.status is LinkStatus.NEEDS_ATTENTION and not recoverable(link))
    ):
        return ProfileCheck("skipped")
    try:
        creds, persist = fresh_credentials(session, broker, cipher, link)
        profiles = broker.profiles(creds, on_refresh=persist)
    except ReconnectNeeded:  # refresh refused: marked by fresh_credentials
        return ProfileCheck("refused")
    except DecryptionFailed:
        return ProfileCheck("skipped")
    except broker_errors.NeedsReauth as exc:
        mark_needs_attention(session, link, type(exc).__name__, attention_for(exc))
        session.commit()
        return ProfileCheck("refused" if link.attention is Attention.RECONNECT else "disconnected")
    except (broker_errors.BrokerError, AggregatorTrouble):
        return ProfileCheck("unreachable")
    own = (
        [p for p in profiles if p.profile_id == link.profile_id]
        if link.profile_id
        else list(profiles)
    )
    if not own:  # the profile left the account (revoked there): only linking again helps
        mark_needs_attention(session, link, "profile no longer in the account")
        session.commit()
        return ProfileCheck("refused")
    down = [p for p in own if not p.connected]
    if down:
        mark_needs_attention(
            session, link, "profile not connected at the aggregator", Attention.PROFILE_DISCONNECTED
        )
        session.commit()
        return ProfileCheck("disconnected", down[0].relink_url)
    if link.status is LinkStatus.ACTIVE:
        return ProfileCheck("connected")
    # Conditional, so a check running in another worker at the same time audits nothing twice.
    back = cast(
        CursorResult,
        session.execute(
            update(ProfileLink)
            .where(ProfileLink.id == link.id, ProfileLink.status == LinkStatus.NEEDS_ATTENTION)
            .values(status=LinkStatus.ACTIVE, attention=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if back:
        record(
            session,
            None,
            "calendar.reconnected",
            organisation_id=link.organisation_id,
            target_type=link.__tablename__,
            target_id=link.id,
            target_label=link.account_email,
            detail={"via": "aggregator", "mode": link.mode.value},
        )
    session.commit()
    session.refresh(link)
    return ProfileCheck("recovered" if back else "connected")


def recover_link(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link_id: int
) -> str:
    """Before following a ``change`` for a blocked link: changes come again once the profile is
    back, so ask whether it is. Returns the check's outcome ("active" if it was never blocked)."""
    link = session.get(ProfileLink, link_id)
    if link is None or link.status is not LinkStatus.NEEDS_ATTENTION:
        return "active" if link is not None and link.status is LinkStatus.ACTIVE else "ignored"
    return check_profile(session, broker, cipher, link).outcome


#: Links checked per run of the periodic check (the rest wait for the next run).
RECOVERY_BATCH = 200


def recover_disconnected(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, *, limit: int = RECOVERY_BATCH
) -> dict[str, int]:
    """The periodic check: every link blocked by a disconnected profile (not by a refused
    authorization) asks the aggregator once; stops early when the aggregator is busy."""
    counts: dict[str, int] = defaultdict(int)
    ids = list(
        session.scalars(
            select(ProfileLink.id)
            .where(
                ProfileLink.status == LinkStatus.NEEDS_ATTENTION,
                ProfileLink.refresh_token.is_not(None),
                (ProfileLink.attention.is_(None)) | (ProfileLink.attention != Attention.RECONNECT),
            )
            .order_by(func.random())
            .limit(limit)
        )
    )  # a fair share of a long list each run
    for link_id in ids:
        link = session.get(ProfileLink, link_id)
        if link is None:
            continue  # deleted meanwhile
        outcome = check_profile(session, broker, cipher, link).outcome
        counts[outcome] += 1
        if outcome == "unreachable":
            break  # busy or down: the next run goes on
    return dict(counts)
