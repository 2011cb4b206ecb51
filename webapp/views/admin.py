"""Organisation administration: users, roles, deactivation and coordinator assignments."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from models import Organisation, Role
from webapp import deps, mail
from webapp.db import db_session
from webapp.forms import AssignmentForm, InviteForm, RoleForm
from webapp.mail import notices
from webapp.public_urls import external_url
from webapp.security import allow
from webapp.services import accounts, calendars, connect, coordinators, delegation, directory
from webapp.services.errors import NotFound, ServiceError
from webapp.services.sso import settings as sso_settings
from webapp.views import flash_error
from webapp.views.schedule import zone_options
from webapp.web import actor

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _assignment_form(users) -> AssignmentForm:
    form = AssignmentForm()
    form.coordinator_id.choices = [
        SelectChoice(str(u.id), f"{u.name} ({u.email})")
        for u in users
        if u.role is Role.COORDINATOR and u.active
    ]
    form.manager_id.choices = [
        SelectChoice(str(u.id), f"{u.name} ({u.email})")
        for u in users
        if u.role is Role.RECRUITER and u.active
    ]
    return form


def _users_page(invite_form=None, assignment_form=None, invite_link=None, status=200):
    session, who = db_session(), actor()
    users = accounts.list_users(session, who)
    return render_template(
        "admin/users.html",
        users=[u for u in users if not u.is_directory_person],
        people=[u for u in users if u.is_directory_person],
        invite_form=invite_form or InviteForm(),
        assignment_form=assignment_form or _assignment_form(users),
        assignments=coordinators.assignments(session, who),
        invite_link=invite_link,
    ), status


def _invite_link(token: str) -> str:
    return external_url("auth.accept_invite", token=token)


def _email_invitation(user, url: str) -> None:
    """Send the invitation link to the person too (from a job; the link is sealed in it)."""
    session, who = db_session(), actor()
    organisation = session.get(Organisation, user.organisation_id)
    mail.queue(
        deps.jobs(),
        deps.sealer(),
        notices.user_invitation(
            to=user.email,
            name=user.name,
            organisation_name=organisation.name if organisation else "Rendezvous",
            invited_by=who.label or "An administrator",
            url=url,
            days=current_app.config["INVITE_DAYS"],
            organisation_id=user.organisation_id,
            user_id=user.id,
        ),
    )


@bp.route("/users")
@allow(Role.ADMIN)
def users():
    """List the organisation's users and assignments."""
    return _users_page()


@bp.route("/users", methods=["POST"])
@allow(Role.ADMIN)
def invite():
    """Create an account and show its one-time invitation link."""
    form = InviteForm()
    if not form.validate_on_submit():
        return _users_page(invite_form=form, status=400)
    try:
        user, token = accounts.invite_user(
            db_session(),
            actor(),
            email=form.email.data,
            name=form.name.data,
            role=form.role.data,
            invite_days=current_app.config["INVITE_DAYS"],
        )
    except ServiceError as exc:
        if exc.field and hasattr(form, exc.field):
            getattr(form, exc.field).errors = [exc.message]
        else:
            flash_error(exc)
        return _users_page(invite_form=form, status=400)
    url = _invite_link(token)
    _email_invitation(user, url)
    flash(
        f"Account created for {user.name}. The invitation link was emailed to them, and is "
        "below (shown only once) if you prefer to send it yourself.",
        "success",
    )
    return _users_page(invite_link=(user, url), status=201)


@bp.route("/users/<int:user_id>")
@allow(Role.ADMIN)
def user(user_id: int):
    """Show one user with their role and status controls."""
    try:
        target = accounts.get_user(db_session(), actor(), user_id)
    except NotFound:
        abort(404)
    return _user_page(target)


def _user_page(
    target,
    zone_problem: str | None = None,
    status: int = 200,
    hours_problem: str | None = None,
):
    db = db_session()
    link = connect.link_of(db, target.id)
    proposed = (
        None
        if target.timezone
        else calendars.calendar_zone(
            db,
            deps.broker(),
            deps.cipher(),
            link,
        )
    )
    org = db.get(Organisation, target.organisation_id)
    own_hours = directory.hours_of(db, target)
    return render_template(
        "admin/user.html",
        user=target,
        role_form=RoleForm(role=target.role.value if target.role.can_log_in else None),
        hours=own_hours,
        hours_problem=hours_problem,
        link=link,
        delegated=None if link else delegation.seen_through(db, target),
        zone_options=zone_options,
        proposed_zone=proposed,
        zone_problem=zone_problem,
        organisation_zone=(org.timezone if org else None) or "Europe/London",
        selected_zone=target.timezone or proposed or (org.timezone if org else "Europe/London"),
    ), status


