"""The mailbox list form at scale: names and time zones come through, 20,000 addresses are
accepted (past the app's ordinary body limit), one more or a file past the form's size limit
is refused with a message on the form, never a bare "Too large" page."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from models import AuditEntry, MailboxList, MailboxListLine, Role, User, utcnow
from tests.conftest import AuthActions
from tests.factories import make_user
from tests.tenants import NEIGHBOUR_PASSWORD, leaked, seed_neighbour
from tests.webapp.test_enterprise import FABRIKAM, PAGE, connect_domain, rows, users_on
from webapp import deps
from webapp.services import Actor
from webapp.services.compliance import erasure
from webapp.services.compliance.subjects import person_records
from webapp.services.enterprise import list_summaries
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
        follow_redirects=True,
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
    # An address without an account becomes a directory person, named as the list says.
    assert "3 mailboxes requested" in page
    assert "nknown time zone" in page
    assert set(rows(session, link)) == {FABRIKAM[0], FABRIKAM[2], "nobody.here@fabrikam.example"}
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "ec.mailboxes_requested")
    ).one()
    assert entry.detail["queued"] == 3 and entry.detail["rejected"] == 1
    assert entry.detail["directory_people_created"] == 1
    nobody = session.scalar(select(User).where(User.email == "nobody.here@fabrikam.example"))
    assert nobody.role is Role.INTERVIEWER and nobody.name == "Nobody"
    anna = session.scalar(select(User).where(User.email == FABRIKAM[0]))
    assert anna.role is Role.RECRUITER and anna.timezone == "Europe/Berlin"


def test_twenty_thousand_addresses_are_accepted_past_the_ordinary_body_limit(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    lines = ["email,name,timezone"]
    lines += [f"{e},Someone,Europe/London" for e in FABRIKAM[:2]]
    lines += [  # on another domain: refused, so the test sends no 20,000 requests
        f"person.number.{i}@elsewhere.example,Person Number {i} of Sales and Business "
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


# --- the summary of a long list ----------------------------------------------------------------


def five_thousand_lines() -> str:
    """A directory export of 5,000 lines: 3 people, the rest in four kinds of trouble (an
    address without an account is no trouble: it becomes a directory person)."""
    lines = ["email,name,timezone"]
    lines += [f"{e},Known {i},Europe/London" for i, e in enumerate(FABRIKAM[:3])]
    for i in range(4997):
        kind = i % 4
        if kind == 0:
            lines.append(f"{FABRIKAM[i % 3]},Again {i},")
        elif kind == 1:
            lines.append(f"elsewhere.{i}@contoso.example,Else {i},")
        elif kind == 2:
            lines.append(f"zone.{i}@fabrikam.example,Zone {i},Mars/Base{i}")
        else:
            lines.append(f'=HYPERLINK("x") {i},Broken {i},')
    return "\n".join(lines)


def test_a_five_thousand_line_list_answers_with_a_summary_and_a_download(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    posted = auth.post(
        f"{PAGE}{link.id}/link",
        {"mode": "list", "pasted": five_thousand_lines()},
        form_page=f"{PAGE}{link.id}/link",
    )
    assert posted.status_code == 303  # redirect after POST: a refresh shows, never re-sends
    summary_url = posted.headers["Location"]
    page = client.get(summary_url).get_data(as_text=True)
    assert "3 mailboxes requested, 4,997 not used" in page
    for reason, count in (
        ("Listed more than once", "1,250"),
        ("Not on fabrikam.example", "1,249"),
        ("Unknown time zone", "1,249"),
        ("Not a valid email address", "1,249"),
    ):
        row = re.search(rf"<th scope=\"row\">{reason}[^<]*</th>\s*<td class=\"num\">([\d,]+)", page)
        assert row and row.group(1) == count, reason
    # The first lines of each reason, not 5,000 rows.
    assert page.count('<li><span class="muted">line') == 4 * 5
    assert page.count("<tr>") < 10 and len(page) < 40_000
    # Reloading the summary sends nothing again.
    client.get(summary_url)
    assert len(rows(session, link)) == 3
    assert (
        session.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "ec.mailboxes_requested")
        )
        == 1
    )

    download = client.get(summary_url + "/unused.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    table = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0] == ["line", "entry", "reason"] and len(table) == 1 + 4997
    lines = [int(r[0]) for r in table[1:]]
    assert lines == sorted(lines) and lines[0] == 5  # line 1 is the header, 2-4 were linked
    broken = [r for r in table[1:] if r[2] == "not a valid email address"]
    assert broken[0][1].startswith("'=HYPERLINK")  # a spreadsheet will not run it
    zone = next(r for r in table[1:] if r[2].startswith("unknown time zone"))
    assert zone[1].startswith("zone.") and "Mars/Base" in zone[1]
    assert "ec.list_downloaded" in {e.action for e in session.scalars(select(AuditEntry)).all()}
    text = download.get_data(as_text=True)
    for secret in ("state", "token", "code="):
        assert secret not in text  # only what the admin wrote, and why


def test_another_organisations_summary_and_download_are_not_found(
    admin_client, session, sandbox, org, cipher
):
    client, auth = admin_client
    admin = session.scalar(select(User).where(User.email == "it@northwind.example"))
    neighbour = seed_neighbour(session, cipher, [admin])
    theirs = neighbour.ids["mailbox_list"]
    for path in (f"{PAGE}lists/{theirs}", f"{PAGE}lists/{theirs}/unused.csv"):
        response = client.get(path)
        assert response.status_code == 404
        assert not leaked(neighbour, response.get_data(as_text=True))
    # Their admin reads it (the same address, another organisation's account and password).
    other = client.application.test_client()
    AuthActions(other).login("it@northwind.example", NEIGHBOUR_PASSWORD)
    assert "Neighbour Line" in other.get(f"{PAGE}lists/{theirs}/unused.csv").get_data(as_text=True)
    assert other.get(f"{PAGE}lists/{theirs}").status_code == 200


def test_a_summary_is_kept_a_day_then_purged(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    posted = post_list(auth, link, pasted="nobody@fabrikam.example\nbad")
    summary_url = posted.request.path
    assert client.get(summary_url).status_code == 200
    assert list_summaries.purge(session) == 0
    # A day later (before the hourly purge runs) it is no longer shown...
    kept = session.scalars(select(MailboxList)).one()
    kept.created_at = utcnow() - list_summaries.TTL - timedelta(minutes=1)
    session.commit()
    for path in (summary_url, summary_url + "/unused.csv"):
        expired = client.get(path)
        assert expired.status_code == 404 and "no longer kept" in expired.get_data(as_text=True)
    # ...and the purge deletes it with its lines.
    assert list_summaries.purge(session) == 1
    assert session.scalar(select(func.count(MailboxListLine.id))) == 0
    assert client.get(summary_url).status_code == 404


def test_erasing_a_person_deletes_the_unused_lines_naming_them(
    app, admin_client, session, sandbox, org, cipher
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    person = users_on(session, org, ["dana.ivers@northwind.example"])[0]
    post_list(auth, link, pasted=f"Dana <{person.email}>\nkeep.me@elsewhere.example")
    reviewer_user = make_user(session, org, Role.COMPLIANCE, email="rev@northwind.example")
    reviewer = Actor(reviewer_user.id, reviewer_user.email, org.id, Role.COMPLIANCE)
    records = person_records(session, reviewer, person.id)
    assert [r["email"] for r in records["mailbox_list_line"]] == [person.email]
    proposal = erasure.propose_erasure(session, reviewer, person.id, "keep")
    admin = session.scalar(select(User).where(User.email == "it@northwind.example"))
    erasure.decide_erasure(
        session,
        None,
        cipher,
        Actor(admin.id, admin.email, org.id, Role.ADMIN),
        proposal.id,
        approve=True,
        confirm_role=Role.ADMIN,
        jobs=deps.jobs.of(app),
        typed_confirmation=person.email,
    )
    session.expire_all()
    assert [line.email for line in session.scalars(select(MailboxListLine)).all()] == [
        "keep.me@elsewhere.example"
    ]


def test_an_anonymous_request_keeps_the_ordinary_body_limit(app, client, session, org):
    big = {"mode": "list", "pasted": "a@fabrikam.example\n" * (3 * 1024 * 1024 // 19)}
    response = client.post(f"{PAGE}1/link", data=big)
    assert response.status_code == 413  # refused before the form is read, no page of ours
    assert "Link mailboxes" not in response.get_data(as_text=True)
