"""The sandbox's Flask app factory: blueprints, traffic hooks, error shapes, state file."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from . import errors, notify
from .config import SandboxConfig
from .faults import FaultSet
from .seed import seed_world
from .state import SandboxState
from .traffic import RateLimiter, Stats, retry_after_header

log = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/oauth/token")


@dataclass
class Runtime:
    """Everything a sandbox instance owns besides Flask itself."""

    state: SandboxState
    initial_config: SandboxConfig
    faults: FaultSet
    limiter: RateLimiter
    stats: Stats
    deliverer: notify.Deliverer | None = None
    #: Mailbox email → error_key to report on its next service-account authorization.
    mailbox_failures: dict[str, str] = field(default_factory=dict)
    _save_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def reset(self, now: dt.datetime | None = None, *, frozen: bool = False) -> None:
        """Restore the seeded world, the start-up options, and clear faults and statistics.

        The clock goes back to real time, or to ``now`` (frozen there if asked) before the world
        is seeded from its day."""
        if now is None:
            self.state.clock.use_real_time()
        else:
            self.state.clock.set(now, frozen=frozen)
        fresh = copy.deepcopy(self.initial_config)
        for name, value in vars(fresh).items():
            setattr(self.state.config, name, value)
        self.state.reset(seed_world)
        self.faults.clear()
        self.mailbox_failures.clear()
        self.limiter.configure(
            per_second=self.config.rate_limit_per_second,
            per_minute=self.config.rate_limit_per_minute,
            enabled=self.config.rate_limit_enabled,
        )
        self.stats.reset()
        self.save()

    def save(self) -> None:
        with self._save_lock:
            self.state.save()

    def stop(self) -> None:
        if self.deliverer is not None:
            self.deliverer.stop()
            self.deliverer.join(timeout=5)
            self.deliverer = None
        self.save()


def build_config(config: SandboxConfig | None = None, **options: Any) -> SandboxConfig:
    """A config from keyword options; ``client_secret`` may be a string or a list."""
    config = copy.deepcopy(config) if config else SandboxConfig()
    secret = options.pop("client_secret", None)
    if secret is not None:
        config.client_secrets = [secret] if isinstance(secret, str) else list(secret)
    for key in ("client_id", "state_file"):
        if key in options:
            setattr(config, key, options.pop(key))
    unknown = config.update(options)
    if unknown:
        raise TypeError(f"unknown sandbox options: {', '.join(sorted(unknown))}")
    if not config.client_secrets or not all(config.client_secrets):
        raise ValueError("the sandbox needs at least one non-empty client secret")
    return config


def create_sandbox_app(config: SandboxConfig | None = None, **options: Any) -> Flask:
    """Build a sandbox app; starts the delivery thread when ``auto_deliver`` is on."""
    config = build_config(config, **options)
    app = Flask(__name__, template_folder="templates")
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = SandboxState(config)
    state.load_or_seed(seed_world)
    runtime = Runtime(
        state=state,
        initial_config=copy.deepcopy(config),
        faults=FaultSet(config.seed),
        limiter=RateLimiter(
            config.rate_limit_per_second,
            config.rate_limit_per_minute,
            config.rate_limit_enabled,
            clock=state.clock.time,
        ),
        stats=Stats(),
    )
    app.extensions["sandbox"] = runtime

    from . import (
        api_accounts,
        api_availability,
        api_channels,
        api_enterprise,
        api_events,
        api_extras,
        control,
        oauth,
        pages,
    )

    for module in (
        oauth,
        api_accounts,
        api_events,
        api_availability,
        api_channels,
        api_enterprise,
        api_extras,
        control,
        pages,
    ):
        app.register_blueprint(module.bp)

    _install_hooks(app, runtime)
    _install_error_handlers(app)
    if config.auto_deliver:
        runtime.deliverer = notify.Deliverer(state)
        state.deliverer = runtime.deliverer  # type: ignore[attr-defined]
        runtime.deliverer.start()
    runtime.save()
    return app


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _caller_keys(runtime: Runtime) -> set[str]:
    """The sub and email behind the request's bearer token, for account-scoped fault rules."""
    header = request.headers.get("Authorization", "")
    token = header.partition(" ")[2].strip()
    keys: set[str] = set()
    state = runtime.state
    with state.lock:
        access = state.world.access_tokens.get(token)
        grant = state.world.grants.get(access.grant_id) if access else None
        if grant:
            keys.add(grant.sub.lower())
            account = state.world.accounts.get(grant.sub)
            ser = state.world.service_accounts.get(grant.sub)
            if account:
                keys.add(account.email.lower())
            if ser:
                keys.add(ser.email.lower())
    return keys


def _install_hooks(app: Flask, runtime: Runtime) -> None:
    @app.before_request
    def _traffic():
        path = request.path
        if path.startswith("/_sandbox"):
            return None
        route = request.url_rule.rule if request.url_rule else path
        runtime.stats.record(
            f"{request.method} {route}",
            (str(request.environ.get("REMOTE_ADDR")), str(request.environ.get("REMOTE_PORT"))),
        )
        rule = runtime.faults.match(request.method, path, _caller_keys(runtime))
        if rule is not None:
            if rule.latency_ms:
                time.sleep(rule.latency_ms / 1000)
            if rule.status is not None:
                runtime.stats.faults += 1
                body = rule.body if rule.body is not None else {}
                response = jsonify(body) if not isinstance(body, str) else Response(body)
                response.status_code = rule.status
                response.headers.update(rule.headers)
                return response
        if _is_api(path):
            wait = runtime.limiter.check(runtime.config.client_id)
            if wait is not None:
                runtime.stats.rate_limited += 1
                response = jsonify(
                    {
                        "error": "too_many_requests",
                        "error_description": f"rate limit of {runtime.limiter.per_second} "
                        f"requests per second and {runtime.limiter.per_minute} per minute exceeded",
                    }
                )
                response.status_code = 429
                response.headers["Retry-After"] = retry_after_header(wait)
                return response
        return None

    @app.after_request
    def _after(response):
        if not request.path.startswith("/_sandbox"):
            runtime.stats.record_status(response.status_code)
        if request.method != "GET" and runtime.state.dirty and runtime.config.state_file:
            try:
                runtime.save()
            except OSError:
                log.exception("could not write the sandbox state file")
        return response


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.ApiError)
    def _api_error(exc: errors.ApiError):
        response = jsonify(exc.body)
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        path = request.path
        json_path = _is_api(path) or (
            path.startswith("/_sandbox/") and not path.startswith("/_sandbox/calendar")
        )
        if not json_path:
            return exc
        name = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": name, "error_description": exc.description})
        response.status_code = exc.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("sandbox bug while serving %s %s", request.method, request.path)
        response = jsonify(
            {"error": "internal_error", "error_description": "the sandbox hit a bug; see its log"}
        )
        response.status_code = 500
        return response
