"""Account, userinfo, profiles, calendars, resources, link tokens, permissions
(§1.5, §1.7, §2.6, §3)."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from flask import Blueprint, jsonify, make_response

from . import errors, web
from . import models as m
from .state import World, new_token

bp = Blueprint("sandbox_accounts", __name__)


def calendar_payload(world: World, cal: m.Calendar) -> dict:
    profile = world.profiles[cal.profile_id]
    return {
        "provider_name": m.wire_provider_name(profile.provider_name),
        "profile_id": profile.profile_id,
        "profile_name": profile.email,
        "calendar_id": cal.calendar_id,
        "calendar_name": cal.name,
        "calendar_readonly": cal.readonly,
        "calendar_deleted": cal.deleted,
        "calendar_primary": cal.primary,
        "calendar_integrated_conferencing_available": cal.integrated_conferencing,
        "calendar_attachments_available": False,
        "permission_level": cal.permission_level,
    }


def relink_url(profile: m.Profile) -> str:
    return f"{web.base_url()}/relink/{profile.provider_name}?email={quote(profile.email)}"


def profile_payload(world: World, profile: m.Profile, *, with_calendars: bool = False) -> dict:
    data = {
        "provider_name": m.wire_provider_name(profile.provider_name),
        "provider_service": profile.provider_service,
        "profile_id": profile.profile_id,
        "profile_name": profile.email,
        "profile_connected": profile.connected,
    }
    if not profile.connected:
        data["profile_relink_url"] = relink_url(profile)
    if with_calendars:
        data["profile_initial_sync_required"] = profile.initial_sync_required
        data["profile_calendars"] = (
            [
                {
                    k: v
                    for k, v in calendar_payload(world, c).items()
                    if k not in {"provider_name", "profile_id", "profile_name"}
                }
                for c in world.profile_calendars(profile.profile_id)
            ]
            if profile.connected
            else []
        )
    return data


@bp.get("/v1/account")
def account():
    """Describe the calling account."""
    who = web.account_caller("read_account")
    state = web.state()
    with state.lock:
        acc = state.world.accounts[who.sub]
        return jsonify(
            {
                "account": {
                    "account_id": acc.account_id,
                    "email": acc.email,
                    "name": acc.name,
                    "scope": who.grant.scope,
                    "default_tzid": acc.default_tzid,
                }
            }
        )


@bp.get("/v1/userinfo")
def userinfo():
    """OpenID-style userinfo for an account or a service account (§3.2, §2.2)."""
    who = web.token_caller()
    state = web.state()
    with state.lock:
        world = state.world
        if who.is_service_account:
            ser = world.service_accounts[who.sub]
            return jsonify(
                {
                    "sub": ser.service_account_id,
                    "email": ser.email,
                    "cronofy.type": "service_account",
                    "cronofy.data": {
                        "service_account": {
                            "provider_name": ser.provider_name,
                            "domain": ser.domain,
                        },
                        "authorization": {
                            "scope": who.grant.scope,
                            "status": "active",
                            "delegated_scope": ser.delegated_scope,
                        },
                    },
                    # Older flat keys read by cronofy-ruby and omniauth-cronofy.
                    "cronofy.service_account.domain": ser.domain,
                    "cronofy.service_account.email": ser.email,
                }
            )
        acc = world.accounts[who.sub]
        return jsonify(
            {
                "sub": acc.account_id,
                "email": acc.email,
                "name": acc.name,
                "zoneinfo": acc.default_tzid,
                "cronofy.type": "account",
                "cronofy.data": {
                    "authorization": {"scope": who.grant.scope, "status": "active"},
                    "profiles": [
                        profile_payload(world, p, with_calendars=True)
                        for p in world.account_profiles(acc.account_id)
                    ],
                    "conferencing_profiles": [
                        {
                            "provider_name": c.provider_name,
                            "profile_id": c.profile_id,
                            "profile_name": c.profile_name,
                            "profile_connected": c.connected,
                        }
                        for c in world.conferencing_profiles.values()
                        if c.account_id == acc.account_id
                    ],
                },
            }
        )


@bp.get("/v1/profiles")
def profiles():
    """List the account's calendar profiles."""
    who = web.account_caller()
    state = web.state()
    with state.lock:
        world = state.world
        return jsonify(
            {"profiles": [profile_payload(world, p) for p in world.account_profiles(who.sub)]}
        )


@bp.post("/v1/profiles/<profile_id>/revoke")
def revoke_profile(profile_id: str):
    """Stop accessing one profile of the account (§1.5)."""
    who = web.account_caller()
    state = web.state()
    with state.lock:
        profile = state.world.profiles.get(profile_id)
        if profile is None or profile.account_id != who.sub or not profile.authorized:
            raise errors.not_found("profile")
        profile.authorized = False
        state.mark_dirty()
    return make_response("", 202)


