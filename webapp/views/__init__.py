"""Blueprints. Views are thin: parse → call a service → render or redirect."""

from __future__ import annotations

import secrets

from flask import abort, current_app, flash, session

from webapp.services.errors import ServiceError


def flash_error(exc: ServiceError) -> None:
    flash(exc.message, "error")


def required_broker():
    """The calendar broker, or a 503 page when no aggregator is configured."""
    broker = current_app.extensions["rendezvous.broker"]
    if broker is None:
        abort(503)
    return broker


def token_cipher():
    return current_app.extensions["rendezvous.cipher"]


def oauth_session_nonce() -> str:
    """A per-login-session nonce; OAuth states are bound to its hash."""
    if "oauth_nonce" not in session:
        session["oauth_nonce"] = secrets.token_urlsafe(32)
    return session["oauth_nonce"]
