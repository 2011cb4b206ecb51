"""Enterprise Connect for IT admins: domains, mailbox status, bulk link requests."""

from __future__ import annotations

from models import Role
from webapp import deps
from webapp.api.core import actor, db, operation
from webapp.api.pagination import by_key
from webapp.api.schemas import enterprise as s
from webapp.services.enterprise import domains as ec_domains
from webapp.services.enterprise import mailboxes as ec_mailboxes

ADMIN = (Role.ADMIN,)
#: More than any page needs; the service reads mailboxes ordered by email.
_MAILBOX_READ_LIMIT = 10_000


@operation(
    "GET",
    "/enterprise/domains",
    summary="Linked domains",
    tag="Enterprise Connect",
    roles=ADMIN,
    response=s.DomainListSchema,
)
def domains():
    """The organisation's connected domains with their mailbox counts per state."""
    session = db()
    return {
        "items": [
            {
                "id": link.id,
                "provider": link.provider,
                "domain": link.domain,
                "status": link.status,
                "linked_at": link.linked_at,
                "mailboxes": ec_mailboxes.counts(session, link.id),
            }
            for link in ec_domains.of_organisation(session, actor().organisation_id)
        ]
    }


@operation(
    "GET",
    "/enterprise/domains/<int:domain_id>/mailboxes",
    summary="Mailbox status",
    tag="Enterprise Connect",
    roles=ADMIN,
    query=s.MailboxQuerySchema,
    response=s.MailboxPageSchema,
)
def mailboxes(domain_id: int, query):
    """Each mailbox requested on the domain and where its link stands, ordered by email."""
    link = ec_domains.domain_link(db(), actor(), domain_id)
    rows = ec_mailboxes.mailbox_requests(
        db(), link.id, status=query["status"], query=query["q"], limit=_MAILBOX_READ_LIMIT
    )
    page = by_key(
        f"mailboxes:{link.id}",
        actor(),
        rows,
        lambda r: r.email,
        limit=query["limit"],
        cursor=query["cursor"],
    )
    return {
        "items": [
            {
                "id": r.id,
                "email": r.email,
                "status": r.status.value,
                "error_key": r.error_key,
                "error_text": r.error_text,
                "requested_at": r.requested_at,
                "completed_at": r.completed_at,
            }
            for r in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@operation(
    "POST",
    "/enterprise/domains/<int:domain_id>/mailbox-requests",
    summary="Request mailbox links in bulk",
    tag="Enterprise Connect",
    roles=ADMIN,
    body=s.MailboxRequestBodySchema,
    response=s.MailboxRequestReportSchema,
    status=202,
)
def request_mailboxes(domain_id: int, body):
    """Queue link requests for the listed mailboxes (or every user on the domain) and send them
    in the background, in batches; every address not queued is listed with the reason."""
    from webapp.callbacks import service_account_callback_url

    link = ec_domains.domain_link(db(), actor(), domain_id)
    report = ec_mailboxes.request_mailboxes(
        db(),
        actor(),
        link.id,
        emails=body["emails"],
        all_users=body["all_users"],
        callback_url=service_account_callback_url,
        jobs=deps.jobs(),
    )
    return report
