"""Single sign-on: "Sign in with SSO" and the provider's way back; the IT admin's settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from models import Role
from webapp import deps
from webapp.db import db_session
from webapp.extensions import limiter
from webapp.public_urls import external_url
from webapp.security import allow, public
from webapp.services import printable
from webapp.services.errors import (
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from webapp.services.sso import login as sso_login
from webapp.services.sso import settings as sso_settings
from webapp.views import flash_error, oauth_session_nonce
from webapp.views.auth import _login_limit, _start_session
from webapp.web import actor, safe_next

bp = Blueprint("sso", __name__)

#: Session key of the sign-in sent to the provider (PKCE verifier, nonce, state, next page).
PENDING = "sso_pending"


def _insecure_ok() -> bool:
    return bool(current_app.config.get("SSO_ALLOW_INSECURE_ISSUERS"))


def _status(exc: ServiceError) -> int:
    for base, status in (
        (Invalid, 400),
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (Unavailable, 503),
    ):
        if isinstance(exc, base):
            return status
    return 400


@bp.route("/login/sso", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def start():
    """Ask for the work address, find its organisation and send the browser to its provider."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    email = request.values.get("email", "")
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return render_template("sso/start.html", email="", next=next_url)
    if not printable(email) or not printable(next_url):
        flash("Enter your work email address.", "error")
        return render_template("sso/start.html", email="", next=""), 400
    choice = request.form.get("organisation_id", "")
    try:
        started = sso_login.start(
            db_session(),
            actor(),
            email=email,
            organisation_id=int(choice) if choice.isdigit() else None,
            session_nonce=oauth_session_nonce(),
            redirect_uri=external_url("sso.callback"),
            insecure_ok=_insecure_ok(),
        )
    except sso_login.ChooseOrganisation as exc:
        return render_template(
            "sso/choose.html", email=email, next=next_url, organisations=exc.organisations
        )
    except ServiceError as exc:
        flash_error(exc)
        return render_template("sso/start.html", email=email, next=next_url), _status(exc)
    session[PENDING] = {**started.pending, "next": safe_next(next_url) or ""}
    # A page that moves on by itself rather than a redirect: the CSP's form-action (which also
    # governs where a form's redirects may lead) cannot name every organisation's provider.
    return render_template("sso/continue.html", url=started.url, host=urlsplit(started.url).netloc)


@bp.route("/login/sso/callback")
@public
def callback():
    """The provider sends the browser back here with a code (or an error) and the state."""
    pending = session.pop(PENDING, None)
    nonce = session.get("oauth_nonce")
    args = request.args
    try:
        user = sso_login.finish(
            db_session(),
            deps.cipher(),
            actor(),
            state=args.get("state"),
            code=args.get("code"),
            error=args.get("error"),
            pending=pending if isinstance(pending, dict) else None,
            session_nonce=nonce,
            redirect_uri=external_url("sso.callback"),
            insecure_ok=_insecure_ok(),
        )
    except ServiceError as exc:
        flash_error(exc)
        return render_template("sso/start.html", email="", next=""), _status(exc)
    _start_session(user)
    flash(f"Welcome, {user.name}.", "success")
    return redirect(safe_next(pending.get("next") if pending else None) or url_for("main.home"))


# ---------------------------------------------------------------------------------------------
# The IT admin's settings


@bp.route("/admin/sso")
@allow(Role.ADMIN)
def settings():
    """Show the single sign-on settings (the client secret only as set or not)."""
    view = sso_settings.overview(db_session(), actor())
    return render_template(
        "settings/sso.html",
        view=view,
        redirect_uri=external_url("sso.callback"),
        form=None,
    )


@bp.route("/admin/sso", methods=["POST"])
@allow(Role.ADMIN)
def save():
    """Save the identity provider (the issuer is checked by fetching its discovery document)."""
    form = request.form
    try:
        sso_settings.save_provider(
            db_session(),
            deps.cipher(),
            actor(),
            issuer=form.get("issuer", ""),
            client_id=form.get("client_id", ""),
            client_secret=form.get("client_secret", ""),
            enabled=form.get("enabled") == "1",
            create_accounts=form.get("create_accounts") == "1",
            default_role=form.get("default_role", ""),
            insecure_ok=_insecure_ok(),
        )
    except ServiceError as exc:
        db_session().rollback()
        flash_error(exc)
        view = sso_settings.overview(db_session(), actor())
        return render_template(
            "settings/sso.html",
            view=view,
            redirect_uri=external_url("sso.callback"),
            form=form,
        ), _status(exc)
    flash("Single sign-on settings saved.", "success")
    return redirect(url_for("sso.settings"), 303)


@bp.route("/admin/sso/password-login", methods=["POST"])
@allow(Role.ADMIN)
def password_login():
    """Turn password login on, or off with one IT admin kept on it (break-glass)."""
    allowed = request.form.get("password_login") == "1"
    keeper = request.form.get("break_glass_user_id", "")
    try:
        sso_settings.set_password_login(
            db_session(),
            actor(),
            allowed=allowed,
            break_glass_user_id=int(keeper) if keeper.isdigit() else None,
        )
    except ServiceError as exc:
        db_session().rollback()
        flash_error(exc)
        return redirect(url_for("sso.settings"), 303)
    flash(
        "Password login is on for everyone."
        if allowed
        else "Password login is off: people sign in with SSO; the break-glass IT admin keeps "
        "their password.",
        "success",
    )
    return redirect(url_for("sso.settings"), 303)
