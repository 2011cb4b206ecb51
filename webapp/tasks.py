"""Background task bodies. Each is idempotent and runs inside an application context.

Feature modules add their tasks here (or in modules imported from here) with
``@jobs.task(name)`` / ``@jobs.periodic(name, crontab(...))``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from models import OAuthState, utcnow
from webapp import (
    deps,
    enterprise_tasks,  # noqa: F401  (registers the Enterprise Connect jobs)
    jobs,
    scheduling_tasks,  # noqa: F401  (registers the scheduling jobs)
)
from webapp.api import tasks as api_tasks  # noqa: F401  (registers the API token purge)


@jobs.periodic("purge_oauth_states", jobs.crontab(minute="*/30"))
def purge_oauth_states() -> int:
    """Delete OAuth states that can no longer be used (expired or consumed over a day ago)."""
    cutoff = utcnow() - timedelta(days=1)
    with deps.database().sessions() as session:
        result = session.execute(
            delete(OAuthState).where(
                (OAuthState.expires_at < utcnow()) | (OAuthState.used_at < cutoff)
            )
        )
        session.commit()
        return result.rowcount or 0


@jobs.task("revocations", retries=3, retry_delay=30)
def revoke_queued() -> int:
    """Revoke the authorizations queued by bulk disconnects; when the aggregator asks us to
    slow down, go on later (briefly here, else in a fresh job) instead of holding a worker."""

    from webapp.services import revocations

    broker = deps.broker()
    if broker is None:
        return 0
    with deps.database().sessions() as session:

        def step():
            report = revocations.run(session, broker, cipher=deps.cipher())
            return report.revoked, report.retry_in

        return deps.jobs().keep_going("revocations", (), step)


@jobs.periodic("revocations_resume", jobs.crontab(minute="*"))
def resume_revocations() -> int:
    """Every minute: go on with queued revocations (after a restart, or once a failed one is
    due again)."""
    return revoke_queued()


@jobs.task("calendar.check_profile", retries=3, retry_delay=60)
def check_profile(link_id: int) -> str:
    """After a ``profile_disconnected`` notice: is it this link's profile? Block it if so."""

    from models import ProfileLink
    from webapp.services import profile_recovery

    broker = deps.broker()
    if broker is None:
        return "skipped"
    with deps.database().sessions() as session:
        link = session.get(ProfileLink, link_id)
        if link is None:
            return "ignored"
        outcome = profile_recovery.check_profile(session, broker, deps.cipher(), link).outcome
    if outcome == "unreachable":
        raise RuntimeError(f"link {link_id}: the aggregator could not be asked; retrying")
    return outcome


@jobs.periodic("calendar.recover", jobs.crontab(minute="*/10"))
def recover_calendars() -> dict:
    """Every 10 minutes: unblock links whose disconnected profile the aggregator reports
    connected again (the person signed in again through the aggregator's email or page)."""

    from webapp.services import profile_recovery

    broker = deps.broker()
    if broker is None:
        return {}
    with deps.database().sessions() as session:
        return profile_recovery.recover_disconnected(session, broker, deps.cipher())


@jobs.periodic("purge_past_retention", jobs.crontab(minute="17", hour="3"))
def purge_past_retention() -> dict:
    """Daily: delete audit entries older than the configured retention."""
    from flask import current_app

    from webapp.services.compliance import purge_expired

    with deps.database().sessions() as session:
        return purge_expired(
            session, audit_retention_days=current_app.config["AUDIT_RETENTION_DAYS"]
        )
