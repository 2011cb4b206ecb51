"""Logging in and out, and accepting an invitation."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from webapp.db import db_session
from webapp.extensions import limiter
from webapp.forms import ChooseAccountForm, LoginForm, SetPasswordForm
from webapp.security import public, signed_in
from webapp.services import accounts, authentication, printable
from webapp.services.errors import Invalid
from webapp.services.sso import settings as sso_settings
from webapp.services.zones import known_zone
from webapp.views.profile import BROWSER_ZONE
from webapp.web import actor, safe_next

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _start_session(user, browser_tz: str | None = None) -> None:
    # Flask-Login keeps the pre-login session; clearing it prevents session fixation.
    session.clear()
    login_user(user)
    now = time.time()
    session["login_at"] = now
    session["seen_at"] = now
    session.permanent = True
    proposed = known_zone(browser_tz)
    if proposed and not user.timezone:  # offered on every page until they choose (never applied)
        session[BROWSER_ZONE] = proposed


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def login():
    """Log a user in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    if not all(printable(v) for v in request.values.getlist("next")):
        # Only a crafted link puts a line break or a tab in it (a redirect header could not
        # carry one, and browsers drop tabs, turning "/\t/x" into "//x").
        abort(400)
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            opened = authentication.authenticate(
                db_session(), form.email.data, form.password.data, actor=actor()
            )
        except authentication.PasswordLoginOff as exc:
            flash(exc.message, "error")
            return render_template("login.html", form=form), 403
        if len(opened) == 1:
            return _welcome(opened[0], form.next.data, form.browser_tz.data)
        if opened:  # the address and password open accounts in several organisations
            session.clear()
            session[CHOICE] = {
                "ids": [u.id for u in opened],
                "at": time.time(),
                "next": safe_next(form.next.data) or "",
                "tz": known_zone(form.browser_tz.data),
            }
            return redirect(url_for("auth.choose_account"))
        flash("Wrong email or password.", "error")
        return render_template("login.html", form=form), 401
    if request.method == "POST":
        flash("Enter your email and password.", "error")
        return render_template("login.html", form=form), 400
    return render_template("login.html", form=form)


def _welcome(user, next_url: str | None, browser_tz: str | None = None):
    _start_session(user, browser_tz)
    flash(f"Welcome, {user.name}.", "success")
    return redirect(safe_next(next_url) or url_for("main.home"))


#: Session key of the accounts a login opened, while the person chooses one.
CHOICE = "login_choice"
CHOICE_SECONDS = 300


@bp.route("/login/organisation", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def choose_account():
    """Choose the organisation to log in to when one address and password open several."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    pending = session.get(CHOICE)
    if not pending or time.time() - pending.get("at", 0) > CHOICE_SECONDS:
        session.pop(CHOICE, None)
        flash("Log in with your email and password.", "info")
        return redirect(url_for("auth.login"))
    options = authentication.login_choices(db_session(), pending["ids"])
    form = ChooseAccountForm()
    form.user_id.choices = [(str(u.id), f"{u.organisation.name} ({u.role.label})") for u in options]
    if form.validate_on_submit():
        try:
            user = authentication.choose_account(
                db_session(), pending["ids"], int(form.user_id.data), actor=actor()
            )
        except Invalid as exc:
            session.pop(CHOICE, None)
            flash(exc.message, "error")
            return redirect(url_for("auth.login"))
        return _welcome(user, pending.get("next"), pending.get("tz"))
    status = 400 if request.method == "POST" else 200
    return render_template("choose_account.html", form=form), status


@bp.route("/logout", methods=["POST"])
@signed_in
def logout():
    """Log out and end every session of this user."""
    authentication.logout(db_session(), actor())
    logout_user()
    session.clear()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def accept_invite(token: str):
    """Choose a password from an invitation link, then log in."""
    user = accounts.invited_user(db_session(), token)
    if user is None:
        return render_template("invite_invalid.html"), 404
    if not sso_settings.password_allowed(db_session(), user):
        # The organisation signs in through its identity provider: so does the invitee (their
        # first sign-in completes the invitation); no password is set.
        flash(
            "Your organisation signs in with single sign-on: use “Sign in with SSO” with "
            f"{user.email}.",
            "info",
        )
        return redirect(url_for("sso.start"))
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.accept_invite(db_session(), token, form.password.data, actor=actor())
        except Invalid as exc:
            form.password.errors = [exc.message]
            return render_template("invite.html", form=form, user=user), 400
        _start_session(user, form.browser_tz.data)
        flash("Your password is set. Welcome to Rendezvous.", "success")
        return redirect(url_for("main.home"))
    return render_template("invite.html", form=form, user=user)
