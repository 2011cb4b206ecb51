"""Service-account authorizations with asynchronous, signed callbacks (§2.3–2.5, §14 G)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, make_response

from . import authz, errors, notify, web
from . import models as m
from .state import SandboxState, new_token

bp = Blueprint("sandbox_enterprise", __name__)

#: Seconds before a callback is due: the answer is asynchronous, as with Cronofy.
CALLBACK_DELAY = 0.1


def _validate_entry(entry: Any, ser: m.ServiceAccount, index: int | None) -> dict[str, str]:
    field = "service_account_authorizations" if index is not None else None

    def fail(name: str, key: str, text: str) -> errors.ApiError:
        return errors.invalid(field or name, key, f"entry {index}: {text}" if field else text)

    if not isinstance(entry, dict):
        raise fail("service_account_authorizations", "invalid", "must be an object")
    for name in ("email", "callback_url", "scope"):
        if not entry.get(name) or not isinstance(entry[name], str):
            raise fail(name, "required", f"{name} must be specified")
    parts = urlsplit(entry["callback_url"])
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise fail("callback_url", "invalid", "callback_url must be an http(s) URL")
    wanted = authz.expand_scope(entry["scope"])
    allowed = authz.expand_scope(ser.delegated_scope)
    if not wanted <= allowed or authz.unknown_scopes(entry["scope"]):
        raise fail(
            "scope",
            "invalid_scope",
            "scope must be a subset of the delegated_scope granted by the administrator",
        )
    return {k: str(entry[k]) for k in ("email", "callback_url", "scope", "state") if entry.get(k)}


@bp.post("/v1/service_account_authorizations")
def service_account_authorizations():
    """Request access to one mailbox or a batch of ≤ 50; 202 now, a callback per mailbox later."""
    who = web.service_account_caller()
    data = web.body()
    state = web.state()
    with state.lock:
        ser = state.world.service_accounts[who.sub]
        batch = data.get("service_account_authorizations")
        if batch is not None:
            if data.get("email"):
                raise errors.invalid(
                    "service_account_authorizations",
                    "invalid",
                    "do not mix the single and batch forms",
                )
            if not isinstance(batch, list) or not batch:
                raise errors.required("service_account_authorizations")
            if len(batch) > state.config.max_service_account_batch:
                raise errors.invalid(
                    "service_account_authorizations",
                    "too_many_entries",
                    f"at most {state.config.max_service_account_batch} per batch",
                )
            entries = [_validate_entry(e, ser, i) for i, e in enumerate(batch)]
            # pycronofy puts ``state`` at the top level of a batch (§2.3).
            if data.get("state"):
                for entry in entries:
                    entry.setdefault("state", str(data["state"]))
        else:
            entries = [_validate_entry(data, ser, None)]
        for entry in entries:
            payload = _placed_state(state, _outcome(state, ser, who.grant, entry))
            notify.enqueue_post(
                state,
                "callback",
                entry["callback_url"],
                payload,
                delay=CALLBACK_DELAY,
                signed=state.config.sa_callback_signed,
            )
    return make_response("", 202)


def _placed_state(state: SandboxState, payload: dict[str, Any]) -> dict[str, Any]:
    """Put ``state`` where the sandbox is configured to (unconfirmed, §2.4): inside
    ``authorization`` or at the top level of the body."""
    if state.config.sa_callback_state == "top_level" and "state" in payload["authorization"]:
        inner = dict(payload["authorization"])
        return {"authorization": inner, "state": inner.pop("state")}
    return payload


def _failure(entry: dict[str, str], key: str, description: str) -> dict[str, Any]:
    body = {"error": "access_denied", "error_key": key, "error_description": description}
    if entry.get("state"):
        body["state"] = entry["state"]
    return {"authorization": body}


def _outcome(
    state: SandboxState, ser: m.ServiceAccount, grant: m.Grant, entry: dict[str, str]
) -> dict[str, Any]:
    """The callback body: a redeemable code, or why the mailbox cannot be reached."""
    world = state.world
    email = entry["email"].strip().lower()
    ident = world.identity(email)
    injected = web.runtime().mailbox_failures.get(email)
    if injected:
        return _failure(entry, injected, f"{email}: failure injected by the sandbox")
    domain = world.domains.get(ser.domain)
    if (
        ident is None
        or ident.domain != ser.domain
        or ident.kind == "service_account"
        or not ident.account_id
    ):
        return _failure(entry, "unknown_mailbox", f"{email} is not a mailbox in {ser.domain}")
    if domain and ident.email in domain.impersonation_excluded:
        return _failure(
            entry, "outside_impersonation_scope", f"the service account may not impersonate {email}"
        )
    scopes = grant.scope.split()
    need = "service_account/resources/" if ident.kind == "room" else "service_account/accounts/"
    if not any(s.startswith(need) for s in scopes):
        return _failure(
            entry, "scope_not_granted", f"the service account was not granted {need.rstrip('/')}"
        )
    profile = next(p for p in world.profiles.values() if p.email == ident.email)
    profile.authorized = True
    notify.resume_profile(state, profile)  # linking it again reconnects it, as relinking does
    code = new_token(32)
    world.codes[code] = m.AuthCode(
        code=code,
        client_id=grant.client_id,
        redirect_uri=entry["callback_url"],
        expires_at=int(state.clock.time()) + state.config.code_ttl,
        kind="account",
        sub=ident.account_id,
        scope=entry["scope"],
        via_service_account=ser.service_account_id,
        linking_profile_id=profile.profile_id,
    )
    body = {"code": code}
    if entry.get("state"):
        body["state"] = entry["state"]
    return {"authorization": body}
