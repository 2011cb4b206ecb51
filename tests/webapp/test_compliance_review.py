"""The reviewer's and the admin's pages (issue 19): the audit trail's kinds of action and
legend, the erasure's confirmation (who, what will happen, a typed confirmation), its receipt
at its own URL, and the inventory read by purpose. Two organisations throughout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry, ErasureRequest, Role, User
from tests.api.conftest import ApiClient, issue_token
from tests.conftest import AuthActions
from tests.factories import make_org, make_user
from tests.tenants import NEIGHBOUR_PASSWORD
from webapp import security
from webapp.services import audit_codes


def _client_for(app, user):
    """A logged-in client; the other organisation's people (sharing addresses) have their own
    password, so a login opens exactly the account meant."""
    client = app.test_client()
    password = NEIGHBOUR_PASSWORD if user.organisation.name == "Contoso" else None
    assert AuthActions(client).login(user.email, password).status_code == 302
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


# --- the erasure: confirmation, typed confirmation, receipt --------------------------------------


@pytest.fixture
def two_orgs(app, session, org, reviewer):
    """Northwind (reviewer, admin, a recruiter to erase) and Contoso, whose reviewer and admin
    share Northwind's addresses."""
    admin = make_user(session, org, Role.ADMIN, email="alex@northwind.example", name="Alex Kim")
    leaver = make_user(
        session, org, Role.RECRUITER, email="lee.leaver@northwind.example", name="Lee Leaver"
    )
    other = make_org(session, "Contoso")
    other_reviewer = make_user(session, other, Role.COMPLIANCE, email=reviewer.email)
    other_admin = make_user(session, other, Role.ADMIN, email=admin.email)
    namesake = make_user(session, other, Role.RECRUITER, email=leaver.email, name="Lee Leaver")
    with app.app_context():
        other_hash = security.hash_password(NEIGHBOUR_PASSWORD, salt_of=reviewer.password_hash)
    for user in (other_reviewer, other_admin, namesake):
        user.password_hash = other_hash
    session.add(
        AuditEntry(
            organisation_id=org.id,
            action="user.role_changed",
            outcome="success",
            actor_label=admin.email,
            target_label=leaver.email,
        )
    )
    session.commit()
    return dict(
        admin=admin,
        leaver=leaver,
        other_reviewer=other_reviewer,
        other_admin=other_admin,
        namesake=namesake,
    )


def _propose(app, session, reviewer, person, choice="cancel"):
    _, auth = _client_for(app, reviewer)
    response = auth.post(
        f"/compliance/people/{person.id}/erasure",
        {"future_interviews": choice},
        form_page=f"/compliance/people/{person.id}",
    )
    assert response.status_code == 302
    return session.scalar(select(ErasureRequest).where(ErasureRequest.person_id == person.id))


def _erased_entries(session):
    return session.scalars(select(AuditEntry).where(AuditEntry.action == "subject.erased")).all()


def test_the_confirmation_page_says_who_who_proposed_it_and_what_will_happen(
    app, session, org, reviewer, two_orgs
):
    leaver = two_orgs["leaver"]
    req = _propose(app, session, reviewer, leaver, "keep")
    admin_client, _ = _client_for(app, two_orgs["admin"])
    listing = admin_client.get("/compliance/erasures").get_data(as_text=True)
    assert "Lee Leaver (lee.leaver@northwind.example)" in listing
    assert f'href="/compliance/erasures/{req.id}"' in listing
    # No confirming from the list any more: only on the page with the typed confirmation.
    assert 'value="confirm"' not in listing

    page = admin_client.get(f"/compliance/erasures/{req.id}").get_data(as_text=True)
    assert "<dt>Name</dt><dd>Lee Leaver</dd>" in page
    assert "<dt>Email</dt><dd>lee.leaver@northwind.example</dd>" in page
    assert "<dt>Role</dt><dd>Recruiter / hiring manager</dd>" in page
    assert f"by {reviewer.name} ({reviewer.email})" in page
    assert req.proposed_at.strftime("%d %b %Y at %H:%M UTC") in page
    assert "keep them in the calendars" in page
    # The plan: their account, and the audit entry naming them, rewritten.
    assert "<td>1</td><td>accounts deleted</td>" in page
    assert "<td>1</td><td>audit entries rewritten" in page
    assert 'name="confirm_email"' in page and "Erase Lee Leaver" in page
    # The reviewer sees the same page, waiting for an IT admin; no form to confirm.
    reviewer_client, _ = _client_for(app, reviewer)
    mine = reviewer_client.get(f"/compliance/erasures/{req.id}").get_data(as_text=True)
    assert "Waiting for an IT admin" in mine and 'name="confirm_email"' not in mine
    # The person's page links the pending request.
    person = reviewer_client.get(f"/compliance/people/{leaver.id}").get_data(as_text=True)
    assert f'href="/compliance/erasures/{req.id}"' in person
    # Looking changed nothing.
    session.expire_all()
    assert session.get(User, leaver.id) is not None
    assert session.get(ErasureRequest, req.id).status == "proposed"
    # Another organisation's reviewer and admin (same addresses) do not find the request.
    for user in (two_orgs["other_reviewer"], two_orgs["other_admin"]):
        client, auth = _client_for(app, user)
        assert client.get(f"/compliance/erasures/{req.id}").status_code == 404
        refused = auth.post(
            f"/compliance/erasures/{req.id}",
            {"decision": "confirm", "confirm_email": leaver.email},
            form_page="/compliance/erasures",
        )
        assert refused.status_code == 404
    session.expire_all()
    assert session.get(User, leaver.id) is not None


