"""The OpenAPI 3 document, generated with apispec from the operations and their marshmallow
schemas, served at /api/v1/openapi.json; and a docs page rendered from it server-side."""

from __future__ import annotations

import copy
import json
import re
import shlex
from typing import Any
from urllib.parse import urlencode

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, jsonify, render_template

from webapp import deps
from webapp.api.core import MAX_ID, OPERATIONS, Operation, bp
from webapp.api.errors import CODES
from webapp.api.examples import EXAMPLES
from webapp.api.schemas.common import ErrorSchema
from webapp.security import ANY_USER, PUBLIC

TITLE = "Rendezvous API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Interview scheduling over the calendar aggregator, for mobile and partner clients.\n\n"
    "**Authentication**: create a personal API token under *My profile → API tokens* and send it "
    "as `Authorization: Bearer rdv_…`. A token acts as you, with your role at the time of each "
    "request; browser sessions are not accepted. **Errors** always look like "
    '`{"error": {"code", "message", "fields"}}`. **Lists** are paged with `limit` (≤ 100) and '
    "the opaque `next_cursor`. **Rate limits** apply per token; every response carries "
    "`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and a 429 also "
    "`Retry-After`. Coordinators only ever receive free/busy information about the hiring "
    "managers they schedule for, never event titles, attendees or descriptions. **Retries**: "
    "every POST accepts an `Idempotency-Key` header (up to 255 visible ASCII characters, e.g. a "
    "UUID): the same key with the same request within 24 hours returns the first response again "
    "(marked `Idempotent-Replayed: true`) instead of acting twice; the same key with a different "
    "request is refused with 422, and while the first request still runs a second gets 409."
)
ROLE_NAMES = {
    "recruiter": "Recruiter / hiring manager",
    "coordinator": "Coordinator",
    "admin": "IT admin",
    "compliance": "Compliance reviewer",
}
TAGS = [
    ("Me", "The token's owner"),
    ("Calendar", "My linked calendar account"),
    ("Scheduling", "Availability, interviews and candidate self-scheduling links"),
    ("Enterprise Connect", "Domain-wide calendar linking (IT admin)"),
    ("Compliance", "Inventory, audit trail and subject export (compliance reviewer)"),
]

_RATE_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the current window",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "When the window resets (Unix time)",
        "schema": {"type": "integer"},
    },
}


IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: the same key and request within 24 hours return the "
    "first response instead of acting again",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def roles_of(op: Operation) -> list[str]:
    if op.policy == PUBLIC:
        return []
    if op.policy == ANY_USER:
        return sorted(ROLE_NAMES)
    return sorted(r.value for r in op.policy)


def error_statuses(op: Operation) -> list[int]:
    statuses = {401, 429}
    if op.policy != ANY_USER:
        statuses.add(403)
    if op.query is not None or op.body is not None:
        statuses.add(422)
    if op.body is not None:
        statuses.update({400, 413, 415})
    if "<" in op.rule:
        statuses.add(404)
    if op.method == "POST":  # Idempotency-Key: reused for another request, or still running
        statuses.update({409, 422})
    statuses.update(op.errors)
    return sorted(statuses)


def _path_description(op: Operation, name: str) -> str:
    if name == "link_id":
        if op.rule.startswith("/scheduling-links"):
            return "The self-scheduling link's id (from /scheduling-links)"
        return "The calendar link's id (from /calendar-links)"
    return {
        "uid": "The interview's `uid` (from /interviews)",
        "domain_id": "The domain's id (from /enterprise/domains)",
        "user_id": "The person's user id (from the audit trail or /me)",
    }.get(name, name)


def _path_params(op: Operation) -> list[dict[str, Any]]:
    params = []
    for converter, name in re.findall(r"<(?:([^:<>]+):)?(\w+)>", op.rule):
        if converter.startswith("int"):
            schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        elif name == "uid":
            schema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
        else:
            schema = {"type": "string", "minLength": 1, "maxLength": 200}
        params.append(
            {
                "in": "path",
                "name": name,
                "required": True,
                "description": _path_description(op, name),
                "schema": schema,
            }
        )
    return params


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
        tags=[{"name": n, "description": d} for n, d in TAGS],
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "bearerFormat": "rdv_ personal API token"},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    for status in sorted(CODES):
        message = CODES[status][1]
        spec.components.response(
            f"Error{status}",
            {
                "description": message,
                "content": {
                    "application/json": {"schema": "Error", "example": error_example(status)}
                },
                **(
                    {
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds to wait",
                                "schema": {"type": "integer"},
                            },
                            **_RATE_HEADERS,
                        }
                    }
                    if status == 429
                    else {}
                ),
            },
        )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        roles = roles_of(op)
        operation: dict[str, Any] = {
            "operationId": op.endpoint.split(".", 1)[1],
            "summary": op.summary,
            "description": op.description
            + ("\n\nRoles: " + ", ".join(ROLE_NAMES[r] for r in roles) if roles else ""),
            "tags": [op.tag],
            "x-roles": roles,
            "security": [] if op.policy == PUBLIC else [{"bearerAuth": []}],
            "parameters": _path_params(op)
            + ([{"in": "query", "schema": op.query}] if op.query else [])
            + ([IDEMPOTENCY_PARAMETER] if op.method == "POST" else []),
            "responses": {},
        }
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.body}},
            }
        success: dict[str, Any] = {"description": "Success", "headers": dict(_RATE_HEADERS)}
        if op.method == "POST":
            success["headers"]["Idempotent-Replayed"] = {
                "description": "`true` when this is the first response to the same "
                "Idempotency-Key, repeated",
                "schema": {"type": "string"},
            }
        if op.status != 204:
            success["content"] = {"application/json": {"schema": op.response or {"type": "object"}}}
        operation["responses"][str(op.status)] = success
        for status in error_statuses(op):
            operation["responses"][str(status)] = f"Error{status}"
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    _add_examples(document)
    return document


