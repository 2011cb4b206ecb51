"""The API blueprint and the one way an endpoint is declared: :func:`operation`.

``operation`` registers the Flask route, states who may call it (the token's owner's roles, checked
on every request by webapp.api.auth), parses the query string and JSON body with marshmallow,
dumps the result with the response schema, and records everything the OpenAPI document needs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import EXCLUDE, RAISE, Schema
from marshmallow import fields as mf

from models import Role
from webapp import deps
from webapp.api.errors import ApiError
from webapp.security import ANY_USER, PUBLIC
from webapp.services import Actor

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass(frozen=True)
class Operation:
    endpoint: str
    method: str
    rule: str
    summary: str
    description: str
    tag: str
    policy: object  # PUBLIC, ANY_USER or a frozenset of roles
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    echoed: tuple[str, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def openapi_path(self) -> str:
        import re

        return bp.url_prefix + re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", self.rule)


#: Every operation, in declaration order (the OpenAPI document and the docs page read this).
OPERATIONS: list[Operation] = []

#: Largest id a path accepts (ids are 32-bit in every database the app runs on).
MAX_ID = 2**31 - 1


def _query_args(schema: Schema) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, fld in schema.fields.items():
        key = fld.data_key or name
        if isinstance(fld, mf.List):
            values = request.args.getlist(key)
            if values:
                data[key] = values
        elif key in request.args:
            data[key] = request.args.get(key)
    return data


#: No request body needs more than a few levels; deeper ones are refused before any schema
#: (or the parser itself, which recurses) walks them.
MAX_JSON_DEPTH = 16


def _json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "Send the request body as JSON (Content-Type: application/json).")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = _TOO_DEEP
    if body is _TOO_DEEP or (body is not None and _depth_exceeds(body, MAX_JSON_DEPTH)):
        raise ApiError(
            400, f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
        )
    if body is None:
        raise ApiError(400, "The request body is not valid JSON.")
    return body


_TOO_DEEP = object()


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` deep (iteratively: no
    recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return False


def operation(
    method: str,
    rule: str,
    *,
    summary: str,
    tag: str,
    roles: object,
    description: str = "",
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    echoed: tuple[str, ...] = (),
) -> Callable:
    """Declare an API endpoint (see the module docstring).

    ``roles``: a tuple of Role, ANY_USER or PUBLIC. ``echoed``: see :func:`_idempotent`."""
    if isinstance(roles, tuple):
        if not roles or not all(isinstance(r, Role) for r in roles):
            raise ValueError("roles must name at least one Role")
        policy: object = frozenset(roles)
    elif roles in (ANY_USER, PUBLIC):
        policy = roles
    else:
        raise ValueError("roles must be a tuple of Role, ANY_USER or PUBLIC")

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(**kwargs):
            if any(isinstance(v, int) and not 1 <= v <= MAX_ID for v in kwargs.values()):
                raise ApiError(404)  # no row has such an id (and the database could not store it)
            if query is not None:
                kwargs["query"] = query(unknown=EXCLUDE).load(_query_args(query()))
            if body is not None:
                kwargs["body"] = body(unknown=RAISE).load(_json_body())

            def run():
                result = fn(**kwargs)
                if status == 204:
                    return current_app.response_class(status=204)
                out = jsonify(response().dump(result)) if response is not None else jsonify(result)
                out.status_code = status
                return out

            if (
                method == "POST"
                and IDEMPOTENCY_HEADER in request.headers
                and g.get("api_user") is not None
            ):
                return _idempotent(run, echoed)
            return run()

        # Sessions never reach the API (webapp.api.auth ignores them), so at the session level the
        # route is public; who may call it is ``api_policy``, enforced per token on every request.
        view.access_policy = PUBLIC  # type: ignore[attr-defined]
        view.api_policy = policy  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        OPERATIONS.append(
            Operation(
                endpoint=f"{bp.name}.{fn.__name__}",
                method=method,
                rule=rule,
                summary=summary,
                description=description or " ".join((fn.__doc__ or "").split()),
                tag=tag,
                policy=policy,
                query=query,
                body=body,
                response=response,
                status=status,
                errors=errors,
                echoed=echoed,
            )
        )
        return view

    return register


IDEMPOTENCY_HEADER = "Idempotency-Key"


def _idempotent(run: Callable, echoed: tuple[str, ...] = ()):
    """Run a POST once per Idempotency-Key (webapp.services.idempotency): a retry with the same
    key and request gets the first response again, marked ``Idempotent-Replayed: true``.

    ``echoed``: response fields that repeat the request's field of the same name and are calendar
    content (an interview's title), which never rests in the database, not even sealed: the kept
    response has them null, and a replay takes them from the retried request, which is the same
    request (its hash matched)."""
    from webapp.api.errors import error_response, service_error_response
    from webapp.services import idempotency
    from webapp.services.errors import ServiceError

    session = db()
    request_hash = idempotency.fingerprint(request.method, request.path, request.get_data())
    started = idempotency.begin(
        session, deps.cipher(), g.api_user.id, request.headers[IDEMPOTENCY_HEADER], request_hash
    )
    if isinstance(started, idempotency.Replay):
        body = _echo(started.body, echoed, request.get_json(silent=True))
        replay = current_app.response_class(
            body, status=started.status, mimetype="application/json"
        )
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        out = run()
    except (ServiceError, ApiError) as exc:
        session.rollback()
        if isinstance(exc, ApiError):
            out = error_response(
                exc.status,
                exc.message,
                code=exc.code,
                fields=exc.fields,
                headers=exc.headers,
                slots=exc.slots,
            )
        else:
            out = service_error_response(exc)
    except BaseException:
        session.rollback()
        idempotency.abandon(session, started)
        raise
    kept = _echo(out.get_data(as_text=True), echoed, None) if out.status_code < 300 else None
    idempotency.finish(
        session, deps.cipher(), started, out.status_code, kept or out.get_data(as_text=True)
    )
    return out


def _echo(body: str, echoed: tuple[str, ...], source: Any) -> str:
    """``body`` (a JSON object) with each ``echoed`` field set from ``source`` (None: null)."""
    if not echoed:
        return body
    answer = json.loads(body)
    if not isinstance(answer, dict):
        return body
    for name in echoed:
        if name in answer:
            value = source.get(name) if isinstance(source, dict) else None
            answer[name] = value.strip() if isinstance(value, str) else value  # as services trim
    return json.dumps(answer)


# ---------------------------------------------------------------------------------------------
# What endpoint functions use


def actor() -> Actor:
    """The token's owner as the services see them (set by webapp.api.auth)."""
    return g.api_actor


def db():
    from webapp.db import db_session

    return db_session()


def required_broker():
    found = deps.broker()
    if found is None:
        raise ApiError(503, "No calendar service is configured.", code="calendar_unavailable")
    return found
