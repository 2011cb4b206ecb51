"""The layering the architecture promises, checked on the source: services hold the use-cases and
never reach up into Flask or the HTTP layers (views, API); those call down into services."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "webapp" / "services"

#: What a service may not import: the web framework and the layers that call services.
FORBIDDEN_IN_SERVICES = (
    "flask",
    "flask_login",
    "flask_wtf",
    "werkzeug",
    "webapp.views",
    "webapp.api",
)


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from … import`` in ``path`` names, relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            # ``from webapp import views`` imports webapp.views
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(path: Path) -> list[str]:
    return sorted(
        name
        for name in _imported_modules(path)
        for banned in FORBIDDEN_IN_SERVICES
        if name == banned or name.startswith(banned + ".")
    )


def test_services_never_import_flask_views_or_api():
    files = sorted(SERVICES.rglob("*.py"))
    assert files, "webapp/services has moved: update this test"
    bad = {str(p.relative_to(ROOT)): v for p in files if (v := _violations(p))}
    assert bad == {}


def test_the_boundary_check_catches_each_way_in(tmp_path, monkeypatch):
    """The check above can fail: each import style that reaches Flask or the HTTP layers is seen."""
    import tests.test_boundaries as me

    services = tmp_path / "webapp" / "services"
    services.mkdir(parents=True)
    monkeypatch.setattr(me, "ROOT", tmp_path)
    cases = {
        "import flask": ["flask"],
        "from flask import current_app": ["flask", "flask.current_app"],
        "from webapp.views import interviews": ["webapp.views", "webapp.views.interviews"],
        "from webapp import api": ["webapp.api"],
        "from ..api.errors import ApiError": ["webapp.api.errors", "webapp.api.errors.ApiError"],
        "from .. import views": ["webapp.views"],
        "import werkzeug.exceptions": ["werkzeug.exceptions"],
    }
    for source, expected in cases.items():
        path = services / "case.py"
        path.write_text(source + "\n")
        assert me._violations(path) == sorted(expected), source
    clean = services / "clean.py"
    clean.write_text(
        "from models import User\nfrom broker.errors import BrokerError\nfrom . import errors\n"
    )
    assert me._violations(clean) == []
