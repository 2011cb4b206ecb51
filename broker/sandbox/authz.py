"""OAuth for the sandbox: consent decisions, codes, tokens, refresh, revoke, bearer checks
(§1, §2)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import errors, notify
from . import models as m
from .seed import stable_id
from .state import SandboxState, new_id, new_token

USER_SCOPES = (
    "read_account",
    "list_calendars",
    "create_calendar",
    "read_events",
    "create_event",
    "delete_event",
    "read_free_busy",
    "change_participation_status",
)
AGGREGATE_SCOPES = {
    "read_write": set(USER_SCOPES),
    "read_only": {"read_account", "list_calendars", "read_events", "read_free_busy"},
    "free_busy": {"read_account", "list_calendars", "read_free_busy"},
    "free_busy_write": {
        "read_account",
        "list_calendars",
        "read_free_busy",
        "create_event",
        "delete_event",
    },
    "write_only": {"read_account", "list_calendars", "create_event", "delete_event"},
}
SERVICE_ACCOUNT_SCOPES = (
    "service_account/accounts/manage",
    "service_account/accounts/unrestricted_access",
    "service_account/resources/manage",
    "service_account/resources/unrestricted_access",
)
PROVIDER_ALIASES = {
    "microsoft": "office365",
    "outlook_com": "live_connect",
    "outlook": "live_connect",
    "icloud": "apple",
    "gsuite": "google",
}


class ConsentError(Exception):
    """A consent step that cannot proceed; shown to the person, never redirected."""


def expand_scope(scope: str) -> set[str]:
    granted: set[str] = set()
    for part in scope.split():
        granted |= AGGREGATE_SCOPES.get(part, {part})
    if "read_events" in granted:
        granted.add("read_free_busy")  # implied (§1.1)
    return granted


def unknown_scopes(scope: str, *, enterprise: bool = False) -> list[str]:
    allowed = (
        set(SERVICE_ACCOUNT_SCOPES) if enterprise else set(USER_SCOPES) | set(AGGREGATE_SCOPES)
    )
    return [part for part in scope.split() if part not in allowed]


def with_query(url: str, params: dict[str, str]) -> str:
    """Append ``params`` to ``url``, keeping any query string it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _valid_http_url(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# ---- the authorize request -------------------------------------------------------------------


@dataclass
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str = ""
    response_type: str = "code"
    provider_name: str = ""
    avoid_linking: bool = False
    link_token: str = ""
    delegated_scope: str = ""
    enterprise: bool = False

    @classmethod
    def from_params(cls, params, *, enterprise: bool) -> AuthorizeRequest:
        return cls(
            client_id=params.get("client_id", "") or "",
            redirect_uri=params.get("redirect_uri", "") or "",
            scope=params.get("scope", "") or "",
            state=params.get("state", "") or "",
            response_type=params.get("response_type", "") or "",
            provider_name=params.get("provider_name", "") or "",
            avoid_linking=str(params.get("avoid_linking", "")).lower() in {"true", "1", "yes"},
            link_token=params.get("link_token", "") or "",
            delegated_scope=params.get("delegated_scope", "") or "",
            enterprise=enterprise,
        )

    def as_params(self) -> dict[str, str]:
        params = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "response_type": self.response_type,
            "provider_name": self.provider_name,
            "avoid_linking": "true" if self.avoid_linking else "false",
            "link_token": self.link_token,
        }
        if self.enterprise:
            params["delegated_scope"] = self.delegated_scope
        return params

    @property
    def provider(self) -> str:
        name = self.provider_name.strip().lower()
        return PROVIDER_ALIASES.get(name, name)


