"""Compliance reviewer pages (read-only) and the erasure workflow."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from models import Role
from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services import audit_codes
from webapp.services.compliance import audit as audit_trail
from webapp.services.compliance import erasure, subjects
from webapp.services.compliance import inventory as data_inventory
from webapp.services.errors import Forbidden, Invalid, NotFound, ServiceError
from webapp.views import flash_error
from webapp.web import actor

bp = Blueprint("compliance", __name__, url_prefix="/compliance")


def confirm_role() -> Role:
    return Role(current_app.config["ERASURE_CONFIRM_ROLE"])


@bp.route("/")
@allow(Role.COMPLIANCE)
def inventory():
    """Show every table and column stored, with classification and row counts."""
    return render_template(
        "compliance/inventory.html",
        tables=data_inventory.inventory(db_session(), actor()),
        not_stored=data_inventory.NOT_STORED,
        processor=data_inventory.PROCESSOR,
        data_center=current_app.config["CRONOFY_DATA_CENTER"],
        sandbox=bool(current_app.config.get("CRONOFY_API_BASE_URL")),
        rules=data_inventory.retention_rules(current_app.config),
    )


@bp.route("/audit")
@allow(Role.COMPLIANCE)
def audit():
    """Show the audit trail with filters and paging."""
    try:
        filters = audit_trail.parse_filters(request.args)
    except Invalid as exc:
        flash_error(exc)
        return render_template(
            "compliance/audit.html",
            entries=[],
            total=0,
            page=1,
            pages=1,
            filters=audit_trail.AuditFilters(),
            args=request.args,
            codes=audit_codes,
        ), 400
    page = request.args.get("page", 1, type=int) or 1
    entries, total, pages = audit_trail.audit_page(db_session(), actor(), filters, page=page)
    return render_template(
        "compliance/audit.html",
        entries=entries,
        total=total,
        page=min(max(page, 1), pages),
        pages=pages,
        filters=filters,
        args=request.args,
        codes=audit_codes,
    )


@bp.route("/audit/export.<fmt>")
@allow(Role.COMPLIANCE)
def audit_export(fmt: str):
    """Download the filtered audit trail as CSV or JSON."""
    try:
        filters = audit_trail.parse_filters(request.args)
        body = audit_trail.export_audit(db_session(), actor(), filters, fmt)
    except Invalid as exc:
        flash_error(exc)
        return redirect(url_for("compliance.audit"))
    mimetype = "text/csv" if fmt == "csv" else "application/json"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="rendezvous-audit.{fmt}"'},
    )


@bp.route("/people")
@allow(Role.COMPLIANCE)
def people():
    """Find a person by name or email, or look up an email with no account."""
    query = (request.args.get("q") or "").strip()
    db, who = db_session(), actor()
    matches = subjects.find_people(db, who, query) if query else []
    by_email, interviews = None, None
    if query and "@" in query and not any(u.email == query.lower() for u in matches):
        try:
            by_email = subjects.email_records(db, who, query)
            interviews = subjects.candidate_interviews(
                db,
                deps.broker(),
                deps.cipher(),
                who,
                query,
            )
        except Invalid as exc:
            flash_error(exc)
    return render_template(
        "compliance/people.html",
        query=query,
        matches=matches,
        by_email=by_email,
        interviews=interviews,
    )


@bp.route("/people/<int:user_id>")
@allow(Role.COMPLIANCE)
def person(user_id: int):
    """Show every local record about one person."""
    db, who = db_session(), actor()
    try:
        records = subjects.person_records(db, who, user_id)
    except NotFound:
        abort(404)
    pending = [r for r in erasure.pending_erasures(db, who) if r.person_id == user_id]
    return render_template(
        "compliance/person.html",
        user_id=user_id,
        records=records,
        pending=pending,
        confirm_role=confirm_role(),
    )


@bp.route("/people/<int:user_id>/export.json")
@allow(Role.COMPLIANCE)
def person_export(user_id: int):
    """Download everything stored about a person as one JSON document."""
    try:
        document = subjects.export_subject(db_session(), actor(), user_id)
    except NotFound:
        abort(404)
    return Response(
        json.dumps(document, indent=2, default=str),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="rendezvous-subject-{user_id}.json"'
        },
    )


@bp.route("/people/<int:user_id>/erasure", methods=["POST"])
@allow(Role.COMPLIANCE)
def propose_erasure(user_id: int):
    """Propose erasing a person; the confirming role carries it out."""
    db, who = db_session(), actor()
    try:
        req = erasure.propose_erasure(db, who, user_id, request.form.get("future_interviews", ""))
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("compliance.person", user_id=user_id))
    if confirm_role() is Role.COMPLIANCE:
        return decide(req.id, approve=True)
    flash("Erasure proposed. An IT admin must confirm it under Erasure requests.", "success")
    return redirect(url_for("compliance.person", user_id=user_id))


@bp.route("/erasures")
@allow(Role.COMPLIANCE, Role.ADMIN)
def erasures():
    """List erasure requests waiting for confirmation and the receipts of completed ones."""
    db, who = db_session(), actor()
    return render_template(
        "compliance/erasures.html",
        pending=erasure.pending_erasures(db, who),
        history=erasure.erasure_history(db, who),
        may_confirm=who.role is confirm_role(),
    )


@bp.route("/erasures/<int:request_id>", methods=["POST"])
@allow(Role.COMPLIANCE, Role.ADMIN)
def decide_erasure(request_id: int):
    """Confirm or reject a proposed erasure."""
    return decide(request_id, approve=request.form.get("decision") == "confirm")


def decide(request_id: int, *, approve: bool):
    try:
        req = erasure.decide_erasure(
            db_session(),
            deps.broker(),
            deps.cipher(),
            actor(),
            request_id,
            approve=approve,
            confirm_role=confirm_role(),
            jobs=deps.jobs(),
        )
    except NotFound:
        abort(404)
    except Forbidden as exc:
        flash_error(exc)
        return redirect(url_for("compliance.erasures")), 403
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("compliance.erasures"))
    if req.status == "completed":
        return render_template("compliance/receipt.html", req=req)
    flash("Erasure request rejected.", "info")
    return redirect(url_for("compliance.erasures"))
