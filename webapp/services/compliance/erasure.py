"""Erasure: proposed by a compliance reviewer, confirmed by another role, carried out once.

The person's calendar grants are revoked (or queued for revocation), their future interviews
cancelled through the scheduling cancel and delete path or kept, rows that point at them deleted
or detached, and the audit trail pseudonymised; the receipt records the counts. The
confirmation page shows ``plan_erasure``: the same steps and row changes run dry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from broker.types import ManagedEvent
from models import (
    ErasureRequest,
    LinkStatus,
    MailboxRequest,
    ProfileLink,
    Role,
    User,
    utcnow,
)
from webapp.services import Actor, JobQueue, revocations, rowcount
from webapp.services.audit import record
from webapp.services.compliance import erasure_rows
from webapp.services.compliance.scope import holds, org_user, require
from webapp.services.errors import Forbidden, Invalid, NotFound, ServiceError, WriteFailed

if TYPE_CHECKING:
    from webapp.services.scheduling.notices import Notify

#: Steps other features add (e.g. cancelling future interviews); each gets
#: (session, broker, cipher, user, choice, dry_run=...) and returns counts for the receipt;
#: when carried out (not a dry run) also ``actor``, ``jobs`` and ``notify`` (or None), to tell
#: whom a step's changes concern.
#: With ``dry_run`` it changes nothing and returns the counts it would (the confirmation
#: page's plan), under the same keys.
ErasureStep = Callable[..., dict[str, int]]
ERASURE_STEPS: list[ErasureStep] = []


def erasure_step(fn: ErasureStep) -> ErasureStep:
    ERASURE_STEPS.append(fn)
    return fn


def pending_erasures(session: Session, actor: Actor) -> list[ErasureRequest]:
    require(actor, Role.COMPLIANCE, Role.ADMIN)
    return list(
        session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.organisation_id == actor.organisation_id,
                ErasureRequest.status == "proposed",
            )
            .order_by(ErasureRequest.id)
        )
    )


def erasure_history(session: Session, actor: Actor) -> list[ErasureRequest]:
    require(actor, Role.COMPLIANCE, Role.ADMIN)
    return list(
        session.scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.organisation_id == actor.organisation_id,
                ErasureRequest.status != "proposed",
            )
            .order_by(ErasureRequest.id.desc())
            .limit(100)
        )
    )


def propose_erasure(
    session: Session, actor: Actor, user_id: int, future_interviews: str
) -> ErasureRequest:
    """A compliance reviewer proposes erasing a person; an IT admin (or the configured role)
    confirms."""
    require(actor, Role.COMPLIANCE)
    user = org_user(session, actor, user_id)
    if future_interviews not in ("cancel", "keep"):
        raise Invalid(
            "Choose whether to cancel or keep their future interviews.", field="future_interviews"
        )
    if user.id == actor.user_id:
        raise Invalid("You cannot propose erasing your own account.")
    if session.scalar(
        select(ErasureRequest.id).where(
            ErasureRequest.person_id == user.id, ErasureRequest.status == "proposed"
        )
    ):
        raise Invalid("An erasure of this person is already waiting for confirmation.")
    request = ErasureRequest(
        organisation_id=actor.organisation_id,
        person_id=user.id,
        status="proposed",
        future_interviews=future_interviews,
        proposed_by_id=actor.user_id,
    )
    session.add(request)
    session.flush()
    record(
        session,
        actor,
        "erasure.proposed",
        target_type="user",
        target_id=user.id,
        detail={"request": request.id, "future_interviews": future_interviews},
    )
    session.commit()
    return request


def decide_erasure(
    session: Session,
    broker,
    cipher,
    actor: Actor,
    request_id: int,
    *,
    approve: bool,
    confirm_role: Role,
    jobs: JobQueue,
    typed_confirmation: str = "",
    notify: Notify | None = None,
) -> ErasureRequest:
    """Confirm (and carry out) or reject a proposed erasure. Confirming needs the person's
    email address typed again (``typed_confirmation``); anything else refuses and changes
    nothing. Grants the aggregator did not revoke at once are revoked by the
    ``revocations.run`` job queued here. The completed request gets its receipt's
    unguessable reference. With ``notify``, the candidate of each interview the erasure
    cancels gets the same cancel notice as for any other cancellation."""
    request = org_request(session, actor, request_id)
    if actor.role is not confirm_role:
        raise Forbidden("Your role cannot confirm erasures.")
    # One decision at a time (a double click, two admins): a second waits for the first's row
    # lock, then finds the request decided. The completion below is conditional as well, for
    # the window the cancel step's commits open.
    session.refresh(request, with_for_update=True)
    if request.status != "proposed":
        raise Invalid("This erasure request has already been decided.")
    if confirm_role is not Role.COMPLIANCE and request.proposed_by_id == actor.user_id:
        raise Forbidden("Another person must confirm an erasure you proposed.")
    if request.person_id == actor.user_id:
        raise Invalid("You cannot erase your own account.")
    if not approve:
        request.decided_by_id = actor.user_id
        request.decided_at = utcnow()
        request.status = "rejected"
        record(
            session,
            actor,
            "erasure.rejected",
            target_type="user",
            target_id=request.person_id,
            detail={"request": request.id},
        )
        session.commit()
        return request
    user = session.get(User, request.person_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("The person no longer exists.")
    if (
        user.role is Role.ADMIN
        and session.scalar(
            select(func.count(User.id)).where(
                User.organisation_id == user.organisation_id,
                User.role == Role.ADMIN,
                User.active.is_(True),
                User.id != user.id,
            )
        )
        == 0
    ):
        raise Invalid("The organisation's last IT admin cannot be erased.")
    if typed_confirmation.strip().lower() != user.email.lower():
        raise Invalid(
            "To confirm, type the person's email address exactly as shown. Nothing was erased.",
            field="confirm_email",
        )
    request_id, person_id = request.id, request.person_id
    receipt = _erase(
        session,
        broker,
        cipher,
        user,
        request.future_interviews,
        actor=actor,
        jobs=jobs,
        notify=notify,
    )
    # Decided only now: cancelling interviews commits on the way, and a request that failed
    # half-way must stay open to be confirmed again. Only one confirmation completes it.
    completed = session.execute(
        update(ErasureRequest)
        .where(ErasureRequest.id == request_id, ErasureRequest.status == "proposed")
        .values(
            status="completed",
            decided_by_id=actor.user_id,
            decided_at=utcnow(),
            receipt=receipt,
            receipt_ref=secrets.token_urlsafe(24),
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(completed) != 1:
        session.rollback()
        raise Invalid("This erasure request has already been decided.")
    record(
        session,
        actor,
        "subject.erased",
        target_type="user",
        target_id=person_id,
        target_label=f"erased user #{person_id}",
        detail={"request": request_id, **receipt},
    )
    session.commit()
    if receipt.get("revocations_queued"):
        jobs.enqueue("revocations.run")
    session.refresh(request)
    return request


def _person_links(session: Session, user: User) -> list[ProfileLink]:
    """The person's calendar links: theirs by reference, and any other link of their
    organisation to a calendar account at their address. Never another organisation's: an
    address is only ever this person's inside their own organisation."""
    return list(
        session.scalars(
            select(ProfileLink)
            .where(
                ProfileLink.organisation_id == user.organisation_id,
                or_(ProfileLink.user_id == user.id, holds(ProfileLink.account_email, user.email)),
            )
            .order_by(ProfileLink.id)
        )
    )


