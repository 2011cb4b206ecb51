"""Rendezvous: interview scheduling on top of the Cronofy calendar aggregator."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import db, deps, logs, security, web
from webapp.bootstrap import (
    aggregator_app_origin,
    build_broker,
    build_cipher,
    build_mailer,
    build_sealer,
)
from webapp.config import load_config
from webapp.extensions import csrf, limiter, login_manager

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → db → login → csrf → limiter → blueprints → errors → cli."""
    overrides = dict(overrides or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or str(ROOT / "instance")
    app = Flask(__name__, instance_path=instance_path, template_folder=str(ROOT / "templates"))
    config = load_config(app.instance_path, overrides=overrides)
    app.config.update(config)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="rendezvous_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config["SESSION_MAX_HOURS"]),
        # The cookie is written when the session changes (the idle clock included, see
        # web.SEEN_EVERY), not re-signed and re-sent on every response: its lifetime is
        # checked against the login time, not the cookie's expiry.
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=config["SESSION_COOKIE_SECURE"],
        REMEMBER_COOKIE_SAMESITE="Lax",
        # The CSRF token lives as long as the session, which has its own limits.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=True,
        RATELIMIT_STORAGE_URI=config["REDIS_URL"] or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    logs.configure(config["LOG_LEVEL"], config["LOG_FORMAT"])
    security.use_password_hashing(config["PASSWORD_HASHING"])

    app.config["CSP_FORM_ACTION_EXTRA"] = [o for o in [aggregator_app_origin(config)] if o]

    db.init_app(app)
    deps.broker.install(app, build_broker(config))
    deps.cipher.install(app, build_cipher(config))
    deps.sealer.install(app, build_sealer(config))
    deps.mailer.install(app, build_mailer(config, app.instance_path))
    web.init_login(app, login_manager)
    web.init_body_limits(app)  # before CSRF: its check reads the form
    csrf.init_app(app)
    limiter.init_app(app)

    from webapp import api
    from webapp.views import (
        admin,
        api_tokens,
        auth,
        calendar,
        candidate,
        candidate_links,
        compliance,
        enterprise,
        health,
        hooks,
        interviews,
        loops,
        main,
        pools,
        profile,
        schedule,
        schedule_busy,
        settings,
        sso,
    )

    for blueprint in (
        auth.bp,
        sso.bp,
        main.bp,
        admin.bp,
        profile.bp,
        calendar.bp,
        settings.bp,
        enterprise.bp,
        schedule.bp,
        schedule_busy.bp,
        pools.bp,
        interviews.bp,
        candidate_links.bp,
        loops.bp,
        candidate.bp,
        compliance.bp,
        api_tokens.bp,
        health.bp,
        hooks.bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(hooks.bp)  # the aggregator signs its requests with HMAC instead
    limiter.exempt(hooks.bp)  # signed requests are the aggregator's; unsigned ones limited here:
    api.init_app(app)  # JSON API: token auth, CSRF-exempt, per-token limits

    from webapp.mail import OutboxMailer

    if isinstance(deps.mailer.of(app), OutboxMailer):  # development without SMTP only
        from webapp.dev import outbox

        app.register_blueprint(outbox.bp)
    web.init_request_hooks(app)
    from webapp import callbacks, cli, errors, jobs

    jobs.init_app(app)

    errors.init_app(app)
    cli.init_app(app)
    callbacks.init_app(app, hooks.bp)  # /hooks/ served by a lean app, FastPush in front
    if config["PROXY_HOPS"]:
        # Behind a TLS-terminating proxy: trust exactly that many X-Forwarded-* hops.
        hops = config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    return app
