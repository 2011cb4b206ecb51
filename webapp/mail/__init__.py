"""Outgoing email: what a message is (``Mail``), how it becomes a MIME message (plain text and
HTML as multipart/alternative, attachments beside them), and the transports: SMTP in production,
a local outbox directory in development when no SMTP server is configured.

Mail is never sent inside a request: ``queue`` seals the message into the arguments of the
``mail.send_message`` job (webapp/jobs/mail.py), which sends it and writes the audit entry. The
recipient appears in the audit trail only as ``recipient_hash``; nothing here logs an address, a
subject or a body (a body may carry a link with a token).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

#: Sealing purpose of a queued message in job arguments.
PURPOSE = "mail.message"
#: Longest sealed message a job accepts (a message with its .ics is a few kilobytes).
MAX_SEALED = 400_000


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "text/calendar; method=PUBLISH"
    data: str


@dataclass(frozen=True)
class Mail:
    """One email to one person. ``kind`` names it in the audit trail (``booking_confirmation``);
    ``organisation_id`` and ``target`` say what it is about."""

    to: str
    subject: str
    text: str
    html: str
    kind: str
    organisation_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "kind": self.kind,
            "org": self.organisation_id,
            "tt": self.target_type,
            "ti": self.target_id,
            "att": [[a.filename, a.content_type, a.data] for a in self.attachments],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Mail:
        return cls(
            to=value["to"],
            subject=value["subject"],
            text=value["text"],
            html=value["html"],
            kind=value["kind"],
            organisation_id=value.get("org"),
            target_type=value.get("tt"),
            target_id=value.get("ti"),
            attachments=tuple(Attachment(*a) for a in value.get("att") or ()),
        )


def recipient_hash(address: str) -> str:
    """How an address appears in the audit trail: SHA-256 of the trimmed, lower-cased address
    (a compliance reviewer holding the address finds its entries; the trail never shows it)."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def compose(mail: Mail, sender: str) -> EmailMessage:
    """The MIME message: multipart/alternative (text, HTML), inside multipart/mixed when there
    are attachments. Header injection is refused by the email package (newlines in headers)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    for attachment in mail.attachments:
        maintype, _, rest = attachment.content_type.partition("/")
        subtype, *params = [p.strip() for p in rest.split(";")]
        message.add_attachment(
            attachment.data.encode(),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=dict(p.split("=", 1) for p in params if "=" in p),
        )
    return message


class Mailer(Protocol):
    sender: str

    def send(self, message: EmailMessage, organisation_id: int | None = None) -> None: ...


class SmtpMailer:
    """Sends through an SMTP server: STARTTLS (port 587), implicit TLS (``ssl``, port 465) or,
    for a relay on the same host, ``none``. The password is only ever given to ``login``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        sender: str,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.host, self.port, self.security = host, port, security
        self.sender = sender
        self._user, self._password = user, password
        self.timeout = timeout
        self._context = ssl_context or ssl.create_default_context()

    def __repr__(self) -> str:  # never the password
        return f"<SmtpMailer {self.host}:{self.port} {self.security}>"

    def send(self, message: EmailMessage, organisation_id: int | None = None) -> None:
        client: smtplib.SMTP
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self._context)
                client.ehlo()
            if self._user:
                client.login(self._user, self._password or "")
            client.send_message(message)


class OutboxMailer:
    """Development without SMTP: each message is written to ``directory`` as an .eml file, read
    on the outbox page (webapp/dev/outbox.py). Nothing leaves the machine. The file name starts
    with the organisation the mail is about, so each organisation's admins see only theirs."""

    def __init__(self, directory: str | Path, sender: str):
        self.directory = Path(directory)
        self.sender = sender

    def send(self, message: EmailMessage, organisation_id: int | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ident = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{organisation_id or 0}-{stamp}-{ident}.eml"
        path.write_bytes(message.as_bytes())
        path.chmod(0o600)

    def names(self, organisation_id: int) -> list[str]:
        """The organisation's kept messages, newest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            (p.name for p in self.directory.glob(f"{organisation_id}-*.eml")), reverse=True
        )

    def read(self, organisation_id: int, name: str) -> bytes | None:
        """One of the organisation's kept messages (only names ``names`` lists)."""
        if name not in self.names(organisation_id):
            return None
        return (self.directory / name).read_bytes()


def build_mailer(config: Mapping[str, Any], instance_path: str) -> Mailer | None:
    """SMTP when SMTP_HOST is set; otherwise the development outbox; None in production
    without SMTP (mail is then not sent, and each message is audited as skipped)."""
    sender = config.get("MAIL_FROM") or "Rendezvous <no-reply@localhost>"
    if config.get("SMTP_HOST"):
        return SmtpMailer(
            config["SMTP_HOST"],
            config["SMTP_PORT"] or (465 if config["SMTP_SECURITY"] == "ssl" else 587),
            security=config["SMTP_SECURITY"],
            sender=sender,
            user=config.get("SMTP_USER"),
            password=config.get("SMTP_PASSWORD"),
        )
    if config.get("ENVIRONMENT") == "production":
        return None
    return OutboxMailer(config.get("MAIL_OUTBOX_DIR") or Path(instance_path) / "outbox", sender)


def queue(jobs: Any, sealer: Any, mail: Mail) -> None:
    """Send ``mail`` from a job (never in the request): sealed, since job arguments sit in the
    queue's store and a message may hold an address, a time and a link."""
    jobs.enqueue("mail.send_message", sealer.seal_json(PURPOSE, mail.to_json()))
