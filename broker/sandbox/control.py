"""The control API under ``/_sandbox/``: for tests, demos and benchmarks, never for production
code (broker/sandbox/client.py is its client)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, jsonify, request

from . import authz, errors, events, faults, notify, web
from . import models as m
from .authz import AuthorizeRequest, ConsentError
from .seed import DEFAULT_PASSWORD, identity_listing, make_event, stable_id
from .timeutil import BadTime, format_utc, parse_datetime, parse_event_time, zone

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

DIRECT_REDIRECT = "http://127.0.0.1/_sandbox/direct"
NOTIFICATION_TYPES = {
    "change",
    "profile_disconnected",
    "profile_initial_sync_completed",
    "conferencing_profile_disconnected",
    "gdpr_requested",
}


def _json() -> dict[str, Any]:
    return web.body()


@bp.post("/reset")
def reset():
    """Restore the seeded world and start-up options; clear faults, tokens, channels, queues.

    The clock goes back to real time, or, with ``{"now": "...Z", "frozen": bool}``, to that
    instant, and the world is seeded from the clock's day."""
    data = _json()
    now, frozen = _instant(data) if "now" in data else (None, False)
    web.runtime().reset(now, frozen=frozen)
    state = web.state()
    return jsonify(
        {"ok": True, "seeded_at": state.world.seeded_at, "clock": state.clock.describe()}
    )


# ---- the clock ---------------------------------------------------------------------------------


def _instant(data: dict[str, Any]) -> tuple[dt.datetime, bool]:
    frozen = data.get("frozen", False)
    if not isinstance(frozen, bool):
        raise errors.invalid("frozen", "must_be_boolean", "frozen must be true or false")
    if not isinstance(data.get("now"), str) or not data["now"].endswith("Z"):
        raise errors.invalid(
            "now", "invalid", "now must be a UTC time such as 2030-01-08T09:00:00Z"
        )
    try:
        return parse_datetime(data["now"]), frozen
    except BadTime as exc:
        raise errors.invalid("now", "invalid", str(exc)) from None


@bp.get("/clock")
def get_clock():
    """The sandbox's time: ``now``, ``frozen``, and whether it is the real time."""
    return jsonify(web.state().clock.describe())


@bp.put("/clock")
def set_clock():
    """``{"now": "2030-01-08T09:00:00Z", "frozen": false}``: the time is now that instant, frozen
    there or running on from it. The world is not reseeded (``/reset`` with ``now`` does that)."""
    state = web.state()
    now, frozen = _instant(_json())
    state.clock.set(now, frozen=frozen)
    _wake_deliverer(state)
    return jsonify(state.clock.describe())


@bp.post("/clock/advance")
def advance_clock():
    """``{"seconds": N}``: move the clock forward (tokens expire, windows pass, retries fall
    due)."""
    state = web.state()
    seconds = _json().get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise errors.invalid("seconds", "invalid", "seconds must be a number, zero or more")
    state.clock.advance(seconds)
    _wake_deliverer(state)
    return jsonify(state.clock.describe())


@bp.delete("/clock")
def real_clock():
    """Back to real time."""
    state = web.state()
    state.clock.use_real_time()
    _wake_deliverer(state)
    return jsonify(state.clock.describe())


def _wake_deliverer(state) -> None:
    deliverer = getattr(state, "deliverer", None)
    if deliverer is not None:
        deliverer.wake()  # items may have fallen due


@bp.get("/identities")
def identities():
    """Every seeded identity with what the consent page asks for."""
    state = web.state()
    with state.lock:
        return jsonify(
            {"client_id": state.config.client_id, "identities": identity_listing(state.world)}
        )


# ---- consent and tokens without a browser ------------------------------------------------------


def _authorize_request(data: dict[str, Any]) -> AuthorizeRequest:
    if data.get("authorize_url"):
        parts = urlsplit(data["authorize_url"])
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return AuthorizeRequest.from_params(
            params,
            enterprise=parts.path.rstrip("/").endswith("/enterprise_connect/oauth/authorize"),
        )
    return AuthorizeRequest.from_params(data, enterprise=bool(data.get("enterprise")))


