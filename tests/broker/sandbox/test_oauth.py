"""Individual Connect over real HTTP: consent, code exchange, refresh, revoke, token errors (§1,
§14 B)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pycronofy.exceptions import PyCronofyRequestError

from .conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_SCOPE,
    REDIRECT,
    RILEY,
    SAM,
    api,
    client_for,
    tokens_for,
)


def _query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def _consent(sandbox, authorize_url: str, email: str, **extra) -> dict:
    response = sandbox.request(
        "POST", "/consent", {"authorize_url": authorize_url, "email": email, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_pycronofy_auth_link_consent_and_code_exchange(sandbox):
    client = client_for(sandbox)
    link = client.user_auth_link(REDIRECT, state="s-123")
    assert link.startswith(sandbox.url + "/oauth/authorize?")
    result = _consent(sandbox, link, RILEY, password="sandbox")
    assert result["redirect_url"].startswith(REDIRECT + "?")
    assert result["state"] == "s-123"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", result["code"])

    auth = client.get_authorization_from_code(result["code"], redirect_uri=REDIRECT)
    assert set(auth) == {"access_token", "refresh_token", "token_expiration"}
    assert len(auth["access_token"]) == 32
    assert client.account()["email"] == RILEY


def test_token_response_carries_the_full_documented_field_set(sandbox):
    link = client_for(sandbox).user_auth_link(REDIRECT, state="x")
    code = _consent(sandbox, link, SAM)["code"]
    response = requests.post(
        sandbox.url + "/oauth/token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
        },
        headers={"Authorization": "Bearer None"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == DEFAULT_SCOPE
    assert body["account_id"] == body["sub"] and body["sub"].startswith("acc_")
    profile = body["linking_profile"]
    assert profile["provider_name"] == "exchange"  # as Cronofy reports Microsoft 365
    assert profile["provider_service"] == "office365"
    assert profile["profile_id"].startswith("pro_")
    assert profile["profile_name"] == SAM


def test_form_encoded_token_requests_are_accepted(sandbox):
    link = client_for(sandbox).user_auth_link(REDIRECT)
    code = _consent(sandbox, link, RILEY)["code"]
    response = requests.post(
        sandbox.url + "/oauth/token",
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"]


def test_codes_are_single_use_and_bound_to_the_redirect_uri(sandbox):
    client = client_for(sandbox)
    code = _consent(sandbox, client.user_auth_link(REDIRECT), RILEY)["code"]
    wrong = api(
        sandbox,
        "POST",
        "/oauth/token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT + "/other",
        },
    )
    assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant"}
    client.get_authorization_from_code(code, redirect_uri=REDIRECT)
    with pytest.raises(PyCronofyRequestError) as info:
        client.get_authorization_from_code(code, redirect_uri=REDIRECT)
    assert info.value.response.status_code == 400
    assert info.value.response.json() == {"error": "invalid_grant"}


def test_wrong_client_secret_is_401(sandbox):
    code = _consent(sandbox, client_for(sandbox).user_auth_link(REDIRECT), RILEY)["code"]
    bad = client_for(sandbox, secret="not-the-secret")
    with pytest.raises(PyCronofyRequestError) as info:
        bad.get_authorization_from_code(code, redirect_uri=REDIRECT)
    assert info.value.response.status_code == 401
    assert info.value.response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "body, error",
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
    ],
)
def test_token_endpoint_errors_use_the_rfc_shape(sandbox, body, error):
    response = api(
        sandbox,
        "POST",
        "/oauth/token",
        json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **body},
    )
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_malformed_json_on_the_token_endpoint_is_400_invalid_request(sandbox):
    response = api(
        sandbox,
        "POST",
        "/oauth/token",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_refresh_keeps_the_refresh_token_by_default(sandbox):
    tokens = tokens_for(sandbox, RILEY)
    client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    refreshed = client.refresh_authorization()
    assert refreshed["refresh_token"] == tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    raw = api(
        sandbox,
        "POST",
        "/oauth/token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        },
    ).json()
    assert set(raw) == {"token_type", "access_token", "expires_in", "refresh_token", "scope"}
    assert client.account()["email"] == RILEY


def test_refresh_rotation_issues_a_new_token_and_retires_the_old(sandbox):
    sandbox.request("PATCH", "/config", {"rotate_refresh_tokens": True})
    tokens = tokens_for(sandbox, RILEY)
    client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    refreshed = client.refresh_authorization()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    stale = client_for(sandbox, refresh_token=tokens["refresh_token"])
    with pytest.raises(PyCronofyRequestError) as info:
        stale.refresh_authorization()
    assert info.value.response.status_code == 400
    client.refresh_authorization()  # the new one works


def test_expired_access_token_is_401_and_refresh_recovers(sandbox):
    tokens = tokens_for(sandbox, RILEY)
    client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    expired = sandbox.request("POST", "/tokens/expire", {"email": RILEY}).json()
    assert expired["expired"] >= 1
    with pytest.raises(PyCronofyRequestError) as info:
        client.list_calendars()
    assert info.value.response.status_code == 401
    assert info.value.response.json()["error"] == "invalid_token"
    assert "Bearer" in info.value.response.headers["WWW-Authenticate"]
    client.refresh_authorization()
    assert client.list_calendars()


def test_token_ttl_is_configurable(sandbox):
    sandbox.request("PATCH", "/config", {"token_ttl": 120})
    assert tokens_for(sandbox, RILEY)["expires_in"] == 120


def test_revoke_with_pycronofy_then_every_call_is_401(sandbox):
    tokens = tokens_for(sandbox, RILEY)
    client = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    client.revoke_authorization()
    other = client_for(sandbox, tokens["access_token"], tokens["refresh_token"])
    with pytest.raises(PyCronofyRequestError) as info:
        other.account()
    assert info.value.response.status_code == 401
    with pytest.raises(PyCronofyRequestError):
        other.refresh_authorization()


def test_revoke_by_sub_and_unknown_tokens_are_200(sandbox):
    tokens = tokens_for(sandbox, SAM)
    creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert (
        api(sandbox, "POST", "/oauth/token/revoke", json={**creds, "token": "unknown"}).status_code
        == 200
    )
    response = api(sandbox, "POST", "/oauth/token/revoke", json={**creds, "sub": tokens["sub"]})
    assert response.status_code == 200 and response.content == b""
    assert api(sandbox, "GET", "/v1/account", tokens["access_token"]).status_code == 401
    wrong = api(
        sandbox,
        "POST",
        "/oauth/token/revoke",
        json={"client_id": CLIENT_ID, "client_secret": "bad", "sub": tokens["sub"]},
    )
    assert wrong.status_code == 401


def test_missing_scope_is_403(sandbox, connect):
    client = connect(RILEY, scope="read_account list_calendars")
    with pytest.raises(PyCronofyRequestError) as info:
        client.read_events(tzid="Europe/London").all()
    assert info.value.response.status_code == 403


def test_revoke_profile_hides_its_calendars(sandbox, connect):
    client = connect(RILEY)
    profile_id = client.list_profiles()[0]["profile_id"]
    client.revoke_profile(profile_id)
    assert client.list_profiles() == []
    assert client.list_calendars() == []
    response = api(sandbox, "POST", f"/v1/profiles/{profile_id}/revoke", client.auth.access_token)
    assert response.status_code == 404


def test_link_token_links_a_second_profile_into_the_account(sandbox, connect):
    client = connect(RILEY)
    link_token = api(sandbox, "POST", "/v1/link_tokens", client.auth.access_token).json()[
        "link_token"
    ]
    assert link_token.startswith("lt_")
    url = client.user_auth_link(REDIRECT) + "&link_token=" + link_token
    code = _consent(sandbox, url, "jamie.rivera@gmail.example")["code"]
    other = client_for(sandbox)
    other.get_authorization_from_code(code, redirect_uri=REDIRECT)
    assert other.account()["account_id"] == client.sub
    names = {p["profile_name"] for p in client.list_profiles()}
    assert names == {RILEY, "jamie.rivera@gmail.example"}


# ---- the consent pages a person clicks through -------------------------------------------------


def _authorize_params(**extra) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": DEFAULT_SCOPE,
        "state": "st",
        "provider_name": "",
        "avoid_linking": "False",
        **extra,
    }


def test_consent_page_offers_providers_then_identities(sandbox):
    page = requests.get(sandbox.url + "/oauth/authorize", params=_authorize_params(), timeout=5)
    assert page.status_code == 200
    for label in ("Google", "Microsoft 365", "Outlook.com", "Exchange", "iCloud"):
        assert f">{label}</button>" in page.text
    google = requests.get(
        sandbox.url + "/oauth/authorize",
        params=_authorize_params(sandbox_provider="google"),
        timeout=5,
    )
    assert RILEY in google.text and "Riley Chen" in google.text
    assert 'type="password"' in google.text
    exchange = requests.get(
        sandbox.url + "/oauth/authorize",
        params=_authorize_params(provider_name="exchange"),
        timeout=5,
    )
    assert 'name="server_url"' in exchange.text and 'name="email"' in exchange.text


def test_consent_form_approve_redirects_with_code(sandbox):
    form = _authorize_params(
        sandbox_provider="google", email=RILEY, password="sandbox", decision="approve"
    )
    response = requests.post(
        sandbox.url + "/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    params = _query(response.headers["Location"])
    assert params["state"] == "st" and len(params["code"]) == 32
    auth = client_for(sandbox).get_authorization_from_code(params["code"], redirect_uri=REDIRECT)
    assert auth["access_token"]


def test_consent_form_rejects_a_wrong_password_and_changes_nothing(sandbox):
    form = _authorize_params(
        sandbox_provider="google", email=RILEY, password="wrong", decision="approve"
    )
    response = requests.post(
        sandbox.url + "/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert response.status_code == 400
    assert "Wrong password" in response.text


def test_consent_form_deny_redirects_with_access_denied(sandbox):
    form = _authorize_params(decision="deny")
    response = requests.post(
        sandbox.url + "/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    assert _query(response.headers["Location"]) == {"error": "access_denied", "state": "st"}


def test_exchange_checks_the_server_url(sandbox):
    base = _authorize_params(
        provider_name="exchange",
        email="anna.becker@fabrikam.example",
        password="sandbox",
        decision="approve",
    )
    bad = requests.post(
        sandbox.url + "/oauth/authorize",
        data={**base, "server_url": "https://wrong.example/EWS/Exchange.asmx"},
        allow_redirects=False,
        timeout=5,
    )
    assert bad.status_code == 400 and "Exchange server" in bad.text
    good = requests.post(
        sandbox.url + "/oauth/authorize",
        data={**base, "server_url": "https://mail.fabrikam.example/EWS/Exchange.asmx"},
        allow_redirects=False,
        timeout=5,
    )
    assert good.status_code == 302 and "code=" in good.headers["Location"]


def test_provider_name_must_match_the_identity(sandbox):
    result = sandbox.request(
        "POST",
        "/consent",
        {
            "authorize_url": client_for(sandbox).user_auth_link(REDIRECT, provider_name="google"),
            "email": SAM,
        },
    )
    assert result.status_code == 422
    assert result.json()["errors"]["consent"][0]["key"] == "errors.refused"


@pytest.mark.parametrize(
    "params, status",
    [
        ({"client_id": "someone-else"}, 400),
        ({"redirect_uri": "not-a-url"}, 400),
        ({"redirect_uri": "http://attacker.example/profile/calendar/callback"}, 400),
        ({"redirect_uri": REDIRECT + "?next=x"}, 400),
    ],
)
def test_bad_client_or_redirect_never_redirects(sandbox, params, status):
    page = requests.get(
        sandbox.url + "/oauth/authorize",
        params=_authorize_params(**params),
        allow_redirects=False,
        timeout=5,
    )
    assert page.status_code == status
    assert "Location" not in page.headers


def test_an_unregistered_redirect_uri_gets_no_code_by_page_or_control_api(sandbox):
    """Like Cronofy: a code only ever goes to a redirect URI the application registered, so a
    link built with a forged Host cannot deliver someone's code to a stranger."""
    foreign = "http://attacker.example:8000/profile/calendar/callback"
    form = _authorize_params(
        redirect_uri=foreign,
        sandbox_provider="google",
        email=RILEY,
        password="sandbox",
        decision="approve",
    )
    page = requests.post(
        sandbox.url + "/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert page.status_code == 400 and "not registered" in page.text
    assert "Location" not in page.headers
    consent = sandbox.request(
        "POST",
        "/consent",
        {"authorize_url": client_for(sandbox).user_auth_link(foreign), "email": RILEY},
    )
    assert consent.status_code == 422 and "not registered" in consent.text
    config = sandbox.request("GET", "/config").json()
    assert config["allowed_redirect_uris"] and foreign not in config["allowed_redirect_uris"]


def test_a_sandbox_with_no_registered_redirect_uri_accepts_none():
    from broker.sandbox.server import start_sandbox

    bare = start_sandbox(CLIENT_ID, CLIENT_SECRET, auto_deliver=False, rate_limit_enabled=False)
    try:
        page = requests.get(
            bare.url + "/oauth/authorize",
            params=_authorize_params(),
            allow_redirects=False,
            timeout=5,
        )
        assert page.status_code == 400 and "not registered" in page.text
        # The control API's own shortcut (no browser, no redirect) still hands out tokens.
        assert tokens_for(bare.client, RILEY)["access_token"]
    finally:
        bare.stop()


def test_bad_scope_redirects_with_invalid_scope(sandbox):
    page = requests.get(
        sandbox.url + "/oauth/authorize",
        params=_authorize_params(scope="launch_rockets"),
        allow_redirects=False,
        timeout=5,
    )
    assert page.status_code == 302
    assert _query(page.headers["Location"])["error"] == "invalid_scope"
