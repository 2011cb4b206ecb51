"""Background jobs of scheduling: calendar writes and deletes (retried until confirmed), changes
pushed by the aggregator, and the periodic reconciliation. Each is idempotent."""

from __future__ import annotations

import datetime as dt

from broker.ratelimit import patience
from webapp import deps
from webapp.jobs.queue import TaskGroup, crontab
from webapp.services import pacing
from webapp.services.errors import WriteFailed
from webapp.services.scheduling import sync, writes

#: Retried every 30 s for ~10 minutes; whatever is still unconfirmed after that is repaired by
#: reconciliation (confirmed if the event exists, otherwise marked failed and the scheduler told).
WRITE_RETRIES = 20
WRITE_RETRY_DELAY = 30

tasks = TaskGroup("scheduling")


@tasks.task("write_interview", retries=WRITE_RETRIES, retry_delay=WRITE_RETRY_DELAY)
def write_interview(interview_id: int, sealed: str) -> str:
    """Upsert the interview's events under their fixed event ids until the aggregator confirms."""
    broker, cipher, seal = deps.broker(), deps.cipher(), deps.sealer()
    if broker is None:
        raise WriteFailed("no calendar aggregator configured")
    with deps.database().sessions() as session:
        return writes.run_write(session, broker, cipher, seal, interview_id, sealed)


@tasks.task("delete_interview", retries=WRITE_RETRIES, retry_delay=WRITE_RETRY_DELAY)
def delete_interview(interview_id: int) -> str:
    """Delete a cancelled interview's events until the aggregator confirms."""
    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        raise WriteFailed("no calendar aggregator configured")
    with deps.database().sessions() as session:
        return writes.run_delete(session, broker, cipher, interview_id)


@tasks.task("write_loop", retries=WRITE_RETRIES, retry_delay=WRITE_RETRY_DELAY)
def write_loop(loop_id: int, payloads: dict[str, str]) -> str:
    """Write a booked loop's sessions in order; a failed session takes the whole loop back."""
    from webapp.services.loops import booking as loop_booking

    broker, cipher, seal = deps.broker(), deps.cipher(), deps.sealer()
    if broker is None:
        raise WriteFailed("no calendar aggregator configured")
    with deps.database().sessions() as session:
        return loop_booking.run_loop_write(
            session, broker, cipher, seal, loop_id, payloads, jobs=deps.jobs()
        )


@tasks.task("move_loop", retries=WRITE_RETRIES, retry_delay=WRITE_RETRY_DELAY)
def move_loop(
    loop_id: int, payloads: dict[str, str], previous: dict[str, str], old_holds: list
) -> str:
    """Write a moved loop's sessions in order; a failed session takes the whole move back."""
    from webapp.services.loops import moving

    broker, cipher, seal = deps.broker(), deps.cipher(), deps.sealer()
    if broker is None:
        raise WriteFailed("no calendar aggregator configured")
    with deps.database().sessions() as session:
        return moving.run_loop_move(
            session, broker, cipher, seal, loop_id, payloads, previous, old_holds, jobs=deps.jobs()
        )


# A push follow-up (background, before periodic reads); writing/deleting a booked interview
# stays interactive.
@tasks.task("apply_changes", retries=5, retry_delay=30, lane="background", work="push")
def apply_changes(link_id: int, changes_since: str | None, channel_id: str | None = None) -> dict:
    """Follow a ``change`` push from the link's own channel: read our events changed since
    then and update their status."""
    from models import ProfileLink
    from webapp.services import delegation_watch, profile_recovery

    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        return {}
    since = dt.datetime.fromisoformat(changes_since) if changes_since else None
    with deps.database().sessions() as session:
        link = session.get(ProfileLink, link_id)
        if link is None:
            return {}
        reason = profile_recovery.not_from_its_channel(session, broker, cipher, link, channel_id)
        if reason is not None:
            profile_recovery.ignore_notification(
                session,
                link,
                reason,
                notification_type="change",
                channel_id=channel_id,
                first_time=deps.callback_guard().first_time,
            )
            return {"ignored": 1}
        # Changes come again once a disconnected profile is back: unblock the link first.
        profile_recovery.recover_link(session, broker, cipher, link_id)
        found = sync.apply_changes(session, broker, cipher, link_id, since)
        # A colleague withdrawing a calendar shared with this account changes it too.
        withdrawn = delegation_watch.check_owners(session, broker, cipher, only=link_id)
        return dict(found, delegations_withdrawn=withdrawn) if withdrawn else found


@tasks.periodic("reconcile_events", crontab(minute="*"))
def reconcile() -> dict:
    """Compare the event ids we hold with the aggregator's managed events; repair both ways.
    Every minute, the part of the 15-minute pass due now (webapp.services.pacing): spread over
    the period, within the budget left, yielding to push follow-ups, reported when behind."""
    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        return {}
    from webapp.services.loops import booking as loop_booking

    with deps.database().sessions() as session:
        found = sync.reconcile_tick(session, broker, cipher, deps.jobs()).as_dict()
        # A loop whose write job never finished must not stay half-booked.
        taken_back = loop_booking.take_back_broken(session, broker, cipher, jobs=deps.jobs())
        return dict(found, loops_taken_back=taken_back) if taken_back else found


@tasks.periodic("purge_links", crontab(minute="40", hour="3"))
def purge_links() -> int:
    """Delete self-scheduling links expired, used or revoked over 30 days ago."""
    from webapp.services import candidate_links

    with deps.database().sessions() as session:
        return candidate_links.purge(session)


@tasks.periodic("settle_claims", crontab(minute="*/5"))
def settle_claims() -> dict:
    """Drop slot claims the calendar now protects (or that protect nothing any more)."""
    from webapp.services import claims

    broker = deps.broker()
    # periodic work: each check waits at most a second for budget, then the run stops
    with deps.database().sessions() as session, patience(pacing.PATIENCE):
        return claims.settle(session, broker)
