"""Enterprise Connect: an IT admin authorizes a service account for the organisation's domain
once, then links its mailboxes in bulk (reference §2).

Flow and states of one mailbox request::

    queued ──send_batches──▶ pending ──callback(code)──▶ linked ──unlink──▶ unlinked
                                │    └──callback(error)─▶ failed ──retry──▶ queued
                                └── 429 / 5xx: back to queued and sent again later

* Requests go out in batches of at most ``BATCH_SIZE``. Before a batch is sent its rows are
  *claimed* (an atomic UPDATE, so two workers never send the same row) and each gets a fresh
  one-time ``state`` whose SHA-256 is committed first; ``sent_at`` is committed when the
  aggregator accepted the batch. A worker that dies between batches leaves only ``queued`` rows
  behind; one that dies mid-batch leaves claimed rows, which are released after
  ``CLAIM_LEASE`` and sent again with a new state (an answer to the old state is then refused).
* The callback comes to a URL with the request's AES-GCM-sealed reference and must carry the
  row's unused one-time state (in ``authorization.state`` or at the top level: where it comes
  back is unconfirmed). A ``Cronofy-HMAC-SHA256`` header, when present, must be right (the
  view checks it); without one — no source confirms this callback is signed — the reference
  and state authenticate it, and it is audited and counted on the domain. The state is marked
  used by an atomic UPDATE *before* the code is exchanged, so a replay never causes a second
  exchange. The exchange repeats the row's exact ``callback_url``.
* A linked mailbox becomes the ProfileLink (mode ``enterprise``) of the organisation user with
  that email. Emails without a Rendezvous user are rejected up front, so every link has a user.
* Rooms travel the same way (a request of kind ``room``, asked for free/busy only). A linked room
  keeps just its aggregator ``sub`` for availability queries; its tokens are not kept, and
  unlinking revokes the sub.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from broker import errors as broker_errors
from broker.notifications import SACallback
from broker.port import CalendarBroker
from broker.types import (
    DEFAULT_USER_SCOPE,
    Credentials,
    Resource,
    ServiceAccountAuthorizationRequest,
)
from models import (
    LinkMode,
    LinkStatus,
    MailboxKind,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    ServiceAccountLink,
    User,
    utcnow,
)
from webapp import security
from webapp.security import DecryptionFailed, TokenCipher
from webapp.services import (
    Actor,
    calendars,
    connect,
    credentials,
    in_batches,
    oauth_states,
    revocations,
)
from webapp.services.audit import record
from webapp.services.errors import (
    Forbidden,
    Invalid,
    NotFound,
    ReconnectNeeded,
    ServiceAccountTrouble,
)

log = logging.getLogger("webapp.services.enterprise")

FLOW = "enterprise_connect"
#: Aggregator ``provider_name`` → what the admin sees.
PROVIDERS: dict[str, str] = {
    "exchange": "Exchange",
    "office365": "Office 365",
    "google": "Google Workspace",
}
#: What each mailbox is asked for; also the ``delegated_scope`` the admin grants (a superset).
MAILBOX_SCOPE = " ".join(DEFAULT_USER_SCOPE)
#: What each room is asked for: its free/busy, for availability queries (within MAILBOX_SCOPE,
#: since ``read_events`` implies it).
ROOM_SCOPE = "read_free_busy"
#: Entries per ``POST /v1/service_account_authorizations`` (the aggregator accepts 1–50).
BATCH_SIZE = 50
#: A claimed batch older than this is assumed abandoned by a dead worker and sent again.
CLAIM_LEASE = timedelta(minutes=2)
#: Sending attempts per mailbox before a persistent aggregator failure marks it failed.
MAX_ATTEMPTS = 5
_EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
#: Shown for error keys the aggregator may send; unknown keys show the aggregator's text.
ERROR_HINTS = {
    "unknown_mailbox": "No such mailbox on the domain.",
    "outside_impersonation_scope": "The service account is not allowed to impersonate this "
    "mailbox (extend the ApplicationImpersonation scope).",
    "scope_not_granted": "The service account was not granted access to mailboxes.",
    "aggregator_unavailable": "The calendar service kept failing; use Retry failed.",
    "code_exchange_failed": "The calendar service's answer could not be redeemed; use Retry failed.",
    "linked_to_another_user": "This calendar account is already linked to another Rendezvous user.",
    "request_refused": "The calendar service refused the request.",
    "no_room_id": "The calendar service linked the room without an id; use Retry failed.",
}


# ---------------------------------------------------------------------------------------------
# Reading


def _require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("Only IT admins can manage Enterprise Connect.")


def domains(session: Session, organisation_id: int) -> list[ServiceAccountLink]:
    """The organisation's connected (or attention-needing) domains."""
    return list(
        session.scalars(
            select(ServiceAccountLink)
            .where(
                ServiceAccountLink.organisation_id == organisation_id,
                ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            )
            .order_by(ServiceAccountLink.id)
        )
    )


def domain_link(session: Session, actor: Actor, link_id: int) -> ServiceAccountLink:
    link = session.get(ServiceAccountLink, link_id)
    if link is None or link.organisation_id != actor.organisation_id:
        raise NotFound("No such domain.")
    return link


def counts(session: Session, link_id: int) -> dict[str, int]:
    """Mailbox requests per status (every status present, zero if none), plus ``total``."""
    found = dict(
        session.execute(
            select(MailboxRequest.status, func.count(MailboxRequest.id))
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.kind == MailboxKind.MAILBOX,
            )
            .group_by(MailboxRequest.status)
        ).all()
    )
    result = {s.value: int(found.get(s, 0)) for s in MailboxStatus}
    result["total"] = sum(result.values()) - result["unlinked"]
    result["waiting"] = result["queued"] + result["pending"]
    return result


