"""My profile → API tokens: create (shown once), list and revoke personal API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from webapp.db import db_session
from webapp.security import signed_in
from webapp.services import api_tokens
from webapp.services.errors import Invalid, NotFound
from webapp.web import actor

bp = Blueprint("api_tokens", __name__, url_prefix="/profile/api-tokens")


def _page(*, created=None, plaintext=None, error=None, form=None, status=200):
    return render_template(
        "api/tokens.html",
        tokens=api_tokens.list_tokens(db_session(), actor()),
        lifetimes=api_tokens.LIFETIMES,
        default_days=api_tokens.DEFAULT_DAYS,
        created=created,
        plaintext=plaintext,
        error=error,
        form=form or {},
    ), status


@bp.route("/")
@signed_in
def index():
    """List the user's API tokens and offer to create one."""
    return _page()


@bp.route("/", methods=["POST"])
@signed_in
def create():
    """Create a token and show it once."""
    form = {"name": request.form.get("name", ""), "days": request.form.get("days", "")}
    try:
        token, plaintext = api_tokens.create_token(
            db_session(), actor(), name=form["name"], days=form["days"]
        )
    except Invalid as exc:
        return _page(error=exc, form=form, status=400)
    return _page(created=token, plaintext=plaintext)


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@signed_in
def revoke(token_id: int):
    """Revoke one of the user's tokens."""
    try:
        token = api_tokens.revoke_token(db_session(), actor(), token_id)
    except NotFound:
        abort(404)
    flash(f"Token “{token.name}” revoked. Requests using it are refused from now on.", "success")
    return redirect(url_for("api_tokens.index"))
