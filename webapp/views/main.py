"""Home page and the small per-role pages of the foundation."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from models import LinkStatus, Role
from webapp.db import db_session
from webapp.security import allow, signed_in
from webapp.services import connect, coordinators
from webapp.web import actor

bp = Blueprint("main", __name__)


@bp.route("/")
@signed_in
def home():
    """Show the user's start page; a recruiter whose calendar is not linked learns what to do
    first (panels and availability only include people with a linked calendar)."""
    calendar_step = None
    if current_user.role is Role.RECRUITER:
        db = db_session()
        link = connect.link_of(db, current_user.id)
        if link is None or link.status is LinkStatus.DISCONNECTED:
            calendar_step = "link" if connect.may_connect(db, actor()) else "ask_admin"
        elif link.status is LinkStatus.NEEDS_ATTENTION:
            calendar_step = "attention"
    return render_template("home.html", calendar_step=calendar_step)


@bp.route("/managers")
@allow(Role.COORDINATOR)
def my_managers():
    """List the hiring managers this coordinator schedules for."""
    return render_template(
        "my_managers.html", managers=coordinators.managers_of(db_session(), current_user.id)
    )