def mailboxes(
    session: Session,
    link_id: int,
    *,
    status: str | None = None,
    query: str | None = None,
    limit: int = 500,
) -> list[MailboxRequest]:
    stmt = select(MailboxRequest).where(
        MailboxRequest.service_account_link_id == link_id,
        MailboxRequest.kind == MailboxKind.MAILBOX,
    )
    if status == "waiting":
        stmt = stmt.where(MailboxRequest.status.in_([MailboxStatus.QUEUED, MailboxStatus.PENDING]))
    elif status in {s.value for s in MailboxStatus}:
        stmt = stmt.where(MailboxRequest.status == MailboxStatus(status))
    if query:
        stmt = stmt.where(
            MailboxRequest.email.contains(query.strip().lower()[:100], autoescape=True)
        )
    return list(session.scalars(stmt.order_by(MailboxRequest.email).limit(limit)))


def candidates(
    session: Session, link: ServiceAccountLink, *, query: str | None = None, limit: int = 500
) -> list[tuple[User, MailboxRequest | None]]:
    """Active organisation users on the domain, with their current request (if any)."""
    stmt = select(User).where(
        User.organisation_id == link.organisation_id,
        User.active.is_(True),
        User.email.endswith("@" + link.domain, autoescape=True),
    )
    if query:
        needle = query.strip().lower()[:100]
        stmt = stmt.where(
            or_(
                User.email.contains(needle, autoescape=True),
                func.lower(User.name).contains(needle, autoescape=True),
            )
        )
    users = list(session.scalars(stmt.order_by(User.email).limit(limit)))
    requests_ = {
        r.user_id: r
        for r in session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.user_id.in_([u.id for u in users]),
            )
        )
    }
    return [(u, requests_.get(u.id)) for u in users]


# ---------------------------------------------------------------------------------------------
# Connecting the domain (the admin's browser goes to the aggregator and back)


def begin(
    session: Session,
    broker: CalendarBroker,
    actor: Actor,
    *,
    provider: str,
    session_nonce: str,
    redirect_uri: str,
) -> str:
    """Create a one-time state and return the aggregator's Enterprise Connect URL."""
    _require_admin(actor)
    if provider not in PROVIDERS:
        raise Invalid("Choose Exchange, Office 365 or Google Workspace.", field="provider")
    state = oauth_states.issue(session, actor, flow=FLOW, session_nonce=session_nonce)
    record(session, actor, "ec.connect_started", detail={"provider": provider})
    session.commit()
    return broker.enterprise_connect_url(redirect_uri, state, delegated_scope=DEFAULT_USER_SCOPE)


def complete(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    session_nonce: str | None,
    redirect_uri: str,
) -> ServiceAccountLink:
    """Check the state, redeem the code, and store the service account for its domain."""
    _require_admin(actor)
    code = oauth_states.redirect_code(
        session,
        actor,
        flow=FLOW,
        state=state,
        session_nonce=session_nonce,
        error=error,
        code=code,
        audit_prefix="ec",
        declined="The administrator consent was declined, so no domain was connected.",
    )
    try:
        creds = broker.exchange_code(code, redirect_uri)
        info = broker.userinfo(creds)
    except broker_errors.BrokerError as exc:
        record(
            session,
            actor,
            "ec.connect_failed",
            outcome="failure",
            detail={"error": type(exc).__name__},
        )
        session.commit()
        raise credentials.broker_problem(exc) from None
    if info.kind != "service_account":
        record(
            session,
            actor,
            "ec.connect_failed",
            outcome="failure",
            detail={"error": "not a service account"},
        )
        session.commit()
        try:
            broker.revoke(creds.refresh_token)
        except broker_errors.BrokerError:
            pass
        raise Invalid(
            "The calendar service returned a personal account, not a service account. "
            "Nothing was stored."
        )
    sub = creds.sub or creds.service_account_id or info.sub
    email = (info.email or "").lower() or None
    domain = (info.domain or (email.split("@", 1)[1] if email and "@" in email else "")).lower()
    if not domain:
        raise Invalid("The calendar service did not say which domain was authorized.")
    clash = session.scalar(
        select(ServiceAccountLink).where(
            ServiceAccountLink.sub == sub,
            ServiceAccountLink.status != LinkStatus.DISCONNECTED,
            ServiceAccountLink.organisation_id != actor.organisation_id,
        )
    )
    if clash is not None:
        record(
            session,
            actor,
            "ec.connect_rejected",
            outcome="denied",
            detail={"reason": "service account linked by another organisation"},
        )
        session.commit()
        raise Invalid("This service account is already linked to another organisation.")
    link = session.scalar(
        select(ServiceAccountLink).where(
            ServiceAccountLink.organisation_id == actor.organisation_id,
            ServiceAccountLink.domain == domain,
        )
    )
    reconnected = link is not None and link.status is not LinkStatus.DISCONNECTED
    if link is None:
        link = ServiceAccountLink(organisation_id=actor.organisation_id, domain=domain)
        session.add(link)
    link.provider = (info.provider_name or "")[:32] or "unknown"
    link.sub = sub
    link.account_email = email
    link.scope = (creds.scope or info.scope or "")[:500]
    link.delegated_scope = (info.delegated_scope or " ".join(DEFAULT_USER_SCOPE))[:500]
    link.status = LinkStatus.ACTIVE
    link.connected_by_id = actor.user_id
    link.linked_at = utcnow()
    session.flush()
    credentials.store_credentials(link, creds, cipher)
    revocations.cancel(session, sub)
    record(
        session,
        actor,
        "ec.reconnected" if reconnected else "ec.connected",
        target_type="service_account_link",
        target_id=link.id,
        target_label=domain,
        detail={"provider": link.provider, "scope": link.scope},
    )
    session.commit()
    return link


