"""Background jobs of revocations: revoking at the aggregator the authorizations queued by
bulk disconnects (see webapp.services.revocations)."""

from __future__ import annotations

from webapp import deps
from webapp.jobs.queue import TaskGroup, crontab

tasks = TaskGroup("revocations", lane="background")


@tasks.task("run", retries=3, retry_delay=30)
def run() -> int:
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

        return deps.jobs().keep_going("revocations.run", (), step)


@tasks.periodic("resume", crontab(minute="*"), work="bulk")  # restarts the bulk work
def resume() -> int:
    """Every minute: go on with queued revocations (after a restart, or once a failed one is
    due again)."""
    return run()