def _count(receipt: dict[str, int], key: str, value: int | None) -> None:
    if value:
        receipt[key] = receipt.get(key, 0) + value


def grants_of(session: Session, user: User) -> tuple[list[ProfileLink], list[MailboxRequest]]:
    """The calendar links whose grants an erasure revokes, and the organisation's mailbox and
    room requests at the person's address (their resources' grants go too)."""
    requests_ = list(
        session.scalars(
            select(MailboxRequest).where(
                MailboxRequest.organisation_id == user.organisation_id,
                holds(MailboxRequest.email, user.email),
            )
        )
    )
    return _person_links(session, user), requests_


def revokes(link: ProfileLink) -> bool:
    """A delegated calendar holds no grant of its own (its owner's is not the person's)."""
    return not link.is_delegated and (link.has_tokens or link.status is not LinkStatus.DISCONNECTED)


def _erase(
    session: Session,
    broker,
    cipher,
    user: User,
    choice: str,
    *,
    actor: Actor | None = None,
    jobs: JobQueue | None = None,
    notify: Notify | None = None,
) -> dict[str, int]:
    from webapp.services import credentials

    organisation_id = user.organisation_id
    receipt: dict[str, int] = {"links_revoked": 0, "tokens_deleted": 0, "revocations_queued": 0}
    # Feature steps first: cancelling interviews needs the person's calendar access.
    for step in ERASURE_STEPS:
        done = step(
            session,
            broker,
            cipher,
            user,
            choice,
            dry_run=False,
            actor=actor,
            jobs=jobs,
            notify=notify,
        )
        for key, value in done.items():
            _count(receipt, key, value)
    # Every grant of a link that goes is revoked: at once where the aggregator answers, else
    # queued for the revocations job (no grant outlives the erasure unnoticed).
    links, requests_ = grants_of(session, user)
    to_revoke: list[str] = []
    for link in links:
        if link.is_delegated:  # read through its owner's grant, which is not the person's
            link.status = LinkStatus.DISCONNECTED
            continue
        if link.has_tokens:
            if broker is not None and credentials.revoke_at_aggregator(
                broker, cipher, link, whole_account=True
            ):
                receipt["links_revoked"] += 1
            else:
                to_revoke.append(link.sub)
            receipt["tokens_deleted"] += 1
        elif link.status is not LinkStatus.DISCONNECTED:
            to_revoke.append(link.sub)
        credentials.forget_tokens(link)
        link.status = LinkStatus.DISCONNECTED
    to_revoke += [r.resource_sub for r in requests_ if r.resource_sub]
    receipt["revocations_queued"] = revocations.queue(
        session, to_revoke, organisation_id=organisation_id, reason="subject.erased"
    )
    session.flush()
    receipt[erasure_rows.RELABELLED] = 0
    others = [link.id for link in links if link.user_id != user.id]
    for key, value in erasure_rows.apply(session, erasure_rows.row_changes(user, others)).items():
        _count(receipt, key, value)
    session.expunge(user)
    return receipt


