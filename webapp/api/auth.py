"""Token authentication for the API, checked on every request; session cookies are ignored.

* The API never reads the session: a browser's cookie neither logs anyone in nor is refreshed,
  so CSRF cannot apply. A request that carries only a session cookie gets 401.
* ``Authorization: Bearer rdv_…`` names a personal token; its owner must be active and the token
  neither expired nor revoked. The owner's role is read from the database on every request, so a
  role change or deactivation takes effect at once.
* Deny by default: an API endpoint without an ``api_policy`` is refused (403).
"""

from __future__ import annotations

import hashlib
import logging

from flask import current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter.util import get_remote_address

from models import Role
from webapp.api.errors import ApiError
from webapp.db import db_session
from webapp.security import PUBLIC, permits
from webapp.services import api_tokens
from webapp.services.errors import TokenRejected

log = logging.getLogger("webapp.api.auth")


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def ignore_session() -> None:
    """Run first for API requests: the current user is anonymous whatever cookie came along."""
    if request.blueprint == "api":
        g._login_user = current_app.login_manager.anonymous_user()


class SessionlessApi(SecureCookieSessionInterface):
    """The app's cookie sessions, except that API requests get none: the cookie is not read, and
    a null session is never saved, so no Set-Cookie is sent back either."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def open_session(self, app, request):
        if request.path == self.prefix or request.path.startswith(self.prefix + "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def rate_limit_key() -> str:
    """Per token (a hash of it, not the token); per client address without one."""
    token = presented_token()
    if token:
        return "api-token:" + hashlib.sha256(b"rate-limit:" + token.encode()).hexdigest()[:32]
    return "api-address:" + (get_remote_address() or "unknown")


def authenticate() -> None:
    """The blueprint's before_request: identify the token's owner and check the route's policy."""
    view = current_app.view_functions.get(request.endpoint or "")
    policy = getattr(view, "api_policy", None)
    if policy is None:
        log.error("API endpoint %s declares no api_policy; refusing", request.endpoint)
        raise ApiError(403, "This operation is not available.")
    if policy == PUBLIC:
        return
    token = presented_token()
    if token is None:
        cookie = current_app.config.get("SESSION_COOKIE_NAME", "session")
        if cookie in request.cookies or request.headers.get("Authorization"):
            raise ApiError(
                401,
                "The API accepts only personal API tokens "
                "(Authorization: Bearer rdv_…), not browser sessions or other schemes.",
                headers={"WWW-Authenticate": 'Bearer realm="rendezvous"'},
            )
        raise ApiError(401, headers={"WWW-Authenticate": 'Bearer realm="rendezvous"'})
    session = db_session()
    try:
        found = api_tokens.authenticate(
            session, token, ip_address=request.remote_addr, request_id=g.get("request_id")
        )
    except TokenRejected as exc:
        raise ApiError(
            401,
            exc.message,
            headers={"WWW-Authenticate": 'Bearer realm="rendezvous", error="invalid_token"'},
        ) from None
    g.api_user, g.api_token, g.api_actor = found.user, found.token, found.actor
    if not permits(policy, found.user.role):
        api_tokens.denied(
            session,
            found.token,
            found.user,
            "role",
            ip_address=request.remote_addr,
            request_id=g.get("request_id"),
            endpoint=request.endpoint,
        )
        raise ApiError(403, role_denied(found.user.role, policy))


#: How a sentence names one person of each role, and several.
ROLE_PERSON = {
    Role.RECRUITER: ("A recruiter", "recruiters"),
    Role.COORDINATOR: ("A coordinator", "coordinators"),
    Role.ADMIN: ("An IT admin", "IT admins"),
    Role.COMPLIANCE: ("A compliance reviewer", "compliance reviewers"),
}


def role_denied(role: Role, policy: object) -> str:
    """``An IT admin cannot use this operation. It is for recruiters and coordinators.``"""
    sentence = f"{ROLE_PERSON[role][0]} cannot use this operation."
    if isinstance(policy, frozenset) and policy:
        who = [ROLE_PERSON[r][1] for r in Role if r in policy]
        names = who[0] if len(who) == 1 else ", ".join(who[:-1]) + " and " + who[-1]
        sentence += f" It is for {names}."
    return sentence
