"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from webapp import deps
from webapp.db import db_session
from webapp.security import public

bp = Blueprint("health", __name__)
log = logging.getLogger("webapp.health")


@bp.route("/healthz")
@public
def healthz():
    """Say the process is up (no dependencies checked)."""
    return jsonify(status="ok")


@bp.route("/readyz")
@public
def readyz():
    """Say whether the database, the aggregator and the job queue are usable."""
    checks: dict[str, object] = {}
    try:
        db_session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        log.warning("readiness: database check failed: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    broker = deps.broker()
    checks["broker"] = (
        "not configured" if broker is None else ("ok" if broker.ping() else "unreachable")
    )
    try:
        checks["queue_depth"] = deps.jobs().pending()
    except Exception as exc:
        log.warning("readiness: queue check failed: %s", type(exc).__name__)
        checks["queue_depth"] = None
    ready = (
        checks["database"] == "ok"
        and checks["broker"] != "unreachable"
        and checks["queue_depth"] is not None
    )
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
