"""Interviewer pools: an IT admin or recruiter defines them, with each person's limits."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from models import Role
from webapp.db import db_session
from webapp.errors import render_error
from webapp.security import allow
from webapp.services.errors import NotFound, ServiceError
from webapp.services.pools import manage
from webapp.web import actor

bp = Blueprint("pools", __name__, url_prefix="/pools")

MANAGERS = (Role.ADMIN, Role.RECRUITER)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    """Another organisation's pool (or member) reads as missing: 404, nothing changed."""
    return render_error(404, exc.message)


def _index_page(problem: str | None = None, status: int = 200, error_field: str | None = None):
    db, me = db_session(), actor()
    return render_template(
        "pools/index.html",
        pools=manage.pools(db, me),
        problem=problem,
        error_field=error_field,
        form=request.form if request.method == "POST" else {},
    ), status


def _pool_page(
    pool_id: int,
    problem: str | None = None,
    status: int = 200,
    error_field: str | None = None,
    problem_for: str | None = None,
):
    """The pool's page; ``problem_for``: which form the problem belongs to (it is shown there,
    with what was typed)."""
    db, me = db_session(), actor()
    pool = manage.pool_for(db, me, pool_id)
    in_pool = {m.user_id for m in pool.members}
    people = manage.people(db, me)
    return render_template(
        "pools/show.html",
        pool=pool,
        linked={p.user.id for p in people if p.has_calendar},
        addable=[p for p in people if p.user.id not in in_pool],
        problem=problem,
        problem_for=problem_for,
        error_field=error_field,
        form=request.form if request.method == "POST" else {},
        max_per_day=manage.MAX_PER_DAY,
        max_per_week=manage.MAX_PER_WEEK,
    ), status


def _id(raw: str | None) -> int:
    try:
        return int(raw or "")
    except ValueError:
        return 0  # never a row id: the service refuses it


def _limits() -> dict:
    form = request.form
    return {
        "max_per_day": manage.parse_limit(
            form.get("max_per_day"), "max_per_day", manage.MAX_PER_DAY
        ),
        "max_per_week": manage.parse_limit(
            form.get("max_per_week"), "max_per_week", manage.MAX_PER_WEEK
        ),
        "is_shadow": form.get("is_shadow") == "on",
    }


@bp.route("/")
@allow(*MANAGERS)
def index():
    """List the organisation's interviewer pools."""
    return _index_page()


@bp.route("/", methods=["POST"])
@allow(*MANAGERS)
def create():
    """Create a pool and open it to add people."""
    try:
        pool = manage.create_pool(
            db_session(), actor(), request.form.get("name", ""), request.form.get("about", "")
        )
    except ServiceError as exc:
        return _index_page(exc.message, 400, exc.field)
    flash(f"Pool “{pool.name}” created. Add the people it picks from.", "success")
    return redirect(url_for("pools.show", pool_id=pool.id), code=303)


@bp.route("/<int:pool_id>")
@allow(*MANAGERS)
def show(pool_id: int):
    """Show a pool: its people, their limits, and who can be added."""
    return _pool_page(pool_id)


@bp.route("/<int:pool_id>", methods=["POST"])
@allow(*MANAGERS)
def update(pool_id: int):
    """Rename the pool or change its note."""
    try:
        manage.update_pool(
            db_session(),
            actor(),
            pool_id,
            request.form.get("name", ""),
            request.form.get("about", ""),
        )
    except ServiceError as exc:
        return _pool_page(pool_id, exc.message, 400, exc.field, "pool")
    flash("Pool saved.", "success")
    return redirect(url_for("pools.show", pool_id=pool_id), code=303)


@bp.route("/<int:pool_id>/delete", methods=["POST"])
@allow(*MANAGERS)
def delete(pool_id: int):
    """Delete the pool (interviews already booked from it stay)."""
    manage.delete_pool(db_session(), actor(), pool_id)
    flash("Pool deleted. Interviews already booked from it are unchanged.", "success")
    return redirect(url_for("pools.index"), code=303)


@bp.route("/<int:pool_id>/members", methods=["POST"])
@allow(*MANAGERS)
def add_member(pool_id: int):
    """Add a person of the organisation to the pool, with their limits."""
    try:
        member = manage.add_member(
            db_session(), actor(), pool_id, _id(request.form.get("user_id")), **_limits()
        )
    except ServiceError as exc:
        return _pool_page(pool_id, exc.message, 400, exc.field, "add")
    flash(f"{member.user.name} added.", "success")
    return redirect(url_for("pools.show", pool_id=pool_id), code=303)


@bp.route("/<int:pool_id>/members/<int:member_id>", methods=["POST"])
@allow(*MANAGERS)
def update_member(pool_id: int, member_id: int):
    """Change a member's limits or shadow flag."""
    try:
        member = manage.update_member(db_session(), actor(), pool_id, member_id, **_limits())
    except ServiceError as exc:
        return _pool_page(pool_id, exc.message, 400, exc.field, f"member-{member_id}")
    flash(f"{member.user.name}: limits saved.", "success")
    return redirect(url_for("pools.show", pool_id=pool_id), code=303)


@bp.route("/<int:pool_id>/members/<int:member_id>/remove", methods=["POST"])
@allow(*MANAGERS)
def remove_member(pool_id: int, member_id: int):
    """Take a person out of the pool."""
    manage.remove_member(db_session(), actor(), pool_id, member_id)
    flash("Removed from the pool.", "success")
    return redirect(url_for("pools.show", pool_id=pool_id), code=303)