def org_request(session: Session, actor: Actor, request_id: int) -> ErasureRequest:
    request = session.get(ErasureRequest, request_id)
    if request is None or request.organisation_id != actor.organisation_id:
        raise NotFound("There is no such erasure request in your organisation.")
    return request


def _ends_after(end, moment) -> bool:
    """An event end (a time, or an all-day end date) after ``moment``."""
    if isinstance(end, datetime):
        return end > moment
    return datetime.combine(end, time(0), UTC) > moment


@erasure_step
def _future_interviews(
    session: Session,
    broker,
    cipher,
    user: User,
    choice: str,
    *,
    dry_run: bool,
    actor: Actor | None = None,
    jobs: JobQueue | None = None,
    notify: Notify | None = None,
) -> dict[str, int]:
    """Cancel (delete from every calendar) or keep the person's future hosted interviews.

    Interview times are not stored here, so "future" is read from the aggregator: the managed
    events of the person's links from now on. A cancelled interview goes through the same
    cancel and delete path as one a recruiter cancels (``booking.mark_cancelling``, then
    ``writes.run_delete``, where an event already gone at the aggregator counts as deleted).
    Kept interviews stay in the calendars; their local rows go with the person's calendar link.
    The candidate of each interview cancelled is told as for any cancellation (``notify``), from
    the event as read before it went.
    """
    from models import Interview, InterviewStatus
    from webapp.services import credentials
    from webapp.services.scheduling import booking, notices, writes

    links = [
        link
        for link in _person_links(session, user)
        if link.status is LinkStatus.ACTIVE and not link.is_delegated  # never a host
    ]
    if not links or broker is None:
        return {}
    future: dict[str, ManagedEvent] = {}
    now = utcnow()
    unreadable = 0
    for link in links:
        try:
            # The aggregator reads from a date (today, UTC); "from now on" is decided here.
            events = credentials.call_broker(
                session,
                broker,
                cipher,
                link,
                lambda creds, on_refresh: broker.managed_events(
                    creds, start=now.date(), on_refresh=on_refresh
                ),
            )
        except ServiceError:
            unreadable += 1
            continue  # unreachable now: these interviews can only be kept
        future.update(
            (e.event_id, e)
            for e in events
            if e.event_id and not e.deleted and _ends_after(e.end, now)
        )
    hosted = list(
        session.scalars(
            select(Interview).where(
                Interview.organisation_id == user.organisation_id,
                Interview.host_link_id.in_([link.id for link in links]),
                Interview.status.in_([InterviewStatus.PENDING, InterviewStatus.SCHEDULED]),
            )
        )
    )
    upcoming = [i for i in hosted if any(e.event_id in future for e in i.events)]
    if choice == "keep" or dry_run:
        key = "future_interviews_kept" if choice == "keep" else "future_interviews_cancelled"
        return {key: len(upcoming), "calendars_unreadable": unreadable}
    cancelled = 0
    for interview in upcoming:
        # The event as it was, for the candidate's notice (their address, title and time).
        event = next(future[e.event_id] for e in interview.events if e.event_id in future)
        booking.mark_cancelling(session, interview)
        session.commit()
        try:
            writes.run_delete(session, broker, cipher, interview.id)
        except WriteFailed:
            continue  # some calendar did not confirm; counted below
        session.refresh(interview)
        if interview.status is not InterviewStatus.CANCELLED:
            continue
        cancelled += 1
        if notify is not None and jobs is not None:
            notices.notify_candidate(
                session, notify, actor, interview, "cancelled", event=event, jobs=jobs
            )
    session.flush()
    return {
        "future_interviews_cancelled": cancelled,
        "future_interviews_not_cancelled": len(upcoming) - cancelled,
        "calendars_unreadable": unreadable,
    }
