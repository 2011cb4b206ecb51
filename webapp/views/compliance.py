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
from webapp.services.compliance import erasure, erasure_plan, subjects
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
    tables = data_inventory.inventory(db_session(), actor())
    return render_template(
        "compliance/inventory.html",
        tables=tables,
        purposes=data_inventory.by_purpose(tables),
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
        # The reviewer confirms it themselves, on the same page an IT admin would.
        return redirect(url_for("compliance.confirm_erasure", request_id=req.id), 303)
    flash("Erasure proposed. An IT admin must confirm it under Erasure requests.", "success")
    return redirect(url_for("compliance.person", user_id=user_id))


@bp.route("/erasures")
@allow(Role.COMPLIANCE, Role.ADMIN)
def erasures():
    """List erasure requests waiting for confirmation and the receipts of completed ones."""
    db, who = db_session(), actor()
    pending = erasure.pending_erasures(db, who)
    history = erasure.erasure_history(db, who)
    people = [r.person_id for r in pending] + [r.proposed_by_id for r in pending + history]
    return render_template(
        "compliance/erasures.html",
        pending=pending,
        history=history,
        names=erasure_plan.names(db, who, people + [r.decided_by_id for r in history]),
        may_confirm=who.role is confirm_role(),
    )


@bp.route("/erasures/<int:request_id>")
@allow(Role.COMPLIANCE, Role.ADMIN)
def confirm_erasure(request_id: int):
    """Who will be erased, who proposed it, and what confirming will do (a dry run of the
    erasure), with the typed confirmation for the confirming role."""
    return _confirmation_page(request_id)


def _confirmation_page(request_id: int, status: int = 200):
    db, who = db_session(), actor()
    try:
        plan = erasure_plan.plan_erasure(db, deps.broker(), deps.cipher(), who, request_id)
    except NotFound:
        abort(404)
    except Invalid:
        # Decided meanwhile: a completed erasure has its receipt, a rejected one the list.
        return _after_decision(request_id)
    return render_template(
        "compliance/confirm_erasure.html",
        plan=plan,
        meaning=erasure_plan.meaning,
        may_confirm=who.role is confirm_role()
        and (who.role is Role.COMPLIANCE or plan.request.proposed_by_id != who.user_id),
        confirm_role=confirm_role(),
    ), status


def _after_decision(request_id: int):
    req = erasure.org_request(db_session(), actor(), request_id)
    if req.status == "completed" and req.receipt_ref:
        return redirect(url_for("compliance.erasure_receipt", ref=req.receipt_ref), 303)
    return redirect(url_for("compliance.erasures"), 303)


@bp.route("/erasures/receipts/<ref>")
@allow(Role.COMPLIANCE, Role.ADMIN)
def erasure_receipt(ref: str):
    """A completed erasure's receipt: its own address, reopened by the organisation's reviewers
    and IT admins (and by nobody else: another organisation's get 404)."""
    db, who = db_session(), actor()
    try:
        req = erasure_plan.erasure_receipt(db, who, ref)
    except NotFound:
        abort(404)
    return render_template(
        "compliance/receipt.html",
        req=req,
        meaning=erasure_plan.meaning,
        names=erasure_plan.names(db, who, [req.proposed_by_id, req.decided_by_id]),
    )


@bp.route("/erasures/<int:request_id>", methods=["POST"])
@allow(Role.COMPLIANCE, Role.ADMIN)
def decide_erasure(request_id: int):
    """Confirm (with the person's email typed again) or reject a proposed erasure, then
    redirect: to the receipt's own page, or to the list."""
    approve = request.form.get("decision") == "confirm"
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
            typed_confirmation=request.form.get("confirm_email", ""),
            notify=deps.candidate_notify(),
        )
    except NotFound:
        abort(404)
    except Forbidden as exc:
        flash_error(exc)
        return redirect(url_for("compliance.erasures")), 403
    except Invalid as exc:
        # Nothing was changed (a wrong typed confirmation, the last IT admin, decided already):
        # the confirmation page again, or where a decided request now lives.
        db_session().rollback()
        flash_error(exc)
        return _confirmation_page(request_id, 400)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("compliance.erasures"))
    if req.status == "completed":
        flash("The erasure is done. This receipt stays at this address.", "success")
        return redirect(url_for("compliance.erasure_receipt", ref=req.receipt_ref), 303)
    flash("Erasure request rejected.", "info")
    return redirect(url_for("compliance.erasures"), 303)
