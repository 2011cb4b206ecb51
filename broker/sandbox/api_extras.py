"""Conferencing authorization, Smart Invites, Real-Time Scheduling, element tokens (§8.1, §9)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request

from . import errors, web
from . import models as m
from .state import new_id, new_token
from .timeutil import BadTime, format_utc, parse_event_time

bp = Blueprint("sandbox_extras", __name__)

#: The documented ``provider_name`` values (docs conferencing-services/authorization,
#: cronofy-csharp ``ConferencingProviders``); anything else is refused with 422.
CONFERENCING_PROVIDERS = {"zoom": "Zoom", "go_to": "GoTo Meeting", "ms_teams": "Microsoft Teams"}


def _http_url(value: Any, field: str) -> str:
    parts = urlsplit(str(value or ""))
    if not value:
        raise errors.required(field)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise errors.invalid(field, "invalid", f"{field} must be an http(s) URL")
    return str(value)


@bp.post("/v1/conferencing_service_authorizations")
def conferencing_service_authorizations():
    """Start linking Zoom/GoTo/Teams: a page the person visits, then redirect_uri (§8.1)."""
    who = web.account_caller()
    data = web.body()
    redirect_uri = _http_url(data.get("redirect_uri"), "redirect_uri")
    provider = data.get("provider_name")
    if provider is not None and provider not in CONFERENCING_PROVIDERS:
        raise errors.invalid(
            "provider_name",
            "invalid",
            f"provider_name must be one of {', '.join(CONFERENCING_PROVIDERS)}",
        )
    state = web.state()
    with state.lock:
        token = new_token(24)
        state.world.pending[token] = m.PendingRequest(
            token=token,
            kind="conferencing",
            account_id=who.sub,
            redirect_uri=redirect_uri,
            data={"provider_name": provider},
        )
        state.mark_dirty()
    return jsonify(
        {"authorization_request": {"url": f"{web.base_url()}/conferencing_services/{token}"}}
    )


# ---- Smart Invites -------------------------------------------------------------------------


def _ics_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _ics_time(name: str, value: str) -> str:
    if len(value) == 10:
        return f"{name};VALUE=DATE:{value.replace('-', '')}"
    return f"{name}:{value.replace('-', '').replace(':', '')}"


def _fold(line: str) -> str:
    """RFC 5545 lines are folded at 75 octets."""
    out, raw = [], line.encode("utf-8")
    while len(raw) > 75:
        cut = 75
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(raw[:cut].decode("utf-8"))
        raw = b" " + raw[cut:]
    out.append(raw.decode("utf-8"))
    return "\r\n".join(out)


def icalendar(
    invite: dict[str, Any], recipients: list[str], method: str, stamp: dt.datetime
) -> str:
    event = invite["event"]
    organizer = (invite.get("organizer") or {}).get("name") or "Smart Invite"
    organizer_email = (invite.get("organizer") or {}).get("email") or "smart-invite@sandbox.example"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Cronofy Sandbox//Smart Invite//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{invite['smart_invite_id']}@smart-invites.sandbox.example",
        f"DTSTAMP:{format_utc(stamp).replace('-', '').replace(':', '')}",
        _ics_time("DTSTART", event["start"]),
        _ics_time("DTEND", event["end"]),
        f"SUMMARY:{_ics_text(event.get('summary', ''))}",
        f"SEQUENCE:{invite['sequence']}",
        f"STATUS:{'CANCELLED' if method == 'CANCEL' else 'CONFIRMED'}",
        f"ORGANIZER;CN={_ics_text(organizer)}:mailto:{organizer_email}",
    ]
    if event.get("description"):
        lines.append(f"DESCRIPTION:{_ics_text(event['description'])}")
    if (event.get("location") or {}).get("description"):
        lines.append(f"LOCATION:{_ics_text(event['location']['description'])}")
    for email in recipients:
        lines.append(
            f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{email}"
        )
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def _recipient_emails(data: dict[str, Any]) -> list[str]:
    if isinstance(data.get("recipients"), list):
        items = data["recipients"]
    elif isinstance(data.get("recipient"), dict):
        items = [data["recipient"]]
    else:
        raise errors.required("recipient")
    emails = [str(r.get("email", "")).strip() for r in items if isinstance(r, dict)]
    if not emails or not all("@" in e for e in emails):
        raise errors.invalid("recipient", "invalid", "each recipient needs an email")
    return emails


def _event_view(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the documented response shows it: start and end as ``{time, tzid}``."""
    tzid = event.get("tzid") or "Etc/UTC"
    view = {k: v for k, v in event.items() if k != "tzid"}
    view["start"] = {"time": event["start"], "tzid": tzid}
    view["end"] = {"time": event["end"], "tzid": tzid}
    return view


