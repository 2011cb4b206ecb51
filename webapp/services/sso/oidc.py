"""Talking to an OpenID Connect provider (Authlib): discovery, the authorization request with
PKCE, redeeming the code and validating the ID token. No database, no Flask.

Every URL we fetch comes from configuration an IT admin typed or from the provider's discovery
document, so each is checked first (``check_url``): https only, and never a loopback, private or
link-local address, unless the deployment allows insecure issuers (development and the tests
that run a local provider). Failures become ``IdpTrouble`` with a message safe to show: never
the provider's own text, a token or our client secret.

A provider's discovery document and signing keys are kept per issuer for ``METADATA_TTL``
(cachetools' TTLCache, per process), so a sign-in does not fetch them twice. Providers rotate
keys by publishing the new one before signing with it: an ID token naming a key id the kept set
lacks refreshes the set at once, but at most once per ``KEY_REFETCH_INTERVAL`` per provider.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from cachetools import TTLCache
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from webapp.services.errors import Invalid, Unauthorized, Unavailable

#: Seconds to wait for the provider on each request.
TIMEOUT = 10
#: Clock skew tolerated on the ID token's exp and iat.
LEEWAY_SECONDS = 60
#: Asymmetric signatures only: an HS256 token would be signed with our own client secret.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
SCOPE = "openid email profile"
#: Seconds a provider's discovery document and signing keys are reused.
METADATA_TTL = 3600
#: Seconds after fetching a provider's keys again for an ID token naming a key we do not hold
#: before another such token may make us fetch them again: rotation needs one fetch, and a
#: provider (or whoever gets tokens past it) signing with unpublished keys must not make every
#: sign-in hit its key endpoint.
KEY_REFETCH_INTERVAL = 60


def _clock() -> float:
    return time.monotonic()


# Keyed by (URL, insecure_ok): a provider checked under the development setting is never reused
# without it. cachetools' caches are not thread-safe; fetches happen outside the lock.
_lock = threading.Lock()
_providers: TTLCache = TTLCache(maxsize=256, ttl=METADATA_TTL, timer=lambda: _clock())
_key_sets: TTLCache = TTLCache(maxsize=256, ttl=METADATA_TTL, timer=lambda: _clock())
#: Key sets fetched again for an unknown key id, within KEY_REFETCH_INTERVAL: key → True.
_refetched: TTLCache = TTLCache(maxsize=256, ttl=KEY_REFETCH_INTERVAL, timer=lambda: _clock())
#: One refetch per key set at a time: sign-ins arriving meanwhile use what it fetched.
_refetching: dict[tuple[str, bool], threading.Lock] = {}


def forget_providers() -> None:
    """Drop every kept discovery document and key set (tests start from nothing)."""
    with _lock:
        _providers.clear()
        _key_sets.clear()
        _refetched.clear()


class IdpTrouble(Unavailable):
    """The identity provider could not be reached or answered something we cannot use."""

    code = "idp_unavailable"


class IdTokenRejected(Unauthorized):
    """The provider's answer did not prove who signed in; ``reason`` is for the audit trail."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Provider:
    """What discovery told us about an issuer (only the fields we use)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, from a validated ID token."""

    subject: str
    email: str
    email_verified: bool | None
    name: str | None


def normalise_issuer(value: str) -> str:
    return (value or "").strip().rstrip("/")


