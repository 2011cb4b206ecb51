"""The reviewer's and the admin's pages (issue 19): the audit trail's kinds of action and
legend, the erasure's confirmation (who, what will happen, a typed confirmation), its receipt
at its own URL, and the inventory read by purpose. Two organisations throughout."""

from __future__ import annotations

import pytest

from models import AuditEntry, Role
from tests.api.conftest import ApiClient, issue_token
from tests.conftest import AuthActions
from tests.factories import make_org, make_user
from webapp.services import audit_codes


def _client_for(app, user):
    client = app.test_client()
    AuthActions(client).login(user.email)
    return client, AuthActions(client)


@pytest.fixture
def reviewer(session, org):
    return make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")


# --- the audit trail: kinds of action and the legend --------------------------------------------


def _entry(session, org, action, label="someone"):
    session.add(
        AuditEntry(organisation_id=org.id, action=action, outcome="success", target_label=label)
    )


def test_the_erasure_filter_finds_the_erasure_whatever_its_code(app, session, org, reviewer):
    other = make_org(session, "Contoso")
    for action in ("erasure.proposed", "subject.erased", "erasure.rejected", "subject.exported"):
        _entry(session, org, action, label=f"{action} in northwind")
        _entry(session, other, action, label=f"{action} in contoso")
    session.commit()
    client, _ = _client_for(app, reviewer)
    for query in ("action=erasure", "action=Erasure", "area=erasure"):
        page = client.get(f"/compliance/audit?{query}").get_data(as_text=True)
        assert "3 entries" in page, query
        assert "subject.erased in northwind" in page and "erasure.proposed in northwind" in page
        assert "subject.exported" not in page.split("<tbody>")[1].split("</tbody>")[0]
        assert "in contoso" not in page
    # A code prefix still works as before.
    assert "1 entry" in client.get("/compliance/audit?action=subject.erased").get_data(as_text=True)
    # Kind and prefix together narrow.
    page = client.get("/compliance/audit?area=erasure&action=subject.").get_data(as_text=True)
    assert "1 entry" in page
    bad = client.get("/compliance/audit?area=bogus")
    assert bad.status_code == 400 and "Choose a kind of action" in bad.get_data(as_text=True)
    # The export follows the same filter.
    exported = client.get("/compliance/audit/export.json?area=erasure").get_json()
    assert sorted(e["action"] for e in exported["entries"]) == [
        "erasure.proposed",
        "erasure.rejected",
        "subject.erased",
    ]


def test_the_api_audit_filter_finds_the_erasure_by_name(app, session, org, reviewer):
    _entry(session, org, "subject.erased")
    session.commit()
    token = issue_token(session, reviewer)
    body = ApiClient(app.test_client(), token).get("/compliance/audit?action=erasure").get_json()
    assert [e["action"] for e in body["items"]] == ["subject.erased"]


def test_the_audit_page_has_a_legend_of_every_code(app, session, org, reviewer):
    _entry(session, org, "subject.erased")
    session.commit()
    client, _ = _client_for(app, reviewer)
    page = client.get("/compliance/audit").get_data(as_text=True)
    legend = page.split('id="legend"')[1]
    for area in audit_codes.AREAS:
        assert f"<summary>{area.title}" in legend
        for code, meaning in area.codes.items():
            assert f"<dt><code>{code}</code></dt><dd>{meaning}</dd>".replace("'", "&#39;") in legend
    # Each row says what its code means.
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert audit_codes.CODES["subject.erased"] in rows
    # The kind-of-action list is generated from the same table.
    for area in audit_codes.AREAS:
        assert f'<option value="{area.key}"' in page