@bp.post("/consent")
def consent():
    """What the consent form posts, as JSON: returns the redirect URL carrying the code."""
    data = _json()
    req = _authorize_request(data)
    decision = data.get("decision", "approve")
    if decision not in {"approve", "deny"}:
        raise errors.invalid("decision", "invalid", "decision must be approve or deny")
    try:
        url, _sub = authz.decide(
            web.state(),
            req,
            approve=decision == "approve",
            email=data.get("email", ""),
            password=data.get("password"),
            server_url=data.get("server_url", ""),
        )
    except ConsentError as exc:
        raise errors.invalid("consent", "refused", str(exc)) from None
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    return jsonify(
        {
            "redirect_url": url,
            "code": query.get("code"),
            "state": query.get("state"),
            "error": query.get("error"),
        }
    )


@bp.post("/tokens")
def tokens():
    """Shortcut for tests and benchmarks: consent plus code exchange in one call."""
    data = _json()
    state = web.state()
    enterprise = bool(data.get("enterprise"))
    scope = data.get("scope") or (
        "service_account/accounts/manage service_account/resources/manage"
        if enterprise
        else "read_account list_calendars read_events create_event delete_event"
    )
    req = AuthorizeRequest(
        client_id=state.config.client_id,
        redirect_uri=DIRECT_REDIRECT,
        scope=scope,
        enterprise=enterprise,
        delegated_scope=data.get("delegated_scope", "read_write") if enterprise else "",
    )
    try:
        url, _sub = authz.decide(
            state, req, approve=True, email=data.get("email", ""), trusted_redirect=DIRECT_REDIRECT
        )
    except ConsentError as exc:
        raise errors.invalid("email", "refused", str(exc)) from None
    code = parse_qs(urlsplit(url).query).get("code", [""])[0]
    if not code:
        raise errors.invalid("scope", "invalid_scope", "the requested scope is not valid")
    return jsonify(authz.exchange_code(state, state.config.client_id, code, DIRECT_REDIRECT))


@bp.post("/tokens/expire")
def expire_tokens():
    """Expire access tokens now: one (``access_token``), an account's (``email``/``sub``), or
    all."""
    data = _json()
    state = web.state()
    with state.lock:
        world = state.world
        sub = data.get("sub")
        if data.get("email"):
            ident = world.identity(data["email"])
            sub = ident.account_id if ident else None
            if ident and ident.kind == "service_account":
                sub = next(
                    (
                        s.service_account_id
                        for s in world.service_accounts.values()
                        if s.email == ident.email
                    ),
                    None,
                )
            if sub is None:
                raise errors.invalid("email", "unknown", "no such identity")
        expired = 0
        for token in world.access_tokens.values():
            grant = world.grants.get(token.grant_id)
            if data.get("access_token") and token.token != data["access_token"]:
                continue
            if sub and (grant is None or grant.sub != sub):
                continue
            if token.expires_at > state.clock.time():
                token.expires_at = int(state.clock.time()) - 1
                expired += 1
        state.mark_dirty()
    return jsonify({"expired": expired})


@bp.post("/client-secrets")
def add_client_secret():
    """Add an active client secret (rotation): notifications are then signed with each."""
    secret = _json().get("secret")
    if not isinstance(secret, str) or not secret:
        raise errors.required("secret")
    state = web.state()
    with state.lock:
        if secret not in state.world.client_secrets:
            state.world.client_secrets.append(secret)
        state.mark_dirty()
        return jsonify({"count": len(state.world.client_secrets)})


@bp.delete("/client-secrets")
def remove_client_secret():
    """Retire a client secret; the last one cannot be removed."""
    secret = _json().get("secret")
    state = web.state()
    with state.lock:
        if secret not in state.world.client_secrets:
            raise errors.not_found("client secret")
        if len(state.world.client_secrets) == 1:
            raise errors.invalid("secret", "last_secret", "the application needs one secret")
        state.world.client_secrets.remove(secret)
        state.mark_dirty()
        return jsonify({"count": len(state.world.client_secrets)})