def check_authorize_request(
    state: SandboxState, req: AuthorizeRequest, *, trusted_redirect: str | None = None
) -> str | None:
    """Raise ConsentError for problems that must not redirect; return an error redirect or None.

    ``trusted_redirect`` is the control API's own shortcut target, which no browser reaches."""
    config = state.config
    if req.client_id != config.client_id:
        raise ConsentError("Unknown client_id: this sandbox serves a different application.")
    if not _valid_http_url(req.redirect_uri):
        raise ConsentError("redirect_uri must be an absolute http(s) URL.")
    registered = config.allowed_redirect_uris
    if req.redirect_uri != trusted_redirect and req.redirect_uri not in registered:
        raise ConsentError("redirect_uri is not registered for this application.")
    if req.response_type != "code":
        return error_redirect(req, "unsupported_response_type")
    if not req.scope.strip() or unknown_scopes(req.scope, enterprise=req.enterprise):
        return error_redirect(req, "invalid_scope")
    if req.enterprise and (not req.delegated_scope.strip() or unknown_scopes(req.delegated_scope)):
        return error_redirect(req, "invalid_scope")
    return None


def error_redirect(req: AuthorizeRequest, error: str) -> str:
    params = {"error": error}
    if req.state:
        params["state"] = req.state
    return with_query(req.redirect_uri, params)


def decide(
    state: SandboxState,
    req: AuthorizeRequest,
    *,
    approve: bool,
    email: str = "",
    password: str | None = None,
    server_url: str = "",
    linked_account_id: str | None = None,
    trusted_redirect: str | None = None,
) -> tuple[str, str | None]:
    """Apply a consent decision; return (redirect URL, account or service-account id).

    ``password`` None means "trusted caller" (the JSON control API); the page always sends one.
    """
    early = check_authorize_request(state, req, trusted_redirect=trusted_redirect)
    if early:
        return early, None
    if not approve:
        return error_redirect(req, "access_denied"), None
    with state.lock:
        world = state.world
        ident = world.identity(email)
        if ident is None:
            raise ConsentError(f"No account {email!r} exists at this provider.")
        domain = world.domains[ident.domain]
        if password is not None and not hmac.compare_digest(password, ident.password):
            raise ConsentError("Wrong password for this account.")
        if req.provider and req.provider != domain.provider_name:
            raise ConsentError(f"{ident.email} is not a {req.provider_name} account.")
        if domain.provider_name == "exchange" and server_url.strip():
            if server_url.strip().rstrip("/").lower() != (domain.ews_url or "").lower():
                raise ConsentError("Could not connect to that Exchange server (check the EWS URL).")
        if req.enterprise:
            sub, kind, profile_id = (
                _approve_enterprise(state, req, ident, domain),
                "service_account",
                None,
            )
        else:
            sub, profile_id = _approve_individual(state, req, ident, linked_account_id)
            kind = "account"
        code = new_token(32)
        world.codes[code] = m.AuthCode(
            code=code,
            client_id=req.client_id,
            redirect_uri=req.redirect_uri,
            expires_at=int(state.clock.time()) + state.config.code_ttl,
            kind=kind,
            sub=sub,
            scope=req.scope,
            delegated_scope=req.delegated_scope if req.enterprise else "",
            linking_profile_id=profile_id,
        )
        state.mark_dirty()
    params = {"code": code}
    if req.state:
        params["state"] = req.state
    return with_query(req.redirect_uri, params), sub


def _approve_individual(
    state: SandboxState, req: AuthorizeRequest, ident: m.Identity, linked_account_id: str | None
) -> tuple[str, str]:
    world = state.world
    if ident.kind in {"room", "service_account"} or not ident.account_id:
        raise ConsentError(f"{ident.email} cannot sign in to a calendar service interactively.")
    target = ident.account_id
    if req.link_token:
        link = world.link_tokens.get(req.link_token)
        if not link or link["expires_at"] < state.clock.time():
            raise ConsentError("The link token is unknown or has expired.")
        target = link["account_id"]
    elif linked_account_id and not req.avoid_linking and state.config.link_accounts_by_cookie:
        if linked_account_id in world.accounts:
            target = linked_account_id
    profile_id = _profile_of(world, ident)
    profile = world.profiles[profile_id]
    if profile.account_id != target:
        _move_profile(world, profile, target)
    profile.authorized = True
    notify.resume_profile(state, profile)  # signing in again reconnects it, as relinking does
    return target, profile_id