def check_url(url: str, *, insecure_ok: bool, what: str = "The issuer URL") -> str:
    """``url`` if it is one we may fetch; Invalid otherwise (SSRF guard)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid(f"{what} must be a full https:// address.", field="issuer")
    if parts.username or parts.password or parts.fragment or parts.query:
        raise Invalid(
            f"{what} must not contain credentials, a query or a fragment.", field="issuer"
        )
    if insecure_ok:
        return url
    if parts.scheme != "https":
        raise Invalid(f"{what} must use https.", field="issuer")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except (OSError, RuntimeError, UnicodeError):
        raise IdpTrouble(f"{what} names a host that cannot be found.") from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if not ip.is_global:
            raise Invalid(f"{what} must be a public address.", field="issuer")
    return url


def _get_json(url: str, *, insecure_ok: bool, what: str) -> dict[str, Any]:
    check_url(url, insecure_ok=insecure_ok, what=what)
    try:
        response = requests.get(url, timeout=TIMEOUT, allow_redirects=False)
    except (requests.RequestException, RuntimeError):
        raise IdpTrouble(
            "The identity provider could not be reached; nothing was changed."
        ) from None
    if response.status_code != 200:
        raise IdpTrouble(
            f"The identity provider answered {response.status_code} for its "
            f"{'configuration' if 'well-known' in url else 'signing keys'}."
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise IdpTrouble("The identity provider's answer is not an OpenID Connect document.")
    return body


def discover(issuer: str, *, insecure_ok: bool, fresh: bool = False) -> Provider:
    """The provider's metadata, kept for ``METADATA_TTL``; ``fresh`` fetches it again (an IT
    admin saving the configuration sees the provider as it is now)."""
    key = (normalise_issuer(issuer), insecure_ok)
    if not fresh:
        with _lock:
            kept = _providers.get(key)
        if kept is not None:
            return kept
    provider = _discover(issuer, insecure_ok=insecure_ok)
    with _lock:
        _providers[key] = provider
    return provider


def _discover(issuer: str, *, insecure_ok: bool) -> Provider:
    """The provider's metadata from ``{issuer}/.well-known/openid-configuration``, checked:
    it must name exactly this issuer (OpenID Connect Discovery 1.0 §4.3) and offer the
    authorization code flow with S256 PKCE and asymmetric ID token signatures."""
    issuer = normalise_issuer(issuer)
    doc = _get_json(
        f"{issuer}/.well-known/openid-configuration",
        insecure_ok=insecure_ok,
        what="The issuer URL",
    )
    if normalise_issuer(str(doc.get("issuer", ""))) != issuer:
        raise IdTokenRejected(
            "The identity provider names another issuer than the one configured; "
            "check the issuer URL.",
            "discovery names another issuer",
        )
    endpoints = {}
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(key)
        if not isinstance(value, str):
            raise IdpTrouble(f"The identity provider's configuration has no {key}.")
        endpoints[key] = check_url(value, insecure_ok=insecure_ok, what=f"Its {key}")
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and methods and "S256" not in methods:
        raise IdpTrouble("The identity provider does not support PKCE with S256.")
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in offered if a in SIGNING_ALGORITHMS)
    if not algorithms:
        raise IdpTrouble("The identity provider signs ID tokens with no algorithm we accept.")
    return Provider(issuer=issuer, algorithms=algorithms, **endpoints)


@dataclass(frozen=True)
class Authorization:
    """An authorization request: the URL to send the browser to, and the values that must
    come back (kept by the caller: state and nonce hashed, the verifier in the session)."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization(
    provider: Provider, client_id: str, redirect_uri: str, *, login_hint: str | None
) -> Authorization:
    """The authorization code request with PKCE S256, a state and a nonce (RFC 9700 §2.1.1)."""
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    client = OAuth2Session(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=SCOPE,
        code_challenge_method="S256",
    )
    extra = {"login_hint": login_hint} if login_hint else {}
    url, _ = client.create_authorization_url(
        provider.authorization_endpoint,
        state=state,
        code_verifier=verifier,
        nonce=nonce,
        **extra,
    )
    return Authorization(url=url, state=state, nonce=nonce, code_verifier=verifier)