# ---- world changes ------------------------------------------------------------------------------


@bp.post("/external-change")
def external_change():
    """The owner creates, moves, updates or deletes an event in their own calendar."""
    data = _json()
    state = web.state()
    with state.lock:
        return jsonify({"event": events.external_change(state, data)})


@bp.post("/attendee-response")
def attendee_response():
    """An attendee accepts, declines or tentatively accepts the organizer's event."""
    data = _json()
    state = web.state()
    with state.lock:
        return jsonify({"event": events.attendee_response(state, data)})


@bp.get("/events")
def owner_events():
    """An identity's events as the provider holds them (for assertions and demos)."""
    state = web.state()
    email = request.args.get("email", "")
    include_deleted = events.parse_bool(request.args.get("include_deleted"), "include_deleted")
    with state.lock:
        world = state.world
        ident = world.identity(email)
        if ident is None or not ident.account_id:
            raise errors.invalid("email", "unknown", "no such calendar owner")
        out = []
        for cal in world.own_calendars(ident.account_id):
            for ev in world.events_in(cal.store_id).values():
                if include_deleted or not ev.deleted:
                    # The provider's view also holds what read-events does not report.
                    out.append(
                        {
                            **events.event_payload(world, ev, cal),
                            "reminders": [dict(r) for r in ev.reminders],
                            "color": ev.color,
                        }
                    )
        out.sort(key=lambda e: (str(e["start"]), e["event_uid"]))
        return jsonify({"events": out})


def _profile_or_404(profile_id: str) -> m.Profile:
    profile = web.state().world.profiles.get(profile_id)
    if profile is None:
        raise errors.not_found("profile")
    return profile


@bp.post("/profiles/<profile_id>/disconnect")
def disconnect_profile(profile_id: str):
    """The profile loses its provider credentials: 423 on writes, ``profile_disconnected``
    pushed."""
    state = web.state()
    with state.lock:
        profile = _profile_or_404(profile_id)
        profile.connected = False
        sent = notify.notify_account(state, profile.account_id, "profile_disconnected")
        state.mark_dirty()
    return jsonify(
        {"profile_id": profile_id, "profile_connected": False, "notified_channels": sent}
    )


@bp.post("/profiles/<profile_id>/reconnect")
def reconnect_profile(profile_id: str):
    """Restore a disconnected profile as relinking does (missed changes are notified)."""
    state = web.state()
    with state.lock:
        profile = _profile_or_404(profile_id)
        missed = notify.resume_profile(state, profile)
    return jsonify({"profile_id": profile_id, "profile_connected": True, "missed_changes": missed})


@bp.post("/notify")
def send_notification():
    """Push a typed notification to an account's channels (e.g. ``gdpr_requested``)."""
    data = _json()
    kind = data.get("type")
    if kind not in NOTIFICATION_TYPES:
        raise errors.invalid("type", "invalid", f"type must be one of {sorted(NOTIFICATION_TYPES)}")
    state = web.state()
    with state.lock:
        world = state.world
        sub = data.get("sub")
        if data.get("email"):
            ident = world.identity(data["email"])
            sub = ident.account_id if ident else None
        if not sub or sub not in world.accounts:
            raise errors.invalid("sub", "unknown", "give the email or sub of an account")
        if kind == "change":
            count = 0
            for channel in world.channels.values():
                if channel.account_id == sub and not channel.closed:
                    notify.notify_channel(
                        state,
                        channel,
                        {"type": "change", "changes_since": format_utc(state.clock.now())},
                    )
                    count += 1
        else:
            count = notify.notify_account(state, sub, kind)
    return jsonify({"notified_channels": count})


@bp.put("/mailbox-failures")
def mailbox_failures():
    """Make service-account authorizations for these mailboxes fail with the given error_key."""
    data = _json()
    failures = data.get("mailboxes", {})
    if not isinstance(failures, dict):
        raise errors.invalid("mailboxes", "invalid", "mailboxes must map emails to error keys")
    runtime = web.runtime()
    runtime.mailbox_failures.clear()
    runtime.mailbox_failures.update({k.lower(): str(v) for k, v in failures.items()})
    return jsonify({"mailboxes": runtime.mailbox_failures})