def _usable(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> tuple[Credentials, Callable[[Credentials], None]]:
    """The service account's credentials, refreshed under the shared per-link lock if due."""
    try:
        return credentials.usable_credentials(session, broker, cipher, link)
    except ReconnectNeeded:
        raise ServiceAccountTrouble(
            f"The service account for {link.domain} needs to be connected again "
            "(Connect the domain once more)."
        ) from None


def resources(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> tuple[Resource, ...]:
    """Rooms and resources the service account can see (read now, never stored)."""
    creds, persist = _usable(session, broker, cipher, link)
    try:
        return broker.resources(creds, on_refresh=persist)
    except broker_errors.NeedsReauth:
        credentials.mark_needs_attention(session, link, "resources refused")
        session.commit()
        raise ServiceAccountTrouble(
            f"The service account for {link.domain} needs to be connected again."
        ) from None
    except broker_errors.BrokerError as exc:
        raise credentials.broker_problem(exc) from None


_TENANT = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)$"
)
_APP_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def admin_consent_url(tenant: str, app_id: str) -> str:
    """Azure AD's tenant-wide admin-consent URL for the calendar service's application."""
    tenant, app_id = tenant.strip().lower(), app_id.strip().lower()
    if not _TENANT.match(tenant):
        raise Invalid(
            "Enter a tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com.",
            field="tenant",
        )
    if not _APP_ID.match(app_id):
        raise Invalid(
            "The application id is a GUID such as 00000000-0000-0000-0000-000000000000.",
            field="app_id",
        )
    return f"https://login.microsoftonline.com/{tenant}/adminconsent?client_id={app_id}"


# ---------------------------------------------------------------------------------------------
# Choosing mailboxes


@dataclass(frozen=True)
class Rejected:
    email: str
    reason: str


@dataclass(frozen=True)
class RequestReport:
    queued: int
    rejected: tuple[Rejected, ...] = ()


def parse_emails(text: str) -> list[str]:
    """Addresses from pasted text or a CSV file (in rows of several cells, the cells with an @)."""
    found: list[str] = []
    for row in csv.reader(io.StringIO(text or "")):
        cells = [c for c in row if c.strip()]
        if len(cells) > 1:
            cells = [c for c in cells if "@" in c]
        for cell in cells:
            for token in re.split(r"[\s;,]+", cell):
                token = token.strip().strip("<>\"'")
                if token and token.lower() not in {"email", "e-mail", "mail", "address"}:
                    found.append(token)
    return found


def request_mailboxes(
    session: Session,
    actor: Actor,
    link_id: int,
    *,
    emails: Sequence[str] = (),
    all_users: bool = False,
    callback_url: Callable[[int], str],
) -> RequestReport:
    """Queue link requests for valid mailboxes; list every other address with the reason."""
    _require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before linking mailboxes.")
    users = {
        u.email.lower(): u
        for u in session.scalars(
            select(User).where(
                User.organisation_id == link.organisation_id,
                User.active.is_(True),
                User.email.endswith("@" + link.domain, autoescape=True),
            )
        )
    }
    wanted = list(users) if all_users else list(emails)
    if not wanted:
        raise Invalid(
            "Choose at least one mailbox."
            if not all_users
            else f"Your organisation has no users on {link.domain}."
        )
    existing = {
        r.email: r
        for r in session.scalars(
            select(MailboxRequest).where(MailboxRequest.service_account_link_id == link.id)
        )
    }
    seen: set[str] = set()
    rejected: list[Rejected] = []
    accepted: list[tuple[str, User]] = []
    for raw in wanted:
        email = raw.strip().lower()
        if len(email) > 320 or not _EMAIL.match(email):
            rejected.append(Rejected(raw.strip()[:100], "not a valid email address"))
        elif email in seen:
            rejected.append(Rejected(email, "listed more than once"))
        elif email.rsplit("@", 1)[1] != link.domain:
            rejected.append(Rejected(email, f"not on {link.domain}"))
        elif email not in users:
            rejected.append(Rejected(email, "no such user in your organisation"))
        elif existing.get(email) and existing[email].status is MailboxStatus.LINKED:
            rejected.append(Rejected(email, "already linked"))
        elif existing.get(email) and existing[email].status in (
            MailboxStatus.QUEUED,
            MailboxStatus.PENDING,
        ):
            rejected.append(Rejected(email, "already requested; waiting for the answer"))
        else:
            accepted.append((email, users[email]))
        seen.add(email)
    now = utcnow()
    rows = []
    for email, user in accepted:
        row = existing.get(email)
        if row is None:
            row = MailboxRequest(
                service_account_link_id=link.id, organisation_id=link.organisation_id, email=email
            )
            session.add(row)
        _requeue(row, now)
        row.user_id = user.id
        row.requested_at = now
        rows.append(row)
    return _queued(
        session,
        actor,
        link,
        rows,
        rejected,
        "ec.mailboxes_requested",
        callback_url,
        all_users=all_users,
        reasons=dict(Counter(r.reason for r in rejected)),
    )


