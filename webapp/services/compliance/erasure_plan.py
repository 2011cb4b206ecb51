"""The dry run of an erasure, for its confirmation page, and its receipt's page.

The plan runs the erasure's own parts without their effects: its feature steps with
``dry_run=True``, the same look-up of the grants it revokes, and ``erasure_rows.count`` over the
same row changes ``erasure_rows.apply`` carries out. So what the page says will happen is what
the receipt then reports, not a second guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Base, ErasureRequest, Role, User
from webapp.services import Actor
from webapp.services.compliance import erasure_rows
from webapp.services.compliance.erasure import (
    ERASURE_STEPS,
    grants_of,
    org_request,
    revokes,
)
from webapp.services.compliance.scope import require
from webapp.services.errors import Invalid, NotFound


@dataclass(frozen=True)
class ErasurePlan:
    """What confirming an erasure will do, computed by the code that does it (a dry run)."""

    request: ErasureRequest
    person: User
    proposed_by: User | None
    #: The feature steps' counts, under the receipt's keys (interviews to cancel or keep).
    steps: dict[str, int]
    #: Calendar links (the person's, and their organisation's at their address) and mailbox
    #: or room requests at their address whose grant at the aggregator is revoked.
    grants_to_revoke: int
    tokens_to_delete: int
    #: Rows deleted, detached or relabelled, under the receipt's keys.
    rows: dict[str, int]


def plan_erasure(session: Session, broker, cipher, actor: Actor, request_id: int) -> ErasurePlan:
    """The dry run of a proposed erasure, for its confirmation page. Changes nothing (reading
    the person's calendars may refresh an expired access token, as any read does)."""
    require(actor, Role.COMPLIANCE, Role.ADMIN)
    request = org_request(session, actor, request_id)
    if request.status != "proposed":
        raise Invalid("This erasure request has already been decided.")
    user = session.get(User, request.person_id)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound("The person no longer exists.")
    steps: dict[str, int] = {}
    for step in ERASURE_STEPS:
        for key, value in step(
            session, broker, cipher, user, request.future_interviews, dry_run=True
        ).items():
            if value:
                steps[key] = steps.get(key, 0) + value
    links, requests_ = grants_of(session, user)
    others = [link.id for link in links if link.user_id != user.id]
    proposer = session.get(User, request.proposed_by_id) if request.proposed_by_id else None
    return ErasurePlan(
        request=request,
        person=user,
        proposed_by=proposer
        if proposer and proposer.organisation_id == user.organisation_id
        else None,
        steps=steps,
        grants_to_revoke=len(
            {link.sub for link in links if revokes(link)}
            | {r.resource_sub for r in requests_ if r.resource_sub}
        ),
        tokens_to_delete=sum(link.has_tokens for link in links),
        rows=erasure_rows.count(session, erasure_rows.row_changes(user, others)),
    )


def erasure_receipt(session: Session, actor: Actor, reference: str) -> ErasureRequest:
    """A completed erasure by its receipt's unguessable reference, for its organisation's
    reviewers and IT admins; any other reference is NotFound."""
    require(actor, Role.COMPLIANCE, Role.ADMIN)
    request = session.scalar(
        select(ErasureRequest).where(
            ErasureRequest.receipt_ref == reference[:64],
            ErasureRequest.organisation_id == actor.organisation_id,
            ErasureRequest.status == "completed",
        )
    )
    if request is None:
        raise NotFound("There is no such erasure receipt in your organisation.")
    return request


def names(session: Session, actor: Actor, user_ids: list[int | None]) -> dict[int, str]:
    """How the pages name the people who proposed and decided erasures: "Name (email)" while
    they have an account in the organisation; the page says "erased user #id" otherwise."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    users = session.scalars(
        select(User).where(User.id.in_(ids), User.organisation_id == actor.organisation_id)
    )
    return {u.id: f"{u.name} ({u.email})" for u in users}


#: What each count of a plan or receipt means, as the pages say it ("3 × ...").
MEANINGS = {
    "grants_to_revoke": "calendar authorizations revoked at the calendar service (at once, or "
    "queued and retried until it confirms)",
    "links_revoked": "calendar authorizations revoked at the calendar service",
    "revocations_queued": "calendar authorizations queued for revocation (retried until the "
    "calendar service confirms)",
    "tokens_to_delete": "stored calendar tokens deleted",
    "tokens_deleted": "stored calendar tokens deleted",
    "future_interviews_cancelled": "future interviews cancelled (deleted from every calendar)",
    "future_interviews_not_cancelled": "future interviews a calendar did not confirm cancelling",
    "future_interviews_kept": "future interviews kept in the calendars",
    "calendars_unreadable": "calendars that could not be read now (their future interviews "
    "can only be kept)",
    erasure_rows.RELABELLED: "audit entries rewritten to name “erased user #id” instead of them",
    "accounts_deleted": "accounts deleted",
}


def meaning(key: str) -> str:
    """A plan's or receipt's count in words; table counts by the table's inventory name."""
    if key in MEANINGS:
        return MEANINGS[key]
    table, _, verb = key.rpartition("_")
    if verb in ("deleted", "detached") and table in Base.metadata.tables:
        label = Base.metadata.tables[table].info.get("label", table.replace("_", " "))
        if verb == "deleted":
            return f"{label}: records deleted"
        return f"{label}: records kept, no longer pointing at them"
    return key.replace("_", " ")
