"""Home page and the small per-role pages of the foundation."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from models import AuditEntry, Role
from webapp.db import db_session
from webapp.security import allow, signed_in
from webapp.services import accounts

bp = Blueprint("main", __name__)

AUDIT_PAGE_SIZE = 50


@bp.route("/")
@signed_in
def home():
    """Show the user's start page."""
    return render_template("home.html")


@bp.route("/managers")
@allow(Role.COORDINATOR)
def my_managers():
    """List the hiring managers this coordinator schedules for."""
    return render_template("my_managers.html", managers=accounts.managers_of(db_session(), current_user.id))


@bp.route("/audit")
@allow(Role.COMPLIANCE)
def audit_trail():
    """Show the organisation's audit trail, newest first."""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    session = db_session()
    where = AuditEntry.organisation_id == current_user.organisation_id
    total = session.scalar(select(func.count(AuditEntry.id)).where(where)) or 0
    entries = list(session.scalars(
        select(AuditEntry).where(where).order_by(AuditEntry.id.desc())
        .limit(AUDIT_PAGE_SIZE).offset((page - 1) * AUDIT_PAGE_SIZE)
    ))
    pages = max((total + AUDIT_PAGE_SIZE - 1) // AUDIT_PAGE_SIZE, 1)
    return render_template("audit.html", entries=entries, page=min(page, pages), pages=pages, total=total)
