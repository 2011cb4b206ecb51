"""The recruiter's self-scheduling links told apart: the candidate's name and the title kept
encrypted on the link (AES-GCM bound to the row), shown decrypted only to the recruiter who made
the link, in their own organisation; times in the recruiter's zone; the link copied again while
open; emailed to the candidate from the form (or the API) without the token reaching a log or the
audit trail; covered by the compliance inventory, the candidate lookup, subject export and
erasure."""

from __future__ import annotations

import email
import hashlib
import logging
import re
from email import policy
from html import unescape

import pytest
from sqlalchemy import select, text

from models import AuditEntry, Role, SchedulingLink
from tests.api.conftest import ApiClient, issue_token
from tests.factories import make_user
from tests.tenants import seed_neighbour
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.test_candidate_links import EMAIL, NAME, new_link
from tests.webapp.test_scheduling import actor_of
from webapp import deps
from webapp.services import candidate_links
from webapp.services.link_details import LinkDetails, open_details, seal_details

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

TITLE = "Interview with Northwind (cand-title-4411)"
URL_RE = re.compile(r'id="link-url-(\d+)" class="copy" readonly value="([^"]+)"')


def test_the_list_tells_links_apart_in_the_recruiters_zone_and_only_for_them(
    app, client, auth, session, sandbox, org, recruiter, panel
):
    recruiter.timezone = "America/Los_Angeles"
    session.commit()
    first, first_token = new_link(app, session, recruiter, panel)
    second, _token = new_link(
        app,
        session,
        recruiter,
        panel,
        candidate_name="Robin Zhou",
        candidate_email="robin.zhou@mail.example",
        title="Portfolio review (title-8812)",
    )
    candidate_links.revoke(session, actor_of(recruiter), second.id)

    # Nothing readable in the row: the name, address, title and token are encrypted.
    row = repr(tuple(session.execute(text(f"SELECT * FROM scheduling_link WHERE id={first.id}"))))
    for plain in (NAME, EMAIL, "cand-title-4411", first_token):
        assert plain not in row

    auth.login(recruiter.email)
    page = client.get("/schedule/links/").get_data(as_text=True)
    assert NAME in page and "cand-title-4411" in page
    assert "Robin Zhou" in page and "Portfolio review (title-8812)" in page
    assert "America/Los_Angeles" in page
    from zoneinfo import ZoneInfo

    la = ZoneInfo("America/Los_Angeles")
    for moment in (first.expires_at, first.window_start, first.window_end):
        assert moment.astimezone(la).strftime("%a %d %b %Y, %H:%M") in page
    assert "UTC" not in page.split('id="links-heading"')[1]
    # The open link can be copied again; the revoked one offers no link any more.
    urls = dict(URL_RE.findall(page))
    assert list(urls) == [str(first.id)]
    assert unescape(urls[str(first.id)]).endswith(f"/c/{first_token}")
    assert 'data-copy="link-url-' in page and "copy.js" in page
    assert "<script>" not in page  # strict CSP: the script is a static file
    assert client.get("/static/copy.js").status_code == 200

    # A colleague in the same organisation sees none of it.
    colleague = make_user(session, org, Role.RECRUITER, email="sam.lee@northwind.example")
    auth.logout()
    auth.login(colleague.email)
    other = client.get("/schedule/links/").get_data(as_text=True)
    assert NAME not in other and "cand-title-4411" not in other and first_token not in other


def test_a_neighbour_sharing_addresses_never_sees_the_names_and_vice_versa(
    app, client, auth, session, sandbox, org, recruiter, panel
):
    link, token = new_link(app, session, recruiter, panel)
    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    theirs = session.get(SchedulingLink, neighbour.ids["scheduling_link"])
    seal_details(
        deps.sealer.of(app),
        theirs,
        LinkDetails("Neighbour Candidate 5150", EMAIL, "Neighbour title 5150"),
    )
    session.commit()

    auth.login(recruiter.email)
    page = client.get("/schedule/links/").get_data(as_text=True)
    assert NAME in page and "5150" not in page

    from models import User

    maker = session.get(User, theirs.created_by_id)
    assert maker.organisation_id == neighbour.org.id
    api = ApiClient(client, issue_token(session, maker))
    listed = api.get("/scheduling-links").get_json()["items"]
    assert [(i["id"], i["candidate_name"], i["url"]) for i in listed] == [
        (theirs.id, "Neighbour Candidate 5150", None)
    ]
    assert NAME not in str(listed) and token not in str(listed)
    # The neighbour cannot revoke (or learn anything of) this organisation's link.
    assert api.post(f"/scheduling-links/{link.id}/revoke").status_code == 404

    # Details moved to another row do not open (the associated data binds them to the link).
    theirs.candidate_sealed = link.candidate_sealed
    assert open_details(deps.sealer.of(app), theirs) is None


