"""My profile → Calendar: connect, see, choose calendars, reconnect, disconnect."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from models import Attention, LinkMode, LinkStatus, Role
from webapp import callbacks, deps
from webapp.db import db_session
from webapp.public_urls import external_url
from webapp.security import allow
from webapp.services import calendars, connect, delegation, profile_recovery
from webapp.services.errors import (
    Conflict,
    Declined,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    StateRejected,
)
from webapp.views import flash_error, oauth_session_nonce
from webapp.web import actor

bp = Blueprint("calendar", __name__, url_prefix="/profile/calendar")

CALENDAR_USERS = (Role.RECRUITER, Role.COORDINATOR)


@bp.route("/")
@allow(*CALENDAR_USERS)
def show():
    """Show the user's calendar link and the calendars it can see."""
    return _page()


def _page(status: int = 200, colleague_error: str | None = None, form: dict | None = None):
    db = db_session()
    link = connect.link_of(db, current_user.id)
    listed, problem, relink_url = (), None, None
    broker = deps.broker()
    if link is not None and broker is not None and profile_recovery.recoverable(link):
        # Signed in again at the aggregator? Then the link is back; else where to do it.
        relink_url = _aggregator_page(
            profile_recovery.check_profile(db, broker, deps.cipher(), link).relink_url
        )
        db.refresh(link)
    if link is not None and link.status is LinkStatus.ACTIVE and broker is not None:
        try:
            listed = calendars.calendars_of(db, broker, deps.cipher(), link)
        except ServiceError as exc:
            problem = exc.message
            db.refresh(link)
    offered, added = [], []
    if link is not None and link.mode is LinkMode.BUSINESS and link.is_delegated is False:
        if listed:
            delegation.still_listed(db, link, listed)
        added = delegation.delegated_from(db, link)
        in_use = {d.link.delegated_calendar_id for d in added if d.usable}
        offered = [c for c in delegation.offered(link, listed) if c.calendar_id not in in_use]
    names = {c.calendar_id: c.name for c in listed}
    return render_template(
        "calendar/show.html",
        link=link,
        calendars=listed,
        offered=offered,
        added=added,
        calendar_names=names,
        colleague_error=colleague_error,
        form=form or {},
        problem=problem,
        relink_url=relink_url,
        Attention=Attention,
        providers=connect.PROVIDERS,
        may_connect=connect.may_connect(db, actor()),
        configured=broker is not None,
        LinkStatus=LinkStatus,
        LinkMode=LinkMode,
    ), status


def _aggregator_page(url: str | None) -> str | None:
    """``url`` if it is a page of the aggregator itself (never link elsewhere from its data)."""
    from webapp.bootstrap import aggregator_app_origin

    origin = aggregator_app_origin(current_app.config)
    return url if url and origin and url.startswith(origin + "/") else None


@bp.route("/connect", methods=["POST"])
@allow(*CALENDAR_USERS)
def start_connect():
    """Send the user to the aggregator's consent page."""
    provider = request.form.get("provider") or None
    try:
        url = connect.begin(
            db_session(),
            deps.required_broker(),
            actor(),
            provider=provider,
            session_nonce=oauth_session_nonce(),
            redirect_uri=external_url("calendar.callback"),
        )
    except (Forbidden, Invalid) as exc:
        flash_error(exc)
        return redirect(url_for("calendar.show")), 400 if isinstance(exc, Invalid) else 403
    return redirect(url, code=303)


@bp.route("/callback")
@allow(*CALENDAR_USERS)
def callback():
    """Finish linking when the aggregator sends the user back."""
    args = request.args
    try:
        link = connect.complete(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            state=args.get("state"),
            code=args.get("code"),
            error=args.get("error"),
            session_nonce=session.get("oauth_nonce"),
            redirect_uri=external_url("calendar.callback"),
            push_url=callbacks.push_url,
        )
    except StateRejected as exc:
        return render_template("calendar/state_rejected.html", message=exc.message), 400
    except Declined as exc:
        flash(exc.message, "info")
        return redirect(url_for("calendar.show"))
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("calendar.show"))
    flash(f"Your calendar {link.account_email or ''} is connected.".replace("  ", " "), "success")
    return redirect(url_for("calendar.show"))


@bp.route("/settings", methods=["POST"])
@allow(*CALENDAR_USERS)
def choose():
    """Save which calendar interviews go to and which count as busy."""
    try:
        calendars.choose_calendars(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            target_calendar_id=request.form.get("target_calendar_id", ""),
            conflict_calendar_ids=request.form.getlist("conflict_calendar_ids"),
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("calendar.show"))
    flash("Calendar choices saved.", "success")
    return redirect(url_for("calendar.show"))


@bp.route("/disconnect")
@allow(*CALENDAR_USERS)
def confirm_disconnect():
    """Ask before disconnecting."""
    link = connect.link_of(db_session(), current_user.id)
    if link is None or link.status is LinkStatus.DISCONNECTED or link.mode is LinkMode.ENTERPRISE:
        return redirect(url_for("calendar.show"))
    return render_template("calendar/disconnect.html", link=link)


@bp.route("/disconnect", methods=["POST"])
@allow(*CALENDAR_USERS)
def disconnect():
    """Disconnect the calendar: revoke at the aggregator and delete the tokens."""
    try:
        report = connect.disconnect(db_session(), deps.broker(), deps.cipher(), actor())
    except NotFound:
        return redirect(url_for("calendar.show"))
    except Forbidden as exc:
        flash_error(exc)
        return redirect(url_for("calendar.show")), 403
    return render_template("calendar/disconnected.html", report=report)


@bp.route("/colleagues", methods=["POST"])
@allow(*CALENDAR_USERS)
def add_colleague():
    """Put a colleague whose calendar this account sees on panels (free/busy only)."""
    form = {k: request.form.get(k, "")[:400] for k in ("calendar_id", "email", "name")}
    try:
        link = delegation.add_colleague(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            calendar_id=form["calendar_id"],
            email=form["email"],
            name=form["name"] or None,
        )
    except ServiceError as exc:
        return _page(_status_of(exc), colleague_error=exc.message, form=form)
    flash(f"{link.user.name} can now be put on panels (free/busy only).", "success")
    return redirect(url_for("calendar.show"), code=303)


@bp.route("/colleagues/<int:link_id>/remove", methods=["POST"])
@allow(*CALENDAR_USERS)
def remove_colleague(link_id: int):
    """Take a colleague's calendar off this account."""
    try:
        person = delegation.remove_colleague(db_session(), actor(), link_id)
    except NotFound:
        abort(404)
    flash(f"{person.name}'s calendar is no longer used for panels.", "success")
    return redirect(url_for("calendar.show"), code=303)


def _status_of(exc: ServiceError) -> int:
    statuses = ((Invalid, 400), (Forbidden, 403), (NotFound, 404), (Conflict, 409))
    return next((status for kind, status in statuses if isinstance(exc, kind)), 503)
