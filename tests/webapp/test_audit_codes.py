"""The audit trail's action codes are defined in one place (webapp/services/audit_codes.py):
every code the code base records is there, so the legend generated from it cannot drift."""

from __future__ import annotations

import ast
import pathlib

import pytest

from webapp.services import audit, audit_codes
from webapp.services.audit import UnknownAuditAction, record

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Calls whose action is computed, and every code each can produce (file, action expression).
COMPUTED = {
    ("webapp/jobs/mail.py", "f'mail.{outcome}'"): {"mail.sent", "mail.refused"},
    ("webapp/services/oauth_states.py", "f'{audit_prefix}.connect_declined'"): {
        "calendar.connect_declined",
        "ec.connect_declined",
    },
    ("webapp/services/enterprise/mailboxes.py", "action"): {
        "ec.mailboxes_requested",
        "ec.rooms_requested",
    },
    ("webapp/services/sso/admission.py", "action"): {"sso.login", "sso.user_created"},
}


def _literals(node: ast.expr) -> list[str] | None:
    """The codes an action expression can take, or None when it is computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _recorded_actions() -> tuple[set[str], set[tuple[str, str]]]:
    literal, computed = set(), set()
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "record" or len(node.args) < 3:
                continue
            codes = _literals(node.args[2])
            if codes is None:
                computed.add((str(path.relative_to(ROOT)), ast.unparse(node.args[2])))
            else:
                literal.update(codes)
    return literal, computed


def test_every_recorded_action_code_has_a_legend_entry():
    literal, computed = _recorded_actions()
    assert len(literal) > 60  # the scan finds the calls
    missing = sorted(code for code in literal if code not in audit_codes.CODES)
    assert not missing, f"add these to webapp/services/audit_codes.py: {missing}"
    unknown = computed - COMPUTED.keys()
    assert not unknown, f"list the codes these computed actions produce in COMPUTED: {unknown}"
    for codes in COMPUTED.values():
        assert codes <= audit_codes.CODES.keys()


def test_codes_are_unique_and_each_area_has_a_title():
    total = sum(len(area.codes) for area in audit_codes.AREAS)
    assert total == len(audit_codes.CODES), "a code is listed under two areas"
    assert len(audit_codes.AREAS_BY_KEY) == len(audit_codes.AREAS)
    for area in audit_codes.AREAS:
        assert area.title and area.codes
        assert all(text.endswith(".") for text in area.codes.values())
    assert audit_codes.AREA_OF["subject.erased"].key == "erasure"
    assert audit_codes.area_named(" Erasure. ").key == "erasure"
    assert audit_codes.area_named("nothing") is None


def test_recording_an_undefined_code_fails_under_test_and_only_logs_in_production(
    session, caplog, monkeypatch
):
    with pytest.raises(UnknownAuditAction, match="audit_codes.py"):
        record(session, None, "made.up")
    monkeypatch.setattr(audit, "STRICT_CODES", False)
    entry = record(session, None, "made.up")
    assert entry.action == "made.up" and "made.up" in caplog.text
    session.rollback()