def test_the_link_is_emailed_to_the_candidate_from_the_form_without_logging_the_token(
    smtp, app, client, auth, session, sandbox, org, recruiter, panel, caplog
):
    caplog.set_level(logging.DEBUG)
    auth.login(recruiter.email)
    response = auth.post(
        "/schedule/links/",
        {
            "panel": [str(link.id) for _u, link in panel],
            "candidate_name": NAME,
            "candidate_email": EMAIL,
            "candidate_tzid": "America/New_York",
            "title": TITLE,
            "duration": "60",
            "start_date": next_weekday(1).isoformat(),
            "days": "3",
            "expires_days": "7",
            "email_candidate": "on",
        },
        form_page="/schedule/links/",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    shown = response.get_data(as_text=True)
    url = unescape(re.search(r'id="new-link-url" class="copy" readonly value="([^"]+)"', shown)[1])
    token = url.rsplit("/", 1)[1]
    assert f"on its way to {EMAIL}" in shown

    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == [EMAIL]
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"].strip() == f"Choose a time for your interview: {TITLE}"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert url in plain and f'href="{url}"' in html
    assert f"Hello {NAME}" in plain and "60 minutes" in plain and "America/New_York" in plain
    assert "Riley Chen" in plain and org.name in plain

    [sent] = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.sent")).all()
    assert sent.target_type == "scheduling_link"
    assert sent.detail == {
        "kind": "scheduling_link",
        "recipient_hash": hashlib.sha256(EMAIL.encode()).hexdigest(),
    }
    created = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "scheduling_link.created")
    )
    assert created.detail["emailed"] is True
    trail = " ".join(repr((e.detail, e.target_label)) for e in session.scalars(select(AuditEntry)))
    assert token not in trail and EMAIL not in trail
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert token not in logged and EMAIL not in logged


def test_without_the_box_ticked_nothing_is_emailed_and_the_api_can_ask_for_it(
    smtp, app, client, auth, session, sandbox, org, recruiter, panel
):
    new_link(app, session, recruiter, panel)
    assert smtp.envelopes == []
    api = ApiClient(client, issue_token(session, recruiter))
    created = api.post(
        "/scheduling-links",
        json={
            "panel": [link.id for _u, link in panel],
            "start_date": next_weekday(1).isoformat(),
            "candidate_name": "Robin Zhou",
            "candidate_email": "robin.zhou@mail.example",
            "title": "Portfolio review",
            "email_candidate": True,
        },
    )
    assert created.status_code == 201, created.get_json()
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["robin.zhou@mail.example"]
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    assert created.get_json()["url"] in message.get_body(("plain",)).get_content()
    bad = api.post(
        "/scheduling-links",
        json={
            "panel": [link.id for _u, link in panel],
            "candidate_name": "R",
            "candidate_email": "r@mail.example",
            "title": "T",
            "email_candidate": "sometimes",
        },
    )
    assert bad.status_code == 422 and len(smtp.envelopes) == 1


@pytest.fixture
def reviewer(session, org):
    return make_user(session, org, Role.COMPLIANCE, email="jordan@northwind.example")


def test_compliance_inventory_lookup_export_and_erasure_cover_the_link_details(
    app, client, auth, session, sandbox, org, recruiter, panel, reviewer
):
    from webapp.services.compliance import erasure, inventory, subjects

    link, _token = new_link(app, session, recruiter, panel)
    neighbour = seed_neighbour(session, deps.cipher.of(app), [recruiter])
    theirs = session.get(SchedulingLink, neighbour.ids["scheduling_link"])
    seal_details(deps.sealer.of(app), theirs, LinkDetails("N", EMAIL, "T"))
    session.commit()
    me = actor_of(reviewer)

    columns = {
        c.name: c
        for t in inventory.inventory(session, me)
        if t.name == "scheduling_link"
        for c in t.columns
    }
    assert columns["candidate_sealed"].category == "personal-encrypted"
    assert (
        columns["candidate_sealed"].encrypted and "purged" in columns["candidate_sealed"].retention
    )
    assert columns["token_sealed"].encrypted
    assert columns["candidate_email_hash"].hashed

    # The candidate's address finds their link in this organisation only, shown encrypted.
    found = subjects.email_records(session, me, EMAIL.upper())
    [row] = found["scheduling_link"]
    assert row["id"] == link.id and row["candidate_sealed"] == "encrypted (AES-256-GCM)"
    assert row["token_sealed"] == "encrypted" and NAME not in str(found)

    # The recruiter's subject export lists the links they made, details encrypted.
    exported = subjects.export_subject(session, me, recruiter.id)
    assert [r["id"] for r in exported["records"]["scheduling_link"]] == [link.id]

    # A person with an account at the candidate's address is erased: the link made for that
    # address goes (found by its hash), in this organisation only.
    person = make_user(session, org, Role.RECRUITER, email=EMAIL)
    ours_id, theirs_id = link.id, theirs.id
    receipt = erasure._erase(session, None, deps.cipher.of(app), person, "keep")
    session.commit()
    assert receipt.get("scheduling_link_deleted") == 1
    session.expire_all()
    assert session.get(SchedulingLink, ours_id) is None
    assert session.get(SchedulingLink, theirs_id) is not None


def test_a_used_link_keeps_no_token_and_offers_no_copy(
    app, client, auth, session, sandbox, org, recruiter, panel
):
    from tests.webapp.test_mail import book_through_link

    link, token = new_link(app, session, recruiter, panel)
    assert session.get(SchedulingLink, link.id).token_sealed is not None
    book_through_link(client, token)
    session.expire_all()
    used = session.get(SchedulingLink, link.id)
    assert used.used_at is not None and used.token_sealed is None
    assert open_details(deps.sealer.of(app), used).name == NAME  # still told apart
    auth.login(recruiter.email)
    page = client.get("/schedule/links/").get_data(as_text=True)
    assert NAME in page and token not in page and 'id="link-url-' not in page
