"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import text

from webapp import deps
from webapp.db import db_session
from webapp.security import public, same_token
from webapp.services import background, pacing

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


@bp.route("/metrics")
@public  # not a session page: the monitoring system's bearer token is checked below
def metrics():
    """For operators: the aggregator budget per rate-limit lane (requests in the current 1 s
    and 60 s windows against each lane's caps, 429s seen), the job backlog per task, and each
    paced periodic pass (progress, falling behind: ``falling_behind`` lists them).
    Installation-wide figures only: no organisation, person or calendar appears here. Answers
    404 unless ``METRICS_TOKEN`` is set, and 401 without that token."""
    expected = current_app.config.get("METRICS_TOKEN")
    if not expected:
        return jsonify(error="not found"), 404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given or not same_token(given.strip(), expected):
        response = jsonify(error="a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response, 401
    body: dict[str, object] = {}
    limiter = getattr(deps.broker(), "rate_limiter", None)
    usage = getattr(limiter, "usage", None)
    try:
        body["aggregator"] = usage() if usage is not None else None
    except Exception as exc:  # Redis away: say so rather than fail the whole report
        log.warning("metrics: rate limiter unreadable: %s", type(exc).__name__)
        body["aggregator"] = "unavailable"
    try:
        body["backlog"] = deps.jobs().backlog()
    except Exception as exc:
        log.warning("metrics: queue unreadable: %s", type(exc).__name__)
        body["backlog"] = "unavailable"
    # paced periodic passes (reconciliation): where each stands, and which are falling behind
    try:
        passes = pacing.status(deps.jobs())
        body["periodic"] = {p.name: p.as_dict() for p in passes}
        body["falling_behind"] = sorted(p.name for p in passes if p.behind)
        # the work each job type has left (what the mailbox page shows one organisation)
        body["work_waiting"] = {
            w.kind: {"task": w.task, "waiting": w.count}
            for w in background.waiting(db_session(), deps.jobs())
        }
    except Exception as exc:
        log.warning("metrics: periodic passes unreadable: %s", type(exc).__name__)
        body["periodic"] = body["falling_behind"] = body["work_waiting"] = "unavailable"
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
