"""The aggregator's callbacks, apart from their HTTP endpoints (``webapp/views/hooks.py``):
the sealed callback URLs we give the aggregator and the opener of their references, the
authentication of callback requests (HMAC, and the guard against unauthenticated callers), the
dispatch of push notifications (the fast path for ``change`` pushes included), and the lean app
with the WSGI dispatcher that serves ``/hooks/``."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar, cast

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from limits import parse as parse_limit
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.sansio.utils import host_is_trusted

from broker.errors import InvalidNotification
from broker.notifications import HMAC_HEADER, Notification, parse_notification, verify_hmac
from webapp import db, deps, web
from webapp.bootstrap import client_secrets
from webapp.db import db_session
from webapp.public_urls import external_url
from webapp.security import Sealer
from webapp.services import Actor, profile_recovery
from webapp.services.audit import record

#: Everything under this path is served by the lean callback app (see ``init_app``).
PREFIX = "/hooks/"
log = logging.getLogger("webapp.hooks")

#: Notification bodies are tiny; anything larger is not from the aggregator.
MAX_BODY = 64 * 1024

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Sealed callback URLs: each carries the row it is about, sealed (it reveals nothing and cannot
# be guessed or altered), and opens for its own purpose only.


def push_url(link_id: int) -> str:
    """Where the aggregator pushes notifications of one calendar link's channel."""
    return external_url("hooks.push", ref=deps.sealer().seal("push", str(link_id)))


def invite_callback_url(interview_id: int) -> str:
    """Where the aggregator reports the candidate's answer to a Smart Invite (sealed id)."""
    return external_url("hooks.smart_invite", ref=deps.sealer().seal("invite", str(interview_id)))


def service_account_callback_url(request_id: int) -> str:
    """Where the aggregator answers one Enterprise Connect mailbox request."""
    return external_url("hooks.service_account", ref=deps.sealer().seal("sa", str(request_id)))


def opened_id(purpose: str, ref: str, sealer: Sealer | None = None) -> int | None:
    """The row id sealed in a callback URL's reference, or None if it is forged or altered."""
    value = (sealer or deps.sealer()).open(purpose, ref)
    return int(value) if value is not None and value.isdigit() else None


# ---------------------------------------------------------------------------------------------
# Authenticating callback requests


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
        retry_after = deps.callback_guard().blocked(request.remote_addr or "unknown")
        if retry_after is not None:  # this address already failed too often: no work at all
            raise TooManyRequests(retry_after=retry_after)
        return raw
    secrets = client_secrets(current_app.config)
    if not secrets or not verify_hmac(raw, request.headers.get(HMAC_HEADER), secrets):
        refuse_unauthenticated(kind)
    return raw


def refuse_unauthenticated(kind: str) -> NoReturn:
    """Answer a callback request that failed authentication (a bad signature, or an unsigned
    one whose reference or state is wrong): audited once a minute per address, 429 beyond the
    limit, else 401."""
    unsigned = deps.callback_guard()
    address = request.remote_addr or "unknown"
    requests = unsigned.to_audit(address)
    if requests is not None:
        session = db_session()
        caller = Actor(None, None, None, None, request.remote_addr, g.get("request_id"))
        record(
            session,
            caller,
            "webhook.bad_signature",
            outcome="denied",
            detail={"kind": kind, "signed": HMAC_HEADER in request.headers, "requests": requests},
        )
        session.commit()
    retry_after = unsigned.limited(address)
    if retry_after is not None:
        raise TooManyRequests(retry_after=retry_after)
    abort(401)


def signed_callback(
    kind: str, purpose: str, ref: str, parse: Callable[[bytes], T]
) -> tuple[int, T]:
    """The row id sealed in ``ref`` and the parsed body of a callback that must be signed.

    Refused (the request ends here) with 401/413/429 for a bad signature or body size (see
    ``verified_body``), 404 for a forged or altered reference, 400 for a malformed body."""
    raw = verified_body(kind)
    row_id = opened_id(purpose, ref)
    if row_id is None:
        _answer(404)
    try:
        return row_id, parse(raw)
    except InvalidNotification:
        _answer(400)


