"""Background jobs: the queue (webapp.jobs.queue) and the tasks, one module per area.

Every task is called ``<area>.<verb_object>`` (``enterprise.send_batches``) and declared on its
module's ``tasks`` group; ``TASK_GROUPS`` below lists every module once, and nothing else makes
a task known to the queue. Run a worker with ``flask --app wsgi jobs worker``; ``make run``
starts one.
"""

from __future__ import annotations

from flask import Flask

from webapp.jobs import calendar, enterprise, mail, maintenance, revocations, scheduling
from webapp.jobs.queue import Jobs, install

#: Every task module, once.
TASK_GROUPS = (
    calendar.tasks,
    enterprise.tasks,
    mail.tasks,
    maintenance.tasks,
    revocations.tasks,
    scheduling.tasks,
)

#: Names tasks were queued under before they took the ``<area>.<verb_object>`` scheme (issue
#: 17) → their names now. A worker of this release still runs a job queued (or scheduled for
#: later) under an old name by the previous release; nothing new is queued or scheduled under
#: one. Remove this table in the release after next.
FORMER_NAMES = {
    "calendar.recover": "calendar.recover_links",
    "ec_choose_calendar": "enterprise.choose_calendar",
    "ec_resume_stalled": "enterprise.resume_stalled",
    "ec_send_batches": "enterprise.send_batches",
    "purge_api_tokens": "maintenance.purge_api_tokens",
    "purge_idempotency_keys": "maintenance.purge_idempotency_keys",
    "purge_oauth_states": "maintenance.purge_oauth_states",
    "purge_past_retention": "maintenance.purge_audit_entries",
    "revocations": "revocations.run",
    "revocations_resume": "revocations.resume",
    "scheduling.changes": "scheduling.apply_changes",
    "scheduling.delete": "scheduling.delete_interview",
    "scheduling.reconcile": "scheduling.reconcile_events",
    "scheduling.write": "scheduling.write_interview",
}


def init_app(app: Flask) -> Jobs:
    """Build the app's queue with every task (stored as ``rendezvous.jobs``)."""
    return install(app, TASK_GROUPS, FORMER_NAMES)
