"""Browser pages: the sandbox index, each identity's week, and the small hosted steps
(relink, elevated permissions, conferencing authorization, RTS placeholder)."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, redirect, render_template, request, url_for

from . import errors, events, notify, web
from . import models as m
from .api_extras import CONFERENCING_PROVIDERS
from .authz import with_query
from .seed import identity_listing, stable_id
from .timeutil import zone

bp = Blueprint("sandbox_pages", __name__)

DAY_START_HOUR, DAY_END_HOUR, ROW_MINUTES = 7, 21, 30


@bp.get("/_sandbox/")
@bp.get("/_sandbox")
def index():
    """Link every identity's calendar and the control API documentation."""
    state = web.state()
    with state.lock:
        rows = identity_listing(state.world)
        client_id = state.config.client_id
    return render_template("sandbox/index.html", identities=rows, client_id=client_id)


def _week_start(value: str | None, today: dt.date) -> dt.date:
    try:
        day = dt.date.fromisoformat(value) if value else today
    except ValueError:
        abort(400, "week must be a date (YYYY-MM-DD)")
    return day - dt.timedelta(days=day.weekday())


@bp.get("/_sandbox/calendar/<email>")
def calendar_week(email: str):
    """Show one identity's week: their own events and the ones the app wrote."""
    state = web.state()
    with state.lock:
        world = state.world
        ident = world.identity(email)
        if ident is None or not ident.account_id:
            abort(404)
        tz = zone(ident.tzid)
        monday = _week_start(request.args.get("week"), state.clock.today(tz))
        days = [monday + dt.timedelta(days=i) for i in range(7)]
        lo = int(dt.datetime.combine(monday, dt.time(0), tzinfo=tz).timestamp())
        hi = int(
            dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=tz).timestamp()
        )
        blocks, all_day, agenda = [], [], []
        lanes: dict[int, list[int]] = {}
        for cal in world.own_calendars(ident.account_id):
            for ev in sorted(world.events_in(cal.store_id).values(), key=lambda e: e.start_ts):
                if ev.deleted or not (ev.start_ts < hi and ev.end_ts > lo):
                    continue
                item = _describe(ev, cal, tz)
                agenda.append(item)
                if ev.all_day:
                    all_day.append(item)
                    continue
                start = dt.datetime.fromtimestamp(ev.start_ts, tz)
                day_index = (start.date() - monday).days
                if not 0 <= day_index < 7:
                    continue
                first = (start.hour * 60 + start.minute - DAY_START_HOUR * 60) // ROW_MINUTES
                length = max(1, -(-(ev.end_ts - ev.start_ts) // (ROW_MINUTES * 60)))
                first = max(0, first)
                last = min((DAY_END_HOUR - DAY_START_HOUR) * 60 // ROW_MINUTES, first + length)
                if first >= last:
                    continue
                used = lanes.setdefault(day_index, [])
                lane = sum(1 for end_row in used if end_row > first)
                used.append(last)
                blocks.append(
                    dict(
                        item,
                        column=day_index + 2,
                        row=first + 2,
                        span=last - first,
                        lane=min(lane, 3),
                    )
                )
        hours = [f"{h:02d}:00" for h in range(DAY_START_HOUR, DAY_END_HOUR)]
    return render_template(
        "sandbox/calendar.html",
        ident=ident,
        days=days,
        blocks=blocks,
        all_day=all_day,
        agenda=agenda,
        hours=hours,
        rows=(DAY_END_HOUR - DAY_START_HOUR) * 60 // ROW_MINUTES,
        prev_week=(monday - dt.timedelta(days=7)).isoformat(),
        next_week=(monday + dt.timedelta(days=7)).isoformat(),
        monday=monday,
        message=request.args.get("message", ""),
    )


def _describe(ev: m.Event, cal: m.Calendar, tz) -> dict:
    if ev.all_day:
        when = f"{ev.start} – {ev.end} (all day)"
    else:
        start = dt.datetime.fromtimestamp(ev.start_ts, tz)
        end = dt.datetime.fromtimestamp(ev.end_ts, tz)
        when = f"{start:%a %d %b %H:%M}–{end:%H:%M}"
    flags = []
    if ev.managed:
        flags.append("written by the app")
    if ev.status == "tentative" or ev.participation_status == "tentative":
        flags.append("tentative")
    if ev.transparency == "transparent":
        flags.append("free")
    if ev.conferencing and ev.conferencing.get("join_url"):
        flags.append(ev.conferencing["provider_name"])
    return {
        "uid": ev.event_uid,
        "summary": ev.summary,
        "when": when,
        "flags": flags,
        "managed": ev.managed,
        "calendar": cal.name,
    }


@bp.post("/_sandbox/calendar/<email>/events/<event_uid>/<action>")
def calendar_action(email: str, event_uid: str, action: str):
    """Move or delete an event as its owner (the same path as ``/_sandbox/external-change``)."""
    changes: dict[str, dict[str, Any]] = {
        "move-hour": {"action": "move", "shift_minutes": 60},
        "move-day": {"action": "move", "shift_minutes": 1440},
        "delete": {"action": "delete"},
    }
    if action not in changes:
        abort(404)
    state = web.state()
    try:
        with state.lock:
            events.external_change(
                state, {"email": email, "event_uid": event_uid, **changes[action]}
            )
        message = {
            "delete": "Deleted.",
            "move-hour": "Moved one hour later.",
            "move-day": "Moved to the next day.",
        }[action]
    except errors.ApiError as exc:
        message = "Could not change the event: " + str(exc.body)
    return redirect(
        url_for(
            ".calendar_week", email=email, week=request.form.get("week") or None, message=message
        ),
        303,
    )


# ---- relink a disconnected profile ---------------------------------------------------------


@bp.route("/relink/<provider>", methods=["GET", "POST"])
def relink(provider: str):
    """Re-enter the password of a disconnected profile to reconnect it."""
    email = request.values.get("email", "")
    state = web.state()
    error = ""
    with state.lock:
        world = state.world
        ident = world.identity(email)
        profile = next(
            (
                p
                for p in world.profiles.values()
                if ident and p.email == ident.email and p.provider_name == provider
            ),
            None,
        )
        if profile is None or ident is None:
            return render_template(
                "sandbox/message.html",
                title="Unknown profile",
                message=f"No {provider} profile for {email!r}.",
                error=True,
            ), 404
        if request.method == "POST":
            if hmac.compare_digest(request.form.get("password", ""), ident.password):
                # As the real page: syncing resumes with the new credentials, so the account's
                # channels hear of what changed meanwhile; profile_connected turns true.
                notify.resume_profile(state, profile)
                return render_template(
                    "sandbox/message.html",
                    title="Calendar reconnected",
                    message=f"{ident.email} is connected again.",
                )
            error = "Wrong password."
    return render_template(
        "sandbox/relink.html", email=ident.email, provider=provider, error=error
    ), 400 if error else 200


# ---- elevated permissions and conferencing authorization -----------------------------------


def _pending(token: str, kind: str) -> m.PendingRequest:
    pending = web.state().world.pending.get(token)
    if pending is None or pending.kind != kind or pending.done:
        abort(404)
    return pending


@bp.route("/permissions/<token>", methods=["GET", "POST"])
def permissions_page(token: str):
    """Grant or refuse elevated permission on calendars (§3.6)."""
    state = web.state()
    with state.lock:
        pending = _pending(token, "permissions")
        world = state.world
        account = world.accounts[pending.account_id]
        wanted = pending.data["permissions"]
        if request.method == "POST":
            pending.done = True
            approve = request.form.get("decision") == "approve"
            if approve:
                for entry in wanted:
                    cal = world.calendars.get(entry["calendar_id"])
                    if cal is not None:
                        cal.permission_level = entry["permission_level"]
            state.mark_dirty()
            if pending.redirect_uri:
                return redirect(
                    pending.redirect_uri
                    if approve
                    else with_query(pending.redirect_uri, {"error": "access_denied"})
                )
            return render_template(
                "sandbox/message.html",
                title="Done",
                message="Permissions granted." if approve else "Refused.",
            )
        names = [
            world.calendars[e["calendar_id"]].name
            for e in wanted
            if e["calendar_id"] in world.calendars
        ]
    return render_template(
        "sandbox/grant.html",
        title="Allow full access to calendars",
        who=account.email,
        items=names,
        choose_provider=False,
        providers={},
    )


@bp.route("/conferencing_services/<token>", methods=["GET", "POST"])
def conferencing_page(token: str):
    """Link a Zoom, GoTo or Teams conferencing profile (§8.1)."""
    state = web.state()
    with state.lock:
        pending = _pending(token, "conferencing")
        world = state.world
        account = world.accounts[pending.account_id]
        fixed = pending.data.get("provider_name")
        if request.method == "POST":
            pending.done = True
            provider = fixed or request.form.get("provider_name")
            if request.form.get("decision") != "approve" or provider not in CONFERENCING_PROVIDERS:
                state.mark_dirty()
                return redirect(with_query(pending.redirect_uri or "/", {"error": "access_denied"}))
            profile_id = stable_id(
                state.config.seed, "pro_", account.account_id, provider, length=12
            )
            world.conferencing_profiles[profile_id] = m.ConferencingProfile(
                profile_id=profile_id,
                account_id=account.account_id,
                provider_name=provider,
                profile_name=account.email,
            )
            state.mark_dirty()
            # Documented: the redirect names the profile just linked.
            return redirect(
                with_query(pending.redirect_uri or "/", {"last_linked_profile_id": profile_id})
            )
    return render_template(
        "sandbox/grant.html",
        title="Connect a conferencing service",
        who=account.email,
        items=[CONFERENCING_PROVIDERS[fixed]] if fixed else [],
        choose_provider=not fixed,
        providers=CONFERENCING_PROVIDERS,
    )


@bp.get("/rts/<token>")
def rts_page(token: str):
    """Real-Time Scheduling pages are not simulated; say so plainly."""
    state = web.state()
    with state.lock:
        link = next(
            (rts for rts in state.world.real_time_scheduling.values() if rts["token"] == token),
            None,
        )
    if link is None:
        abort(404)
    message = (
        link.get("display_message")
        if link["status"] == "disabled"
        else ("The sandbox stores Real-Time Scheduling links but does not host the booking page.")
    )
    return render_template("sandbox/message.html", title="Real-Time Scheduling", message=message)


@bp.app_template_filter("quote")
def _quote(value: str) -> str:
    return quote(value)