def _answer(status: int) -> NoReturn:
    """End the request with ``status`` and an empty body (what the aggregator is answered)."""
    abort(Response("", status))


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
    #: The rate-limit key of unsigned requests (with the address).
    UNSIGNED = "rendezvous-hooks-unsigned"

    def __init__(self, storage_uri: str):
        # the app's rate-limit store: memory:// or redis://, synchronous both
        self.storage = cast(Storage, storage_from_string(storage_uri))
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
        if self.windows.test(self.LIMIT, self.UNSIGNED, address):
            return None
        return self._until_reset(address)

    def limited(self, address: str) -> int | None:
        """Seconds until ``address`` may send unsigned requests again, or None if it may now."""
        if self.windows.hit(self.LIMIT, self.UNSIGNED, address):
            return None
        return self._until_reset(address)

    def _until_reset(self, address: str) -> int:
        reset = self.windows.get_window_stats(self.LIMIT, self.UNSIGNED, address).reset_time
        return max(1, math.ceil(reset - time.time()))


# ---------------------------------------------------------------------------------------------
# Push notifications


def dispatch_push(link_id: int, notification: Notification) -> str:
    """Act on a verified push notification for one calendar link; returns the outcome."""
    if notification.type == "change":
        return queue_changes(deps.jobs(), link_id, notification)
    outcome = profile_recovery.handle_push(
        db_session(),
        deps.broker(),
        deps.cipher(),
        link_id,
        notification.type,
        channel_id=notification.channel_id,
        profile_id=notification.profile_id,
        first_time=deps.callback_guard().first_time,
        jobs=deps.jobs(),
    )
    return outcome


def queue_changes(jobs, link_id: int, notification) -> str:
    """The hot path: no database work here. Bursts for one link coalesce into one job, whose
    earliest changes_since covers the later ones; the job checks the link itself, and that the
    notification came from the link's channel. Notifications naming another channel (replayed
    from someone else's) never coalesce with the link's own, so they cannot displace them."""
    since = notification.changes_since.isoformat() if notification.changes_since else None
    channel = notification.channel_id
    queued = jobs.enqueue_once(
        f"changes:{link_id}:{channel}", "scheduling.apply_changes", link_id, since, channel
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


# ---------------------------------------------------------------------------------------------
# Serving /hooks/: a lean app behind a path dispatcher, FastPush in front of it


def init_app(app: Flask, blueprint: Blueprint) -> None:
    """Install the callback guard, and serve ``blueprint`` (the endpoints under ``PREFIX``)
    from a lean app in front of the main one; the main app keeps the same routes for URL
    building."""
    deps.callback_guard.install(app, CallbackGuard(app.config["RATELIMIT_STORAGE_URI"]))
    app.wsgi_app = PathDispatcher(  # type: ignore[method-assign]
        app.wsgi_app, PREFIX, FastPush(app, _callback_app(app, blueprint).wsgi_app)
    )


def _callback_app(app: Flask, blueprint: Blueprint) -> Flask:
    """The aggregator's callbacks, served by a lean app sharing the main app's config and
    resources but none of its browser machinery (sessions, login, CSRF, rate limiting, HTML
    pages): they are authenticated by HMAC alone, and push notifications are the one
    high-volume endpoint."""
    lean = Flask("webapp.callbacks", instance_path=app.instance_path)
    lean.config = app.config  # one configuration: a change made to the app applies here too
    deps.share(app, lean, deps.CALLBACK_APP_SHARES)
    lean.teardown_appcontext(db.close_session)
    lean.before_request(web.assign_request_id)
    lean.register_blueprint(blueprint)
    return lean


class PathDispatcher:
    """Send requests under ``prefix`` to ``other``, the rest to ``main`` (paths unchanged)."""

    def __init__(self, main, prefix: str, other):
        self.main, self.prefix, self.other = main, prefix, other

    def __call__(self, environ, start_response):
        target = self.other if environ.get("PATH_INFO", "").startswith(self.prefix) else self.main
        return target(environ, start_response)