def _queued(
    session: Session,
    actor: Actor,
    link: ServiceAccountLink,
    rows: list[MailboxRequest],
    rejected: list[Rejected],
    action: str,
    callback_url: Callable[[int], str],
    **detail,
) -> RequestReport:
    """Give new requests their callback URL (it carries the row id), audit, commit, report."""
    session.flush()
    for row in rows:
        if row.callback_url is None:
            row.callback_url = callback_url(row.id)
    record(
        session,
        actor,
        action,
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        outcome="success" if not rejected else "partial",
        detail={"queued": len(rows), "rejected": len(rejected), **detail},
    )
    session.commit()
    return RequestReport(len(rows), tuple(rejected))


# ---------------------------------------------------------------------------------------------
# Rooms


@dataclass(frozen=True)
class RoomEntry:
    """A room of the domain as the admin sees it: from the directory, with its request."""

    email: str
    name: str | None
    request: MailboxRequest | None
    #: False for a room linked earlier that the directory no longer lists.
    listed: bool = True


def room_requests(session: Session, link_id: int) -> list[MailboxRequest]:
    return list(
        session.scalars(
            select(MailboxRequest)
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.kind == MailboxKind.ROOM,
            )
            .order_by(MailboxRequest.email)
        )
    )


def room_directory(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, link: ServiceAccountLink
) -> list[RoomEntry]:
    """The rooms the service account lists (read now), each with its link request; rooms
    linked earlier and no longer listed come last, so they can still be unlinked."""
    listed = resources(session, broker, cipher, link)
    rows = {r.email: r for r in room_requests(session, link.id)}
    out = [
        RoomEntry(r.email.lower(), r.name, rows.pop(r.email.lower(), None))
        for r in sorted(listed, key=lambda r: ((r.name or r.email).lower(), r.email))
    ]
    out += [
        RoomEntry(row.email, row.display_name, row, listed=False)
        for row in rows.values()
        if row.status is not MailboxStatus.UNLINKED
    ]
    return out


def request_rooms(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    link_id: int,
    emails: Sequence[str],
    *,
    callback_url: Callable[[int], str],
) -> RequestReport:
    """Queue link requests for rooms the service account lists (free/busy only), so that
    interviews can check the room's availability."""
    _require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before linking rooms.")
    if not emails:
        raise Invalid("Choose at least one room.", field="rooms")
    listed = {r.email.lower(): r for r in resources(session, broker, cipher, link)}
    existing = {r.email: r for r in room_requests(session, link.id)}
    taken = set(
        session.scalars(
            select(MailboxRequest.email).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.kind == MailboxKind.MAILBOX,
            )
        )
    )
    seen: set[str] = set()
    rejected: list[Rejected] = []
    accepted: list[str] = []
    for raw in emails:
        email = str(raw).strip().lower()
        row = existing.get(email)
        if email in seen:
            rejected.append(Rejected(email[:100], "listed more than once"))
        elif email not in listed:
            rejected.append(Rejected(email[:100], f"not a room {link.domain} lists"))
        elif email in taken:
            rejected.append(Rejected(email, "requested as a person's mailbox"))
        elif row is not None and row.status is MailboxStatus.LINKED:
            rejected.append(Rejected(email, "already linked"))
        elif row is not None and row.status in (MailboxStatus.QUEUED, MailboxStatus.PENDING):
            rejected.append(Rejected(email, "already requested; waiting for the answer"))
        else:
            accepted.append(email)
        seen.add(email)
    now = utcnow()
    rows = []
    for email in accepted:
        row = existing.get(email)
        if row is None:
            row = MailboxRequest(
                service_account_link_id=link.id,
                kind=MailboxKind.ROOM,
                organisation_id=link.organisation_id,
                email=email,
            )
            session.add(row)
        _requeue(row, now)
        row.display_name = (listed[email].name or "")[:200] or None
        row.resource_sub = None
        row.requested_at = now
        rows.append(row)
    return _queued(session, actor, link, rows, rejected, "ec.rooms_requested", callback_url)


def _revoke_room(
    session: Session, broker: CalendarBroker | None, row: MailboxRequest
) -> tuple[bool, bool]:
    """Revoke a linked room at the aggregator and forget its sub; (revoked, had a sub).

    No token of a room is kept, so it goes by sub, which is unconfirmed for rooms: when that
    fails it joins the revocation queue (an outage is tried again; a refusal needs the admin)."""
    sub, row.resource_sub = row.resource_sub, None
    if not sub:
        return False, False
    if broker is not None:
        try:
            broker.revoke_sub(sub)
            return True, True
        except broker_errors.BrokerError as exc:
            log.warning("revoking room request %s failed: %s", row.id, type(exc).__name__)
    revocations.queue(session, [sub], organisation_id=row.organisation_id, reason="ec.unlinked")
    return False, True


def needing_attention(session: Session, rows: Iterable[MailboxRequest]) -> set[int]:
    """Ids of the linked mailbox requests whose calendar link needs attention (for the table)."""
    ids = {
        r.profile_link_id: r.id
        for r in rows
        if r.status is MailboxStatus.LINKED and r.profile_link_id
    }
    found: set[int] = set()
    for chunk in in_batches(list(ids)):
        found.update(
            ids[i]
            for i in session.scalars(
                select(ProfileLink.id).where(
                    ProfileLink.id.in_(chunk), ProfileLink.status == LinkStatus.NEEDS_ATTENTION
                )
            )
        )
    return found


