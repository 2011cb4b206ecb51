"""Background jobs of Enterprise Connect.

* ``enterprise.send_batches(link_id)`` sends a domain's queued mailbox requests in batches. It
  is safe to run twice or concurrently (rows are claimed atomically) and resumes where a dead
  worker left off. When the aggregator is busy it reschedules itself instead of holding a
  worker.
* ``enterprise.resume_stalled`` (every minute) restarts sending for any domain with queued
  requests or claims abandoned by a worker that died: the queue message of a killed worker is
  gone, the rows in the database are not.
* ``enterprise.redeem_code(request_id, key_id, blob)`` redeems the code one callback queued
  (sealed) and links the mailbox; with no budget within a few seconds it re-queues itself for
  when there is, instead of holding a worker.
* ``enterprise.choose_calendars(link_id)`` points a domain's newly linked mailboxes at their
  primary calendars, a few per run, one run queued at a time per domain (a bulk link's
  callbacks would otherwise queue ten thousand jobs in front of everything else);
  ``enterprise.choose_calendar(profile_link_id)`` does it for one mailbox (queued by earlier
  releases).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from broker.ratelimit import patience as rate_patience
from broker.ratelimit import tenant as rate_tenant
from webapp import deps
from webapp.jobs.queue import TaskGroup, crontab
from webapp.security import Sealed
from webapp.services.enterprise import callbacks, redemption, sending
from webapp.services.errors import ServiceError

log = logging.getLogger("webapp.jobs.enterprise")

#: Bulk linking and calendar choices: background, behind the interactive reserve.
tasks = TaskGroup("enterprise", lane="background")


def _organisation_of_domain(link_id: int, *_rest) -> int | None:
    """The organisation a domain's bulk link works for (its fair share of the background lane)."""
    from models import ServiceAccountLink

    with deps.database().sessions() as session:
        link = session.get(ServiceAccountLink, link_id)
        return None if link is None else link.organisation_id


def _organisation_of_mailbox(profile_link_id: int) -> int | None:
    """The organisation a newly linked mailbox belongs to."""
    from models import ProfileLink

    with deps.database().sessions() as session:
        link = session.get(ProfileLink, profile_link_id)
        return None if link is None else link.organisation_id


def _organisation_of_request(request_id: int, *_rest) -> int | None:
    """The organisation a mailbox request belongs to."""
    from models import MailboxRequest

    with deps.database().sessions() as session:
        row = session.get(MailboxRequest, request_id)
        return None if row is None else row.organisation_id


#: Seconds a code's redemption may wait for budget in a worker before it re-queues itself. It
#: also bounds the revocations after the exchange (a superseded personal link, an account taken
#: by another person): those the lane has no room for go to the durable revocation queue.
REDEEM_PATIENCE = 2.0


# No huey retries: an exchange that failed after the aggregator took the code cannot be
# repeated (single use); the service decides what may be tried again and when.
@tasks.task("redeem_code", retries=0, tenant=_organisation_of_request)
def redeem_code(request_id: int, key_id: str, blob: bytes) -> str:
    """Redeem the code a callback queued for one mailbox request and link the mailbox."""
    broker, cipher, jobs = deps.broker(), deps.cipher(), deps.jobs()
    if broker is None:
        return "no aggregator"
    # Inline (tests) the call may wait for budget; a worker gives itself back instead.
    with (
        deps.database().sessions() as session,
        rate_patience(None if jobs.immediate else REDEEM_PATIENCE),
    ):
        outcome = redemption.redeem_code(
            session, broker, cipher, request_id, Sealed(key_id, blob), jobs=jobs
        )
    if outcome.result == "deferred":
        jobs.enqueue_in(outcome.retry_in or 1.0, "enterprise.redeem_code", request_id, key_id, blob)
    return outcome.result


@tasks.task("send_batches", retries=5, retry_delay=15, tenant=_organisation_of_domain)
def send_batches(link_id: int) -> int:
    """Send every queued mailbox request of one domain; returns how many went out."""
    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        return 0
    lease = timedelta(seconds=current_app.config.get("EC_CLAIM_LEASE_SECONDS", 120))
    # Keep at most this many callbacks awaited (each redeems a code in the organisation's
    # share); not when jobs run inline (tests): no callback can come while the job runs.
    awaited = None if deps.jobs().immediate else current_app.config.get("EC_MAX_AWAITED", 100)
    with deps.database().sessions() as session:

        def step():
            report = sending.send_batches(
                session, broker, cipher, link_id, lease=lease, max_awaited=awaited
            )
            if report.stopped == sending.AWAITING:
                # look again shortly, from the back of the queue: waiting for callbacks must
                # not hold a worker that other jobs (a booking's calendar write) need
                deps.jobs().enqueue_in(report.retry_in or 1.0, "enterprise.send_batches", link_id)
                return report.sent, None
            return report.sent, report.retry_in

        return deps.jobs().keep_going("enterprise.send_batches", (link_id,), step)


@tasks.periodic("resume_stalled", crontab(minute="*"), work="bulk")  # restarts bulk linking
def resume_stalled() -> int:
    """Restart sending for domains a dead worker left with queued or claimed requests (none of
    whose requests moved within the claim lease); fail the mailboxes whose code a lost job never
    redeemed."""
    lease = timedelta(seconds=current_app.config.get("EC_CLAIM_LEASE_SECONDS", 120))
    with deps.database().sessions() as session:
        lost = redemption.fail_unredeemed(session)  # codes whose redemption job was lost
        if lost:
            log.warning("%d mailbox codes were never redeemed (their jobs were lost)", lost)
        link_ids = sending.stalled_links(session, lease)
    for link_id in link_ids:
        # each domain's sending counts against its own organisation's fair share
        with rate_tenant(_organisation_of_domain(link_id)):
            send_batches(link_id)
    return len(link_ids)


@tasks.task("choose_calendars", retries=3, retry_delay=30, tenant=_organisation_of_domain)
def choose_calendars(link_id: int, after_id: int = 0) -> int:
    """Point up to ``CHOICES_PER_RUN`` of the domain's newly linked mailboxes at their primary
    calendars; if more wait, queue the next run behind whatever else is queued by then."""
    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        return 0
    with deps.database().sessions() as session:
        report = callbacks.choose_primary_calendars(
            session, broker, cipher, link_id, after_id=after_id
        )
    if report.more:
        # unless a callback queued a run meanwhile (it starts from the first link: it sees
        # these too)
        deps.jobs().enqueue_once(
            callbacks.choice_key(link_id), "enterprise.choose_calendars", link_id, report.last_id
        )
    return report.chosen


@tasks.task("choose_calendar", retries=3, retry_delay=30, tenant=_organisation_of_mailbox)
def choose_calendar(profile_link_id: int) -> str | None:
    """Set a newly linked mailbox's interview calendar to its primary calendar (queued one per
    mailbox by earlier releases; kept so that such jobs still run)."""
    broker, cipher = deps.broker(), deps.cipher()
    if broker is None:
        return None
    with deps.database().sessions() as session:
        try:
            return callbacks.choose_primary_calendar(session, broker, cipher, profile_link_id)
        except ServiceError as exc:
            log.info(
                "could not choose a calendar for link %s: %s", profile_link_id, type(exc).__name__
            )
            return None
