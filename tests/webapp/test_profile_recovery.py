"""A disconnected calendar profile comes back the way the aggregator documents: the person signs
in again through its email or page, syncing resumes, ``change`` notifications come again and
``profile_connected`` is true. Rendezvous unblocks the link when the aggregator says so (on the
next change for the link's channel, or by the periodic check), only for the profile concerned;
an Enterprise Connect mailbox gets the IT admin's relink from the mailbox table."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from sqlalchemy import select

from broker.types import EventWrite
from models import Attention, LinkStatus, MailboxStatus, ProfileLink, Role
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, AuthActions
from tests.factories import make_user
from tests.held_jobs import HeldJobs
from tests.webapp import test_enterprise as ec
from tests.webapp.test_business_connect import actions, connect_as, creds_for, link_for
from webapp import deps
from webapp.services import credentials, profile_recovery
from webapp.services.errors import ServiceError

OTHER = "taylor.nguyen@northwind.example"


@pytest.fixture
def person(app, session, sandbox, live_server, riley):
    """Riley's browser, with her calendar linked and the aggregator able to push to the app."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    assert [d["ok"] for d in sandbox.deliver()] == [True]  # the channel's verification
    return client, auth


def _types(delivered) -> list[tuple[str, bool]]:
    return [(d["body"]["notification"]["type"], d["ok"]) for d in delivered]


def _disconnect(sandbox, profile_id: str) -> list[tuple[str, bool]]:
    sandbox.call("POST", f"/profiles/{profile_id}/disconnect")
    return _types(sandbox.deliver())


def _run(app, name: str, *args):
    with app.app_context():
        return deps.jobs.of(app).enqueue(name, *args)


def test_signing_in_again_at_the_aggregator_unblocks_the_link_on_the_next_change(
    app, session, sandbox, riley, person
):
    client, _auth = person
    link = link_for(session, riley)
    assert _disconnect(sandbox, link.profile_id) == [("profile_disconnected", True)]
    link = link_for(session, riley)
    assert link.status is LinkStatus.NEEDS_ATTENTION
    assert link.attention is Attention.PROFILE_DISCONNECTED
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "Sign in again through the email the calendar service sent you" in page
    relink = re.search(r'<a href="([^"]+)" rel="noopener noreferrer">on its page</a>', page)
    assert relink and relink.group(1).startswith(sandbox.url + "/relink/google?email=")
    # Meanwhile the person's calendar changes; nothing syncs, nothing is pushed.
    sandbox.call(
        "POST",
        "/external-change",
        json={
            "email": riley.email,
            "action": "create",
            "summary": "Dentist",
            "start": "2031-01-06T10:00:00Z",
            "end": "2031-01-06T11:00:00Z",
        },
    )
    assert sandbox.deliver() == []
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION

    # The aggregator's relink page (what its email links to): syncing resumes with a change.
    password = sandbox.identity(riley.email)["password"]
    url = relink.group(1).replace("&amp;", "&")
    assert requests.post(url, data={"password": password}, timeout=10).status_code == 200
    assert _types(sandbox.deliver()) == [("change", True)]
    link = link_for(session, riley)
    assert link.status is LinkStatus.ACTIVE and link.attention is None
    assert "calendar.reconnected" in actions(session)
    assert "needs attention" not in client.get("/").get_data(as_text=True)
    assert "Connected calendar" in client.get("/profile/calendar/").get_data(as_text=True)


def test_the_periodic_check_unblocks_it_without_any_change(app, session, sandbox, riley, person):
    link = link_for(session, riley)
    _disconnect(sandbox, link.profile_id)
    assert _run(app, "calendar.recover_links") is not None
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION  # still disconnected
    sandbox.call("POST", f"/profiles/{link.profile_id}/reconnect")
    assert sandbox.deliver() == []  # nothing changed meanwhile: no change to hear of
    _run(app, "calendar.recover_links")
    assert link_for(session, riley).status is LinkStatus.ACTIVE
    assert actions(session).count("calendar.reconnected") == 1