def relink_mailbox(session: Session, actor: Actor, request_id: int) -> MailboxRequest:
    """The admin's way back for a linked mailbox that needs attention: ask the aggregator for
    it again through the service account (queued; the callback makes the link active again)."""
    _require_admin(actor)
    row = session.get(MailboxRequest, request_id)
    if (
        row is None
        or row.organisation_id != actor.organisation_id
        or row.kind is not MailboxKind.MAILBOX
    ):
        raise NotFound("No such mailbox.")
    link = row.service_account
    profile = session.get(ProfileLink, row.profile_link_id) if row.profile_link_id else None
    if (
        row.status is not MailboxStatus.LINKED
        or profile is None
        or profile.status is not LinkStatus.NEEDS_ATTENTION
    ):
        raise Invalid(f"{row.email} does not need relinking.")
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before relinking its mailboxes.")
    now = utcnow()
    _requeue(row, now)
    row.requested_at = now
    record(
        session,
        actor,
        "ec.relink_requested",
        target_type="mailbox_request",
        target_id=row.id,
        target_label=row.email,
        detail={"attention": profile.attention.value if profile.attention else None},
    )
    session.commit()
    return row


def _requeue(row: MailboxRequest, now) -> None:
    row.status = MailboxStatus.QUEUED
    row.claim = None
    row.state_hash = None
    row.state_used_at = None
    row.error_key = row.error_text = None
    row.sent_at = row.completed_at = None
    row.attempts = 0
    row.updated_at = now


def retry_failed(session: Session, actor: Actor, link_id: int) -> int:
    """Queue every failed mailbox of the domain again; returns how many."""
    _require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is not LinkStatus.ACTIVE:
        raise Invalid(f"Connect {link.domain} again before retrying.")
    rows = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.status == MailboxStatus.FAILED,
            )
        )
    )
    now = utcnow()
    for row in rows:
        _requeue(row, now)
    record(
        session,
        actor,
        "ec.retry",
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        detail={"mailboxes": len(rows)},
    )
    session.commit()
    return len(rows)


# ---------------------------------------------------------------------------------------------
# Sending (background job)


@dataclass
class SendReport:
    batches: int = 0
    sent: int = 0
    failed: int = 0
    #: Seconds to wait before sending the rest (the aggregator was busy); None when done.
    retry_in: float | None = None
    stopped: str | None = None


