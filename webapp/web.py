"""Request-level glue: request ids, session lifetime, deny-by-default access, security headers."""

from __future__ import annotations

import logging
import re
import secrets
import time
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, logout_user

from webapp import deps
from webapp.db import db_session
from webapp.security import PUBLIC, permits, policy_of
from webapp.services import Actor, printable
from webapp.services.authentication import load_session_user

log = logging.getLogger("webapp.web")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,32}$")
#: Endpoints Flask itself registers; they serve only public files.
_BUILTIN_PUBLIC = {"static"}
#: How often (seconds) the session's idle clock is written back. Idle time counts from the
#: last write, so a session can end up to this much before its idle limit, never after it; in
#: exchange a page does not re-sign and re-send the session cookie on every request.
SEEN_EVERY = 60


def init_login(app: Flask, manager: LoginManager) -> None:
    manager.init_app(app)
    manager.login_view = "auth.login"
    manager.login_message = "Please log in to continue."
    manager.login_message_category = "info"
    # Sessions are invalidated by our own session version; Flask-Login's "strong" mode would
    # also tie them to the IP address, which breaks on mobile networks.
    manager.session_protection = "basic"

    @manager.user_loader
    def _load(session_id: str):
        return load_session_user(db_session(), session_id)


def actor() -> Actor:
    """The current user as the services see them."""
    if current_user.is_authenticated:
        return Actor(
            current_user.id,
            current_user.email,
            current_user.organisation_id,
            current_user.role,
            request.remote_addr,
            g.get("request_id"),
        )
    return Actor(None, None, None, None, request.remote_addr, g.get("request_id"))


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths may be redirected to after login."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not printable(target)
    ):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def body_limit(max_bytes: int):
    """Let one view take a larger request body than ``MAX_CONTENT_LENGTH`` (and larger form
    fields than ``MAX_FORM_MEMORY_SIZE``): a form that uploads a long list. Put it right under
    the route decorator; every other view keeps the app's limits."""

    def decorate(view):
        view.body_limit = max_bytes
        return view

    return decorate


def init_body_limits(app: Flask) -> None:
    """Apply :func:`body_limit` before anything reads the form (the CSRF check does): register
    this before the CSRF extension."""

    @app.before_request
    def _raise_body_limit():
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, "body_limit", None)
        # Only for someone logged in: an anonymous request keeps the ordinary limit (and is
        # refused by the access policy anyway).
        if limit and current_user.is_authenticated:
            request.max_content_length = limit
            request.max_form_memory_size = limit


def init_request_hooks(app: Flask) -> None:
    # Fixed for the app's lifetime: computed once, not on every response.
    deps.security_headers.install(
        app,
        (
            ("Content-Security-Policy", content_security_policy(app.config)),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ),
    )
    app.before_request(assign_request_id)
    app.before_request(_refuse_nul)
    app.before_request(_enforce_session_lifetime)
    app.before_request(_enforce_access_policy)
    app.after_request(_security_headers)
    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["calendar_attention"] = calendar_attention
    app.jinja_env.globals["timezone_prompt"] = timezone_prompt


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)


def nul_query_keys() -> list[str]:
    """The query-string keys whose value holds a NUL: no search or filter has a use for one,
    and PostgreSQL cannot compare text with one (such a search was a 500)."""
    return sorted({key for key, value in request.args.items(multi=True) if "\x00" in value})


def _refuse_nul():
    """400 for a NUL in a query-string value (the API answers in its own shape, after its
    token check). Form and JSON values are checked field by field where they are used."""
    if not (request.blueprint or "").startswith("api") and nul_query_keys():
        abort(400)


def _enforce_session_lifetime():
    # Requests without a login session (the aggregator's callbacks, anonymous pages) skip the
    # user lookup altogether.
    if "_user_id" not in session or not current_user.is_authenticated:
        return None
    now = time.time()
    config = current_app.config
    login_at = session.get("login_at", 0)
    seen_at = session.get("seen_at", 0)
    if (
        now - login_at > config["SESSION_MAX_HOURS"] * 3600
        or now - seen_at > config["SESSION_IDLE_MINUTES"] * 60
    ):
        logout_user()
        session.clear()
        flash("Your session has ended. Please log in again.", "info")
        return redirect(
            url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        )
    if now - seen_at >= SEEN_EVERY:
        session["seen_at"] = now
    return None


def _enforce_access_policy():
    if request.endpoint is None:  # unknown URL: let the 404 handler answer
        return None
    if request.endpoint in _BUILTIN_PUBLIC:
        return None
    policy = policy_of(current_app.view_functions.get(request.endpoint))
    if policy is None:
        log.error("endpoint %s declares no access policy; refusing", request.endpoint)
        abort(403)
    if policy == PUBLIC:
        return None
    role = current_user.role if current_user.is_authenticated else None
    if permits(policy, role):
        return None
    if role is None:
        return current_app.login_manager.unauthorized()
    abort(403)


def content_security_policy(config) -> str:
    form_targets = " ".join(["'self'", *config.get("CSP_FORM_ACTION_EXTRA", ())])
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action {form_targets}; "
        "frame-ancestors 'none'"
    )


def _security_headers(response):
    headers = response.headers
    for name, value in deps.security_headers():
        if name not in headers:
            headers[name] = value
    headers["X-Request-ID"] = g.get("request_id", "")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint != "static" or "_user_id" in session:
        # Pages can show personal data: never store them in shared or browser caches.
        response.headers.setdefault("Cache-Control", "no-store")
        response.vary.add("Cookie")
    return response


def nav_items() -> list[tuple[str, str]]:
    """Navigation entries the current user may open, derived from the endpoints' policies."""
    role = current_user.role if current_user.is_authenticated else None
    items = []
    for endpoint, label in NAVIGATION:
        policy = policy_of(current_app.view_functions.get(endpoint))
        if policy is not None and policy != PUBLIC and permits(policy, role):
            items.append((endpoint, label))
    return items


def calendar_attention():
    """The current user's calendar link if it needs them to reconnect (for the banner)."""
    if not current_user.is_authenticated:
        return None
    if "calendar_attention" not in g:
        from models import LinkStatus
        from webapp.services.connect import link_of

        link = link_of(db_session(), current_user.id)
        g.calendar_attention = link if link and link.status is LinkStatus.NEEDS_ATTENTION else None
    return g.calendar_attention


def timezone_prompt() -> dict | None:
    """While the signed-in user has set no time zone: the zone assumed meanwhile and the one
    their browser reported at login (for the banner that proposes it)."""
    from sqlalchemy.exc import SQLAlchemyError

    from models import Organisation
    from webapp.services.zones import known_zone

    try:  # a banner: an error page whose request broke the database session goes without it
        if not current_user.is_authenticated or current_user.timezone:
            return None
        org = db_session().get(Organisation, current_user.organisation_id)
    except SQLAlchemyError:
        return None
    return {
        "assumed": (org.timezone if org else None) or "Europe/London",
        "proposed": known_zone(session.get("browser_tz")),
    }


NAVIGATION: tuple[tuple[str, str], ...] = (
    ("main.home", "Home"),
    ("main.my_managers", "My hiring managers"),
    ("schedule.index", "Schedule"),
    ("loops.index", "Loops"),
    ("interviews.index", "Interviews"),
    ("pools.index", "Pools"),
    ("admin.users", "Users"),
    ("settings.integration", "Calendar integration"),
    ("sso.settings", "Single sign-on"),
    ("compliance.inventory", "Compliance"),
    ("compliance.erasures", "Erasure requests"),
    ("profile.show", "My profile"),
)