def invite_view(invite: dict[str, Any], emails: list[str], stamp: dt.datetime) -> dict[str, Any]:
    recipients = [{"email": e, "status": invite["recipients"][e.lower()]["status"]} for e in emails]
    view = {
        "smart_invite_id": invite["smart_invite_id"],
        "callback_url": invite.get("callback_url"),
        "event": _event_view(invite["event"]),
        "attachments": {"icalendar": icalendar(invite, emails, invite["method"], stamp)},
    }
    if len(recipients) == 1:
        view["recipient"] = recipients[0]
    else:
        view["recipients"] = recipients
    return view


@bp.post("/v1/smart_invites")
def upsert_smart_invite():
    """Create, update or cancel a Smart Invite; the ICS comes back for the app to email (§9.1)."""
    web.caller(allow_api_key=True, allow_token=False)
    data = web.body()
    invite_id = data.get("smart_invite_id")
    if not invite_id:
        raise errors.required("smart_invite_id")
    # The documentation sends ``method`` on every call ("request" to create or update); where
    # it is silent on leaving it out, the sandbox takes the stricter reading and requires it.
    method = data.get("method")
    if not method:
        raise errors.required("method")
    if method not in {"request", "cancel", "remove"}:
        raise errors.invalid("method", "invalid", "method must be request, cancel or remove")
    emails = _recipient_emails(data)
    if data.get("callback_url"):
        _http_url(data["callback_url"], "callback_url")
    organizer = data.get("organizer")
    if organizer is not None and (
        not isinstance(organizer, dict)
        or ("email" in organizer and "@" not in str(organizer["email"] or ""))
    ):
        raise errors.invalid("organizer", "invalid", "organizer.email must be an email address")
    state = web.state()
    with state.lock:
        invites = state.world.smart_invites
        invite = invites.get(str(invite_id))
        if method == "request":
            event = data.get("event")
            if not isinstance(event, dict):
                raise errors.required("event")
            for name in ("summary", "start", "end"):
                if not event.get(name):
                    raise errors.invalid(
                        f"event.{name}", "required", f"event.{name} must be specified"
                    )
            try:
                start = parse_event_time(event["start"], event.get("tzid") or "Etc/UTC")
                end = parse_event_time(event["end"], event.get("tzid") or "Etc/UTC")
            except (BadTime, TypeError, AttributeError) as exc:
                raise errors.invalid("event", "invalid", str(exc)) from None
            event = dict(event, start=start.value, end=end.value)
            if invite is None:
                invite = {
                    "smart_invite_id": str(invite_id),
                    "recipients": {},
                    "replies": [],
                    "sequence": 0,
                }
                invites[str(invite_id)] = invite
            else:
                invite["sequence"] += 1
            invite.update(
                event=event,
                callback_url=data.get("callback_url", invite.get("callback_url")),
                organizer=data.get("organizer") or invite.get("organizer"),
                method="REQUEST",
            )
            for email in emails:
                invite["recipients"].setdefault(
                    email.lower(), {"email": email, "status": "pending"}
                )
        else:
            if invite is None:
                raise errors.not_found("smart invite")
            invite["sequence"] += 1
            invite["method"] = "CANCEL"
            if method == "remove":
                for email in emails:
                    invite["recipients"].setdefault(
                        email.lower(), {"email": email, "status": "pending"}
                    )
        state.mark_dirty()
        return jsonify(invite_view(invite, emails, state.clock.now()))


