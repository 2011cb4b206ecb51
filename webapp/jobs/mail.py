"""Background jobs of outgoing mail: sending one message (a slow or failing SMTP server delays
the job, never a request; it is retried) and auditing it with the recipient hashed."""

from __future__ import annotations

import logging
import smtplib

from webapp import deps
from webapp.jobs.queue import TaskGroup

tasks = TaskGroup("mail")
log = logging.getLogger("webapp.mail")


@tasks.task("send_message", retries=5, retry_delay=60)
def send_message(sealed: str) -> str:
    """Send the sealed message (webapp.mail.queue); audit ``mail.sent`` or ``mail.skipped``.
    Logs name the kind of mail and the error class, never the address, subject or body."""
    from webapp import mail
    from webapp.services.audit import record

    opened = deps.sealer().open_json(mail.PURPOSE, sealed, max_length=mail.MAX_SEALED)
    if opened is None:
        log.warning("mail job: the message does not open (another key?); dropped")
        return "unreadable"
    message = mail.Mail.from_json(opened)
    mailer = deps.mailer()
    outcome = "skipped"
    if mailer is not None:
        try:
            mailer.send(mail.compose(message, mailer.sender), message.organisation_id)
        except (smtplib.SMTPException, OSError) as exc:
            # Permanent refusals of the recipient are not retried; anything else is.
            if isinstance(exc, smtplib.SMTPRecipientsRefused):
                outcome = "refused"
            else:
                log.warning("mail %s: not sent (%s); retrying", message.kind, type(exc).__name__)
                raise RuntimeError(f"mail {message.kind}: {type(exc).__name__}") from None
        else:
            outcome = "sent"
    with deps.database().sessions() as session:
        record(
            session,
            None,
            f"mail.{outcome}",
            outcome="success" if outcome == "sent" else "failure",
            organisation_id=message.organisation_id,
            target_type=message.target_type,
            target_id=message.target_id,
            detail={"kind": message.kind, "recipient_hash": mail.recipient_hash(message.to)},
        )
        session.commit()
    log.info("mail %s: %s", message.kind, outcome)
    return outcome
