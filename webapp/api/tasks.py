"""Background jobs of the API (imported from webapp.tasks so they are registered)."""

from __future__ import annotations

from webapp import deps, jobs
from webapp.services import api_tokens


@jobs.periodic("purge_api_tokens", jobs.crontab(minute="41", hour="3"))
def purge_api_tokens() -> int:
    """Daily: delete API tokens revoked or expired over 30 days ago (idempotent)."""
    with deps.database().sessions() as session:
        return api_tokens.purge(session)


@jobs.periodic("purge_idempotency_keys", jobs.crontab(minute="23"))
def purge_idempotency_keys() -> int:
    """Hourly: delete API idempotency keys (and the responses kept with them) past 24 hours."""
    from webapp.services import idempotency

    with deps.database().sessions() as session:
        return idempotency.purge(session)
