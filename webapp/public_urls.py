"""Absolute URLs under PUBLIC_BASE_URL: what the aggregator, a candidate or an invitee is sent
back to, never built from a request's Host header."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """Absolute URL of ``endpoint`` under PUBLIC_BASE_URL, for the aggregator, a candidate or an
    invitee to come back to. Built from the configuration alone (with or without a request):
    a Host header must never decide where an authorization code or a link goes."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


#: The pages the aggregator sends a person back to after consent: the redirect URIs to register
#: with the aggregator (it refuses any other).
OAUTH_CALLBACKS = ("calendar.callback", "enterprise.callback")


def oauth_redirect_uris(app) -> list[str]:
    """This app's redirect URIs, exactly as it sends them."""
    with app.app_context():
        return [external_url(endpoint) for endpoint in OAUTH_CALLBACKS]