def _profile_of(world, ident: m.Identity) -> str:
    return next(p.profile_id for p in world.profiles.values() if p.email == ident.email)


def _move_profile(world, profile: m.Profile, target_account_id: str) -> None:
    old = world.accounts.get(profile.account_id)
    if old and profile.profile_id in old.profile_ids:
        old.profile_ids.remove(profile.profile_id)
    world.accounts[target_account_id].profile_ids.append(profile.profile_id)
    profile.account_id = target_account_id


def _approve_enterprise(
    state: SandboxState, req: AuthorizeRequest, ident: m.Identity, domain: m.Domain
) -> str:
    if not domain.organisation or ident.admin_of != domain.name:
        raise ConsentError(f"{ident.email} is not an administrator of {domain.name}.")
    ser_id = stable_id(state.config.seed, "ser_", req.client_id, domain.name, length=15)
    state.world.service_accounts[ser_id] = m.ServiceAccount(
        service_account_id=ser_id,
        client_id=req.client_id,
        domain=domain.name,
        email=ident.email,
        provider_name=domain.provider_name,
        scope=req.scope,
        delegated_scope=req.delegated_scope,
    )
    return ser_id


# ---- token endpoint ----------------------------------------------------------------------------


def check_client(state: SandboxState, client_id: str | None, client_secret: str | None) -> None:
    if client_id != state.config.client_id or not any(
        hmac.compare_digest(str(client_secret or ""), s) for s in state.client_secrets
    ):
        raise errors.token_error("invalid_client", 401, "client credentials are not valid")


def _issue(state: SandboxState, grant: m.Grant) -> m.AccessToken:
    ttl = (
        state.config.service_account_token_ttl
        if grant.kind == "service_account"
        else state.config.token_ttl
    )
    token = m.AccessToken(new_token(32), grant.grant_id, int(state.clock.time()) + ttl)
    state.world.access_tokens[token.token] = token
    return token


def token_response(state: SandboxState, grant: m.Grant, token: m.AccessToken) -> dict:
    body: dict = {
        "token_type": "bearer",
        "access_token": token.token,
        "expires_in": max(0, token.expires_at - int(state.clock.time())),
        "refresh_token": grant.refresh_token,
        "scope": grant.scope,
    }
    world = state.world
    if grant.kind == "service_account":
        body["service_account_id"] = grant.sub
        return body
    body["account_id"] = grant.sub
    body["sub"] = grant.sub
    profile = world.profiles.get(grant.linking_profile_id or "")
    if profile:
        body["linking_profile"] = {
            "provider_name": m.wire_provider_name(profile.provider_name),
            "provider_service": profile.provider_service,
            "profile_id": profile.profile_id,
            "profile_name": profile.email,
        }
    return body


def exchange_code(state: SandboxState, client_id: str, code: str, redirect_uri: str) -> dict:
    with state.lock:
        world = state.world
        auth = world.codes.get(code or "")
        if (
            auth is None
            or auth.used
            or auth.client_id != client_id
            or auth.expires_at < state.clock.time()
            or auth.redirect_uri != (redirect_uri or "")
        ):
            raise errors.token_error("invalid_grant")
        auth.used = True
        grant = m.Grant(
            grant_id=new_id("grt_"),
            client_id=client_id,
            kind=auth.kind,
            sub=auth.sub,
            scope=auth.scope,
            refresh_token=new_token(32),
            created_at=int(state.clock.time()),
            delegated_scope=auth.delegated_scope,
            via_service_account=auth.via_service_account,
            linking_profile_id=auth.linking_profile_id,
        )
        world.grants[grant.grant_id] = grant
        world.refresh_index[grant.refresh_token] = grant.grant_id
        token = _issue(state, grant)
        state.mark_dirty()
        return token_response(state, grant, token)


