"""The security suite: static checks, headers on every route, secrets after forced failures.

(The access-control matrix lives in test_access.py; forged webhooks and OAuth states in
test_business_connect.py; sessions in test_auth.py; key rotation in test_token_keys.py.)
"""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import LOGIN_ROLES, Role
from tests.conftest import SANDBOX_CLIENT_SECRET, AuthActions
from tests.factories import make_org, make_user

ROOT = Path(__file__).resolve().parents[2]
CODE = [
    ROOT / "webapp",
    ROOT / "broker",
    ROOT / "models",
    ROOT / "wsgi.py",
    ROOT / "gunicorn.conf.py",
]


def test_bandit_finds_nothing_at_medium_severity_or_above():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-c",
            "pyproject.toml",
            "-r",
            *map(str, CODE),
            "--severity-level",
            "medium",
            "-f",
            "custom",
            "--msg-template",
            "{abspath}:{line}: {test_id} {severity} {msg}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request"}


def _python_files():
    for base in CODE:
        yield from ([base] if base.is_file() else base.rglob("*.py"))


def _calls_with_their_function(tree):
    """Every call in the module, with the innermost function around it (or the module)."""

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
            if isinstance(child, ast.Call):
                yield child, scope
            yield from visit(child, inner)

    yield from visit(tree, tree)


def test_every_outbound_http_call_has_a_timeout():
    """requests.* anywhere, and HTTP sessions in broker/, are always called with a timeout."""
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        in_broker = (ROOT / "broker") in path.parents
        for node, func in _calls_with_their_function(tree):
            if not isinstance(node.func, ast.Attribute) or node.func.attr not in HTTP_METHODS:
                continue
            receiver = ast.unparse(node.func.value)
            http_like = (
                receiver == "requests"
                or "http" in receiver.lower()
                or (in_broker and re.search(r"session$", receiver) is not None)
            )
            if not http_like:
                continue
            if any(k.arg == "timeout" for k in node.keywords):
                continue
            splat = any(k.arg is None for k in node.keywords)
            if splat and re.search(r"""["']timeout["']""", ast.unparse(func)):
                continue  # e.g. kwargs.setdefault("timeout", 10) before the call
            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "HTTP calls without a timeout:\n" + "\n".join(offenders)


HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "",
    "X-Frame-Options": "DENY",
}


@pytest.mark.parametrize("role", [None, *LOGIN_ROLES], ids=lambda r: r.value if r else "anonymous")
def test_security_headers_on_every_route(app, session, role):
    client = app.test_client()
    if role is not None:
        AuthActions(client).login(make_user(session, make_org(session), role).email)
    missing = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint == "auth.logout":
            continue
        response = client.get(rule.rule)
        for name, fragment in HEADERS.items():
            if fragment not in response.headers.get(name, "\0"):
                missing.append(f"{rule.rule}: {name}")
        if (
            role is not None
            and rule.endpoint != "static"
            and response.headers.get("Cache-Control") != "no-store"
        ):
            missing.append(f"{rule.rule}: Cache-Control no-store for a signed-in user")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    "fault",
    [
        {"method": "POST", "path": "/oauth/token", "status": 500},
        {"method": "GET", "path": "/v1/userinfo", "status": 502},
        {"method": "GET", "path": "/v1/calendars", "status": 503},
        {"method": "POST", "path": "/v1/channels", "status": 500},
        {"method": "POST", "path": "/oauth/token", "status": 429, "headers": {"Retry-After": "0"}},
        {
            "method": "POST",
            "path": "/oauth/token",
            "status": 400,
            "body": {"error": "invalid_grant"},
        },
    ],
    ids=lambda f: f"{f['path']}-{f['status']}",
)
def test_no_secret_in_logs_pages_or_database_after_forced_failures(
    app, session, sandbox, caplog, database_url, fault
):
    from tests.webapp.test_business_connect import creds_for, follow, start

    caplog.set_level(logging.DEBUG)
    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    user = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(user.email)
    # A first, clean connection so there are real tokens that could leak.
    follow(client, sandbox.consent(start(auth), user.email).redirect_url)
    creds = creds_for(app, session, user)
    code_redirect = sandbox.consent(start(auth), user.email).redirect_url
    code = re.search(r"code=([^&]+)", code_redirect).group(1)
    sandbox.add_fault(count=20, **fault)
    pages = [
        follow(client, code_redirect).get_data(as_text=True),
        client.get("/profile/calendar/").get_data(as_text=True),
        client.get("/").get_data(as_text=True),
    ]
    secrets = [creds.access_token, creds.refresh_token, SANDBOX_CLIENT_SECRET, code]
    haystacks = {"logs": caplog.text, "pages": "\n".join(pages)}
    if database_url.startswith("sqlite"):
        haystacks["database"] = (
            Path(database_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1")
        )
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
