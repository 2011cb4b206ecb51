"""Linking a calendar again after any reset, unlink or disconnect, through either mode.

A disconnected link keeps its row (its ids keep the interviews it wrote cancellable), and with it
the aggregator account's ``sub``, which is unique. Linking the same account again — by the person
through Business Connect or by the IT admin through Enterprise Connect — must take that row over,
not trip over it, and end with a calendar that works: a normal page, never a 500."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from models import (
    AuditEntry,
    LinkMode,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    ServiceAccountLink,
)
from tests.conftest import AuthActions
from tests.factories import make_user
from webapp import deps
from webapp.services import connect, credentials

EC = "/admin/calendar/enterprise/"
RILEY = "riley.chen@northwind.example"
GOOGLE_ADMIN = "alex.kim@northwind.example"


@pytest.fixture
def logged_in(app, session, org, sandbox, live_server):
    """Riley (recruiter) and an IT admin, each logged in in their own browser; the aggregator
    can call the live app back (Enterprise Connect's per-mailbox callbacks)."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    riley = make_user(session, org, Role.RECRUITER, email=RILEY, name="Riley Chen")
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    browsers = {}
    for user in (riley, admin):
        client = app.test_client()
        AuthActions(client).login(user.email)
        browsers[user.email] = (client, AuthActions(client))
    return riley, browsers[RILEY], browsers[admin.email]


def follow(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def business_connect(browser, sandbox):
    """Riley links her own Google account; returns the page she lands on after the redirect."""
    client, auth = browser
    start = auth.post(
        "/profile/calendar/connect", {"provider": "google"}, form_page="/profile/calendar/"
    )
    assert start.status_code == 303, start.get_data(as_text=True)
    back = follow(client, sandbox.consent(start.headers["Location"], RILEY).redirect_url)
    return back, client.get("/profile/calendar/")


def enterprise_link(admin, session, sandbox) -> ServiceAccountLink:
    """The IT admin connects northwind.example (Google Workspace) and links Riley's mailbox."""
    client, auth = admin
    start = auth.post(EC + "connect", {"provider": "google"}, form_page=EC)
    assert start.status_code == 303, start.get_data(as_text=True)
    back = follow(client, sandbox.consent(start.headers["Location"], GOOGLE_ADMIN).redirect_url)
    assert back.status_code == 302, back.get_data(as_text=True)
    session.expire_all()
    domain = session.scalar(
        select(ServiceAccountLink).where(ServiceAccountLink.domain == "northwind.example")
    )
    sent = auth.post(
        f"{EC}{domain.id}/link",
        {"mode": "list", "pasted": RILEY},
        form_page=f"{EC}{domain.id}/link",
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)  # to the list's summary
    sandbox.deliver()
    return domain


def riley_link(session, riley) -> ProfileLink:
    session.expire_all()
    links = session.scalars(select(ProfileLink).where(ProfileLink.user_id == riley.id)).all()
    live = [lk for lk in links if lk.status is not LinkStatus.DISCONNECTED]
    assert len(live) <= 1, [(lk.mode, lk.status) for lk in links]
    return live[0] if live else links[-1]


def assert_works(app, session, sandbox, riley, mode: LinkMode) -> ProfileLink:
    """Riley's link is active in ``mode`` and its stored token reads her calendars."""
    link = riley_link(session, riley)
    assert (link.mode, link.status) == (mode, LinkStatus.ACTIVE)
    creds = credentials.load_credentials(link, deps.cipher.of(app))
    account = requests.get(
        sandbox.url + "/v1/account",
        timeout=5,
        headers={"Authorization": f"Bearer {creds.access_token}"},
    )
    assert account.status_code == 200 and account.json()["account"]["email"] == RILEY
    assert link.target_calendar_id or mode is LinkMode.ENTERPRISE
    assert session.scalar(select(ProfileLink).where(ProfileLink.sub == link.sub)).id == link.id
    return link


def end_enterprise(how: str, admin, session, domain: ServiceAccountLink) -> None:
    client, auth = admin
    if how == "unlink":
        row = session.scalar(select(MailboxRequest).where(MailboxRequest.email == RILEY))
        response = auth.post(
            f"{EC}mailboxes/{row.id}/unlink",
            {"confirm": "yes"},
            form_page=f"{EC}mailboxes/{row.id}/unlink",
        )
    elif how == "disconnect":
        response = auth.post(
            f"{EC}{domain.id}/disconnect",
            {"confirm": "yes"},
            form_page=f"{EC}{domain.id}/disconnect",
        )
    else:
        response = auth.post(EC + "reset", {"confirm": "reset"}, form_page=EC + "reset")
    assert response.status_code in (302, 303), response.get_data(as_text=True)


@pytest.mark.parametrize("how", ["reset", "disconnect", "unlink"])
def test_business_connect_after_the_enterprise_link_ended(app, session, sandbox, logged_in, how):
    riley, browser, admin = logged_in
    domain = enterprise_link(admin, session, sandbox)
    assert_works(app, session, sandbox, riley, LinkMode.ENTERPRISE)
    end_enterprise(how, admin, session, domain)
    assert riley_link(session, riley).status is LinkStatus.DISCONNECTED

    back, page = business_connect(browser, sandbox)
    assert back.status_code == 302, back.get_data(as_text=True)[:2000]
    assert back.headers["Location"].endswith("/profile/calendar/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "is connected" in text and "Writable" in text
    link = assert_works(app, session, sandbox, riley, LinkMode.BUSINESS)
    # The one row of that account was taken over, so the interviews it wrote stay cancellable.
    assert session.scalars(select(ProfileLink).where(ProfileLink.user_id == riley.id)).all() == [
        link
    ]
    entry = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_type == "profile_link", AuditEntry.target_id == str(link.id))
        .order_by(AuditEntry.id.desc())
    ).first()
    assert entry.action == "calendar.relinked" and entry.detail["mode"] == "business"


@pytest.mark.parametrize("how", ["disconnect", "reset"])
def test_enterprise_link_after_business_connect_ended(app, session, sandbox, logged_in, how):
    riley, browser, admin = logged_in
    back, _page = business_connect(browser, sandbox)
    assert back.status_code == 302
    assert_works(app, session, sandbox, riley, LinkMode.BUSINESS)
    if how == "disconnect":
        client, auth = browser
        done = auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    else:
        client, auth = admin
        done = auth.post(
            "/admin/calendar/business/reset",
            {"confirm": "reset"},
            form_page="/admin/calendar/business/reset",
        )
    assert done.status_code in (200, 302, 303), done.get_data(as_text=True)
    assert riley_link(session, riley).status is LinkStatus.DISCONNECTED

    enterprise_link(admin, session, sandbox)
    session.expire_all()
    row = session.scalar(select(MailboxRequest).where(MailboxRequest.email == RILEY))
    assert row.status is MailboxStatus.LINKED, (row.status, row.error_key)
    link = assert_works(app, session, sandbox, riley, LinkMode.ENTERPRISE)
    assert row.profile_link_id == link.id
    client, _auth = browser
    page = client.get("/profile/calendar/")
    assert page.status_code == 200 and "Linked by your organisation" in page.get_data(as_text=True)


def test_domain_disconnected_then_linked_again(app, session, sandbox, logged_in):
    riley, browser, admin = logged_in
    domain = enterprise_link(admin, session, sandbox)
    end_enterprise("disconnect", admin, session, domain)
    again = enterprise_link(admin, session, sandbox)
    assert again.id == domain.id and again.status is LinkStatus.ACTIVE
    session.expire_all()
    row = session.scalar(select(MailboxRequest).where(MailboxRequest.email == RILEY))
    assert row.status is MailboxStatus.LINKED, (row.status, row.error_key)
    assert_works(app, session, sandbox, riley, LinkMode.ENTERPRISE)
    client, _auth = admin
    assert client.get(EC).status_code == 200


def test_round_trip_enterprise_business_enterprise_business(app, session, sandbox, logged_in):
    """Either mode after the other, twice over: always one row for the account, always working."""
    riley, browser, admin = logged_in
    for _ in range(2):
        enterprise_link(admin, session, sandbox)
        assert_works(app, session, sandbox, riley, LinkMode.ENTERPRISE)
        end_enterprise("reset", admin, session, None)
        back, _page = business_connect(browser, sandbox)
        assert back.status_code == 302, back.get_data(as_text=True)[:2000]
        assert_works(app, session, sandbox, riley, LinkMode.BUSINESS)
        client, auth = browser
        auth.post("/profile/calendar/disconnect", form_page="/profile/calendar/disconnect")
    assert (
        len(session.scalars(select(ProfileLink).where(ProfileLink.user_id == riley.id)).all()) == 1
    )


def test_a_link_made_meanwhile_by_another_request_is_taken_over(
    app, session, sandbox, logged_in, monkeypatch
):
    """Two tabs finishing the same consent at once: the slower one finds the account's row
    only when its insert fails, and takes that row over instead of answering 500."""
    riley, browser, _admin = logged_in
    client, auth = browser
    start = auth.post(
        "/profile/calendar/connect", {"provider": "google"}, form_page="/profile/calendar/"
    )
    redirect_url = sandbox.consent(start.headers["Location"], RILEY).redirect_url
    sub = sandbox.identity(RILEY)["sub"]
    original = connect.link_of

    def other_request_links_first(db, user_id):
        seen = original(db, user_id)  # what this request read: no link yet
        monkeypatch.setattr(connect, "link_of", original)
        with deps.database.of(app).sessions() as other:  # the other tab commits now
            other.add(
                ProfileLink(
                    organisation_id=riley.organisation_id,
                    user_id=riley.id,
                    mode=LinkMode.BUSINESS,
                    sub=sub,
                    status=LinkStatus.ACTIVE,
                )
            )
            other.commit()
        return seen

    monkeypatch.setattr(connect, "link_of", other_request_links_first)
    back = follow(client, redirect_url)
    assert back.status_code == 302, back.get_data(as_text=True)[:2000]
    assert connect.link_of is original  # the race really was run
    link = assert_works(app, session, sandbox, riley, LinkMode.BUSINESS)
    assert session.scalars(select(ProfileLink).where(ProfileLink.user_id == riley.id)).all() == [
        link
    ]
