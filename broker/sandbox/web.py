"""Request helpers shared by the blueprints: the runtime, bodies, list parameters, callers."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from . import authz, errors
from .state import SandboxState


def runtime():
    """The sandbox runtime attached to the current app (state, faults, limiter, stats)."""
    return current_app.extensions["sandbox"]


def state() -> SandboxState:
    return runtime().state


def body(*, token_endpoint: bool = False) -> dict[str, Any]:
    """The request body as a dict: JSON (pycronofy sends ``{}`` even on GET) or form-encoded."""
    raw = request.get_data(cache=True)
    content_type = (request.mimetype or "").lower()
    if content_type == "application/x-www-form-urlencoded" or (
        content_type == "multipart/form-data"
    ):
        return request.form.to_dict()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        if token_endpoint:
            raise errors.token_error("invalid_request", 400, "the body is not valid JSON") from None
        raise errors.invalid(
            "request", "invalid_json", "the request body is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        if token_endpoint:
            raise errors.token_error("invalid_request", 400, "the body must be a JSON object")
        raise errors.invalid("request", "invalid_json", "the request body must be a JSON object")
    return data


def list_param(name: str, data: dict[str, Any] | None = None) -> list[str]:
    """``name[]=a&name[]=b`` (pycronofy), ``name=a`` or a JSON list in the body."""
    values = request.args.getlist(f"{name}[]") + request.args.getlist(name)
    if not values and data is not None and isinstance(data.get(name), list):
        values = [str(v) for v in data[name]]
    return [v for v in values if v]


def caller(*, allow_api_key: bool = False, allow_token: bool = True) -> authz.Caller:
    return authz.authenticate(
        state(),
        request.headers.get("Authorization"),
        allow_api_key=allow_api_key,
        allow_token=allow_token,
    )


def token_caller() -> authz.TokenCaller:
    """An account's or service account's access token (401 if unknown)."""
    who = caller()
    if not isinstance(who, authz.TokenCaller):  # only tokens are accepted by caller()
        raise errors.unauthorized()
    return who


def account_caller(*scopes: str) -> authz.TokenCaller:
    """An account's access token holding ``scopes`` (401 if unknown, 403 if short of scope)."""
    who = token_caller()
    if who.is_service_account:
        raise errors.forbidden(
            "this endpoint needs an account's access token, not a service account's"
        )
    if scopes and not who.has_scope(*scopes):
        raise errors.forbidden(f"the token lacks the {' '.join(scopes)} scope")
    return who


def service_account_caller() -> authz.TokenCaller:
    who = token_caller()
    if not who.is_service_account:
        raise errors.forbidden("this endpoint needs a service account's access token")
    return who


def base_url() -> str:
    return request.host_url.rstrip("/")
