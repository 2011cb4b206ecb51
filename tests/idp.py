"""A local OpenID Connect provider for the single sign-on tests (oidc-provider-mock), served on a
loopback port in a background thread.

The mock does not check PKCE, so ``Idp`` puts a strict check in front of it, as a real provider
does (RFC 7636 §4.6): a code is redeemed only with the verifier whose S256 challenge came with
its authorization request. It can also pretend to be another issuer: under ``/tenant`` it serves
the same provider, and with ``claim_tenant_issuer`` its discovery document names
``{url}/tenant`` as issuer while its ID tokens keep naming ``{url}`` (a provider whose tokens
are not its own).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import flask
import oidc_provider_mock
import requests
from authlib.jose import RSAKey
from werkzeug.serving import make_server

from webapp.services.sso import oidc

TENANT = "/tenant"


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class Idp:
    def __init__(self, *, token_max_age: timedelta = timedelta(hours=1)):
        # The app keeps providers' metadata per process: a new provider may reuse a port.
        oidc.forget_providers()
        self._app = oidc_provider_mock.app(require_nonce=True, access_token_max_age=token_max_age)
        self.claim_tenant_issuer = False
        #: code → (challenge, method) from the authorization request that issued it.
        self.challenges: dict[str, tuple[str | None, str | None]] = {}
        #: Every authorization request's query, and every token request's form.
        self.authorization_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        #: The path of every request, to count discovery and key-set fetches.
        self.paths: list[str] = []
        #: When set, served at /jwks instead of the current keys (a provider that signs with a
        #: key it has not published).
        self.published_jwks: dict | None = None
        #: When set, every token request waits here until the barrier's other parties arrive,
        #: or for two seconds (a worker may queue some requests behind its busy threads): the
        #: waiting ones are let go together, so concurrent sign-ins reach the app at once.
        self.token_barrier: threading.Barrier | None = None
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        oidc.forget_providers()

    # -- arranging -----------------------------------------------------------------------------

    def user(self, sub: str, **claims) -> None:
        """Who signs in as ``sub`` (an email, by default also the email claim)."""
        body = {"email": sub, "email_verified": True, "name": sub.split("@")[0].title(), **claims}
        response = requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=body, timeout=5)
        assert response.status_code == 204, response.text

    def authorize(self, location: str, sub: str, *, deny: bool = False) -> str:
        """Act as the person on the provider's page; the URL it sends the browser back to."""
        data = {"action": "deny"} if deny else {"sub": sub}
        response = requests.post(location, data=data, allow_redirects=False, timeout=5)
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        return response.headers["Location"]

    def fetches(self, path: str) -> int:
        return sum(1 for p in self.paths if p == path)

    def jwks(self) -> dict:
        return requests.get(f"{self.url}/jwks", timeout=5).json()

    def rotate_key(self) -> None:
        """Sign from now on with a new key (published at /jwks unless ``published_jwks``)."""
        with self._app.test_request_context("/"):
            self._app.preprocess_request()
            flask.g.oidc_provider_mock_storage.jwk = RSAKey.generate_key(is_private=True)

    # -- the WSGI app: PKCE check, the tenant alias, then the mock -------------------------------

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(TENANT + "/"):
            environ["PATH_INFO"] = path = path[len(TENANT) :]
        self.paths.append(path)
        if path == "/jwks" and self.published_jwks is not None:
            payload = json.dumps(self.published_jwks).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        if path == "/oauth2/token":
            return self._token(environ, start_response)
        if path == "/oauth2/authorize":
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            self.authorization_requests.append(query)
            return self._authorize(environ, start_response, query)
        if path == "/.well-known/openid-configuration" and self.claim_tenant_issuer:
            return self._rewritten_discovery(environ, start_response)
        return self._app(environ, start_response)

    def _authorize(self, environ, start_response, query):
        def remember(status, headers, exc_info=None):
            for name, value in headers:
                if name.lower() == "location":
                    code = parse_qs(urlsplit(value).query).get("code", [None])[0]
                    if code:
                        self.challenges[code] = (
                            query.get("code_challenge"),
                            query.get("code_challenge_method"),
                        )
            return start_response(status, headers, exc_info)

        return self._app(environ, remember)

    def _token(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.token_requests.append(form)
        if self.token_barrier is not None:
            try:
                self.token_barrier.wait(timeout=2)
            except threading.BrokenBarrierError:
                pass  # the barrier broke: every waiting request goes on at once
        if form.get("grant_type") == "authorization_code":
            challenge, method = self.challenges.pop(form.get("code", ""), (None, None))
            verifier = form.get("code_verifier")
            if method != "S256" or not verifier or s256(verifier) != challenge:
                payload = json.dumps(
                    {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                ).encode()
                start_response(
                    "400 Bad Request",
                    [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
                )
                return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)

    def _rewritten_discovery(self, environ, start_response):
        captured: dict = {}

        def keep(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self._app(environ, keep))
        doc = json.loads(body)
        doc["issuer"] = self.url + TENANT
        payload = json.dumps(doc).encode()
        headers = [
            (k, v) for k, v in captured["headers"] if k.lower() not in ("content-length",)
        ] + [("Content-Length", str(len(payload)))]
        start_response(captured["status"], headers)
        return [payload]
