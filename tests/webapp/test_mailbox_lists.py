"""The mailbox list form at scale: names and time zones come through, 20,000 addresses are
accepted (past the app's ordinary body limit), one more or a file past the form's size limit
is refused with a message on the form, never a bare "Too large" page."""

from __future__ import annotations

import io

from sqlalchemy import select

from models import AuditEntry
from tests.webapp.test_enterprise import FABRIKAM, PAGE, connect_domain, rows, users_on
from webapp.services.enterprise.address_list import MAX_ADDRESSES
from webapp.views.enterprise import MAX_LIST_BYTES


def post_list(auth, link, *, pasted: str = "", csv: bytes | None = None, name="people.csv"):
    data: dict = {"mode": "list", "pasted": pasted}
    if csv is not None:
        data["csv"] = (io.BytesIO(csv), name)
    return auth.post(
        f"{PAGE}{link.id}/link",
        data,
        form_page=f"{PAGE}{link.id}/link",
        content_type="multipart/form-data",
    )


def test_a_csv_with_names_and_zones_links_its_people_and_reports_bad_lines(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    csv = (
        "email,name,timezone\n"
        f"{FABRIKAM[0]},Anna,Europe/Berlin\n"
        f"{FABRIKAM[1]},Ben,Mars/Olympus\n"
        f"Clara <{FABRIKAM[2]}>,,\n"
        "nobody.here@fabrikam.example,Nobody,\n"
    ).encode()
    page = post_list(auth, link, csv=csv).get_data(as_text=True)
    assert "2 mailboxes requested" in page
    assert "unknown time zone" in page and "no such user in your organisation" in page
    assert set(rows(session, link)) == {FABRIKAM[0], FABRIKAM[2]}
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "ec.mailboxes_requested")
    ).one()
    assert entry.detail["queued"] == 2 and entry.detail["rejected"] == 2


def test_twenty_thousand_addresses_are_accepted_past_the_ordinary_body_limit(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    lines = ["email,name,timezone"]
    lines += [f"{e},Someone,Europe/London" for e in FABRIKAM[:2]]
    lines += [
        f"person.number.{i}@fabrikam.example,Person Number {i} of Sales and Business "
        "Development,America/New_York"
        for i in range(MAX_ADDRESSES - 2)
    ]
    text = "\n".join(lines)
    assert len(text.encode()) > 2 * 1024 * 1024  # more than any other form may send
    response = post_list(auth, link, pasted=text)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "2 mailboxes requested" in page
    assert set(rows(session, link)) == set(FABRIKAM[:2])


def test_one_address_more_is_refused_with_the_limit_on_the_form(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    text = "\n".join([FABRIKAM[0]] + [f"p{i}@fabrikam.example" for i in range(MAX_ADDRESSES)])
    response = post_list(auth, link, csv=text.encode())
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "more than 20,000 addresses" in page and "Nothing was sent" in page
    assert 'name="pasted"' in page  # the form again, to send a smaller list
    assert rows(session, link) == {}


def test_a_file_past_the_size_limit_gets_the_form_with_the_limit_not_a_bare_page(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    big = (b"x" * 1023 + b"\n") * (MAX_LIST_BYTES // 1024 + 1)
    response = post_list(auth, link, csv=big)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "larger than 8 MB" in page and "Nothing was sent" in page
    assert "Link mailboxes on fabrikam.example" in page and "Too large" not in page
    assert rows(session, link) == {}
    # Whole requests past the form's limit too (the body is never read).
    huge = post_list(auth, link, pasted="a@fabrikam.example\n" * (3 * MAX_LIST_BYTES // 19))
    assert huge.status_code == 413 and "larger than 8 MB" in huge.get_data(as_text=True)
    # Other forms keep the app's ordinary limit.
    other = auth.post(f"{PAGE}{link.id}/retry", {"x": "y" * (3 * 1024 * 1024)}, form_page=PAGE)
    assert other.status_code == 413


def test_paste_and_file_together_are_refused_and_the_paste_kept(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    response = post_list(auth, link, pasted="kept@fabrikam.example", csv=b"email\na@b.example\n")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "not both" in page and "kept@fabrikam.example</textarea>" in page