def refresh(state: SandboxState, client_id: str, refresh_token: str) -> dict:
    with state.lock:
        world = state.world
        grant = world.grants.get(world.refresh_index.get(refresh_token or "", ""))
        if grant is None or grant.revoked or grant.client_id != client_id:
            raise errors.token_error("invalid_grant")
        if state.config.rotate_refresh_tokens:
            world.refresh_index.pop(grant.refresh_token, None)
            grant.refresh_token = new_token(32)
            world.refresh_index[grant.refresh_token] = grant.grant_id
        token = _issue(state, grant)
        state.mark_dirty()
        body = token_response(state, grant, token)
        # The refresh response carries only the token fields (§1.3).
        return {
            k: body[k]
            for k in ("token_type", "access_token", "expires_in", "refresh_token", "scope")
        }


def revoke(state: SandboxState, client_id: str, token: str | None, sub: str | None) -> None:
    """Revoke by token (access or refresh) or by sub; unknown values are not an error (RFC 7009)."""
    with state.lock:
        world = state.world
        grants: list[m.Grant] = []
        if token:
            grant_id = world.refresh_index.get(token)
            if grant_id is None and token in world.access_tokens:
                grant_id = world.access_tokens[token].grant_id
            if grant_id and grant_id in world.grants:
                grants.append(world.grants[grant_id])
        elif sub:
            if not sub.startswith("acc_") and state.config.revoke_non_account_subs == "refuse":
                # Revoking by sub is documented for accounts; for service accounts (ser_) and
                # rooms (res_) it is unconfirmed: the strict reading refuses it.
                raise errors.token_error(
                    "invalid_request", 400, "revoke this authorization by its token"
                )
            grants = [g for g in world.grants.values() if g.sub == sub]
        for grant in grants:
            if grant.client_id == client_id:
                revoke_grant(state, grant)
        state.mark_dirty()


def revoke_grant(state: SandboxState, grant: m.Grant) -> None:
    world = state.world
    grant.revoked = True
    world.refresh_index.pop(grant.refresh_token, None)
    for access in world.access_tokens.values():
        if access.grant_id == grant.grant_id:
            access.revoked = True
    if grant.kind == "service_account" and state.config.cascade_service_account_revoke:
        for other in world.grants.values():
            if other.via_service_account == grant.sub and not other.revoked:
                revoke_grant(state, other)
    still_authorized = any(
        g.sub == grant.sub and not g.revoked and g.client_id == grant.client_id
        for g in world.grants.values()
    )
    if not still_authorized:
        for channel in world.channels.values():
            if channel.account_id == grant.sub and channel.client_id == grant.client_id:
                channel.closed = True


# ---- bearer authentication ----------------------------------------------------------------------


@dataclass
class Caller:
    """Who is calling an API endpoint: an account/service account token, or the app's API key."""

    kind: str  # token | api_key
    client_id: str
    grant: m.Grant | None = None
    token: str | None = None

    @property
    def sub(self) -> str | None:
        return self.grant.sub if self.grant else None

    @property
    def is_service_account(self) -> bool:
        return bool(self.grant and self.grant.kind == "service_account")

    def has_scope(self, *needed: str) -> bool:
        if self.grant is None:
            return False
        granted = expand_scope(self.grant.scope)
        return all(n in granted for n in needed)


@dataclass
class TokenCaller(Caller):
    """A caller with an access token: always backed by a grant, so always has a ``sub``."""

    grant: m.Grant

    @property
    def sub(self) -> str:
        return self.grant.sub


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(
    state: SandboxState,
    header: str | None,
    *,
    allow_api_key: bool = False,
    allow_token: bool = True,
) -> Caller:
    """Resolve the Authorization header or raise 401."""
    value = bearer(header)
    if not value:
        raise errors.unauthorized("missing bearer credentials")
    with state.lock:
        world = state.world
        if allow_token and value in world.access_tokens:
            access = world.access_tokens[value]
            grant = world.grants.get(access.grant_id)
            if access.revoked or grant is None or grant.revoked:
                raise errors.unauthorized("access token has been revoked")
            if access.expires_at <= state.clock.time():
                raise errors.unauthorized("access token has expired")
            return TokenCaller("token", grant.client_id, grant, value)
        if allow_api_key and any(hmac.compare_digest(value, s) for s in state.client_secrets):
            return Caller("api_key", state.config.client_id)
    raise errors.unauthorized()
