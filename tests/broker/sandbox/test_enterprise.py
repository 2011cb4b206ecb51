"""Enterprise Connect: admin consent, service-account tokens, asynchronous mailbox callbacks (§2,
§14 G)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from broker.sandbox.signing import HEADER

from .conftest import ALEX, CLIENT_ID, RILEY, SVC, api, client_for, tokens_for
from .conftest import EC_REDIRECT as REDIRECT

EC_SCOPE = "service_account/accounts/manage service_account/resources/manage"
DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"


def _ec_url(sandbox, **extra) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": EC_SCOPE,
        "delegated_scope": DELEGATED,
        "state": "ec-1",
        **extra,
    }
    return sandbox.url + "/enterprise_connect/oauth/authorize?" + urlencode(params)


def _service_account(sandbox, admin=SVC, password="svc-sandbox"):
    """Click through the Enterprise Connect page as ``admin`` and exchange the code."""
    url = _ec_url(sandbox)
    form = dict(parse_qs(urlsplit(url).query, keep_blank_values=True))
    form = {k: v[-1] for k, v in form.items()}
    form.update(
        sandbox_provider="exchange" if admin == SVC else "google",
        email=admin,
        password=password,
        decision="approve",
    )
    response = requests.post(
        sandbox.url + "/enterprise_connect/oauth/authorize",
        data=form,
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302, response.text
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    client = client_for(sandbox)
    client.get_authorization_from_code(code, redirect_uri=REDIRECT)
    return client


def test_enterprise_page_lists_admins_only(sandbox):
    page = requests.get(_ec_url(sandbox, sandbox_provider="google"), timeout=5)
    assert page.status_code == 200
    assert ALEX in page.text and RILEY not in page.text
    assert "read_free_busy" in page.text  # the delegated scope is shown


def test_service_account_token_and_userinfo(sandbox):
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": EC_SCOPE,
        "delegated_scope": DELEGATED,
        "state": "ec-1",
    }
    consent = sandbox.request(
        "POST",
        "/consent",
        {
            "authorize_url": sandbox.url
            + "/enterprise_connect/oauth/authorize?"
            + urlencode(params),
            "email": SVC,
            "password": "svc-sandbox",
        },
    ).json()
    token = api(
        sandbox,
        "POST",
        "/oauth/token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": "sandbox-test-secret",
            "grant_type": "authorization_code",
            "code": consent["code"],
            "redirect_uri": REDIRECT,
        },
    ).json()
    assert token["expires_in"] == 1800
    assert token["service_account_id"].startswith("ser_")
    assert token["scope"] == EC_SCOPE
    info = client_for(sandbox, token["access_token"]).userinfo()
    assert info["sub"] == token["service_account_id"]
    assert info["cronofy.type"] == "service_account"
    assert info["cronofy.data"]["service_account"] == {
        "provider_name": "exchange",
        "domain": "fabrikam.example",
    }
    assert info["cronofy.data"]["authorization"]["delegated_scope"] == DELEGATED
    assert info["cronofy.service_account.domain"] == "fabrikam.example"


def test_non_admins_cannot_grant_enterprise_connect(sandbox):
    result = sandbox.request(
        "POST",
        "/consent",
        {"authorize_url": _ec_url(sandbox), "email": RILEY, "password": "sandbox"},
    )
    assert result.status_code == 422
    assert "not an administrator" in result.json()["errors"]["consent"][0]["description"]


def test_resources_of_the_domain(sandbox):
    client = _service_account(sandbox)
    resources = client.resources()
    assert {r["email"] for r in resources} == {
        "room.spree@fabrikam.example",
        "room.havel@fabrikam.example",
    }
    assert all(set(r) == {"email", "name"} for r in resources)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("where", ["authorization", "top_level"])
def test_single_authorization_calls_back_with_a_redeemable_code(sandbox, receiver, signed, where):
    """Whether the callback is signed and where its ``state`` sits are unconfirmed: each is a
    switch (default: unsigned, state inside ``authorization``)."""
    if (signed, where) != (False, "authorization"):
        assert (
            sandbox.request(
                "PATCH",
                "/config",
                {"sa_callback_signed": signed, "sa_callback_state": where},
            ).status_code
            == 200
        )
    admin = _service_account(sandbox)
    callback = receiver.url + "/sa-callback?user=42"
    admin.authorize_with_service_account(
        "anna.becker@fabrikam.example", DELEGATED, callback, state="u42"
    )
    assert receiver.received == []
    sandbox.deliver()
    [note] = receiver.received
    assert note.path == "/sa-callback?user=42"
    if signed:
        assert admin.hmac_valid(note.headers[HEADER], note.text)
    else:
        assert HEADER not in note.headers
    body = note.json()["authorization"]
    state = body["state"] if where == "authorization" else note.json()["state"]
    assert state == "u42" and len(body["code"]) == 32
    assert ("state" in body) == (where == "authorization")
    user = client_for(sandbox)
    user.get_authorization_from_code(body["code"], redirect_uri=callback)
    assert user.account()["email"] == "anna.becker@fabrikam.example"
    assert user.list_calendars()[0]["provider_name"] == "exchange"
    granted = user.elevated_permissions(
        [
            {
                "calendar_id": user.list_calendars()[0]["calendar_id"],
                "permission_level": "unrestricted",
            }
        ]
    )
    assert granted == {"accepted": True}


def test_batch_of_26_with_one_unknown_mailbox(sandbox, receiver):
    admin = _service_account(sandbox)
    listing = sandbox.request("GET", "/identities").json()["identities"]
    linkable = [
        i["email"]
        for i in listing
        if i["domain"] == "fabrikam.example"
        and i["kind"] == "person"
        and not i["impersonation_excluded"]
    ]
    assert len(linkable) >= 26
    emails = linkable[:25] + ["nobody@fabrikam.example"]
    admin.authorize_multiple_accounts_via_service_account(
        [
            {"email": e, "scope": DELEGATED, "callback_url": receiver.url + "/sa", "state": e}
            for e in emails
        ]
    )
    sandbox.deliver()
    bodies = [r.json()["authorization"] for r in receiver.received]
    assert len(bodies) == 26
    ok = [b for b in bodies if "code" in b]
    failed = [b for b in bodies if "error" in b]
    assert len(ok) == 25 and len(failed) == 1
    assert failed[0] == {
        "error": "access_denied",
        "error_key": "unknown_mailbox",
        "error_description": "nobody@fabrikam.example is not a mailbox in fabrikam.example",
        "state": "nobody@fabrikam.example",
    }


def test_mailbox_outside_the_impersonation_scope_fails(sandbox, receiver):
    admin = _service_account(sandbox)
    admin.authorize_with_service_account(
        "ceo.office@fabrikam.example", "read_free_busy", receiver.url + "/sa"
    )
    sandbox.deliver()
    body = receiver.received[0].json()["authorization"]
    assert body["error_key"] == "outside_impersonation_scope"


def test_injected_mailbox_failures(sandbox, receiver):
    admin = _service_account(sandbox)
    sandbox.request(
        "PUT",
        "/mailbox-failures",
        {"mailboxes": {"anna.becker@fabrikam.example": "mailbox_locked"}},
    )
    admin.authorize_with_service_account(
        "anna.becker@fabrikam.example", "read_free_busy", receiver.url + "/sa"
    )
    sandbox.deliver()
    assert receiver.received[0].json()["authorization"]["error_key"] == "mailbox_locked"


def test_pycronofy_top_level_batch_state_is_applied_to_each_entry(sandbox, receiver):
    admin = _service_account(sandbox)
    admin.authorize_multiple_accounts_via_service_account(
        [
            {
                "email": "ben.schulz@fabrikam.example",
                "scope": "read_free_busy",
                "callback_url": receiver.url + "/sa",
            }
        ],
        state="top-level",
    )
    sandbox.deliver()
    assert receiver.received[0].json()["authorization"]["state"] == "top-level"


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {
                "email": "anna.becker@fabrikam.example",
                "callback_url": "http://127.0.0.1:1/cb",
                "scope": "read_write change_participation_status create_calendar",
            },
            "scope",
        ),
        ({"email": "anna.becker@fabrikam.example", "scope": "read_free_busy"}, "callback_url"),
        (
            {
                "service_account_authorizations": [
                    {
                        "email": f"u{i}@fabrikam.example",
                        "callback_url": "http://127.0.0.1:1/cb",
                        "scope": "read_free_busy",
                    }
                    for i in range(51)
                ]
            },
            "service_account_authorizations",
        ),
    ],
)
def test_service_account_request_validation(sandbox, body, field):
    admin = _service_account(sandbox)
    response = api(
        sandbox, "POST", "/v1/service_account_authorizations", admin.auth.access_token, json=body
    )
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert sandbox.request("GET", "/outbox").json()["queued"] == []


def test_account_tokens_cannot_request_mailboxes(sandbox):
    tokens = tokens_for(sandbox, RILEY)
    response = api(
        sandbox,
        "POST",
        "/v1/service_account_authorizations",
        tokens["access_token"],
        json={"email": "x@northwind.example"},
    )
    assert response.status_code == 403


def test_google_workspace_admin_links_northwind(sandbox, receiver):
    admin = _service_account(sandbox, admin=ALEX, password="sandbox")
    admin.authorize_with_service_account(RILEY, "read_free_busy", receiver.url + "/cb")
    admin.authorize_with_service_account(
        "sam.patel@contoso.example", "read_free_busy", receiver.url + "/cb"
    )
    sandbox.deliver()
    results = [r.json()["authorization"] for r in receiver.received]
    assert "code" in results[0]
    assert results[1]["error_key"] == "unknown_mailbox"  # another domain