@bp.route("/users/<int:user_id>/timezone", methods=["POST"])
@allow(Role.ADMIN)
def set_timezone(user_id: int):
    """Set a user's time zone (for people who never sign in, such as panel members linked
    through Enterprise Connect)."""
    db, who = db_session(), actor()
    try:
        target = accounts.set_timezone(
            db,
            who,
            user_id,
            request.form.get("timezone"),
            source=request.form.get("source", "chosen"),
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        return _user_page(accounts.get_user(db, who, user_id), exc.message, 400)
    flash(f"{target.name}'s time zone is {target.timezone}.", "success")
    return redirect(url_for("admin.user", user_id=user_id), code=303)


@bp.route("/users/<int:user_id>/hours", methods=["POST"])
@allow(Role.ADMIN)
def set_hours(user_id: int):
    """Set a person's working hours (directory people never sign in to set their own)."""
    db, who = db_session(), actor()
    try:
        directory.set_working_hours(
            db,
            who,
            user_id,
            start=request.form.get("start", ""),
            end=request.form.get("end", ""),
            weekdays=request.form.getlist("weekdays"),
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        return _user_page(
            accounts.get_user(db, who, user_id), status=400, hours_problem=exc.message
        )
    flash("Working hours saved.", "success")
    return redirect(url_for("admin.user", user_id=user_id), code=303)


@bp.route("/users/<int:user_id>/invite-to-log-in", methods=["POST"])
@allow(Role.ADMIN)
def invite_to_log_in(user_id: int):
    """Give a directory person a login: the role chosen now, their calendar link kept."""
    session, who = db_session(), actor()
    try:
        accounts.get_user(session, who, user_id)
    except NotFound:
        abort(404)
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("admin.user", user_id=user_id), code=303)
    try:
        target, token = accounts.invite_to_log_in(
            session,
            who,
            user_id,
            role=form.role.data,
            invite_days=current_app.config["INVITE_DAYS"],
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("admin.user", user_id=user_id), code=303)
    url = _invite_link(token)
    _email_invitation(target, url)
    flash(
        f"{target.name} is invited to log in as {target.role.label}; their calendar stays "
        "linked. The invitation link was emailed to them, and is below (shown only once).",
        "success",
    )
    return _users_page(invite_link=(target, url), status=201)


def _apply(action, user_id: int, success: str):
    # CSRFProtect has already refused any POST without a valid token before we get here.
    try:
        action()
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("admin.user", user_id=user_id))
    flash(success, "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@allow(Role.ADMIN)
def change_role(user_id: int):
    """Change a user's role; their sessions end."""
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("admin.user", user_id=user_id))
    return _apply(
        lambda: accounts.change_role(db_session(), actor(), user_id, form.role.data),
        user_id,
        "Role changed. The user's sessions have ended.",
    )


@bp.route("/users/<int:user_id>/sso-identity/forget", methods=["POST"])
@allow(Role.ADMIN)
def forget_sso_identity(user_id: int):
    """Unbind an account from its identity at the identity provider."""
    return _apply(
        lambda: sso_settings.forget_identity(db_session(), actor(), user_id),
        user_id,
        "The account is no longer bound to an identity at your identity provider; its "
        "sessions have ended. The next sign-in with its address binds again.",
    )


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@allow(Role.ADMIN)
def deactivate(user_id: int):
    """Deactivate a user; they are logged out and cannot log in."""
    return _apply(
        lambda: accounts.set_active(db_session(), actor(), user_id, False),
        user_id,
        "User deactivated. They can no longer log in.",
    )


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@allow(Role.ADMIN)
def reactivate(user_id: int):
    """Reactivate a user."""
    return _apply(
        lambda: accounts.set_active(db_session(), actor(), user_id, True),
        user_id,
        "User reactivated.",
    )


@bp.route("/users/<int:user_id>/invite", methods=["POST"])
@allow(Role.ADMIN)
def reissue_invite(user_id: int):
    """Replace a user's invitation link and show the new one once."""
    session, who = db_session(), actor()
    try:
        token = accounts.reissue_invite(
            session, who, user_id, invite_days=current_app.config["INVITE_DAYS"]
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("admin.user", user_id=user_id))
    target = accounts.get_user(session, who, user_id)
    url = _invite_link(token)
    _email_invitation(target, url)
    flash("A new invitation link was made and emailed; the old one no longer works.", "success")
    return _users_page(invite_link=(target, url))


@bp.route("/assignments", methods=["POST"])
@allow(Role.ADMIN)
def assign():
    """Let a coordinator schedule for a hiring manager."""
    session, who = db_session(), actor()
    form = _assignment_form(accounts.list_users(session, who))
    if not form.validate_on_submit():
        flash("Choose a coordinator and a hiring manager.", "error")
        return _users_page(assignment_form=form, status=400)
    try:
        assignment = coordinators.assign_coordinator(
            session, who, form.coordinator_id.data, form.manager_id.data
        )
    except ServiceError as exc:
        flash_error(exc)
        return _users_page(assignment_form=form, status=400)
    flash(
        f"{assignment.coordinator.name} can now schedule for {assignment.manager.name}.", "success"
    )
    return redirect(url_for("admin.users"))


@bp.route("/assignments/<int:assignment_id>/delete", methods=["POST"])
@allow(Role.ADMIN)
def unassign(assignment_id: int):
    """Remove a coordinator assignment."""
    try:
        coordinators.unassign_coordinator(db_session(), actor(), assignment_id)
    except NotFound:
        abort(404)
    flash("Assignment removed.", "success")
    return redirect(url_for("admin.users"))