def _release_stale_claims(session: Session, link_id: int, lease: timedelta) -> int:
    """Put rows claimed by a worker that died before the aggregator accepted them back in line."""
    result = session.execute(
        update(MailboxRequest)
        .where(
            MailboxRequest.service_account_link_id == link_id,
            MailboxRequest.status == MailboxStatus.PENDING,
            MailboxRequest.claim.is_not(None),
            MailboxRequest.sent_at.is_(None),
            MailboxRequest.updated_at <= utcnow() - lease,
        )
        .values(status=MailboxStatus.QUEUED, claim=None, state_hash=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount or 0


def _claim_batch(session: Session, link_id: int, size: int) -> list[MailboxRequest]:
    claim = secrets.token_hex(16)
    ids = list(
        session.scalars(
            select(MailboxRequest.id)
            .where(
                MailboxRequest.service_account_link_id == link_id,
                MailboxRequest.status == MailboxStatus.QUEUED,
            )
            .order_by(MailboxRequest.id)
            .limit(size)
        )
    )
    if not ids:
        return []
    # The status condition is re-checked per row, so two workers never claim the same row.
    session.execute(
        update(MailboxRequest)
        .where(MailboxRequest.id.in_(ids), MailboxRequest.status == MailboxStatus.QUEUED)
        .values(status=MailboxStatus.PENDING, claim=claim, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return list(
        session.scalars(
            select(MailboxRequest)
            .where(MailboxRequest.claim == claim)
            .order_by(MailboxRequest.id)
            .execution_options(populate_existing=True)
        )
    )


def _unclaim(session: Session, rows: Iterable[MailboxRequest], *, give_up_key: str | None) -> int:
    """Back to the queue (nothing reached the aggregator); after MAX_ATTEMPTS mark failed."""
    failed = 0
    now = utcnow()
    for row in rows:
        row.claim = None
        row.state_hash = None
        if give_up_key and row.attempts >= MAX_ATTEMPTS:
            row.status = MailboxStatus.FAILED
            row.error_key = give_up_key
            row.error_text = ERROR_HINTS.get(give_up_key)
            row.completed_at = now
            failed += 1
        else:
            row.status = MailboxStatus.QUEUED
    return failed


def send_batches(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    link_id: int,
    *,
    lease: timedelta | None = None,
    max_batches: int | None = None,
    before_send: Callable[[int], None] | None = None,
) -> SendReport:
    """Send every queued request of the domain in batches; safe to run twice or concurrently.

    ``before_send(batch_number)`` runs after a batch is claimed and its states committed, just
    before the request goes out (tests use it to simulate a crash at that point).
    """
    report = SendReport()
    link = session.get(ServiceAccountLink, link_id)
    if link is None or link.status is not LinkStatus.ACTIVE:
        report.stopped = "service account not active"
        return report
    _release_stale_claims(session, link_id, CLAIM_LEASE if lease is None else lease)
    while max_batches is None or report.batches < max_batches:
        rows = _claim_batch(session, link_id, BATCH_SIZE)
        if not rows:
            break
        states = {}
        for row in rows:
            states[row.id] = security.new_token()
            row.state_hash = security.token_hash(states[row.id])
            row.state_used_at = None
            row.attempts = (row.attempts or 0) + 1
        session.commit()  # the hashes exist before the aggregator can call back
        if before_send is not None:
            before_send(report.batches)
        batch = [
            ServiceAccountAuthorizationRequest(
                email=r.email,
                callback_url=r.callback_url,
                state=states[r.id],
                scope=ROOM_SCOPE if r.kind is MailboxKind.ROOM else MAILBOX_SCOPE,
            )
            for r in rows
        ]
        try:
            creds, persist = _usable(session, broker, cipher, link)
            broker.authorize_service_account_users(creds, batch, on_refresh=persist)
        except ServiceAccountTrouble:
            _unclaim(session, rows, give_up_key=None)
            session.commit()
            report.stopped = "service account needs attention"
            return report
        except broker_errors.NeedsReauth:
            _unclaim(session, rows, give_up_key=None)
            credentials.mark_needs_attention(session, link, "service-account request refused")
            session.commit()
            report.stopped = "service account needs attention"
            return report
        except (broker_errors.RateLimited, broker_errors.Unavailable) as exc:
            report.failed += _unclaim(session, rows, give_up_key="aggregator_unavailable")
            session.commit()
            wait = getattr(exc, "retry_after", None)
            report.retry_in = max(1.0, float(wait)) if wait else 2.0 ** min(report.batches + 1, 5)
            log.info(
                "enterprise batch for link %s deferred %.1f s: %s",
                link_id,
                report.retry_in,
                type(exc).__name__,
            )
            return report
        except broker_errors.BrokerError as exc:
            now = utcnow()
            for row in rows:
                row.status, row.claim = MailboxStatus.FAILED, None
                row.error_key, row.error_text = "request_refused", ERROR_HINTS["request_refused"]
                row.completed_at = now
            report.failed += len(rows)
            record(
                session,
                None,
                "ec.batch_refused",
                organisation_id=link.organisation_id,
                outcome="failure",
                target_type="service_account_link",
                target_id=link.id,
                target_label=link.domain,
                detail={"mailboxes": len(rows), "error": type(exc).__name__},
            )
            session.commit()
            continue
        now = utcnow()
        session.execute(
            update(MailboxRequest)
            .where(
                MailboxRequest.id.in_([r.id for r in rows]), MailboxRequest.claim == rows[0].claim
            )
            .values(sent_at=now, claim=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        report.batches += 1
        report.sent += len(rows)
    return report


def stalled_links(session: Session) -> list[int]:
    """Active domains with queued requests or abandoned claims (for the periodic resume job)."""
    return list(
        session.scalars(
            select(ServiceAccountLink.id).where(
                ServiceAccountLink.status == LinkStatus.ACTIVE,
                ServiceAccountLink.id.in_(
                    select(MailboxRequest.service_account_link_id).where(
                        or_(
                            MailboxRequest.status == MailboxStatus.QUEUED,
                            (MailboxRequest.status == MailboxStatus.PENDING)
                            & MailboxRequest.claim.is_not(None),
                        )
                    )
                ),
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# The aggregator's callback


@dataclass(frozen=True)
class CallbackOutcome:
    #: linked, failed, ignored, replayed, forged, unknown or retry (aggregator should resend)
    result: str
    profile_link_id: int | None = None


def handle_callback(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    request_id: int,
    callback: SACallback,
    *,
    signed: bool = True,
) -> CallbackOutcome:
    """Apply a callback for one mailbox request (idempotent).

    The request comes from the sealed reference in the callback URL; the body must carry that
    request's unused one-time state. ``signed`` says whether a (verified) signature came with
    it: no source confirms this callback is signed, so an unsigned one is accepted on the
    reference and state alone, audited (``callback.unsigned``) and counted on the domain."""
    row = session.get(MailboxRequest, request_id)
    if row is None:
        return CallbackOutcome("unknown")
    label = {
        "organisation_id": row.organisation_id,
        "target_type": "mailbox_request",
        "target_id": row.id,
        "target_label": row.email,
    }
    digest = security.token_hash(callback.state) if callback.state else None
    if not digest or not row.state_hash or not security.same_token(row.state_hash, digest):
        if signed:  # an unsigned forgery is audited by the caller, once a minute per address
            record(
                session,
                None,
                "callback.forged",
                outcome="denied",
                detail={"reason": "state does not match the request"},
                **label,
            )
            session.commit()
        return CallbackOutcome("forged")
    used = session.execute(
        update(MailboxRequest)
        .where(
            MailboxRequest.id == row.id,
            MailboxRequest.state_hash == digest,
            MailboxRequest.state_used_at.is_(None),
        )
        .values(state_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()  # used before any code is redeemed: a replay can never redeem twice
    if not used.rowcount:
        record(session, None, "callback.replayed", outcome="denied", **label)
        session.commit()
        return CallbackOutcome("replayed")
    if not signed:
        session.execute(
            update(ServiceAccountLink)
            .where(ServiceAccountLink.id == row.service_account_link_id)
            .values(unsigned_callbacks=ServiceAccountLink.unsigned_callbacks + 1)
            .execution_options(synchronize_session=False)
        )
        record(
            session,
            None,
            "callback.unsigned",
            detail={"accepted_on": "sealed reference and one-time state"},
            **label,
        )
        session.commit()
    session.refresh(row)
    link = row.service_account
    if row.status is not MailboxStatus.PENDING or link.status is LinkStatus.DISCONNECTED:
        return CallbackOutcome("ignored")  # unlinked or disconnected meanwhile: keep nothing
    if not callback.success:
        return _failed(
            session,
            row,
            callback.error_key or callback.error or "failed",
            callback.error_description,
            label,
        )
    try:
        creds = broker.exchange_code(callback.code or "", row.callback_url or "")
    except (broker_errors.RateLimited, broker_errors.Unavailable):
        # Give the state back: the aggregator resends the callback and we try again then.
        session.execute(
            update(MailboxRequest)
            .where(MailboxRequest.id == row.id)
            .values(state_used_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return CallbackOutcome("retry")
    except broker_errors.BrokerError:
        return _failed(session, row, "code_exchange_failed", None, label)
    if row.kind is MailboxKind.ROOM:
        return _room_linked(session, row, creds, label)
    profile_link = _enterprise_link(session, broker, cipher, row, link, creds)
    if profile_link is None:
        try:
            broker.revoke(creds.refresh_token)
        except broker_errors.BrokerError:
            pass
        return _failed(session, row, "linked_to_another_user", None, label)
    row.status = MailboxStatus.LINKED
    row.profile_link_id = profile_link.id
    row.error_key = row.error_text = None
    row.completed_at = utcnow()
    record(session, None, "ec.mailbox_linked", detail={"provider": profile_link.provider}, **label)
    session.commit()
    return CallbackOutcome("linked", profile_link.id)


def _room_linked(
    session: Session, row: MailboxRequest, creds: Credentials, label: dict
) -> CallbackOutcome:
    """Keep the room's sub for availability; its tokens are not kept (nothing reads the room's
    calendar with them: availability uses the application's key)."""
    sub = creds.sub or creds.account_id
    if not sub:
        return _failed(session, row, "no_room_id", None, label)
    row.resource_sub = sub[:64]
    revocations.cancel(session, row.resource_sub)
    row.status = MailboxStatus.LINKED
    row.error_key = row.error_text = None
    row.completed_at = utcnow()
    record(session, None, "ec.room_linked", **label)
    session.commit()
    return CallbackOutcome("linked")


def _failed(
    session: Session, row: MailboxRequest, key: str, text: str | None, label: dict
) -> CallbackOutcome:
    row.status = MailboxStatus.FAILED
    row.error_key = key[:64]
    row.error_text = (text or ERROR_HINTS.get(key) or "")[:500] or None
    row.completed_at = utcnow()
    record(
        session,
        None,
        "ec.mailbox_failed",
        outcome="failure",
        detail={"error_key": key[:64]},
        **label,
    )
    session.commit()
    return CallbackOutcome("failed")


def _enterprise_link(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    row: MailboxRequest,
    sa: ServiceAccountLink,
    creds: Credentials,
) -> ProfileLink | None:
    """Create or update the user's ProfileLink(mode=enterprise); None if the account is taken."""
    sub = creds.sub or creds.account_id
    if not sub or row.user_id is None:
        return None
    link = session.scalar(select(ProfileLink).where(ProfileLink.sub == sub))
    if link is not None and link.user_id != row.user_id:
        return None
    current = connect.link_of(session, row.user_id)
    if (
        link is None
        and current is not None
        and current.mode is LinkMode.BUSINESS
        and current.status is not LinkStatus.DISCONNECTED
    ):
        # The organisation's link supersedes the person's own one.
        if current.has_tokens:
            credentials.revoke_at_aggregator(broker, cipher, current, whole_account=True)
        credentials.forget_tokens(current)
        current.status = LinkStatus.DISCONNECTED
        record(
            session,
            None,
            "calendar.superseded",
            organisation_id=row.organisation_id,
            target_type="profile_link",
            target_id=current.id,
            target_label=current.account_email,
            detail={"by": "enterprise connect"},
        )
    if link is None and current is not None and current.mode is LinkMode.ENTERPRISE:
        link = current
    if link is None:
        link = ProfileLink(
            organisation_id=row.organisation_id,
            user_id=row.user_id,
            mode=LinkMode.ENTERPRISE,
            sub=sub,
        )
        session.add(link)
    lp = creds.linking_profile
    if link.sub != sub:
        link.target_calendar_id = None
        link.conflict_calendar_ids = None
    link.mode = LinkMode.ENTERPRISE
    link.sub = sub
    link.account_id = creds.account_id or sub
    link.profile_id = lp.profile_id if lp else link.profile_id
    link.provider = connect.provider_key(lp) or sa.provider
    link.account_email = row.email
    link.status, link.attention = LinkStatus.ACTIVE, None
    link.linked_at = utcnow()
    session.flush()
    credentials.store_credentials(link, creds, cipher)
    revocations.cancel(session, sub)
    return link


def choose_primary_calendar(
    session: Session, broker: CalendarBroker, cipher: TokenCipher, profile_link_id: int
) -> str | None:
    """Point a freshly linked mailbox's interviews at its primary calendar (background job)."""
    link = session.get(ProfileLink, profile_link_id)
    if link is None or link.status is not LinkStatus.ACTIVE or link.target_calendar_id:
        return link.target_calendar_id if link else None
    seen = calendars.calendars_of(session, broker, cipher, link)
    target = credentials.default_calendar(seen, link.profile_id)
    if target:
        link.target_calendar_id = target
        link.conflict_calendar_ids = [target]
        session.commit()
    return target


# ---------------------------------------------------------------------------------------------
# Unlinking, disconnecting, resetting


def _revoke_profile_link(
    broker: CalendarBroker | None, cipher: TokenCipher, link: ProfileLink | None
) -> tuple[bool, bool]:
    """Revoke at the aggregator and forget tokens; (revoked, had tokens)."""
    if link is None or link.status is LinkStatus.DISCONNECTED:
        return False, False
    had = link.has_tokens
    revoked = bool(
        broker is not None
        and had
        and credentials.revoke_at_aggregator(broker, cipher, link, whole_account=True)
    )
    credentials.forget_tokens(link)
    link.status = LinkStatus.DISCONNECTED
    return revoked, had


def unlink_mailbox(
    session: Session,
    broker: CalendarBroker | None,
    cipher: TokenCipher,
    actor: Actor,
    request_id: int,
) -> MailboxRequest:
    """Unlink one mailbox (or cancel its pending request)."""
    _require_admin(actor)
    row = session.get(MailboxRequest, request_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound("No such mailbox.")
    if row.status is MailboxStatus.UNLINKED:
        return row
    before = row.status
    if row.kind is MailboxKind.ROOM:
        revoked, had = _revoke_room(session, broker, row)
    else:
        revoked, had = _revoke_profile_link(
            broker,
            cipher,
            session.get(ProfileLink, row.profile_link_id) if row.profile_link_id else None,
        )
    row.status = MailboxStatus.UNLINKED
    row.claim = None
    row.completed_at = utcnow()
    record(
        session,
        actor,
        "ec.unlinked",
        target_type="mailbox_request",
        target_id=row.id,
        target_label=row.email,
        outcome="success" if revoked or not had else "partial",
        detail={"was": before.value, "revoked_at_aggregator": revoked, "tokens_deleted": had},
    )
    session.commit()
    return row


@dataclass(frozen=True)
class DisconnectReport:
    domain: str
    mailboxes: int
    tokens_deleted: int
    #: Authorizations queued for revocation at the aggregator (mailboxes, rooms, the service
    #: account); the ``revocations`` job works them off after the request.
    revocations: int


def _disconnect(
    session: Session, cipher: TokenCipher, link: ServiceAccountLink, *, reason: str
) -> DisconnectReport:
    """Unlink every mailbox and room of the domain and delete every token, locally and at once;
    queue their authorizations for revocation (no aggregator call here, whatever the size)."""
    rows = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.service_account_link_id == link.id,
                MailboxRequest.status != MailboxStatus.UNLINKED,
            )
        )
    )
    profile_ids = [
        r.profile_link_id for r in rows if r.kind is MailboxKind.MAILBOX and r.profile_link_id
    ]
    links: list[ProfileLink] = []
    for chunk in in_batches(profile_ids):
        links.extend(
            session.scalars(
                select(ProfileLink).where(
                    ProfileLink.id.in_(chunk), ProfileLink.status != LinkStatus.DISCONNECTED
                )
            )
        )
    rooms = [r.resource_sub for r in rows if r.resource_sub]
    now = utcnow()
    for row in rows:
        row.status = MailboxStatus.UNLINKED
        row.claim = None
        row.resource_sub = None
        row.completed_at = now
    # The service account is revoked with its refresh token (the documented way; by its ser_…
    # sub is unconfirmed): the token moves from the link into the revocation queue.
    tokens = {}
    if link.has_tokens:
        try:
            tokens[link.sub] = credentials.load_credentials(link, cipher).refresh_token
        except (ReconnectNeeded, DecryptionFailed):
            pass  # then by sub, as for the rest
    revoke, deleted = credentials.disconnect_here([*links, link])
    queued = revocations.queue(
        session,
        [*rooms, *revoke],
        organisation_id=link.organisation_id,
        reason=reason,
        tokens=tokens,
        cipher=cipher,
    )
    return DisconnectReport(link.domain, len(rows), deleted, queued)


def disconnect_domain(
    session: Session, cipher: TokenCipher, actor: Actor, link_id: int
) -> DisconnectReport:
    """Unlink every mailbox and room of the domain and the service account: tokens are deleted
    now, and their authorizations queued for revocation at the aggregator (run the
    ``revocations`` job after this)."""
    _require_admin(actor)
    link = domain_link(session, actor, link_id)
    if link.status is LinkStatus.DISCONNECTED:
        raise NotFound("That domain is not connected.")
    report = _disconnect(session, cipher, link, reason="ec.disconnected")
    record(
        session,
        actor,
        "ec.disconnected",
        target_type="service_account_link",
        target_id=link.id,
        target_label=link.domain,
        detail={
            "mailboxes": report.mailboxes,
            "tokens_deleted": report.tokens_deleted,
            "revocations_queued": report.revocations,
        },
    )
    session.commit()
    return report


@dataclass(frozen=True)
class ResetReport:
    domains: int
    mailboxes: int
    tokens_deleted: int
    reports: tuple[DisconnectReport, ...] = field(default=())


def reset(session: Session, cipher: TokenCipher, actor: Actor) -> ResetReport:
    """Disconnect every domain and forget the whole Enterprise Connect configuration (tokens
    deleted now, authorizations queued for revocation)."""
    _require_admin(actor)
    links = list(
        session.scalars(
            select(ServiceAccountLink).where(
                ServiceAccountLink.organisation_id == actor.organisation_id
            )
        )
    )
    reports = tuple(
        _disconnect(session, cipher, link, reason="ec.reset")
        for link in links
        if link.status is not LinkStatus.DISCONNECTED or link.has_tokens
    )
    session.flush()
    session.execute(
        delete(MailboxRequest).where(MailboxRequest.organisation_id == actor.organisation_id)
    )
    session.execute(
        delete(ServiceAccountLink).where(
            ServiceAccountLink.organisation_id == actor.organisation_id
        )
    )
    result = ResetReport(
        len(reports),
        sum(r.mailboxes for r in reports),
        sum(r.tokens_deleted for r in reports),
        reports,
    )
    record(
        session,
        actor,
        "ec.reset",
        target_type="organisation",
        target_id=actor.organisation_id,
        detail={
            "domains": result.domains,
            "mailboxes": result.mailboxes,
            "tokens_deleted": result.tokens_deleted,
            "revocations_queued": sum(r.revocations for r in reports),
        },
    )
    session.commit()
    return result