@pytest.mark.parametrize(
    "typed", ["", "lee.leaver@northwind", "Lee Leaver", "someone@northwind.example"]
)
def test_a_wrong_typed_confirmation_refuses_clearly_and_changes_nothing(
    app, session, org, reviewer, two_orgs, typed
):
    leaver = two_orgs["leaver"]
    req = _propose(app, session, reviewer, leaver)
    _, admin = _client_for(app, two_orgs["admin"])
    refused = admin.post(
        f"/compliance/erasures/{req.id}",
        {"decision": "confirm", "confirm_email": typed},
        form_page=f"/compliance/erasures/{req.id}",
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "type the person&#39;s email address exactly" in text and "Nothing was erased" in text
    assert 'name="confirm_email"' in text  # the confirmation page again, to try once more
    session.expire_all()
    assert session.get(User, leaver.id) is not None
    assert session.get(ErasureRequest, req.id).status == "proposed"
    assert session.get(ErasureRequest, req.id).receipt_ref is None
    assert _erased_entries(session) == []


def test_the_receipt_has_its_own_address_that_reviewer_and_admin_reopen(
    app, session, org, reviewer, two_orgs
):
    leaver = two_orgs["leaver"]
    leaver_id, email = leaver.id, leaver.email
    req = _propose(app, session, reviewer, leaver)
    admin_client, admin = _client_for(app, two_orgs["admin"])
    confirmed = admin.post(
        f"/compliance/erasures/{req.id}",
        {"decision": "confirm", "confirm_email": f"  {email.upper()} "},
        form_page=f"/compliance/erasures/{req.id}",
    )
    # Redirect after POST, to a GET page keyed by an unguessable reference.
    assert confirmed.status_code == 303
    session.expire_all()
    row = session.get(ErasureRequest, req.id)
    assert row.status == "completed" and len(row.receipt_ref) >= 32
    url = f"/compliance/erasures/receipts/{row.receipt_ref}"
    assert confirmed.location == url
    first = admin_client.get(url)
    assert first.status_code == 200 and "The erasure is done" in first.get_data(as_text=True)
    # Refreshing and reopening work, and never erase again.
    for client in (admin_client, _client_for(app, reviewer)[0], admin_client):
        again = client.get(url)
        text = again.get_data(as_text=True)
        assert again.status_code == 200 and f"Erasure receipt #{req.id}" in text
        assert f"User #{leaver_id} was erased" in text
        assert "<td>1</td><td>accounts deleted" in text
        assert f"by {reviewer.name} ({reviewer.email})" in text
        assert "by Alex Kim (alex@northwind.example)" in text
        # Nothing of the erased person but their former id.
        assert email not in text and "Lee Leaver" not in text and "lee.leaver" not in text
    # The browser re-posting the form is told it is decided and shown the receipt.
    resent = admin.post(
        f"/compliance/erasures/{req.id}",
        {"decision": "confirm", "confirm_email": email},
        form_page=url,
    )
    assert resent.status_code == 303 and resent.location == url
    assert len(_erased_entries(session)) == 1
    # The confirmation page of a decided request leads to its receipt.
    assert admin_client.get(f"/compliance/erasures/{req.id}").location == url
    # The list links the receipt.
    assert f'href="{url}"' in admin_client.get("/compliance/erasures").get_data(as_text=True)
    # The stored receipt holds no name or address either.
    stored = repr((row.receipt, row.person_id, row.future_interviews, row.receipt_ref))
    assert email not in stored and "Leaver" not in stored
    # Another organisation's reviewer and admin, a guessed reference, another role: no receipt.
    for user in (two_orgs["other_reviewer"], two_orgs["other_admin"]):
        client, _ = _client_for(app, user)
        assert client.get(url).status_code == 404
    reviewer_client, _ = _client_for(app, reviewer)
    assert reviewer_client.get("/compliance/erasures/receipts/guess").status_code == 404
    recruiter = make_user(session, org, Role.RECRUITER)
    recruiter_client, _ = _client_for(app, recruiter)
    assert recruiter_client.get(url).status_code == 403
    # The namesake in the other organisation is untouched.
    assert session.get(User, two_orgs["namesake"].id) is not None


def test_rejecting_needs_no_typed_confirmation_and_leaves_no_receipt(
    app, session, org, reviewer, two_orgs
):
    req = _propose(app, session, reviewer, two_orgs["leaver"])
    admin_client, admin = _client_for(app, two_orgs["admin"])
    rejected = admin.post(
        f"/compliance/erasures/{req.id}", {"decision": "reject"}, form_page="/compliance/erasures"
    )
    assert rejected.status_code == 303 and rejected.location == "/compliance/erasures"
    session.expire_all()
    row = session.get(ErasureRequest, req.id)
    assert row.status == "rejected" and row.receipt_ref is None
    assert session.get(User, two_orgs["leaver"].id) is not None
    assert admin_client.get(f"/compliance/erasures/{req.id}").location == "/compliance/erasures"


# --- the inventory, for a non-engineer first ----------------------------------------------------


def test_the_inventory_reads_by_purpose_first_with_the_columns_folded_below(
    app, session, org, reviewer
):
    from models import Base
    from models.base import PURPOSES

    other = make_org(session, "Contoso")
    for n in range(3):
        make_user(session, other, Role.RECRUITER, email=f"someone{n}@contoso.example")
    client, _ = _client_for(app, reviewer)
    page = client.get("/compliance/").get_data(as_text=True)
    summary, detail = page.split('id="detail"')
    # Grouped by purpose, in the order PURPOSES gives, each saying why.
    positions = [summary.index(f">{title}</h2>") for title, _ in PURPOSES.values()]
    assert positions == sorted(positions)
    for _title, why in PURPOSES.values():
        assert why.replace("'", "&#39;") in summary
    # Every table appears in plain words under its purpose, with the organisation's own count.
    for table in Base.metadata.sorted_tables:
        label = table.info["label"].replace("'", "&#39;")
        section = summary.split(f'id="p-{table.info["group"]}"')[1].split("</section>")[0]
        assert f"<td>{label}</td>" in section
    accounts = summary.split('id="p-accounts"')[1].split("</section>")[0]
    people = accounts.split("People&#39;s accounts")[1].split("</tr>")[0]
    assert "<td>1</td>" in people  # Northwind's reviewer only, not Contoso's three
    assert "Email address" in people or "email" in people.lower()
    assert "one-way hash" in people
    calendars = summary.split('id="p-calendars"')[1].split("</section>")[0]
    assert "(encrypted)" in calendars
    # The engineers' detail is folded below, every table and column in it.
    assert summary.count("<details>") == 0
    assert detail.count("<details>") == len(Base.metadata.sorted_tables)
    for table in Base.metadata.sorted_tables:
        assert f"<summary><code>{table.name}</code>" in detail
        for column in table.columns:
            assert f"<code>{column.name}</code>" in detail


def test_a_column_serving_another_purpose_is_listed_under_it():
    from webapp.services.compliance.inventory import ColumnEntry, TableEntry, by_purpose

    def column(name, group, category="identifier", retention="while the record exists"):
        return ColumnEntry(name, "TEXT", category, name.title(), retention, False, False, group)

    table = TableEntry(
        "thing",
        4,
        (
            column("id", "accounts"),
            column("email", "accounts", "personal"),
            column("key", "api", "identifier", "30 days"),
        ),
        "Things",
    )
    groups = {p.key: p.kept for p in by_purpose([table])}
    assert set(groups) == {"accounts", "api"}
    (accounts,), (api,) = groups["accounts"], groups["api"]
    assert accounts.label == api.label == "Things" and accounts.rows == 4
    assert accounts.personal == ("Email",) and api.personal == ()
    assert api.retention == ("30 days",) and accounts.retention[0].startswith("until the record")
    assert len(accounts.retention) == 1


def test_the_api_inventory_carries_the_labels_and_purpose_groups(app, session, org, reviewer):
    from models import Base
    from models.base import PURPOSES, purpose_of

    body = ApiClient(app.test_client(), issue_token(session, reviewer)).get("/compliance/inventory")
    tables = {t["name"]: t for t in body.get_json()["tables"]}
    for table in Base.metadata.sorted_tables:
        assert tables[table.name]["label"] == table.info["label"]
        for column, listed in zip(table.columns, tables[table.name]["columns"], strict=True):
            assert listed["group"] == purpose_of(column) and listed["group"] in PURPOSES
