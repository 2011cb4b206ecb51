"""One-time OAuth ``state`` values for the authorization redirects of both connect modes
(Business Connect and Enterprise Connect): issued bound to the person and their browser
session, used up before any code is redeemed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OAuthState, utcnow
from webapp import security
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.errors import AggregatorTrouble, Declined, Invalid, StateRejected

STATE_LIFETIME = timedelta(minutes=10)


def issue(session: Session, actor: Actor, *, flow: str, session_nonce: str) -> str:
    """A new one-time state for ``flow``, bound to the actor and their browser session (added to
    the session; the caller audits and commits). Returns the state to send."""
    state = security.new_token()
    session.add(
        OAuthState(
            state_hash=security.token_hash(state),
            flow=flow,
            user_id=actor.user_id,
            session_binding=security.token_hash(session_nonce),
            expires_at=utcnow() + STATE_LIFETIME,
        )
    )
    return state


def consume(
    session: Session, actor: Actor, *, state: str | None, flow: str, session_nonce: str | None
) -> OAuthState:
    """Validate and use up a state; anything wrong raises StateRejected (and is audited)."""
    row = None
    if state and len(state) <= 128:
        row = session.scalar(
            select(OAuthState).where(OAuthState.state_hash == security.token_hash(state))
        )
    reason = None
    if row is None:
        reason = "missing" if not state else "unknown"
    elif row.flow != flow or row.user_id != actor.user_id:
        reason = "foreign"
    elif not session_nonce or not security.same_token(
        row.session_binding, security.token_hash(session_nonce)
    ):
        reason = "other session"
    elif row.used_at is not None:
        reason = "replayed"
    elif row.expires_at <= utcnow():
        reason = "expired"
    if reason:
        record(
            session,
            actor,
            "oauth.state_rejected",
            outcome="denied",
            detail={"reason": reason, "flow": flow},
        )
        session.commit()
        raise StateRejected(
            "This sign-in link is not valid any more (it was used already, "
            "expired, or started in another browser). Nothing was changed; "
            "please start again."
        )
    assert row is not None  # a missing row always has a reason
    row.used_at = utcnow()
    session.commit()  # used before the code is redeemed: a replay can never redeem twice
    return row


def redirect_code(
    session: Session,
    actor: Actor,
    *,
    flow: str,
    state: str | None,
    session_nonce: str | None,
    error: str | None,
    code: str | None,
    audit_prefix: str,
    declined: str,
) -> str:
    """What every authorization redirect checks before redeeming anything: the one-time state,
    a declined or failed consent (audited), and a plausible code, which it returns."""
    consume(session, actor, state=state, flow=flow, session_nonce=session_nonce)
    if error:
        record(
            session,
            actor,
            f"{audit_prefix}.connect_declined",
            outcome="failure",
            detail={"error": error[:64]},
        )
        session.commit()
        if error == "access_denied":
            raise Declined(declined)
        raise AggregatorTrouble(
            "The calendar service did not complete the connection; nothing "
            "was stored. Please try again."
        )
    if not code or len(code) > 256:
        raise Invalid("The calendar service sent no authorization code; nothing was stored.")
    return code
