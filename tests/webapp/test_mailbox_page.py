"""The Enterprise Connect page at scale: a paginated mailbox table whose rows and "Retry
failed" button follow the answers, redirect after every POST, and confirmations that name what
unlinking a mailbox or disconnecting a domain will do."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from models import (
    AuditEntry,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    PendingRevocation,
    ProfileLink,
    utcnow,
)
from tests.conftest import csrf_token, refresh_status
from tests.tenants import leaked, seed_neighbour
from tests.webapp.test_enterprise import (
    FABRIKAM,
    PAGE,
    connect_domain,
    request_list,
    rows,
    users_on,
)


def add_rows(session, link, count, status=MailboxStatus.FAILED, prefix="bulk"):
    session.add_all(
        MailboxRequest(
            service_account_link_id=link.id,
            organisation_id=link.organisation_id,
            email=f"{prefix}.{i:04d}@fabrikam.example",
            status=status,
            error_key="unknown_mailbox" if status is MailboxStatus.FAILED else None,
        )
        for i in range(count)
    )
    session.commit()


def table_rows(page: str) -> list[str]:
    body = page.split('<tbody data-role="rows">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<th scope="row">([^<]+)</th>', body)


def test_the_mailbox_table_is_paginated_and_keeps_its_filter(admin_client, session, sandbox):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    add_rows(session, link, 120)
    first = client.get(PAGE).get_data(as_text=True)
    assert len(table_rows(first)) == 50 and "Page 1 of 3" in first
    assert table_rows(first)[0] == "bulk.0000@fabrikam.example"
    last = client.get(f"{PAGE}?domain={link.id}&page=3").get_data(as_text=True)
    assert table_rows(last) == [f"bulk.{i:04d}@fabrikam.example" for i in range(100, 120)]
    assert "Page 3 of 3" in last and 'rel="next"' not in last
    # Past the end shows the last page; nonsense shows the first.
    assert "Page 3 of 3" in client.get(f"{PAGE}?domain={link.id}&page=99").get_data(as_text=True)
    assert "Page 1 of 3" in client.get(f"{PAGE}?domain={link.id}&page=-1").get_data(as_text=True)
    # The filter travels with the pages.
    filtered = client.get(f"{PAGE}?q=bulk.00&status=failed").get_data(as_text=True)
    assert "Page 1 of 2" in filtered and "100 mailboxes matching" in filtered
    assert "status=failed" in filtered.split('rel="next"')[0].rsplit("href=", 1)[1]


def test_rows_and_retry_follow_the_answers(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    sandbox.call("PUT", "/mailbox-failures", json={"mailboxes": {FABRIKAM[2]: "mailbox_locked"}})
    request_list(auth, link, FABRIKAM[:3])
    page = client.get(PAGE).get_data(as_text=True)
    assert page.count('<span class="badge">Pending</span>') == 3
    assert re.search(r'data-role="retry"\s+disabled', page)
    progress = re.search(r'data-progress-url="([^"]+)"', page).group(1).replace("&amp;", "&")

    waiting = client.get(progress).get_json()
    assert waiting["waiting"] == 3 and waiting["rows"].count("Pending") == 3
    sandbox.deliver()
    answered = client.get(progress).get_json()
    assert answered["linked"] == 2 and answered["failed"] == 1
    assert answered["rows"].count("badge-success") == 2 and "mailbox_locked" in answered["rows"]
    assert "Pending" not in answered["rows"]
    # Without JavaScript, the Refresh link shows the same.
    refreshed = client.get(PAGE).get_data(as_text=True)
    assert 'Retry failed<span data-role="retry-count"> (1)' in refreshed
    assert not re.search(r'data-role="retry"\s+disabled', refreshed)
    # The counts alone, as before, without the rows.
    assert "rows" not in client.get(f"{PAGE}{link.id}/progress").get_json()


def test_every_post_redirects_so_a_refresh_never_sends_it_again(
    app, admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    request_list(auth, link, FABRIKAM[:2])
    sandbox.deliver()
    row = rows(session, link)[FABRIKAM[0]]
    posts = {
        rule.endpoint: rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("enterprise.") and "POST" in rule.methods
    }
    bodies = {
        "enterprise.start_connect": ({"provider": "exchange"}, {}),
        "enterprise.request_mailboxes": ({"mode": "list", "pasted": FABRIKAM[1]}, {}),
        "enterprise.request_rooms": ({"rooms": ["nowhere@fabrikam.example"]}, {}),
        "enterprise.retry": ({}, {}),
        "enterprise.relink": ({}, {"request_id": row.id}),
        "enterprise.unlink": ({"confirm": "yes"}, {"request_id": row.id}),
        "enterprise.disconnect": ({"confirm": "yes"}, {}),
        "enterprise.retry_revocation": ({}, {"revocation_id": 999_999}),
        "enterprise.resolved_revocation": ({}, {"revocation_id": 999_999}),
        "enterprise.reset": ({"confirm": "reset"}, {}),
    }
    assert set(posts) == set(bodies), "a new POST route needs its redirect checked here"
    order = [e for e in bodies if e != "enterprise.reset"] + ["enterprise.reset"]
    for endpoint in order:
        data, args = bodies[endpoint]
        values = {"link_id": link.id, **args}
        path = posts[endpoint].build(
            {k: v for k, v in values.items() if k in posts[endpoint].arguments}
        )[1]
        response = client.post(path, data={"csrf_token": csrf_token(client, PAGE), **data})
        if "revocation" in endpoint:
            assert response.status_code == 404, endpoint  # no such revocation: nothing to do
            continue
        assert response.status_code == 303, (endpoint, response.status_code)
        location = response.headers["Location"]
        if endpoint == "enterprise.start_connect":
            assert "/enterprise_connect/oauth/authorize?" in location  # off to the aggregator
            continue
        landed = client.get(location)
        assert landed.status_code == 200, endpoint  # a refresh reloads this GET
    assert session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "ec.reset"))


def test_unlinking_confirms_first_and_names_what_happens(admin_client, session, sandbox, org):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:2])
    request_list(auth, link, FABRIKAM[:2])
    sandbox.deliver()
    row = rows(session, link)[FABRIKAM[0]]
    page = client.get(PAGE).get_data(as_text=True)
    assert f'href="/admin/calendar/enterprise/mailboxes/{row.id}/unlink"' in page
    confirm = client.get(f"{PAGE}mailboxes/{row.id}/unlink").get_data(as_text=True)
    assert f"Unlink {FABRIKAM[0]}?" in confirm and "1 mailbox and nothing else" in confirm
    assert "revokes its access" in confirm and "deletes its tokens" in confirm
    # A POST that did not come from the confirmation changes nothing.
    skipped = client.post(
        f"{PAGE}mailboxes/{row.id}/unlink", data={"csrf_token": csrf_token(client, PAGE)}
    )
    assert skipped.status_code == 303 and skipped.headers["Location"].endswith(
        f"/mailboxes/{row.id}/unlink"
    )
    assert rows(session, link)[FABRIKAM[0]].status is MailboxStatus.LINKED
    done = client.post(
        f"{PAGE}mailboxes/{row.id}/unlink",
        data={"csrf_token": csrf_token(client, PAGE), "confirm": "yes"},
    )
    assert done.status_code == 303
    assert rows(session, link)[FABRIKAM[0]].status is MailboxStatus.UNLINKED
    assert not session.get(ProfileLink, row.profile_link_id).has_tokens
    # Nothing left to unlink: the confirmation says so instead of offering it again.
    again = client.get(f"{PAGE}mailboxes/{row.id}/unlink")
    assert again.status_code == 404


def test_disconnecting_confirms_first_with_mailboxes_and_rooms_counted(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:3])
    request_list(auth, link, FABRIKAM[:3])
    sandbox.deliver()
    add_rows(session, link, 2, MailboxStatus.PENDING, prefix="waiting")
    session.add(
        MailboxRequest(
            service_account_link_id=link.id,
            organisation_id=link.organisation_id,
            email="room.havel@fabrikam.example",
            kind=MailboxKind.ROOM,
            display_name="Havel",
            resource_sub="res_havel",
            status=MailboxStatus.LINKED,
        )
    )
    session.commit()
    confirm = client.get(f"{PAGE}{link.id}/disconnect").get_data(as_text=True)
    assert "This affects 5 mailboxes and 1 room of fabrikam.example" in confirm
    assert "3 linked mailboxes are unlinked" in confirm
    assert "1 linked room is unlinked" in confirm
    assert "2 requests still waiting for an answer are cancelled" in confirm
    assert "Disconnect fabrikam.example (3 mailboxes, 1 room)" in confirm
    skipped = client.post(
        f"{PAGE}{link.id}/disconnect", data={"csrf_token": csrf_token(client, PAGE)}
    )
    assert skipped.status_code == 303 and skipped.headers["Location"].endswith("/disconnect")
    assert rows(session, link)[FABRIKAM[0]].status is MailboxStatus.LINKED


def test_another_organisations_rows_and_confirmations_are_not_found(
    admin_client, session, sandbox, org, cipher
):
    client, auth = admin_client
    connect_domain(client, auth, session, sandbox)
    neighbour = seed_neighbour(session, cipher, list(users_on(session, org, FABRIKAM[:1])))
    theirs_link = neighbour.ids["service_account_link"]
    theirs_row = neighbour.ids["mailbox_request"]
    for path in (
        f"{PAGE}{theirs_link}/progress?rows=1",
        f"{PAGE}{theirs_link}/disconnect",
        f"{PAGE}mailboxes/{theirs_row}/unlink",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert not leaked(neighbour, response.get_data(as_text=True))
    posted = client.post(
        f"{PAGE}mailboxes/{theirs_row}/unlink",
        data={"csrf_token": csrf_token(client, PAGE), "confirm": "yes"},
    )
    assert posted.status_code == 404
    assert session.get(MailboxRequest, theirs_row).status is MailboxStatus.FAILED


def _article(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</article>", start)]


def test_the_guides_match_todays_providers(admin_client):
    client, _ = admin_client
    page = client.get(PAGE).get_data(as_text=True)
    o365 = _article(page, "guide-o365")
    exchange = _article(page, "guide-exchange")
    google = _article(page, "guide-google")
    # Exchange Online: admin consent only, never the retired impersonation role.
    assert "Microsoft 365 / Office 365</h3>" in o365
    assert "retired the ApplicationImpersonation role in Exchange Online" in o365
    assert "New-ManagementRoleAssignment" not in o365 and "E3 (or higher) licence" not in page
    assert "Global Administrator" in o365 and "Connect Microsoft 365 / Office 365" in o365
    # On-premises Exchange keeps the impersonation guide.
    assert "Exchange (on-premises)</h3>" in exchange and "Office 365 over EWS" not in page
    assert "-Role ApplicationImpersonation" in exchange
    # Google Workspace: the Marketplace app, for the domain or organisational units.
    assert "Google Workspace Marketplace" in google and "organisational units" in google
    # Nowhere is Office 365 named on its own.
    assert not re.search(r"(?<!Microsoft 365 / )Office 365", page)


def test_the_consent_helper_says_where_the_app_id_is_and_shows_the_link_beside_it(
    app, admin_client
):
    client, _ = admin_client
    app_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    page = client.get(PAGE).get_data(as_text=True)
    o365 = _article(page, "guide-o365")
    assert "Application ID" in o365 and "Enterprise applications" in o365
    assert "RENDEZVOUS_MICROSOFT_APP_ID" in o365 and "Tenant ID" in o365
    made = client.get(PAGE + f"?tenant=contoso.onmicrosoft.com&app_id={app_id}")
    o365 = _article(made.get_data(as_text=True), "guide-o365")
    form = o365[o365.index('class="ec-consent"') : o365.index("</form>")]
    # The link is inside the helper's own form, right after its fields, not elsewhere.
    assert (
        f'href="https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent'
        f'?client_id={app_id}"' in form
    )
    assert f'value="{app_id}"' in form  # the fields keep what was entered
    bad = _article(
        client.get(PAGE + "?tenant=contoso.example&app_id=nope").get_data(as_text=True),
        "guide-o365",
    )
    assert "The application id is a GUID" in bad and "adminconsent" not in bad
    # Configured by whoever runs Rendezvous: no field, the id is shown instead.
    app.config["MICROSOFT_APP_ID"] = app_id
    configured = _article(client.get(PAGE).get_data(as_text=True), "guide-o365")
    assert 'name="app_id"' not in configured and app_id in configured


def test_odd_page_numbers_show_a_page_not_an_error(admin_client, session, sandbox):
    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    add_rows(session, link, 60)
    for raw in ("²", "9" * 5000, "-3", "1.5", "", "0"):
        page = client.get(PAGE, query_string={"domain": link.id, "page": raw})
        assert page.status_code == 200, raw
        rows_ = client.get(f"{PAGE}{link.id}/progress", query_string={"rows": 1, "page": raw})
        assert rows_.status_code == 200 and rows_.get_json()["page"] in (1, 2), raw


def test_unlinking_while_the_service_is_down_queues_the_revocation_until_it_is_done(
    app, admin_client, session, sandbox, org
):
    """The mailbox's tokens go at once; its authorization, which the service did not revoke,
    waits with its token in the revocation queue until the service takes it."""
    from webapp import deps
    from webapp.services import credentials, revocations

    client, auth = admin_client
    link = connect_domain(client, auth, session, sandbox)
    users_on(session, org, FABRIKAM[:1])
    request_list(auth, link, FABRIKAM[:1])
    sandbox.deliver()
    row = rows(session, link)[FABRIKAM[0]]
    profile = session.get(ProfileLink, row.profile_link_id)
    creds = credentials.load_credentials(profile, deps.cipher.of(app))
    sandbox.add_fault(method="POST", path="/oauth/token/revoke", status=503, count=50)
    done = client.post(
        f"{PAGE}mailboxes/{row.id}/unlink",
        data={"csrf_token": csrf_token(client, PAGE), "confirm": "yes"},
    )
    assert done.status_code == 303
    session.expire_all()
    assert not session.get(ProfileLink, row.profile_link_id).has_tokens
    queued = session.scalars(
        select(PendingRevocation).where(PendingRevocation.sub == profile.sub)
    ).all()
    assert [(q.reason, q.refresh_token is not None) for q in queued] == [("ec.unlinked", True)]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "ec.unlinked")).one()
    assert entry.detail["revocation_queued"] is True

    sandbox.call("DELETE", "/faults")
    later = utcnow() + timedelta(hours=2)  # past the back-off of the attempt made meanwhile
    revocations.run(session, deps.broker.of(app), cipher=deps.cipher.of(app), now=later)
    session.expire_all()
    assert (
        session.scalar(select(PendingRevocation).where(PendingRevocation.sub == profile.sub))
        is None
    )
    assert refresh_status(sandbox, creds.refresh_token) == 400