@bp.get("/v1/smart_invites")
def get_smart_invite():
    """A Smart Invite's state for one recipient, with replies."""
    web.caller(allow_api_key=True, allow_token=False)
    invite_id = request.args.get("smart_invite_id")
    email = request.args.get("recipient_email")
    if not invite_id:
        raise errors.required("smart_invite_id")
    if not email:
        raise errors.required("recipient_email")
    state = web.state()
    with state.lock:
        invite = state.world.smart_invites.get(invite_id)
        if invite is None or email.lower() not in invite["recipients"]:
            raise errors.not_found("smart invite")
        view = invite_view(
            invite, [invite["recipients"][email.lower()]["email"]], state.clock.now()
        )
        view["replies"] = [r for r in invite["replies"] if r["email"].lower() == email.lower()]
        return jsonify(view)


# ---- Real-Time Scheduling and element tokens (stubs the reference allows, §14 K) -----------


def _rts_view(link: dict[str, Any]) -> dict[str, Any]:
    return {
        "real_time_scheduling": {
            k: link[k] for k in ("real_time_scheduling_id", "url", "event", "status")
        }
    }


@bp.post("/v1/real_time_scheduling")
def real_time_scheduling():
    """Create a hosted booking link (stored; the page itself is not simulated)."""
    web.caller(allow_api_key=True, allow_token=False)
    data = web.body()
    for name in ("oauth", "event", "availability"):
        if not isinstance(data.get(name), dict):
            raise errors.required(name)
    _http_url(data["oauth"].get("redirect_uri"), "oauth.redirect_uri")
    state = web.state()
    with state.lock:
        token = new_token(16)
        link = {
            "real_time_scheduling_id": new_id("sch_", 8),
            "token": token,
            "url": f"{web.base_url()}/rts/{token}",
            "event": data["event"],
            "status": "enabled",
            "created_at": state.clock.time(),
        }
        state.world.real_time_scheduling[link["real_time_scheduling_id"]] = link
        state.mark_dirty()
        return jsonify(_rts_view(link))


def _find_rts(rts_id: str | None = None, token: str | None = None) -> dict[str, Any]:
    links = web.state().world.real_time_scheduling
    for link in links.values():
        if (rts_id and link["real_time_scheduling_id"] == rts_id) or (
            token and link["token"] == token
        ):
            return link
    raise errors.not_found("real time scheduling link")


@bp.get("/v1/real_time_scheduling/<rts_id>")
def real_time_scheduling_status(rts_id: str):
    """A booking link's status by id."""
    web.caller(allow_api_key=True, allow_token=False)
    with web.state().lock:
        return jsonify(_rts_view(_find_rts(rts_id=rts_id)))


@bp.get("/v1/real_time_scheduling")
def real_time_scheduling_by_token():
    """A booking link's status by the token in its URL."""
    web.caller(allow_api_key=True, allow_token=False)
    token = request.args.get("token")
    if not token:
        raise errors.required("token")
    with web.state().lock:
        return jsonify(_rts_view(_find_rts(token=token)))


@bp.post("/v1/real_time_scheduling/<rts_id>/disable")
def disable_real_time_scheduling(rts_id: str):
    """Disable a booking link with a message for visitors."""
    web.caller(allow_api_key=True, allow_token=False)
    data = web.body()
    message = data.get("display_message")
    if not isinstance(message, str) or not message:
        raise errors.required("display_message")
    if len(message) >= 500:
        raise errors.invalid(
            "display_message", "too_long", "display_message must be under 500 characters"
        )
    state = web.state()
    with state.lock:
        link = _find_rts(rts_id=rts_id)
        link.update(status="disabled", display_message=message)
        state.mark_dirty()
        return jsonify(_rts_view(link))


@bp.post("/v1/element_tokens")
def element_tokens():
    """A UI Element token, in the wrapped shape of the docs (§9.3)."""
    web.caller(allow_api_key=True, allow_token=False)
    data = web.body()
    permissions = data.get("permissions")
    allowed = {"agenda", "account_management", "availability", "managed_availability"}
    if not isinstance(permissions, list) or not permissions:
        raise errors.required("permissions")
    if any(p not in allowed for p in permissions):
        raise errors.invalid(
            "permissions", "invalid", f"permissions must be among {sorted(allowed)}"
        )
    if not isinstance(data.get("subs"), list) or not data["subs"]:
        raise errors.required("subs")
    origin = _http_url(data.get("origin"), "origin")
    return jsonify(
        {
            "element_token": {
                "permissions": permissions,
                "origin": origin,
                "token": new_token(32),
                "expires_in": 64800,
            }
        }
    )
