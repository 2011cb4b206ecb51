"""Periodic clean-up: records that have outlived their use are deleted (each purge idempotent)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from models import OAuthState, SsoState, utcnow
from webapp import deps
from webapp.jobs.queue import TaskGroup, crontab
from webapp.services import rowcount

tasks = TaskGroup("maintenance")


@tasks.periodic("purge_oauth_states", crontab(minute="*/30"))
def purge_oauth_states() -> int:
    """Delete OAuth and single sign-on states that can no longer be used (expired or consumed
    over a day ago)."""
    cutoff = utcnow() - timedelta(days=1)
    deleted = 0
    with deps.database().sessions() as session:
        for model in (OAuthState, SsoState):
            result = session.execute(
                delete(model).where((model.expires_at < utcnow()) | (model.used_at < cutoff))
            )
            deleted += rowcount(result) or 0
        session.commit()
        return deleted


@tasks.periodic("purge_audit_entries", crontab(minute="17", hour="3"))
def purge_audit_entries() -> dict:
    """Daily: delete audit entries older than the configured retention."""
    from webapp.services.compliance.audit import purge_expired

    with deps.database().sessions() as session:
        return purge_expired(
            session, audit_retention_days=current_app.config["AUDIT_RETENTION_DAYS"]
        )


@tasks.periodic("purge_api_tokens", crontab(minute="41", hour="3"))
def purge_api_tokens() -> int:
    """Daily: delete API tokens revoked or expired over 30 days ago (idempotent)."""
    from webapp.services import api_tokens

    with deps.database().sessions() as session:
        return api_tokens.purge(session)


@tasks.periodic("purge_idempotency_keys", crontab(minute="23"))
def purge_idempotency_keys() -> int:
    """Hourly: delete API idempotency keys (and the responses kept with them) past 24 hours."""
    from webapp.services import idempotency

    with deps.database().sessions() as session:
        return idempotency.purge(session)


@tasks.periodic("purge_mailbox_lists", crontab(minute="37"))
def purge_mailbox_lists() -> int:
    """Hourly: delete the summaries of pasted mailbox lists (and their unused lines) past a day."""
    from webapp.services.enterprise import list_summaries

    with deps.database().sessions() as session:
        return list_summaries.purge(session)


@tasks.periodic("purge_interview_load", crontab(minute="47", hour="3"))
def purge_interview_load() -> int:
    """Daily: delete the load ledger's rows of interviews that started over 29 days ago."""
    from webapp.services.pools import ledger

    with deps.database().sessions() as session:
        return ledger.purge(session)
