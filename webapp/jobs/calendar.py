"""Background jobs of calendar links: checking a profile the aggregator reports disconnected,
and the periodic recovery of links whose profile is connected again."""

from __future__ import annotations

from broker.ratelimit import patience
from webapp import deps
from webapp.jobs.queue import TaskGroup, crontab
from webapp.services import pacing

#: Profile checks follow a push notification, recovery is periodic: nobody is waiting.
tasks = TaskGroup("calendar", lane="background")


@tasks.task("check_profile", retries=3, retry_delay=60, work="push")
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


@tasks.periodic("recover_links", crontab(minute="*/10"))
def recover_links() -> dict:
    """Every 10 minutes: unblock links whose disconnected profile the aggregator reports
    connected again (the person signed in again through the aggregator's email or page), and
    block colleagues' delegated calendars their owners' accounts no longer list (withdrawn)."""
    from webapp.services import delegation_watch, profile_recovery

    broker = deps.broker()
    if broker is None:
        return {}
    # periodic work: a check waits at most a second for budget; without it the run stops
    # ("unreachable") and the next one goes on
    with deps.database().sessions() as session, patience(pacing.PATIENCE):
        found = profile_recovery.recover_disconnected(session, broker, deps.cipher())
        withdrawn = delegation_watch.check_owners(session, broker, deps.cipher())
    return dict(found, delegations_withdrawn=withdrawn) if withdrawn else found
