"""Personal API tokens: create (shown once), list, revoke, and recognise them on API requests.

A token acts as its owner with the owner's role *at the time of each request*; a deactivated owner,
an expired or a revoked token is refused. Only the SHA-256 of a token is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ApiToken, User, utcnow
from webapp import security
from webapp.services import Actor, printable, rowcount
from webapp.services.audit import record
from webapp.services.errors import Invalid, NotFound, TokenRejected

log = logging.getLogger("webapp.services.api_tokens")

PREFIX = "rdv_"
LIFETIMES = (30, 90, 365)
DEFAULT_DAYS = 90
MAX_ACTIVE_TOKENS = 20
#: last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Longest string worth hashing: "rdv_" + 43 characters of token_urlsafe(32), with slack.
_MAX_TOKEN_LENGTH = 128


def _actor_for(user: User, *, ip_address: str | None, request_id: str | None) -> Actor:
    return Actor(user.id, user.email, user.organisation_id, user.role, ip_address, request_id)


def create_token(
    session: Session, actor: Actor, *, name: str, days: int | str = DEFAULT_DAYS
) -> tuple[ApiToken, str]:
    """Create a token for the actor; returns it with the plaintext (shown once, never stored)."""
    if actor.user_id is None:
        raise Invalid("Log in to create an API token.")
    name = (name or "").strip()
    if not name or len(name) > 100 or not printable(name):
        raise Invalid(
            "Name the token (at most 100 characters), e.g. “Phone” or “ATS sync”.", field="name"
        )
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = -1
    if days not in LIFETIMES:
        raise Invalid("Choose how long the token works: 30, 90 or 365 days.", field="days")
    now = utcnow()
    active = (
        session.scalar(
            select(func.count(ApiToken.id)).where(
                ApiToken.user_id == actor.user_id,
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > now,
            )
        )
        or 0
    )
    if active >= MAX_ACTIVE_TOKENS:
        raise Invalid(
            f"You already have {MAX_ACTIVE_TOKENS} working tokens. Revoke one you no "
            "longer use first."
        )
    plaintext = PREFIX + security.new_token()
    token = ApiToken(
        organisation_id=actor.organisation_id,
        user_id=actor.user_id,
        name=name,
        token_hash=security.token_hash(plaintext),
        prefix=plaintext[:8],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    record(
        session,
        actor,
        "api_token.created",
        target_type="api_token",
        target_id=token.id,
        target_label=actor.label,
        detail={"name": name, "days": days, "prefix": token.prefix},
    )
    session.commit()
    return token, plaintext


def list_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    """The actor's own tokens, newest first (revoked and expired ones included)."""
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.id.desc())
        )
    )


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke one of the actor's own tokens at once; revoking twice changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != actor.user_id:
        raise NotFound("You have no API token with this id.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(
            session,
            actor,
            "api_token.revoked",
            target_type="api_token",
            target_id=token.id,
            target_label=actor.label,
            detail={"name": token.name, "prefix": token.prefix},
        )
        session.commit()
    return token


@dataclass(frozen=True)
class Authenticated:
    user: User
    token: ApiToken
    actor: Actor


def authenticate(
    session: Session, presented: str, *, ip_address: str | None, request_id: str | None
) -> Authenticated:
    """The owner of a presented token if it is valid now; refusals of known tokens are audited."""
    if not presented.startswith(PREFIX) or len(presented) > _MAX_TOKEN_LENGTH:
        raise TokenRejected("The API token is not valid.", "malformed")
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == security.token_hash(presented))
    )
    if token is None:
        raise TokenRejected("The API token is not valid.", "unknown")
    user = session.get(User, token.user_id)
    now = utcnow()
    refusal: tuple[str, str] | None = None  # (reason for the audit trail, message for the user)
    if token.revoked_at is not None:
        refusal = "revoked", "This API token was revoked."
    elif token.expires_at <= now:
        refusal = "expired", "This API token has expired. Create a new one on your profile."
    elif user is None or not user.active:
        refusal = "inactive user", "The account this token belongs to is deactivated."
    if refusal is not None:
        reason, message = refusal
        denied(session, token, user, reason, ip_address=ip_address, request_id=request_id)
        raise TokenRejected(message, reason)
    assert user is not None  # an absent user was refused above
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.commit()
    return Authenticated(
        user, token, _actor_for(user, ip_address=ip_address, request_id=request_id)
    )


def denied(
    session: Session,
    token: ApiToken,
    user: User | None,
    reason: str,
    *,
    ip_address: str | None,
    request_id: str | None,
    endpoint: str | None = None,
) -> None:
    """Audit a request made with a known token that was refused (and commit)."""
    actor = (
        _actor_for(user, ip_address=ip_address, request_id=request_id)
        if user is not None
        else Actor(None, None, token.organisation_id, None, ip_address, request_id)
    )
    detail = {"reason": reason, "prefix": token.prefix}
    if endpoint:
        detail["endpoint"] = endpoint
    record(
        session,
        actor,
        "api_token.denied",
        outcome="denied",
        target_type="api_token",
        target_id=token.id,
        organisation_id=token.organisation_id,
        detail=detail,
    )
    session.commit()


#: Revoked and expired tokens stay listed (with their last use) this long, then are deleted.
PURGE_AFTER = timedelta(days=30)


def purge(session: Session, now=None) -> int:
    """Delete tokens revoked or expired more than PURGE_AFTER ago; returns how many."""
    from sqlalchemy import delete, or_

    cutoff = (now or utcnow()) - PURGE_AFTER
    result = session.execute(
        delete(ApiToken).where(or_(ApiToken.expires_at < cutoff, ApiToken.revoked_at < cutoff))
    )
    session.commit()
    return rowcount(result)
