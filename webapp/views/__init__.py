"""Blueprints. Views are thin: parse → call a service → render or redirect."""

from __future__ import annotations

import secrets

from flask import flash, session

from webapp.services.errors import ServiceError


def flash_error(exc: ServiceError) -> None:
    flash(exc.message, "error")


def oauth_session_nonce() -> str:
    """A per-login-session nonce; OAuth states are bound to its hash."""
    if "oauth_nonce" not in session:
        session["oauth_nonce"] = secrets.token_urlsafe(32)
    return session["oauth_nonce"]
