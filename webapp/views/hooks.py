"""Endpoints the aggregator calls: push notifications, Smart Invite answers and Enterprise
Connect authorizations. Served by the lean callback app; the rest lives in webapp/callbacks.py."""

from __future__ import annotations

import logging

from flask import Blueprint, request

from broker.errors import InvalidNotification
from broker.notifications import HMAC_HEADER, parse_notification
from webapp import deps
from webapp.callbacks import (
    dispatch_push,
    opened_id,
    refuse_unauthenticated,
    signed_callback,
    verified_body,
)
from webapp.db import db_session
from webapp.security import public

bp = Blueprint("hooks", __name__, url_prefix="/hooks/cronofy")
log = logging.getLogger("webapp.hooks")


@bp.route("/push/<ref>", methods=["POST"])
@public
def push(ref: str):
    """Receive a push notification for one calendar link."""
    link_id, notification = signed_callback("push", "push", ref, parse_notification)
    outcome = dispatch_push(link_id, notification)
    log.debug("push %s for link %s: %s", notification.type, link_id, outcome)
    return "", 202


@bp.route("/invite/<ref>", methods=["POST"])
@public
def smart_invite(ref: str):
    """Receive a candidate's answer to the Smart Invite of one interview."""
    from broker.notifications import parse_smart_invite_callback
    from webapp.services import candidate_booking

    # documented as signed like push notifications
    interview_id, callback = signed_callback(
        "smart_invite", "invite", ref, parse_smart_invite_callback
    )
    outcome = candidate_booking.invite_answered(
        db_session(), interview_id, callback.smart_invite_id, callback.status
    )
    log.info("smart invite callback for interview %s: %s", interview_id, outcome)
    return "", {"unknown": 404, "mismatch": 401}.get(outcome, 200)


#: HTTP answer per callback outcome: replays are no-ops (409), state mismatches forgeries (401),
#: and 503 asks the aggregator to resend when the code could not be queued for redemption.
#: An accepted code is redeemed by a job: the aggregator gets its 200 at once.
_SA_STATUS = {
    "accepted": 200,
    "linked": 200,
    "failed": 200,
    "ignored": 200,
    "replayed": 409,
    "forged": 401,
    "unknown": 404,
    "retry": 503,
}


@bp.route("/sa/<ref>", methods=["POST"])
@public
def service_account(ref: str):
    """Receive the aggregator's answer to one Enterprise Connect mailbox request."""
    from broker.notifications import parse_service_account_callback
    from webapp.services.enterprise import callbacks

    # No source confirms that this callback is signed: a signature, when present, must be
    # right; without one, the sealed reference and the request's one-time state authenticate
    # it (callbacks.handle_callback audits and counts those). An unsigned request that fails
    # goes the way of a bad signature (audited once a minute per address, then 429).
    raw = verified_body("service_account", signature_required=False)
    signed = HMAC_HEADER in request.headers
    request_id = opened_id("sa", ref)
    if request_id is None:
        if not signed:
            refuse_unauthenticated("service_account")
        return "", 404
    broker = deps.broker()
    if broker is None:
        return "", 503
    try:
        callback = parse_service_account_callback(raw)
    except InvalidNotification:
        return "", 400
    outcome = callbacks.handle_callback(
        db_session(),
        broker,
        deps.cipher(),
        request_id,
        callback,
        signed=signed,
        jobs=deps.jobs(),
    )
    if outcome.result == "forged" and not signed:
        refuse_unauthenticated("service_account")
    log.info("service-account callback for request %s: %s", request_id, outcome.result)
    return "", _SA_STATUS[outcome.result]
