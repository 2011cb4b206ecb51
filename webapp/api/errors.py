"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

Services raise errors on the bases of webapp.services.errors, answered by base (``STATUS``); HTTP
errors come from routing, the limiter and the token check. All of them are answered here, in
JSON, never with an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, g, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from webapp import deps
from webapp.services import errors
from webapp.services.errors import ServiceError

log = logging.getLogger("webapp.api")

#: HTTP status → (error code, default message).
CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood. Nothing was changed."),
    401: (
        "unauthorized",
        "This operation needs a valid personal API token, sent as Authorization: Bearer rdv_….",
    ),
    403: ("forbidden", "Your role cannot use this operation."),
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "This resource does not accept that method."),
    406: ("not_acceptable", "This API answers in application/json only."),
    409: ("conflict", "The request conflicts with the current state. Nothing was changed."),
    410: ("gone", "This resource can no longer be used."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    422: ("invalid", "Some input was not accepted. Nothing was changed."),
    429: (
        "rate_limited",
        "Too many requests were sent with this token. Wait the seconds in Retry-After, then "
        "try again.",
    ),
    500: ("server_error", "Something went wrong on our side. It has been logged."),
    502: ("calendar_write_failed", "The calendar service did not accept the change."),
    503: ("unavailable", "A service this operation needs is unavailable. Try again later."),
}


class ApiError(Exception):
    """An error answered with the API's error shape."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        slots: list[dict] | None = None,
    ):
        default_code, default_message = CODES.get(status, ("error", "The request failed."))
        super().__init__(message or default_message)
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        self.slots = slots


def error_response(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    fields: Mapping[str, list[str]] | None = None,
    headers=None,
    slots: list[dict] | None = None,
):
    exc = ApiError(status, message, code=code, fields=fields, headers=headers)
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "fields": exc.fields}
    if slots is not None:
        error["slots"] = slots
    response = jsonify({"error": error})
    response.status_code = status
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"a.b": ["…"]}`` (``_schema`` for whole-body errors)."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            if isinstance(item, (Mapping, list, tuple)):
                for k, v in flatten(item, prefix).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or "_schema", []).append(str(item))
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out


#: Each service error base → the HTTP status it means. A concrete error answers with its nearest
#: base's status and its own ``code`` if it has one (else the status's generic code).
STATUS: dict[type[ServiceError], int] = {
    errors.Invalid: 422,
    errors.Unprocessable: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.UpstreamFailed: 502,
    errors.Unavailable: 503,
    ServiceError: 422,
}


def _status_and_code(exc: ServiceError) -> tuple[int, str | None]:
    """The HTTP status (and a specific error code) for a service's deliberate error."""
    status = next(STATUS[base] for base in type(exc).__mro__ if base in STATUS)
    return status, exc.code


def service_error_response(exc: ServiceError):
    """The response for a service's deliberate error."""
    return _service_error(exc)


def _service_error(exc: ServiceError):
    status, code = _status_and_code(exc)
    fields = {exc.field: [exc.message]} if exc.field else None
    return error_response(status, exc.message, code=code, fields=fields, slots=_fresh_slots(exc))


def _fresh_slots(exc: ServiceError) -> list[dict] | None:
    """For a booking that lost its slot: the panel's free slots now, from that day on (as the
    web page shows them). None when there is nothing to offer or they cannot be read."""
    from webapp.services.availability import free_slots

    if not isinstance(exc, errors.SlotTaken) or exc.asked is None:
        return None
    from webapp.api.core import actor, db

    broker = deps.broker()
    if broker is None:
        return None
    try:
        found = free_slots.open_slots(
            db(), broker, actor(), exc.asked, around=exc.start, ignore_interview=exc.moving
        )
    except ServiceError:
        return None
    from webapp.api.schemas.common import ErrorSlotSchema

    return ErrorSlotSchema(many=True).dump([{"start": s.start, "end": s.end} for s in found])


def _http_error(exc: HTTPException):
    status = exc.code or 500
    if status >= 500 and status != 503:
        return _unhandled(exc)
    headers = {}
    response = exc.get_response()
    for name in ("Retry-After", "Allow"):
        if name == "Retry-After" and status != 429:
            continue  # documented (and sent) only with a 429
        if name in response.headers:
            headers[name] = response.headers[name]
    message = None
    if status == 429:
        retry = headers.get("Retry-After")
        message = (
            f"Too many requests for this token. Try again in {retry} seconds." if retry else None
        )
    description = getattr(exc, "api_message", None)
    return error_response(status, description or message, headers=headers)


def _unhandled(exc: Exception):
    original = getattr(exc, "original_exception", None) or exc
    log.error(
        "unhandled API error %s in request %s",
        type(original).__name__,
        g.get("request_id"),
        exc_info=original,
    )
    return error_response(500)


def init_blueprint(bp: Blueprint) -> None:
    bp.register_error_handler(
        ApiError,
        lambda exc: error_response(
            exc.status,
            exc.message,
            code=exc.code,
            fields=exc.fields,
            headers=exc.headers,
            slots=exc.slots,
        ),
    )
    bp.register_error_handler(
        ValidationError,
        lambda exc: error_response(
            422, "Some input was not accepted. Nothing was changed.", fields=flatten(exc.messages)
        ),
    )
    bp.register_error_handler(ServiceError, _service_error)
    bp.register_error_handler(HTTPException, _http_error)
    # Handlers registered by status code win over class handlers in Flask's lookup, and the app
    # has page-rendering ones: register ours for every code as well.
    for status in CODES:
        if status >= 500 and status != 503:
            bp.register_error_handler(status, _unhandled)
        else:
            bp.register_error_handler(status, _http_error)
    bp.register_error_handler(Exception, _unhandled)
