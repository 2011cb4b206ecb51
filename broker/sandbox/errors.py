"""The error responses of the aggregator (§11), raised as exceptions and rendered once."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error with the body and headers the real service would send."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body if body is not None else {}
        self.headers = headers or {}


def invalid(field: str, key: str, description: str) -> ApiError:
    """422 with Cronofy's ``errors`` map (§11)."""
    return ApiError(
        422, {"errors": {field: [{"key": f"errors.{key}", "description": description}]}}
    )


def required(field: str) -> ApiError:
    return invalid(field, "required", f"{field} must be specified")


def invalid_many(problems: dict[str, list[tuple[str, str]]]) -> ApiError:
    return ApiError(
        422,
        {
            "errors": {
                field: [{"key": f"errors.{key}", "description": text} for key, text in items]
                for field, items in problems.items()
            }
        },
    )


def unauthorized(description: str = "access token is unknown, expired or revoked") -> ApiError:
    # RFC 6750 practice; Cronofy's own header is unconfirmed (§16.6).
    return ApiError(
        401,
        {"error": "invalid_token", "error_description": description},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(description: str) -> ApiError:
    return ApiError(403, {"error": "insufficient_scope", "error_description": description})


def not_found(what: str) -> ApiError:
    return ApiError(404, {"error": "not_found", "error_description": f"{what} not found"})


def locked(description: str = "the profile has no usable provider credentials") -> ApiError:
    return ApiError(423, {"error": "locked", "error_description": description})


def token_error(error: str, status: int = 400, description: str | None = None) -> ApiError:
    """The RFC 6749 shape used only by the token endpoints."""
    body = {"error": error}
    if description:
        body["error_description"] = description
    return ApiError(status, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})
