"""The JSON API under /api/v1: personal-token authentication, marshmallow schemas, one error
shape, cursor pagination, per-token rate limits, and an OpenAPI document generated from it all.

It calls the same services as the web views; nothing here decides who may see or change what
beyond mapping the route to the roles that the matching web page admits.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException

from webapp.api import auth, errors
from webapp.api.core import OPERATIONS, bp
from webapp.api.errors import ApiError
from webapp.security import ANY_USER, PUBLIC

# Endpoint modules attach their operations to ``bp`` when imported.
from webapp.api import me, scheduling, scheduling_links, enterprise, compliance  # noqa: F401  isort: skip
from webapp.api import openapi  # noqa: F401  isort: skip

__all__ = ["OPERATIONS", "bp", "init_app"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _fallback(path: str):
    """Answer unknown API paths (and wrong methods) in the API's error shape."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        raise ApiError(405, headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, "There is no API operation at this address. See /api/v1/docs.")


_fallback.access_policy = PUBLIC  # type: ignore[attr-defined]
# Without a token nothing under /api/v1 answers but 401 (the docs and the document excepted), so
# probing does not even reveal which paths exist.
_fallback.api_policy = ANY_USER  # type: ignore[attr-defined]
bp.add_url_rule("/<path:path>", endpoint="fallback", view_func=_fallback, methods=list(_METHODS))
bp.before_request(auth.authenticate)


@bp.before_request
def _refuse_nul_query():
    """A NUL in a query value is a 422 naming it (see webapp.web.nul_query_keys)."""
    from webapp.web import nul_query_keys

    bad = nul_query_keys()
    if bad:
        raise ApiError(
            422,
            "Query values cannot contain NUL characters.",
            fields={key: ["Must not contain NUL characters."] for key in bad},
        )


errors.init_blueprint(bp)


def _retry_after_only_on_429(response):
    """Drop ``Retry-After`` from every API response but a 429: on a success or another error it
    would tell clients to wait for nothing."""
    if response.status_code != 429 and request.blueprint == bp.name:
        response.headers.pop("Retry-After", None)
    return response


def init_app(app: Flask) -> None:
    """Register the API: blueprint, CSRF exemption, session-free auth and per-token limits."""
    from webapp.extensions import csrf, limiter

    # Runs before every other request hook, so no hook ever loads the session user on the API.
    app.before_request_funcs.setdefault(None, []).insert(0, auth.ignore_session)
    app.session_interface = auth.SessionlessApi(bp.url_prefix)
    if not getattr(bp, "_rendezvous_limited", False):
        limiter.limit(
            lambda: current_app.config["API_RATE_LIMIT"],
            key_func=auth.rate_limit_key,
            error_message="rate_limited",
        )(bp)
        bp._rendezvous_limited = True  # type: ignore[attr-defined]
    # The limiter adds Retry-After to every limited response; the API sends it only with a 429
    # (as documented). After-request functions run last-registered first: index 0 runs last.
    app.after_request_funcs.setdefault(None, []).insert(0, _retry_after_only_on_429)
    app.register_blueprint(bp)
    csrf.exempt(bp)  # no session cookie is ever accepted here, so there is nothing to forge