def redeem(
    provider: Provider,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    *,
    code: str,
    code_verifier: str,
    nonce: str,
    insecure_ok: bool,
) -> Identity:
    """Exchange the code (with the PKCE verifier) and validate the ID token: signature by the
    provider's published keys, issuer, audience (and azp), expiry, issue time and nonce."""
    client = OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    try:
        token = client.fetch_token(
            provider.token_endpoint,
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except (requests.RequestException, RuntimeError):
        raise IdpTrouble("The identity provider could not be reached; please try again.") from None
    except (OAuthError, ValueError):  # their text is the provider's: never shown
        raise IdTokenRejected(
            "The identity provider refused to complete the sign-in; please start again.",
            "code refused",
        ) from None
    finally:
        client.close()
    raw = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(raw, str):
        raise IdTokenRejected("The identity provider sent no ID token.", "no id token")
    kept = _kept_keys(provider, insecure_ok=insecure_ok)
    try:
        decoded = _verified(raw, kept or signing_keys(provider, insecure_ok=insecure_ok), provider)
    except IdTokenRejected:
        kid = _key_id(raw)
        if kept is None or (kid is not None and _holds(kept, kid)):
            raise  # keys fetched just now, or the named key is known: a bad signature
        # Signed with a key published after we kept the set (rotation): fetch it again, at
        # most once per KEY_REFETCH_INTERVAL for this provider.
        decoded = _verified(raw, _refetched_keys(provider, kept, kid, insecure_ok), provider)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "values": [provider.issuer]}},
        {"nonce": nonce, "client_id": client_id, "access_token": token.get("access_token")},
    )
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except Exception as exc:  # authlib's claim errors name the claim, never a secret
        reason = getattr(exc, "error", "invalid claims")
        description = str(getattr(exc, "description", "") or "")
        raise IdTokenRejected(
            _claim_message(description), f"{reason}: {description}"[:120]
        ) from None
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise IdTokenRejected(
            "The identity provider did not say which email address signed in.", "no email"
        )
    verified = claims.get("email_verified")
    return Identity(
        subject=str(claims["sub"]),
        email=email.strip().lower(),
        email_verified=verified if isinstance(verified, bool) else None,
        name=claims.get("name") if isinstance(claims.get("name"), str) else None,
    )


def _verified(raw: str, keys: KeySet, provider: Provider) -> Any:
    try:
        return jwt.decode(raw, keys, registry=JWSRegistry(algorithms=list(provider.algorithms)))
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected(
            "The identity provider's ID token is not validly signed.", "bad signature"
        ) from None


def _kept_keys(provider: Provider, *, insecure_ok: bool) -> KeySet | None:
    with _lock:
        return _key_sets.get((provider.jwks_uri, insecure_ok))


def _refetched_keys(provider: Provider, kept: KeySet, kid: str | None, insecure_ok: bool) -> KeySet:
    """The provider's keys for a token naming a key ``kept`` lacks: fetched again unless that
    was done within ``KEY_REFETCH_INTERVAL`` (then what that fetch brought, or a refusal)."""
    key = (provider.jwks_uri, insecure_ok)
    with _lock:
        turn = _refetching.setdefault(key, threading.Lock())
    with turn:
        current = _kept_keys(provider, insecure_ok=insecure_ok)
        if current is not None and current is not kept and (kid is None or _holds(current, kid)):
            return current  # another sign-in fetched the set while we waited
        with _lock:
            allowed = key not in _refetched
            if allowed:
                _refetched[key] = True
        if not allowed:
            raise IdTokenRejected(
                "The identity provider's ID token is not validly signed.",
                "unknown signing key (keys fetched again moments ago)",
            )
        return signing_keys(provider, insecure_ok=insecure_ok)


def signing_keys(provider: Provider, *, insecure_ok: bool) -> KeySet:
    """The provider's published keys (``jwks_uri``), fetched now and kept for
    ``METADATA_TTL``."""
    key = (provider.jwks_uri, insecure_ok)
    document = _get_json(provider.jwks_uri, insecure_ok=insecure_ok, what="Its jwks_uri")
    try:
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise IdpTrouble("The identity provider's signing keys cannot be read.") from None
    with _lock:
        _key_sets[key] = keys
    return keys


def _key_id(raw: str) -> str | None:
    """The ``kid`` an ID token's header names, if it names one."""
    try:
        header = jws.extract_compact(raw.encode()).headers()
    except (JoseError, ValueError, TypeError):
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def _holds(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _claim_message(description: str) -> str:
    """A message for the person from authlib's claim error ("Invalid claim 'iss'", "The token
    is expired", "Missing 'nonce' claim")."""
    if "expired" in description.lower():
        return "The identity provider's ID token has expired; please sign in again."
    named = re.search(r"'(\w+)'", description)
    claim = named.group(1) if named else ""
    if claim == "iss":
        return "The ID token was issued by another identity provider than the one configured."
    if claim in ("aud", "azp"):
        return "The ID token was issued for another application."
    if claim == "nonce":
        return "The ID token does not belong to this sign-in; please start again."
    return "The identity provider's ID token is not valid; please start again."