def error_example(status: int) -> dict[str, Any]:
    """What an error of this status looks like (the generic code and message)."""
    code, message = CODES[status]
    fields = {"start": ["Missing data for required field."]} if status == 422 else {}
    return {"error": {"code": code, "message": message, "fields": fields}}


def _add_examples(document: dict[str, Any]) -> None:
    """Each operation's example (webapp.api.examples) on its parameters, request body and
    success response, and a curl command that sends it (``x-codeSamples``)."""
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            example = EXAMPLES.get(op["operationId"])
            if example is None:
                continue
            for param in op.get("parameters", []):
                value = example.get(param["in"], {}).get(param["name"])
                if value is not None:
                    param["example"] = value
            if "request" in example and "requestBody" in op:
                op["requestBody"]["content"]["application/json"]["example"] = example["request"]
            for status, response in op["responses"].items():
                if status.startswith("2") and "content" in response and "response" in example:
                    response["content"]["application/json"]["example"] = example["response"]
            op["x-codeSamples"] = [
                {"lang": "Shell", "label": "curl", "source": curl(method, path, op, example)}
            ]


def curl(method: str, path: str, op: dict[str, Any], example: dict[str, Any]) -> str:
    """A curl command for the example; the server's address and the token come from the
    environment variables RENDEZVOUS_URL and RENDEZVOUS_TOKEN."""
    url = "$RENDEZVOUS_URL" + re.sub(
        r"\{(\w+)\}", lambda m: str(example.get("path", {})[m.group(1)]), path
    )
    if example.get("query"):
        url += "?" + urlencode(example["query"], doseq=True)
    lines = [f'curl -X {method.upper()} "{url}"']
    if op.get("security") != []:
        lines.append('-H "Authorization: Bearer $RENDEZVOUS_TOKEN"')
    if method == "post":
        lines.append('-H "Idempotency-Key: $(uuidgen)"')
    if "request" in example:
        lines.append('-H "Content-Type: application/json"')
        lines.append("-d " + shlex.quote(json.dumps(example["request"], ensure_ascii=False)))
    return " \\\n  ".join(lines)


def document() -> dict[str, Any]:
    if not deps.openapi.installed(current_app):
        deps.openapi.install(current_app, build_spec())
    return deps.openapi()


def _public(view):
    view.access_policy = PUBLIC
    view.api_policy = PUBLIC
    return view


@bp.route("/openapi.json")
@_public
def openapi_json():
    """Serve the OpenAPI 3 document."""
    return jsonify(document())


# ---------------------------------------------------------------------------------------------
# The docs page: the same document, rendered as HTML (no scripts; CSP allows none from elsewhere)


def _resolve(spec: dict, node: Any) -> Any:
    if isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        kind = node["$ref"].split("/")[2]
        return spec["components"][kind][name]
    return node


def _type_label(spec: dict, schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_label(spec, schema.get('items', {}))}"
    label = kind + (f" ({schema['format']})" if schema.get("format") else "")
    if schema.get("enum"):
        label += ": " + " | ".join(str(v) for v in schema["enum"] if v is not None)
    if schema.get("nullable"):
        label += ", or null"
    return label


def _plain(text: str) -> str:
    return text.replace("`", "")


def _properties(spec: dict, schema: dict) -> list[dict[str, Any]]:
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type_label(spec, prop),
            "required": name in required,
            "description": _plain(prop.get("description", "")),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _pretty(example: Any) -> str | None:
    return None if example is None else json.dumps(example, indent=2, ensure_ascii=False)


def docs_context() -> dict[str, Any]:
    spec = copy.deepcopy(document())
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in TAGS}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            responses = []
            for status, response in op["responses"].items():
                response = _resolve(spec, response)
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                responses.append(
                    {
                        "status": status,
                        "description": response["description"],
                        "schema": _type_label(spec, schema) if schema else None,
                    }
                )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            success = next(
                (r for status, r in op["responses"].items() if status.startswith("2")), {}
            )
            answered = success.get("content", {}).get("application/json", {})
            groups.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": _plain(op["description"].split("\n\nRoles:")[0]),
                    "roles": [ROLE_NAMES[r] for r in op["x-roles"]],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "type": _type_label(spec, p.get("schema", {})),
                            "required": p.get("required", False),
                            "description": _plain(p.get("description", "")),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": _properties(spec, body["schema"]) if body else None,
                    "body_name": _type_label(spec, body["schema"]) if body else None,
                    "responses": responses,
                    "request_example": _pretty(body.get("example")),
                    "response_example": _pretty(answered.get("example")),
                    "curl": (op.get("x-codeSamples") or [{}])[0].get("source"),
                }
            )
    schemas = [
        {"name": name, "properties": _properties(spec, schema)}
        for name, schema in sorted(spec["components"]["schemas"].items())
    ]
    return {
        "spec": spec,
        "groups": [(name, dict(TAGS).get(name, ""), ops) for name, ops in groups.items() if ops],
        "schemas": schemas,
    }


@bp.route("/docs")
@_public
def docs():
    """Show the API reference, rendered from the OpenAPI document."""
    response = current_app.make_response(render_template("api/docs.html", **docs_context()))
    return response
