"""The schedule page's busy overlay: each panel member's busy blocks (free/busy only) as an HTML
fragment the page's script draws onto the week grid once the free slots are on screen.

Without the script the page offers a link to itself with ``busy=1``, which draws the same
blocks inline (``webapp.views.schedule``); this endpoint is the faster path's second half.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from webapp import deps
from webapp.db import db_session
from webapp.security import allow
from webapp.services.availability import layout, overlay
from webapp.services.errors import Forbidden, Invalid, NotFound, ServiceError
from webapp.views.schedule import SCHEDULERS, parse_query
from webapp.web import actor

bp = Blueprint("schedule_busy", __name__, url_prefix="/schedule")


def parse_axis(value: str | None) -> tuple[int, int] | None:
    """The page's time axis, ``"540-1320"``: whole hours of a day, the first before the last."""
    if not value:
        return None
    try:
        first, last = (int(part) for part in value.split("-", 1))
    except ValueError:
        raise Invalid("The grid's time axis looks like 540-1320.", field="axis") from None
    if not (0 <= first < last <= layout.DAY_MINUTES and first % 60 == 0 and last % 60 == 0):
        raise Invalid("The grid's time axis looks like 540-1320.", field="axis")
    return first, last


def _fragment(message: str, status: int):
    return (
        render_template("schedule/_busy.html", view=None, problem=message),
        status,
        {"Cache-Control": "no-store"},
    )


@bp.route("/busy")
@allow(*SCHEDULERS)
def show():
    """The members' busy blocks for the grid the query laid out (``axis``: its time axis)."""
    try:
        query = parse_query(request.args)
        axis = parse_axis(request.args.get("axis"))
        grid = overlay.busy_overlay(
            db_session(), deps.required_broker(), deps.cipher(), actor(), query
        )
    except Forbidden as exc:
        return _fragment(exc.message, 403)
    except NotFound as exc:
        return _fragment(exc.message, 404)
    except Invalid as exc:
        return _fragment(exc.message, 400)
    except ServiceError as exc:
        return _fragment(exc.message, 503)
    view = layout.week_view(
        grid, query.tzid, weekends=request.args.get("weekends") == "1", axis=axis
    )
    return (
        render_template("schedule/_busy.html", view=view, problem=None),
        200,
        {"Cache-Control": "no-store"},
    )
