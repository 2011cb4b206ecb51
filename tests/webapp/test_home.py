"""The home page tells a recruiter without a linked calendar what to do first, with a link to
the page where they link it, and says nothing of the kind once the calendar is linked."""

from __future__ import annotations

from urllib.parse import urlsplit

from models import LinkStatus, Role
from tests.factories import make_user
from webapp.services import connect

HINT = 'id="first-step"'


def _link_through_the_aggregator(client, auth, sandbox, email: str) -> None:
    response = auth.post(
        "/profile/calendar/connect", {"provider": "google"}, form_page="/profile/calendar/"
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    back = urlsplit(sandbox.consent(response.headers["Location"], email).redirect_url)
    assert client.get(f"{back.path}?{back.query}").status_code == 302


def test_an_unlinked_recruiter_is_told_to_link_first_and_not_once_linked(
    client, auth, session, sandbox, org
):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    auth.login(riley.email)
    page = client.get("/").get_data(as_text=True)
    assert HINT in page and "First, link your calendar" in page
    assert 'href="/profile/calendar/">Link your calendar</a>' in page

    _link_through_the_aggregator(client, auth, sandbox, riley.email)
    assert connect.link_of(session, riley.id).status is LinkStatus.ACTIVE
    page = client.get("/").get_data(as_text=True)
    assert HINT not in page and "link your calendar" not in page.lower()


def test_the_hint_says_who_can_help_while_business_connect_is_off(client, auth, session, org):
    org.business_connect_enabled = False
    session.commit()
    recruiter = make_user(session, org, Role.RECRUITER)
    auth.login(recruiter.email)
    page = client.get("/").get_data(as_text=True)
    assert HINT in page and "ask your IT admin" in page
    assert "Link your calendar</a>" not in page  # nothing they could do there themselves


def test_a_link_needing_attention_says_so(client, auth, session, sandbox, org):
    riley = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    auth.login(riley.email)
    _link_through_the_aggregator(client, auth, sandbox, riley.email)
    link = connect.link_of(session, riley.id)
    link.status = LinkStatus.NEEDS_ATTENTION
    session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Your calendar needs attention" in page and 'href="/profile/calendar/"' in page


def test_other_roles_get_no_calendar_hint(client, auth, session, org):
    for role in (Role.ADMIN, Role.COMPLIANCE, Role.COORDINATOR):
        user = make_user(session, org, role)
        auth.login(user.email)
        assert HINT not in client.get("/").get_data(as_text=True), role
        auth.logout()
