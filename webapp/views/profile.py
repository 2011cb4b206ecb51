"""The signed-in user's own profile."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user

from models import Organisation
from webapp import deps
from webapp.db import db_session
from webapp.forms import ChangePasswordForm
from webapp.security import signed_in
from webapp.services import accounts, calendars, connect
from webapp.services.errors import Invalid
from webapp.services.zones import known_zone
from webapp.views.schedule import zone_options
from webapp.web import actor, safe_next

bp = Blueprint("profile", __name__, url_prefix="/profile")

#: Session key for the zone the browser reported at login (a proposal, never applied unasked).
BROWSER_ZONE = "browser_tz"


def organisation_zone() -> str:
    org = db_session().get(Organisation, current_user.organisation_id)
    return (org.timezone if org else None) or "Europe/London"


def zone_proposals() -> list[tuple[str, str]]:
    """[(source, zone)] to offer while the user has set no zone: what their browser reported at
    login, and their linked calendar account's default zone (read now, never stored)."""
    if current_user.timezone:
        return []
    found: list[tuple[str, str]] = []
    browser = known_zone(session.get(BROWSER_ZONE))
    if browser:
        found.append(("browser", browser))
    db = db_session()
    calendar = calendars.calendar_zone(
        db,
        deps.broker(),
        deps.cipher(),
        connect.link_of(db, current_user.id),
    )
    if calendar and calendar != browser:
        found.append(("calendar", calendar))
    return found


def _page(password_form=None, zone_problem: str | None = None, status: int = 200):
    proposals = zone_proposals()
    chosen = request.form.get("timezone") if zone_problem else None
    selected = current_user.timezone or (proposals[0][1] if proposals else organisation_zone())
    return render_template(
        "profile.html",
        password_form=password_form or ChangePasswordForm(),
        zone_options=zone_options,
        selected_zone=selected,
        organisation_zone=organisation_zone(),
        proposals=proposals,
        zone_problem=zone_problem,
        rejected_zone=chosen,
    ), status


@bp.route("/")
@signed_in
def show():
    """Show the user's profile."""
    return _page()


@bp.route("/timezone", methods=["POST"])
@signed_in
def set_timezone():
    """Set the user's own time zone."""
    try:
        user = accounts.set_timezone(
            db_session(),
            actor(),
            current_user.id,
            request.form.get("timezone"),
            source=request.form.get("source", "chosen"),
        )
    except Invalid as exc:
        return _page(zone_problem=exc.message, status=400)
    session.pop(BROWSER_ZONE, None)
    flash(
        f"Your time zone is {user.timezone}. Your working hours and the times you are shown "
        "use it.",
        "success",
    )
    return redirect(safe_next(request.form.get("next")) or url_for("profile.show"), code=303)


@bp.route("/password", methods=["POST"])
@signed_in
def change_password():
    """Change the user's password, ending their other sessions."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        flash("Fill in both password fields.", "error")
        return _page(form, status=400)
    try:
        user = accounts.change_password(
            db_session(), actor(), form.current_password.data, form.new_password.data
        )
    except Invalid as exc:
        getattr(form, exc.field or "new_password").errors = [exc.message]
        return _page(form, status=400)
    # Keep this browser signed in under the new session version; others are now logged out.
    login_user(user)
    session["seen_at"] = time.time()
    flash("Password changed. Other sessions have been logged out.", "success")
    return redirect(url_for("profile.show"))