@bp.get("/v1/calendars")
def list_calendars():
    """List the account's calendars, delegated ones included."""
    who = web.account_caller("list_calendars")
    state = web.state()
    with state.lock:
        world = state.world
        cals = [
            c
            for p in world.account_profiles(who.sub)
            if p.connected
            for c in world.profile_calendars(p.profile_id)
        ]
        return jsonify({"calendars": [calendar_payload(world, c) for c in cals]})


@bp.post("/v1/calendars")
def create_calendar():
    """Create a calendar in one of the account's profiles (§3.5)."""
    who = web.account_caller()
    data = web.body()
    problems = {}
    if not data.get("profile_id"):
        problems["profile_id"] = [("required", "profile_id must be specified")]
    if not isinstance(data.get("name"), str) or not data.get("name", "").strip():
        problems["name"] = [("required", "name must be specified")]
    if problems:
        raise errors.invalid_many(problems)
    if not who.has_scope("create_calendar"):
        raise errors.forbidden("the token lacks the create_calendar scope")
    state = web.state()
    with state.lock:
        world = state.world
        profile = world.profiles.get(data["profile_id"])
        if profile is None or profile.account_id != who.sub or not profile.authorized:
            raise errors.invalid(
                "profile_id", "unknown", "profile_id is not a profile of this account"
            )
        if not profile.connected:
            raise errors.locked()
        name = data["name"].strip()
        existing = world.profile_calendars(profile.profile_id, include_deleted=False)
        if state.config.duplicate_calendar_names_rejected and any(c.name == name for c in existing):
            raise errors.invalid(
                "name", "duplicate_calendar_name", "a calendar with this name already exists"
            )
        cal = m.Calendar(
            calendar_id=f"cal_{profile.profile_id[4:]}_{secrets.token_hex(6)}",
            profile_id=profile.profile_id,
            name=name,
            owner_email=profile.email,
            integrated_conferencing=profile.provider_name in {"google", "office365"},
            color=data.get("color") if isinstance(data.get("color"), str) else None,
        )
        world.calendars[cal.calendar_id] = cal
        world.events_in(cal.calendar_id)
        state.mark_dirty()
        return jsonify({"calendar": calendar_payload(world, cal)})


@bp.get("/v1/resources")
def resources():
    """List the rooms of a service account's domain (§2.6)."""
    who = web.service_account_caller()
    if (
        "service_account/resources/manage" not in who.grant.scope.split()
        and "service_account/resources/unrestricted_access" not in who.grant.scope.split()
    ):
        raise errors.forbidden("the service account was not granted access to resources")
    state = web.state()
    with state.lock:
        world = state.world
        ser = world.service_accounts[who.sub]
        rooms = sorted(
            (i for i in world.identities.values() if i.kind == "room" and i.domain == ser.domain),
            key=lambda i: i.email,
        )
        return jsonify({"resources": [{"email": r.email, "name": r.name} for r in rooms]})


@bp.post("/v1/link_tokens")
def link_tokens():
    """Issue a token that links the next authorization into this account (§1.7)."""
    who = web.account_caller()
    state = web.state()
    with state.lock:
        token = "lt_" + new_token(24)
        state.world.link_tokens[token] = {
            "account_id": who.sub,
            "expires_at": state.clock.time() + 600,
        }
        state.mark_dirty()
    return jsonify({"link_token": token})


@bp.post("/v1/permissions")
def permissions():
    """Ask for elevated (``unrestricted``) permission on calendars (§3.6)."""
    who = web.account_caller()
    data = web.body()
    wanted = data.get("permissions")
    if not isinstance(wanted, list) or not wanted:
        raise errors.required("permissions")
    state = web.state()
    with state.lock:
        world = state.world
        mine = {c.calendar_id: c for c in world.account_calendars(who.sub)}
        for entry in wanted:
            if not isinstance(entry, dict) or entry.get("calendar_id") not in mine:
                raise errors.invalid(
                    "permissions",
                    "invalid_calendar_ids",
                    "each permission needs a calendar_id of this account",
                )
            if entry.get("permission_level") not in {"unrestricted", "sandbox"}:
                raise errors.invalid(
                    "permissions", "invalid", "permission_level must be unrestricted or sandbox"
                )
        if who.grant.via_service_account:
            for entry in wanted:
                mine[entry["calendar_id"]].permission_level = entry["permission_level"]
            state.mark_dirty()
            return jsonify({"permissions_request": {"accepted": True}})
        token = new_token(24)
        world.pending[token] = m.PendingRequest(
            token=token,
            kind="permissions",
            account_id=who.sub,
            redirect_uri=data.get("redirect_uri"),
            data={"permissions": wanted},
        )
        state.mark_dirty()
    return jsonify({"permissions_request": {"url": f"{web.base_url()}/permissions/{token}"}})