@bp.post("/smart_invites/<invite_id>/reply")
def smart_invite_reply(invite_id: str):
    """A recipient answers a Smart Invite; the app's callback_url hears about it."""
    data = _json()
    status = data.get("status")
    if status not in {"accepted", "tentative", "declined"}:
        raise errors.invalid("status", "invalid", "status must be accepted, tentative or declined")
    state = web.state()
    with state.lock:
        invite = state.world.smart_invites.get(invite_id)
        email = str(data.get("email", "")).lower()
        if invite is None or email not in invite["recipients"]:
            raise errors.not_found("smart invite recipient")
        recipient = invite["recipients"][email]
        recipient["status"] = status
        reply = {"email": recipient["email"], "status": status}
        if data.get("comment"):
            reply["comment"] = str(data["comment"])
        invite["replies"].append(reply)
        if invite.get("callback_url"):
            notify.enqueue_post(
                state,
                "callback",
                invite["callback_url"],
                {
                    "notification": {"type": "smart_invite"},
                    "smart_invite": {
                        "smart_invite_id": invite_id,
                        "callback_url": invite["callback_url"],
                        "recipient": dict(recipient),
                        "reply": reply,
                    },
                },
            )
        state.mark_dirty()
    return jsonify({"reply": reply})


@bp.post("/seed")
def seed_more():
    """Add identities (with accounts, profiles, calendars) and external events to the world."""
    data = _json()
    state = web.state()
    added_identities: list[dict[str, Any]] = []
    added_events = 0
    with state.lock:
        world = state.world
        for domain in data.get("domains") or []:
            if not isinstance(domain, dict) or not domain.get("name"):
                raise errors.invalid("domains", "invalid", "each domain needs a name")
            world.domains.setdefault(
                domain["name"],
                m.Domain(
                    name=domain["name"],
                    provider_name=domain.get("provider_name", "google"),
                    provider_service=domain.get("provider_service", "gsuite"),
                    organisation=bool(domain.get("organisation", True)),
                ),
            )
        for spec in data.get("identities") or []:
            added_identities.append(_seed_identity(state, spec))
        for spec in data.get("events") or []:
            _seed_event(state, spec)
            added_events += 1
        delegations = [_seed_delegation(state, spec) for spec in data.get("delegations") or []]
        world.rebuild_indexes()
        state.mark_dirty()
    return jsonify(
        {"identities": added_identities, "events": added_events, "delegations": delegations}
    )


def _seed_delegation(state, spec: Any) -> dict[str, Any]:
    """``owner``'s primary calendar delegated to ``to``: listed among the calendars of ``to``'s
    first profile (under ``name``, writable or read-only) and showing the owner's events; or,
    with ``withdraw``, that delegation taken back (no longer listed)."""
    world = state.world
    if not isinstance(spec, dict):
        raise errors.invalid("delegations", "invalid", "each delegation must be an object")
    to, owner = world.identity(spec.get("to")), world.identity(spec.get("owner"))
    if to is None or owner is None:
        raise errors.invalid("delegations", "unknown_identity", "to and owner must be seeded")
    if to is owner or to.kind == "room":
        raise errors.invalid("delegations", "invalid", "delegate to another person")
    writable, withdraw = spec.get("writable", False), spec.get("withdraw", False)
    name = spec.get("name", f"{owner.name} — Calendar")
    if not isinstance(writable, bool) or not isinstance(withdraw, bool):
        raise errors.invalid("delegations", "must_be_boolean", "writable/withdraw are booleans")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise errors.invalid("delegations", "invalid", "name must be a non-empty string")
    profile_id = world.accounts[to.account_id].profile_ids[0]
    account = world.accounts[owner.account_id]
    source = next(
        c
        for c in world.profile_calendars(account.profile_ids[0])
        if c.primary and c.source_calendar_id is None
    )
    existing = [
        c
        for c in world.profile_calendars(profile_id, include_deleted=False)
        if c.source_calendar_id == source.calendar_id
    ]
    if withdraw:
        if not existing:
            raise errors.invalid("delegations", "unknown", "no such delegation")
        for cal in existing:
            del world.calendars[cal.calendar_id]
        return {"to": to.email, "owner": owner.email, "calendar_id": existing[0].calendar_id}
    if existing:
        raise errors.invalid("delegations", "duplicate", "that calendar is delegated already")
    seed = state.config.seed
    cal_id = (
        f"cal_{profile_id[4:]}_{stable_id(seed, '', owner.email, 'delegate', to.email, length=12)}"
    )
    world.calendars[cal_id] = m.Calendar(
        calendar_id=cal_id,
        profile_id=profile_id,
        name=name.strip(),
        owner_email=owner.email,
        readonly=not writable,
        integrated_conferencing=world.profiles[profile_id].provider_name in {"google", "office365"},
        source_calendar_id=source.calendar_id,
    )
    return {"to": to.email, "owner": owner.email, "calendar_id": cal_id}


