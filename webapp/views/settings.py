"""Settings → Calendar integration (IT admin): Business Connect on/off and reset."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from models import Role
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services import connect
from webapp.web import actor

bp = Blueprint("settings", __name__, url_prefix="/admin/calendar")


@bp.route("/")
@allow(Role.ADMIN)
def integration():
    """Show the calendar integration settings."""
    db, who = db_session(), actor()
    return render_template(
        "settings/integration.html",
        org=connect.organisation(db, who),
        links=connect.business_links(db, who.organisation_id),
        configured=deps.broker() is not None,
    )


@bp.route("/business", methods=["POST"])
@allow(Role.ADMIN)
def business_toggle():
    """Activate or deactivate Business Connect."""
    enabled = request.form.get("enabled") == "1"
    connect.set_business_connect(db_session(), actor(), enabled)
    flash(
        "Business Connect is active: users can connect their calendars."
        if enabled
        else "Business Connect is off: users are not offered to connect calendars.",
        "success",
    )
    return redirect(url_for("settings.integration"))


@bp.route("/business/reset")
@allow(Role.ADMIN)
def confirm_reset():
    """Ask before resetting Business Connect."""
    db, who = db_session(), actor()
    return render_template(
        "settings/reset.html", links=connect.business_links(db, who.organisation_id)
    )


@bp.route("/business/reset", methods=["POST"])
@allow(Role.ADMIN)
def reset():
    """Revoke every Business Connect link of the organisation."""
    if request.form.get("confirm") != "reset":
        flash("Type “reset” to confirm. Nothing was changed.", "error")
        return redirect(url_for("settings.confirm_reset")), 303
    report = connect.reset_business_connect(db_session(), deps.cipher(), actor(), jobs=deps.jobs())
    flash(
        f"Business Connect reset: {report.links} link(s) removed, {report.tokens_deleted} set(s) "
        f"of tokens deleted. Revoking {report.revocations} authorization(s) at the calendar "
        "service continues in the background.",
        "success",
    )
    return redirect(url_for("settings.integration"))
