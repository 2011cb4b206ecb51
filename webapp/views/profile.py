"""The signed-in user's own profile."""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import login_user

from webapp.db import db_session
from webapp.forms import ChangePasswordForm
from webapp.security import signed_in
from webapp.services import Invalid, accounts
from webapp.web import actor

bp = Blueprint("profile", __name__, url_prefix="/profile")


@bp.route("/")
@signed_in
def show():
    """Show the user's profile."""
    return render_template("profile.html", password_form=ChangePasswordForm())


@bp.route("/password", methods=["POST"])
@signed_in
def change_password():
    """Change the user's password, ending their other sessions."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        flash("Fill in both password fields.", "error")
        return render_template("profile.html", password_form=form), 400
    try:
        user = accounts.change_password(
            db_session(), actor(), form.current_password.data, form.new_password.data
        )
    except Invalid as exc:
        getattr(form, exc.field or "new_password").errors = [exc.message]
        return render_template("profile.html", password_form=form), 400
    # Keep this browser signed in under the new session version; others are now logged out.
    login_user(user)
    session["seen_at"] = time.time()
    flash("Password changed. Other sessions have been logged out.", "success")
    return redirect(url_for("profile.show"))
