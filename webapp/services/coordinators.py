"""Coordinator assignments: which hiring managers (recruiters) a coordinator may schedule for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    CoordinatorAssignment,
    Role,
    User,
)
from webapp.services import Actor
from webapp.services.accounts import org_user, require_admin
from webapp.services.audit import record
from webapp.services.errors import Invalid, NotFound


def assignments(session: Session, actor: Actor) -> list[CoordinatorAssignment]:
    require_admin(actor)
    return list(
        session.scalars(
            select(CoordinatorAssignment)
            .where(CoordinatorAssignment.organisation_id == actor.organisation_id)
            .order_by(CoordinatorAssignment.id)
        )
    )


def assign_coordinator(
    session: Session, actor: Actor, coordinator_id: int, manager_id: int
) -> CoordinatorAssignment:
    """Let a coordinator schedule on behalf of a hiring manager (a recruiter)."""
    require_admin(actor)
    coordinator = org_user(session, actor, coordinator_id)
    manager = org_user(session, actor, manager_id)
    if coordinator.role is not Role.COORDINATOR:
        raise Invalid("Choose a user with the coordinator role.", field="coordinator_id")
    if manager.role is not Role.RECRUITER:
        raise Invalid("Choose a recruiter / hiring manager.", field="manager_id")
    if (
        session.scalar(
            select(CoordinatorAssignment.id).where(
                CoordinatorAssignment.coordinator_id == coordinator.id,
                CoordinatorAssignment.manager_id == manager.id,
            )
        )
        is not None
    ):
        raise Invalid(f"{coordinator.name} is already assigned to {manager.name}.")
    assignment = CoordinatorAssignment(
        organisation_id=actor.organisation_id, coordinator_id=coordinator.id, manager_id=manager.id
    )
    session.add(assignment)
    session.flush()
    record(
        session,
        actor,
        "assignment.created",
        target_type="assignment",
        target_id=assignment.id,
        target_label=f"{coordinator.email} → {manager.email}",
    )
    session.commit()
    return assignment


def unassign_coordinator(session: Session, actor: Actor, assignment_id: int) -> None:
    require_admin(actor)
    assignment = session.get(CoordinatorAssignment, assignment_id)
    if assignment is None or assignment.organisation_id != actor.organisation_id:
        raise NotFound("There is no such assignment in your organisation.")
    label = f"{assignment.coordinator.email} → {assignment.manager.email}"
    session.delete(assignment)
    record(
        session,
        actor,
        "assignment.removed",
        target_type="assignment",
        target_id=assignment_id,
        target_label=label,
    )
    session.commit()


def managers_of(session: Session, coordinator_id: int) -> list[User]:
    """Hiring managers a coordinator may schedule for."""
    return list(
        session.scalars(
            select(User)
            .join(CoordinatorAssignment, CoordinatorAssignment.manager_id == User.id)
            .where(CoordinatorAssignment.coordinator_id == coordinator_id, User.active.is_(True))
            .order_by(User.name)
        )
    )
