"""The candidate's own changes to a loop their link booked (candidate_loops hands these URLs
over): reschedule the whole loop or one session, cancel the whole loop or one session, each
confirmed, refused with the reason where the link does not allow it (or after the cut-off)."""

from __future__ import annotations

import datetime as dt

from flask import redirect, render_template, request, url_for

from webapp import deps
from webapp.db import db_session
from webapp.services.availability import model
from webapp.services.errors import ChangeRefused, LinkUnusable, ServiceError, SlotTaken
from webapp.services.loops import candidate_changes as loops_changes
from webapp.services.loops import candidate_sessions as loops_sessions
from webapp.views.candidate_loops import _booked_page, _offer_page, _starts, _tzid, _unusable
from webapp.views.schedule import zone_options


def _change_or_refusal(token: str):
    db = db_session()
    try:
        change = loops_changes.change_of(db, deps.broker(), deps.cipher(), deps.sealer(), token)
    except LinkUnusable as exc:
        return None, _unusable(exc)
    if not change.allowed:
        status = 503 if change.reason == "time unknown" else 403
        return None, _booked_page(token, change, status)
    return change, None


def _move_page(token: str, change, problem: str | None = None, status: int = 200):
    db = db_session()
    try:
        options = loops_changes.move_times(
            db, deps.required_broker(), deps.cipher(), deps.sealer(), change
        )
    except ServiceError as exc:
        db.rollback()
        options, problem, status = (), exc.message, 503
    return _offer_page(
        token,
        change.shown.title,
        "",
        change.shown.tzid,
        change.loop,
        options,
        problem=problem,
        status=status,
        change=change,
    )


def reschedule_page(token: str):
    """New start times for the whole loop (or, with ``session``, new times for one session), if
    the link allows a change now."""
    change, refusal = _change_or_refusal(token)
    if refusal is not None:
        return refusal
    try:
        ordinal = _ordinal(change)
    except ValueError:
        return _booked_page(token, change, 404)
    if ordinal is not None:
        return _session_page(token, change, ordinal)
    return _move_page(token, change)


def _session_page(token: str, change, ordinal: int, problem=None, status=200):
    db = db_session()
    try:
        found = loops_sessions.session_times(
            db, deps.required_broker(), deps.cipher(), deps.sealer(), change, ordinal
        )
    except ServiceError as exc:
        db.rollback()
        found, problem, status = (), exc.message, 503
    tzid = _tzid(change.shown.tzid)
    tz = model.zone(tzid)
    days: dict[dt.date, list] = {}
    for slot in found:
        days.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    this = next(s for s in change.shown.sessions if s.ordinal == ordinal)
    return render_template(
        "candidate/loop_session_move.html",
        token=token,
        change=change,
        this=this,
        days=days,
        chosen_value=request.form.get("slot") if request.method == "POST" else None,
        tz=tz,
        tzid=tzid,
        zone_options=zone_options,
        problem=problem,
    ), status


def _allowed_or_refusal(token: str, action: str):
    """(the change, None) when the candidate may make it now; else (None, the page saying why)
    with the refusal audited."""
    db = db_session()
    try:
        change = loops_changes.allowed_change(
            db, deps.required_broker(), deps.cipher(), deps.sealer(), token, action
        )
    except LinkUnusable as exc:
        return None, _unusable(exc)
    except ChangeRefused:
        return _change_or_refusal(token)
    return change, None


def reschedule(token: str):
    """Move every session to the chosen itinerary, or leave the loop as it is."""
    change, refusal = _allowed_or_refusal(token, "reschedule")
    if refusal is not None:
        return refusal
    try:
        ordinal = _ordinal(change)
    except ValueError:
        return _booked_page(token, change, 404)
    if ordinal is not None:
        return _move_session(token, change, ordinal)
    starts = _starts(change.loop)
    if starts is None:
        return _move_page(token, change, "Pick one of the start times offered.", 400)
    db = db_session()
    try:
        loops_changes.reschedule(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            starts,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
            change=change,
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    except ChangeRefused as exc:
        db.rollback()
        return _booked_page(token, status=403, problem=exc.message)
    except ServiceError as exc:
        db.rollback()
        change, refusal = _change_or_refusal(token)
        if refusal is not None:
            return refusal
        return _move_page(token, change, exc.message, 409 if isinstance(exc, SlotTaken) else 400)
    return redirect(
        url_for("candidate.page", token=token, done="moved", tz=request.form.get("tz")), code=303
    )


def _move_session(token: str, change, ordinal: int):
    try:
        start = dt.datetime.fromisoformat((request.form.get("slot") or "").strip())
    except ValueError:
        start = None
    if start is None or start.tzinfo is None:
        return _session_page(token, change, ordinal, "Pick one of the times offered.", 400)
    db = db_session()
    try:
        loops_sessions.move_session(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            ordinal,
            start,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
            change=change,
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    except ChangeRefused as exc:
        db.rollback()
        return _booked_page(token, status=403, problem=exc.message)
    except ServiceError as exc:
        db.rollback()
        change, refusal = _change_or_refusal(token)
        if refusal is not None:
            return refusal
        return _session_page(
            token, change, ordinal, exc.message, 409 if isinstance(exc, SlotTaken) else 400
        )
    return redirect(
        url_for("candidate.page", token=token, done="session_moved", tz=request.form.get("tz")),
        code=303,
    )


def _ordinal(change) -> int | None:
    """The session to cancel (``session``), or None for the whole loop; ValueError if bad."""
    raw = (request.values.get("session") or "").strip()
    if not raw:
        return None
    ordinal = int(raw)
    if not any(s.ordinal == ordinal and s.live for s in change.shown.sessions):
        raise ValueError(raw)
    return ordinal


def cancel_page(token: str):
    """Ask the candidate to confirm cancelling the loop (or one session of it)."""
    change, refusal = _change_or_refusal(token)
    if refusal is not None:
        return refusal
    try:
        ordinal = _ordinal(change)
    except ValueError:
        return _booked_page(token, change, 404)
    return _cancel_page(token, change, ordinal)


def _cancel_page(token: str, change, ordinal: int | None, problem=None, status=200):
    tz = model.zone(_tzid(change.shown.tzid))
    sessions = [s for s in change.shown.live if ordinal is None or s.ordinal == ordinal]
    return render_template(
        "candidate/loop_cancel.html",
        token=token,
        change=change,
        sessions=sessions,
        ordinal=ordinal,
        tz=tz,
        problem=problem,
    ), status


def cancel(token: str):
    """Cancel the loop (or one session), once confirmed."""
    change, refusal = _allowed_or_refusal(token, "cancel")
    if refusal is not None:
        return refusal
    try:
        ordinal = _ordinal(change)
    except ValueError:
        return _booked_page(token, change, 404)
    db = db_session()
    try:
        loops_changes.cancel(
            db,
            deps.required_broker(),
            deps.cipher(),
            deps.sealer(),
            token,
            ordinal=ordinal,
            jobs=deps.jobs(),
            notify=deps.candidate_notify(),
            change=change,
        )
    except LinkUnusable as exc:
        return _unusable(exc)
    except ServiceError as exc:
        db.rollback()
        change, refusal = _change_or_refusal(token)
        if refusal is not None:
            return refusal
        return _cancel_page(token, change, ordinal, exc.message, 409)
    done = "cancelled" if ordinal is None else "session_cancelled"
    return redirect(
        url_for("candidate.page", token=token, done=done, tz=request.form.get("tz")), code=303
    )