def test_the_periodic_check_defers_instead_of_waiting_when_no_budget_is_left(
    app, session, sandbox, riley, person, monkeypatch
):
    link = link_for(session, riley)
    _disconnect(sandbox, link.profile_id)
    sandbox.call("POST", f"/profiles/{link.profile_id}/reconnect")
    limiter = deps.broker.of(app).rate_limiter
    with monkeypatch.context() as m:
        m.setattr(limiter, "try_acquire", lambda *a, **k: 30.0)  # the lane is full for 30 s
        m.setattr(limiter, "_sleep", lambda s: pytest.fail(f"slept {s} s for budget"))
        sandbox.call("DELETE", "/stats")
        recover = deps.jobs.of(app)._tasks["calendar.recover_links"]
        assert recover.call_local() == {"unreachable": 1}  # stops at once
        assert sandbox.stats()["requests"] == {}  # nothing sent: no 429 either
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION
    _run(app, "calendar.recover_links")  # the next run goes on
    assert link_for(session, riley).status is LinkStatus.ACTIVE


def test_a_link_marked_before_reasons_were_kept_is_checked_once(
    app, session, sandbox, riley, person
):
    link = link_for(session, riley)
    link.status, link.attention = LinkStatus.NEEDS_ATTENTION, None  # as 0017 leaves it
    session.commit()
    assert _run(app, "calendar.recover_links") is not None
    assert link_for(session, riley).status is LinkStatus.ACTIVE  # its profile is connected


def test_a_refused_authorization_is_not_checked_and_waits_for_the_person(
    app, client, auth, session, sandbox, riley
):
    auth.login(riley.email)
    connect_as(client, auth, sandbox, riley.email)
    creds = creds_for(app, session, riley)
    requests.post(
        sandbox.url + "/oauth/token/revoke",
        timeout=5,
        json={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "token": creds.refresh_token,
        },
    )
    link = link_for(session, riley)
    link.token_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    session.commit()
    page = client.get("/profile/calendar/").get_data(as_text=True)
    assert "needs to be reconnected" in page and "Sign in again through" not in page
    link = link_for(session, riley)
    assert link.status is LinkStatus.NEEDS_ATTENTION and link.attention is Attention.RECONNECT
    sandbox.call("DELETE", "/stats")
    _run(app, "calendar.recover_links")
    client.get("/profile/calendar/")
    assert sandbox.stats()["requests"] == {}, "nothing the aggregator could settle"
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION
    connect_as(client, auth, sandbox, riley.email)  # the person reconnects
    link = link_for(session, riley)
    assert link.status is LinkStatus.ACTIVE and link.attention is None


def test_a_notice_about_another_profile_of_the_account_leaves_the_link_alone(
    app, session, sandbox, riley, person
):
    link = link_for(session, riley)
    creds = creds_for(app, session, riley)
    # Taylor's calendar profile joins Riley's account (explicit linking with a link token).
    token = requests.post(
        sandbox.url + "/v1/link_tokens",
        timeout=5,
        headers={"Authorization": f"Bearer {creds.access_token}"},
    ).json()["link_token"]
    authorize = deps.broker.of(app).authorization_url(
        "http://localhost/profile/calendar/callback", "any-state", provider_name="google"
    )
    sandbox.consent(f"{authorize}&link_token={token}", OTHER)
    profiles = deps.broker.of(app).profiles(creds)
    [other] = [p for p in profiles if p.profile_id != link.profile_id]
    assert other.connected

    assert _disconnect(sandbox, other.profile_id) == [("profile_disconnected", True)]
    assert link_for(session, riley).status is LinkStatus.ACTIVE  # Riley's own profile is fine
    assert "calendar.needs_attention" not in actions(session)
    assert _disconnect(sandbox, link.profile_id) == [("profile_disconnected", True)]
    assert link_for(session, riley).status is LinkStatus.NEEDS_ATTENTION


