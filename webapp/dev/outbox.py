"""The development outbox (like Rails' letter_opener): mail the app would have sent, read in the
browser. Registered only when the app keeps mail in the outbox (development without SMTP; never
in production), and only for admins, each seeing the mail about their own organisation."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from flask import Blueprint, Response, abort, render_template

from models import Role
from webapp import deps
from webapp.mail import OutboxMailer
from webapp.security import allow
from webapp.web import actor

bp = Blueprint("outbox", __name__, url_prefix="/dev/outbox")


def _outbox() -> OutboxMailer:
    found = deps.mailer()
    if not isinstance(found, OutboxMailer):
        abort(404)
    return found


def _organisation() -> int:
    found = actor().organisation_id
    if found is None:
        abort(404)
    return found


def _message(name: str) -> EmailMessage:
    raw = _outbox().read(_organisation(), name)
    if raw is None:
        abort(404)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@bp.route("/")
@allow(Role.ADMIN)
def index():
    messages = []
    for name in _outbox().names(_organisation()):
        message = _message(name)
        messages.append((name, message["To"], message["Subject"], message["Date"]))
    return render_template("dev/outbox.html", messages=messages)


@bp.route("/<name>")
@allow(Role.ADMIN)
def show(name: str):
    message = _message(name)
    text = message.get_body(preferencelist=("plain",))
    attachments = [(i, part.get_filename()) for i, part in enumerate(message.iter_attachments())]
    return render_template(
        "dev/outbox_message.html",
        name=name,
        message=message,
        text=text.get_content() if text is not None else "",
        attachments=attachments,
    )


@bp.route("/<name>/html")
@allow(Role.ADMIN)
def html(name: str):
    """The HTML part on its own, sandboxed: no scripts, no requests, no access to the app."""
    part = _message(name).get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    return Response(
        part.get_content(),
        mimetype="text/html",
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
            "Cache-Control": "no-store",
        },
    )


@bp.route("/<name>/attachments/<int:index>")
@allow(Role.ADMIN)
def attachment(name: str, index: int):
    parts = list(_message(name).iter_attachments())
    if not 0 <= index < len(parts):
        abort(404)
    part = parts[index]
    return Response(
        part.get_payload(decode=True),
        mimetype=part.get_content_type(),
        headers={
            "Content-Disposition": f'attachment; filename="{index}-{part.get_content_subtype()}"',
            "Cache-Control": "no-store",
        },
    )
