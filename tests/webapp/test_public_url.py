"""Absolute URLs come from the configuration, never from the request's Host header.

A forged Host once made the OAuth redirect_uri point at an attacker's listener, so a victim's
authorization code could be redeemed in the attacker's own flow. Now every absolute link is built
from PUBLIC_BASE_URL (required in production, the dev server's own address in development), a
request naming another host gets 400, and the aggregator only accepts registered redirect URIs.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from models import OAuthState, ProfileLink, Role
from tests.conftest import LiveServer
from tests.factories import PASSWORD, make_user
from webapp.config import ConfigError, load_config

ATTACKER = "attacker.example"


def _query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/api/v1/me"),
        ("GET", "/no-such-page"),
        ("POST", "/hooks/cronofy/push/anything"),
        ("POST", "/hooks/cronofy/sa/anything"),
    ],
)
def test_a_request_naming_another_host_gets_400(client, method, path):
    response = client.open(path, method=method, headers={"Host": ATTACKER}, data=b"{}")
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "bad_request"
    assert client.get("/login").status_code == 200  # the public host is served as ever


def _browser_logged_in(base: str, email: str) -> tuple[requests.Session, str]:
    """A real HTTP client logged in at ``base``, and the CSRF token of its calendar page."""
    browser = requests.Session()
    form = browser.get(base + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', form).group(1)
    assert (
        browser.post(
            base + "/login",
            allow_redirects=False,
            timeout=10,
            data={"csrf_token": token, "email": email, "password": PASSWORD},
        ).status_code
        == 302
    )
    page = browser.get(base + "/profile/calendar/", timeout=10).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    return browser, token


def _cookie_header(browser: requests.Session) -> str:
    # requests picks cookies by the Host header; a browser behind a Host-rewriting proxy would
    # still send the victim's.
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def test_a_forged_host_cannot_send_a_victims_code_elsewhere(session, sandbox, live_server, riley):
    browser, token = _browser_logged_in(live_server.url, riley.email)
    # The victim's own session and form; only the Host header is forged (say, by a proxy that
    # passes it on). The redirect_uri used to follow it, and the code with it.
    forged = browser.post(
        live_server.url + "/profile/calendar/connect",
        headers={"Host": ATTACKER, "Cookie": _cookie_header(browser)},
        data={"csrf_token": token, "provider": "google"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400 and "Location" not in forged.headers
    assert session.scalar(select(func.count(OAuthState.id))) == 0


def _form_token(client, path: str, base: str) -> str:
    page = client.get(path, base_url=base).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def test_links_use_the_public_base_url_whatever_the_request_says(app_config, request, sandbox):
    app_config["PUBLIC_BASE_URL"] = "https://rendezvous.example.com/"
    app = request.getfixturevalue("app")
    session = request.getfixturevalue("session")
    org = request.getfixturevalue("org")
    assert app.config["PUBLIC_BASE_URL"] == "https://rendezvous.example.com"
    # The same host name with another scheme and port (trusted hosts ignore ports): the links
    # still name the configured base.
    base = "http://rendezvous.example.com:8080"
    links = {}
    for role, email in (
        (Role.RECRUITER, "riley.chen@northwind.example"),
        (Role.ADMIN, "alex.kim@northwind.example"),
    ):
        user = make_user(session, org, role, email=email)
        client = app.test_client()
        client.post(
            "/login",
            base_url=base,
            data={
                "csrf_token": _form_token(client, "/login", base),
                "email": user.email,
                "password": PASSWORD,
            },
        )
        links[role] = client

    started = links[Role.RECRUITER].post(
        "/profile/calendar/connect",
        base_url=base,
        data={
            "csrf_token": _form_token(links[Role.RECRUITER], "/profile/calendar/", base),
            "provider": "google",
        },
    )
    assert (
        _query(started.headers["Location"])["redirect_uri"]
        == "https://rendezvous.example.com/profile/calendar/callback"
    )
    invited = (
        links[Role.ADMIN]
        .post(
            "/admin/users",
            base_url=base,
            data={
                "csrf_token": _form_token(links[Role.ADMIN], "/admin/users", base),
                "name": "Dana Fox",
                "email": "dana@northwind.example",
                "role": "recruiter",
            },
        )
        .get_data(as_text=True)
    )
    assert re.search(r'value="https://rendezvous\.example\.com/invite/[^"]+"', invited)
    assert "8080" not in invited

    from webapp.public_urls import oauth_redirect_uris

    assert oauth_redirect_uris(app) == [
        "https://rendezvous.example.com/profile/calendar/callback",
        "https://rendezvous.example.com/admin/calendar/enterprise/callback",
    ]


def test_production_refuses_to_start_without_a_public_base_url(tmp_path):
    from tests.webapp.test_config import PROD

    env = {k: v for k, v in PROD.items() if k != "RENDEZVOUS_PUBLIC_BASE_URL"}
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=env)
    message = str(info.value)
    assert "RENDEZVOUS_PUBLIC_BASE_URL" in message and "\n" not in message


@pytest.mark.parametrize(
    "value",
    [
        "rendezvous.example.com",
        "ftp://rendezvous.example.com",
        "https://rendezvous.example.com/app",
        "https://user:pw@rendezvous.example.com",
        "https://rendezvous.example.com?x=1",
        "https://:443",
        "https://rendezvous.example.com:99999",
    ],
)
def test_a_malformed_public_base_url_is_named(tmp_path, value):
    with pytest.raises(ConfigError, match="RENDEZVOUS_PUBLIC_BASE_URL"):
        load_config(tmp_path, environ={"RENDEZVOUS_PUBLIC_BASE_URL": value})


def test_development_derives_the_base_url_from_its_configured_address(tmp_path):
    assert load_config(tmp_path, environ={})["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"
    config = load_config(
        tmp_path, environ={"RENDEZVOUS_DEV_HOST": "localhost", "RENDEZVOUS_DEV_PORT": "8123"}
    )
    assert config["PUBLIC_BASE_URL"] == "http://localhost:8123"
    assert config["TRUSTED_HOSTS"] == ["localhost"]
    assert (
        load_config(tmp_path, environ={"RENDEZVOUS_DEV_HOST": "::1"})["PUBLIC_BASE_URL"]
        == "http://[::1]:5000"
    )
    # Listening everywhere says nothing about the address people use: ask for it.
    with pytest.raises(ConfigError, match="RENDEZVOUS_PUBLIC_BASE_URL"):
        load_config(tmp_path, environ={"RENDEZVOUS_DEV_HOST": "0.0.0.0"})
    explicit = load_config(
        tmp_path,
        environ={
            "RENDEZVOUS_DEV_HOST": "0.0.0.0",
            "RENDEZVOUS_PUBLIC_BASE_URL": "http://laptop.lan:5000",
        },
    )
    assert explicit["PUBLIC_BASE_URL"] == "http://laptop.lan:5000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_live_development_server_without_the_variable_links_to_itself(
    request, app_config, sandbox
):
    """Served over real HTTP with RENDEZVOUS_PUBLIC_BASE_URL unset, as `make run` does."""
    port = _free_port()
    app_config.pop("PUBLIC_BASE_URL")
    app_config.update(ENVIRONMENT="development", DEV_HOST="127.0.0.1", DEV_PORT=port)
    app = request.getfixturevalue("app")
    session = request.getfixturevalue("session")
    riley = make_user(
        session,
        request.getfixturevalue("org"),
        Role.RECRUITER,
        email="riley.chen@northwind.example",
    )
    base = f"http://127.0.0.1:{port}"
    assert app.config["PUBLIC_BASE_URL"] == base
    server = LiveServer(app, port=port)
    try:
        browser, token = _browser_logged_in(base, riley.email)
        forged = browser.post(
            base + "/profile/calendar/connect",
            headers={"Host": ATTACKER, "Cookie": _cookie_header(browser)},
            data={"csrf_token": token, "provider": "google"},
            allow_redirects=False,
            timeout=10,
        )
        assert forged.status_code == 400 and "Location" not in forged.headers

        started = browser.post(
            base + "/profile/calendar/connect",
            allow_redirects=False,
            data={"csrf_token": token, "provider": "google"},
            timeout=10,
        )
        authorize_url = started.headers["Location"]
        assert _query(authorize_url)["redirect_uri"] == base + "/profile/calendar/callback"
        back = sandbox.consent(authorize_url, riley.email).redirect_url
        assert back.startswith(base + "/profile/calendar/callback?")
        done = browser.get(back, allow_redirects=False, timeout=10)
        assert done.status_code == 302, done.text
        session.expire_all()
        link = session.scalar(select(ProfileLink).where(ProfileLink.user_id == riley.id))
        assert link is not None and link.account_email == riley.email
    finally:
        server.stop()