def test_a_notice_naming_a_profile_is_taken_at_its_word(app, session, sandbox, riley, person):
    link = link_for(session, riley)
    sandbox.call("DELETE", "/stats")
    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    held = HeldJobs()

    def notice(profile_id):
        return profile_recovery.handle_push(
            session,
            broker,
            cipher,
            link.id,
            "profile_disconnected",
            channel_id=link.channel_id,
            profile_id=profile_id,
            first_time=lambda key: True,
            jobs=held,
        )

    assert notice("pro_someoneelse") == "ignored (another profile)"
    assert link_for(session, riley).status is LinkStatus.ACTIVE
    assert notice(link.profile_id) == "marked"
    assert sandbox.stats()["requests"] == {}
    assert link_for(session, riley).attention is Attention.PROFILE_DISCONNECTED
    assert held.queued == []  # named profiles need no check
    link_for(session, riley).status = LinkStatus.ACTIVE
    session.commit()
    assert notice(None) == "check"  # which profile? the aggregator is asked by a job
    assert held.queued == [("calendar.check_profile", (link.id,))]


def test_an_enterprise_mailbox_that_lost_access_is_relinked_from_the_mailbox_table(
    app, ec_admin, session, sandbox, org
):
    client, auth = ec_admin
    domain = ec.connect_domain(client, auth, session, sandbox)
    [person] = ec.users_on(session, org, ec.FABRIKAM[:1])
    ec.request_list(auth, domain, ec.FABRIKAM[:1])
    sandbox.deliver()
    link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == person.id))
    assert link.status is LinkStatus.ACTIVE and link.target_calendar_id
    sandbox.call("POST", f"/profiles/{link.profile_id}/disconnect")
    broker, cipher = deps.broker.of(app), deps.cipher.of(app)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    with pytest.raises(ServiceError):  # a write meets 423: the profile lost its credentials
        credentials.call_broker(
            session,
            broker,
            cipher,
            link,
            lambda creds, on_refresh: broker.upsert_event(
                creds,
                link.target_calendar_id,
                EventWrite("rdv-x", "x", start, start + dt.timedelta(hours=1)),
                on_refresh=on_refresh,
            ),
        )
    session.expire_all()
    assert link.status is LinkStatus.NEEDS_ATTENTION
    assert link.attention is Attention.PROFILE_DISCONNECTED

    page = client.get(ec.PAGE).get_data(as_text=True)
    assert "Needs attention" in page and f'aria-label="Relink {ec.FABRIKAM[0]}"' in page
    [row] = ec.rows(session, domain).values()
    response = auth.post(f"{ec.PAGE}mailboxes/{row.id}/relink", form_page=ec.PAGE)
    assert response.status_code == 303  # redirect after POST
    assert ec.rows(session, domain)[ec.FABRIKAM[0]].status is MailboxStatus.PENDING
    assert all(d["ok"] for d in sandbox.deliver())
    session.expire_all()
    assert ec.rows(session, domain)[ec.FABRIKAM[0]].status is MailboxStatus.LINKED
    link = session.get(ProfileLink, link.id)
    assert link.status is LinkStatus.ACTIVE and link.attention is None and link.has_tokens
    assert "ec.relink_requested" in actions(session)
    page = client.get(ec.PAGE).get_data(as_text=True)
    assert "Needs attention" not in page and "Relink " not in page
    # A mailbox that needs nothing cannot be relinked (and another organisation's not at all).
    again = auth.post(f"{ec.PAGE}mailboxes/{row.id}/relink", form_page=ec.PAGE)
    assert (
        again.status_code == 303
        and ec.rows(session, domain)[ec.FABRIKAM[0]].status is MailboxStatus.LINKED
    )


@pytest.fixture
def ec_admin(app, session, org, sandbox, live_server):
    """An IT admin's browser session, with the aggregator able to call the live app back."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    admin = make_user(session, org, Role.ADMIN, email="it@northwind.example")
    client = app.test_client()
    auth = AuthActions(client)
    auth.login(admin.email)
    return client, auth
