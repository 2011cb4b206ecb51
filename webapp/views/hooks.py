"""Endpoints the aggregator calls: push notifications (HMAC-verified, idempotent, fast)."""

from __future__ import annotations

import io
import logging
import math
import time

from flask import Blueprint, abort, current_app, g, request
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.sansio.utils import host_is_trusted

from broker.errors import InvalidNotification
from broker.notifications import HMAC_HEADER, parse_notification, verify_hmac
from webapp import deps
from webapp.bootstrap import client_secrets
from webapp.db import db_session
from webapp.security import public
from webapp.services import Actor, connect
from webapp.services.audit import record

#: Everything under this path is served by the lean callback app (see create_app).
PREFIX = "/hooks/"
bp = Blueprint("hooks", __name__, url_prefix="/hooks/cronofy")
log = logging.getLogger("webapp.hooks")

#: Notification bodies are tiny; anything larger is not from the aggregator.
MAX_BODY = 64 * 1024


def verified_body(kind: str, *, signature_required: bool = True) -> bytes:
    """The raw body if its Cronofy-HMAC-SHA256 matches one of our client secrets; else 401/413.

    With ``signature_required=False`` a body without the header is returned too (the caller
    then authenticates it otherwise, and calls ``refuse_unauthenticated`` when that fails); a
    header that is present is always checked."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        abort(413)
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        abort(413)
    if not signature_required and HMAC_HEADER not in request.headers:
        guard: CallbackGuard = deps.callback_guard()
        retry_after = guard.blocked(request.remote_addr or "unknown")
        if retry_after is not None:  # this address already failed too often: no work at all
            raise TooManyRequests(retry_after=retry_after)
        return raw
    secrets = client_secrets(current_app.config)
    if not secrets or not verify_hmac(raw, request.headers.get(HMAC_HEADER), secrets):
        refuse_unauthenticated(kind)
    return raw


def refuse_unauthenticated(kind: str):
    """Answer a callback request that failed authentication (a bad signature, or an unsigned
    one whose reference or state is wrong): audited once a minute per address, 429 beyond the
    limit, else 401."""
    unsigned: CallbackGuard = deps.callback_guard()
    address = request.remote_addr or "unknown"
    requests = unsigned.to_audit(address)
    if requests is not None:
        db = db_session()
        caller = Actor(None, None, None, None, request.remote_addr, g.get("request_id"))
        record(
            db,
            caller,
            "webhook.bad_signature",
            outcome="denied",
            detail={"kind": kind, "signed": HMAC_HEADER in request.headers, "requests": requests},
        )
        db.commit()
    retry_after = unsigned.limited(address)
    if retry_after is not None:
        raise TooManyRequests(retry_after=retry_after)
    abort(401)


class CallbackGuard:
    """Callback requests that fail the signature check: only a forger or a wrong secret sends
    them, so they must neither write an audit row each (50 in 1.6 s before) nor run unchecked.
    Per client address, in fixed one-minute windows: beyond LIMIT they get 429, and one audit
    entry a minute stands for all of them (``requests``: this one and those since the address's
    previous entry). Also remembers what was audited once already (``first_time``). Kept in the
    rate-limit store, so every worker shares it (Redis in production)."""

    #: Unsigned requests one address may make before 429s.
    LIMIT = parse_limit("10/minute")
    #: One audit entry per address and window.
    AUDITED = parse_limit("1/minute")
    #: Requests counted towards an address's next entry are forgotten after a day without one.
    KEEP_COUNT = 24 * 3600

    def __init__(self, storage_uri: str):
        self.storage = storage_from_string(storage_uri)
        self.windows = FixedWindowRateLimiter(self.storage)

    def to_audit(self, address: str) -> int | None:
        """How many requests a new audit entry for ``address`` stands for, or None when this
        window's entry is written already (this request then counts towards the next)."""
        pending = f"rendezvous-hooks-unaudited/{address}"
        if not self.windows.hit(self.AUDITED, "rendezvous-hooks-unsigned-audit", address):
            self.storage.incr(pending, self.KEEP_COUNT)
            return None
        earlier = self.storage.get(pending)
        if earlier:  # subtract what was read: increments made meanwhile are kept
            self.storage.incr(pending, self.KEEP_COUNT, amount=-earlier)
        return earlier + 1

    def first_time(self, key: str, ttl: int = 24 * 3600) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds, by any worker."""
        return self.storage.incr(f"rendezvous-hooks-once/{key}", ttl) == 1

    def blocked(self, address: str) -> int | None:
        """Like ``limited`` but without counting this request: seconds until ``address`` may
        send again if it already used up its unsigned requests, else None."""
        if self.windows.test(self.LIMIT, "rendezvous-hooks-unsigned", address):
            return None
        reset = self.windows.get_window_stats(
            self.LIMIT, "rendezvous-hooks-unsigned", address
        ).reset_time
        return max(1, math.ceil(reset - time.time()))

    def limited(self, address: str) -> int | None:
        """Seconds until ``address`` may send unsigned requests again, or None if it may now."""
        if self.windows.hit(self.LIMIT, "rendezvous-hooks-unsigned", address):
            return None
        reset = self.windows.get_window_stats(
            self.LIMIT, "rendezvous-hooks-unsigned", address
        ).reset_time
        return max(1, math.ceil(reset - time.time()))


def opened_id(purpose: str, ref: str, sealer=None) -> int | None:
    """The row id sealed in a callback URL's reference, or None if it is forged or altered."""
    value = (sealer or deps.sealer()).open(purpose, ref)
    return int(value) if value is not None and value.isdigit() else None