def _seed_identity(state, spec: Any) -> dict[str, Any]:
    world = state.world
    if not isinstance(spec, dict) or "@" not in str(spec.get("email", "")):
        raise errors.invalid("identities", "invalid", "each identity needs an email")
    email = spec["email"].strip().lower()
    domain = world.domains.get(email.split("@", 1)[1])
    if domain is None:
        raise errors.invalid("identities", "unknown_domain", f"add the domain of {email} first")
    if email in world.identities:
        raise errors.invalid("identities", "duplicate", f"{email} already exists")
    tzid = spec.get("tzid", "Europe/London")
    try:
        zone(tzid)
    except BadTime:
        raise errors.invalid("identities", "invalid_tzid", f"unknown tzid {tzid!r}") from None
    kind = spec.get("kind", "person")
    if kind not in {"person", "room", "assistant", "admin"}:
        raise errors.invalid(
            "identities", "invalid", "kind must be person, room, assistant or admin"
        )
    seed = state.config.seed
    account_id = stable_id(seed, "res_" if kind == "room" else "acc_", email)
    profile_id = stable_id(seed, "pro_", email, length=12)
    ident = m.Identity(
        email=email,
        name=spec.get("name") or email,
        password=spec.get("password", DEFAULT_PASSWORD),
        domain=domain.name,
        kind=kind,
        tzid=tzid,
        account_id=account_id,
        admin_of=domain.name if kind == "admin" else None,
    )
    world.identities[email] = ident
    world.accounts[account_id] = m.Account(account_id, email, ident.name, tzid, [profile_id])
    world.profiles[profile_id] = m.Profile(
        profile_id, account_id, email, domain.provider_name, domain.provider_service
    )
    cal_id = f"cal_{profile_id[4:]}_{stable_id(seed, '', email, 'primary', length=12)}"
    world.calendars[cal_id] = m.Calendar(
        calendar_id=cal_id,
        profile_id=profile_id,
        name=ident.name if kind == "room" else "Calendar",
        owner_email=email,
        primary=True,
        integrated_conferencing=domain.provider_name in {"google", "office365"},
    )
    world.events_in(cal_id)
    return {"email": email, "sub": account_id, "profile_id": profile_id, "calendar_id": cal_id}


def _seed_event(state, spec: Any) -> None:
    world = state.world
    if not isinstance(spec, dict):
        raise errors.invalid("events", "invalid", "each event must be an object")
    ident = world.identity(spec.get("email"))
    if ident is None or not ident.account_id:
        raise errors.invalid("events", "unknown", f"unknown calendar owner {spec.get('email')!r}")
    cal = next(c for c in world.own_calendars(ident.account_id) if c.primary)
    try:
        start = parse_event_time(spec["start"], spec.get("tzid") or ident.tzid)
        end = parse_event_time(spec["end"], spec.get("tzid") or ident.tzid)
    except (BadTime, KeyError, TypeError):
        raise errors.invalid("events", "invalid", "each event needs start and end") from None
    uid = "evt_external_" + secrets.token_hex(12)
    ev = make_event(
        uid,
        cal.calendar_id,
        spec.get("summary", "Busy"),
        start.value,
        end.value,
        start.tzid,
        ident.tzid,
        state.clock.now(),
        organizer={"email": ident.email, "display_name": ident.name},
        transparency=spec.get("transparency", "opaque"),
        status=spec.get("status", "confirmed"),
    )
    world.events_in(cal.calendar_id)[uid] = ev


