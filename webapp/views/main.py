"""Home page and the small per-role pages of the foundation."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from models import Role
from webapp.db import db_session
from webapp.security import allow, signed_in
from webapp.services import coordinators

bp = Blueprint("main", __name__)


@bp.route("/")
@signed_in
def home():
    """Show the user's start page."""
    return render_template("home.html")


@bp.route("/managers")
@allow(Role.COORDINATOR)
def my_managers():
    """List the hiring managers this coordinator schedules for."""
    return render_template(
        "my_managers.html", managers=coordinators.managers_of(db_session(), current_user.id)
    )