@bp.route("/push/<ref>", methods=["POST"])
@public
def push(ref: str):
    """Receive a push notification for one calendar link."""
    raw = verified_body("push")
    link_id = opened_id("push", ref)
    if link_id is None:
        return "", 404
    try:
        notification = parse_notification(raw)
    except InvalidNotification:
        return "", 400
    if notification.type == "change":
        outcome = queue_changes(deps.jobs(), link_id, notification)
    else:
        outcome = connect.handle_push(
            db_session(),
            deps.broker(),
            deps.cipher(),
            link_id,
            notification.type,
            channel_id=notification.channel_id,
            profile_id=notification.profile_id,
            first_time=deps.callback_guard().first_time,
        )
        if outcome == "check":  # which of the account's profiles? the aggregator says
            deps.jobs().enqueue("calendar.check_profile", link_id)
    log.debug("push %s for link %s: %s", notification.type, link_id, outcome)
    return "", 202


def queue_changes(jobs, link_id: int, notification) -> str:
    """The hot path: no database work here. Bursts for one link coalesce into one job, whose
    earliest changes_since covers the later ones; the job checks the link itself, and that the
    notification came from the link's channel. Notifications naming another channel (replayed
    from someone else's) never coalesce with the link's own, so they cannot displace them."""
    since = notification.changes_since.isoformat() if notification.changes_since else None
    channel = notification.channel_id
    queued = jobs.enqueue_once(
        f"changes:{link_id}:{channel}", "scheduling.changes", link_id, since, channel
    )
    return "changes queued" if queued is not None else "already queued"


class FastPush:
    """WSGI front of the callback app for its one high-volume request: a correctly signed
    ``change`` push for a genuine reference is answered here, without building a Flask request.
    Anything else (a bad or missing signature, a forged reference, another notification type,
    a body too large or without a length) goes to the callback app unchanged, which answers and
    audits it exactly as before."""

    PATH = "/hooks/cronofy/push/"

    def __init__(self, app, fallback):
        self.app, self.config, self.fallback = app, app.config, fallback

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or not path.startswith(self.PATH)
            or not host_is_trusted(environ.get("HTTP_HOST"), self.config["TRUSTED_HOSTS"])
        ):
            return self.fallback(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.fallback(environ, start_response)
        if not 0 < length <= MAX_BODY:
            return self.fallback(environ, start_response)
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # the callback app reads it again if need be
        ref = path[len(self.PATH) :]
        if "/" in ref or not verify_hmac(
            raw, environ.get("HTTP_CRONOFY_HMAC_SHA256"), client_secrets(self.config)
        ):
            return self.fallback(environ, start_response)
        link_id = opened_id("push", ref, deps.sealer.of(self.app))
        if link_id is None:
            return self.fallback(environ, start_response)
        try:
            notification = parse_notification(raw)
        except InvalidNotification:
            return self.fallback(environ, start_response)
        if notification.type != "change":
            return self.fallback(environ, start_response)
        outcome = queue_changes(deps.jobs.of(self.app), link_id, notification)
        log.debug("push change for link %s: %s", link_id, outcome)
        start_response(
            "202 ACCEPTED", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")]
        )
        return [b""]


@bp.route("/invite/<ref>", methods=["POST"])
@public
def smart_invite(ref: str):
    """Receive a candidate's answer to the Smart Invite of one interview."""
    from broker.notifications import parse_smart_invite_callback
    from webapp.services import candidate_links

    raw = verified_body("smart_invite")  # documented as signed like push notifications
    interview_id = opened_id("invite", ref)
    if interview_id is None:
        return "", 404
    try:
        callback = parse_smart_invite_callback(raw)
    except InvalidNotification:
        return "", 400
    outcome = candidate_links.invite_answered(
        db_session(), interview_id, callback.smart_invite_id, callback.status
    )
    log.info("smart invite callback for interview %s: %s", interview_id, outcome)
    return "", {"unknown": 404, "mismatch": 401}.get(outcome, 200)


#: HTTP answer per callback outcome: replays are no-ops (409), state mismatches forgeries (401),
#: and 503 asks the aggregator to resend when the code could not be redeemed just now.
_SA_STATUS = {
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
    from webapp.services import enterprise

    # No source confirms that this callback is signed: a signature, when present, must be
    # right; without one, the sealed reference and the request's one-time state authenticate
    # it (enterprise.handle_callback audits and counts those). An unsigned request that fails
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
    outcome = enterprise.handle_callback(
        db_session(),
        broker,
        deps.cipher(),
        request_id,
        callback,
        signed=signed,
    )
    if outcome.result == "forged" and not signed:
        refuse_unauthenticated("service_account")
    if outcome.result == "linked" and outcome.profile_link_id:  # a person's mailbox, not a room
        deps.jobs().enqueue("ec_choose_calendar", outcome.profile_link_id)
    log.info("service-account callback for request %s: %s", request_id, outcome.result)
    return "", _SA_STATUS[outcome.result]