# ---- outbox -------------------------------------------------------------------------------------


@bp.post("/deliver")
def deliver():
    """Deliver every queued notification, callback and task now (deterministic tests)."""
    results = notify.deliver_now(web.state())
    return jsonify({"delivered": results})


@bp.get("/outbox")
def outbox():
    """What is queued and the recent delivery log."""
    state = web.state()
    with state.lock:
        queued = [
            {
                "item_id": i.item_id,
                "kind": i.kind,
                "url": i.url,
                "attempts": i.attempts,
                "next_attempt_at": i.next_attempt_at,
                "channel_id": i.channel_id,
                "task": i.task,
                "last_status": i.last_status,
                "signed": i.signed,
                "body": json.loads(i.body) if i.body else None,
            }
            for i in state.world.outbox.values()
        ]
        return jsonify({"queued": queued, "log": list(state.delivery_log)})


# ---- faults, rate limit, options, statistics ----------------------------------------------------


@bp.post("/faults")
def add_faults():
    """Add fault rules (one object, or ``{"rules": [...]}``); returns their ids."""
    data = _json()
    specs = data["rules"] if isinstance(data.get("rules"), list) else [data]
    rules = [faults.parse_rule(spec) for spec in specs]
    fault_set = web.runtime().faults
    for rule in rules:
        fault_set.add(rule)
    return jsonify({"ids": [r.rule_id for r in rules], "rules": [r.public() for r in rules]})


@bp.get("/faults")
def list_faults():
    """The active fault rules."""
    return jsonify({"rules": web.runtime().faults.list()})


@bp.delete("/faults")
def clear_faults():
    """Remove every rule, or one given as ``?id=`` or ``{"id": ...}``."""
    rule_id = request.args.get("id") or _json().get("id")
    return jsonify({"removed": web.runtime().faults.clear(rule_id)})


@bp.delete("/faults/<rule_id>")
def clear_fault(rule_id: str):
    """Remove one rule."""
    removed = web.runtime().faults.clear(rule_id)
    if not removed:
        raise errors.not_found("fault rule")
    return jsonify({"removed": removed})


@bp.route("/rate-limit", methods=["GET", "PUT"])
def rate_limit():
    """Show or change the per-application rate limit."""
    limiter = web.runtime().limiter
    if request.method == "PUT":
        data = _json()
        for name in ("per_second", "per_minute"):
            if name in data and (
                not isinstance(data[name], int) or isinstance(data[name], bool) or data[name] < 1
            ):
                raise errors.invalid(name, "invalid", f"{name} must be a positive integer")
        if "enabled" in data and not isinstance(data["enabled"], bool):
            raise errors.invalid("enabled", "must_be_boolean", "enabled must be true or false")
        limiter.configure(
            per_second=data.get("per_second"),
            per_minute=data.get("per_minute"),
            enabled=data.get("enabled"),
        )
    return jsonify(limiter.settings())


@bp.route("/config", methods=["GET", "PATCH"])
def options():
    """Show or change runtime options (``/_sandbox/reset`` restores the start-up values)."""
    config = web.state().config
    if request.method == "PATCH":
        unknown = config.update(_json())
        if unknown:
            raise errors.invalid(
                "config", "unknown_option", f"unknown options: {', '.join(unknown)}"
            )
    return jsonify(config.public())


@bp.route("/stats", methods=["GET", "DELETE"])
def stats():
    """Requests per route and distinct TCP connections seen; DELETE starts counting afresh."""
    counter = web.runtime().stats
    if request.method == "DELETE":
        counter.reset()
    return jsonify(counter.snapshot())
