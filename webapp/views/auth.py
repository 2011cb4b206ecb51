"""Logging in and out, and accepting an invitation."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from webapp.db import db_session
from webapp.extensions import limiter
from webapp.forms import LoginForm, SetPasswordForm
from webapp.security import public, signed_in
from webapp.services import Invalid, accounts
from webapp.web import actor, safe_next

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _start_session(user) -> None:
    # Flask-Login keeps the pre-login session; clearing it prevents session fixation.
    session.clear()
    login_user(user)
    now = time.time()
    session["login_at"] = now
    session["seen_at"] = now
    session.permanent = True


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def login():
    """Log a user in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = accounts.authenticate(db_session(), form.email.data, form.password.data, actor=actor())
        if user is not None:
            _start_session(user)
            flash(f"Welcome, {user.name}.", "success")
            return redirect(safe_next(form.next.data) or url_for("main.home"))
        flash("Wrong email or password.", "error")
        return render_template("login.html", form=form), 401
    if request.method == "POST":
        flash("Enter your email and password.", "error")
        return render_template("login.html", form=form), 400
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
@signed_in
def logout():
    """Log out and end every session of this user."""
    accounts.logout(db_session(), actor())
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
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.accept_invite(db_session(), token, form.password.data, actor=actor())
        except Invalid as exc:
            form.password.errors = [exc.message]
            return render_template("invite.html", form=form, user=user), 400
        _start_session(user)
        flash("Your password is set. Welcome to Rendezvous.", "success")
        return redirect(url_for("main.home"))
    return render_template("invite.html", form=form, user=user)
