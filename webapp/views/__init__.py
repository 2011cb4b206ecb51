"""Blueprints. Views are thin: parse → call a service → render or redirect."""

from __future__ import annotations

from flask import flash

from webapp.services import ServiceError


def flash_error(exc: ServiceError) -> None:
    flash(exc.message, "error")
