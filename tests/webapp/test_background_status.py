"""Background work waiting per job type and the periodic passes falling behind, said the same
way on the Enterprise Connect page (the admin's own organisation) and in /metrics (the whole
installation). Two organisations in every test: the page never counts the other's work."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from models import (
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    MailboxRequest,
    MailboxStatus,
    ProfileLink,
    Role,
    ServiceAccountLink,
    utcnow,
)
from tests.factories import make_org, make_user
from webapp import deps
from webapp.services import background, revocations
from webapp.services.scheduling import sync

PAGE = "/admin/calendar/enterprise/"
TOKEN = "metrics-token-for-background-tests-0123"


@pytest.fixture
def token(app_config):
    app_config["METRICS_TOKEN"] = TOKEN


def _metrics(app):
    return app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).json


def _interviewing_links(session, org, count: int) -> list[int]:
    """``count`` calendar links of ``org`` holding one of our events each."""
    person = make_user(session, org, Role.RECRUITER)
    ids = []
    for _ in range(count):
        tag = secrets.token_hex(4)
        link = ProfileLink(
            organisation_id=org.id,
            user_id=person.id,
            mode=LinkMode.BUSINESS,
            sub=f"acc_{tag}",
            account_id=f"acc_{tag}",
            profile_id=f"pro_{tag}",
            provider="google",
            account_email=f"{tag}@example.com",
            status=LinkStatus.ACTIVE,
            target_calendar_id=f"cal_{tag}",
            conflict_calendar_ids=[f"cal_{tag}"],
        )
        session.add(link)
        session.flush()
        interview = Interview(
            uid=secrets.token_hex(16),
            organisation_id=org.id,
            created_by_id=person.id,
            host_link_id=link.id,
            panel_link_ids=[link.id],
            status=InterviewStatus.SCHEDULED,
        )
        session.add(interview)
        session.flush()
        session.add(
            CreatedEvent(
                interview_id=interview.id,
                position=0,
                profile_link_id=link.id,
                calendar_id=f"cal_{tag}",
                event_id=f"rdv-{interview.uid}-0",
                status=EventStatus.CONFIRMED,
            )
        )
        ids.append(link.id)
    session.commit()
    return ids


def _work(
    session, org, *, queued: int, pending: int, revoke: int, refused: int = 0, answered: int = 0
):
    link = ServiceAccountLink(
        organisation_id=org.id,
        provider="exchange",
        domain=f"d{secrets.token_hex(3)}.example",
        sub=f"ser_{secrets.token_hex(4)}",
        account_email="svc@example.com",
        status=LinkStatus.ACTIVE,
    )
    session.add(link)
    session.flush()
    for status, count in ((MailboxStatus.QUEUED, queued), (MailboxStatus.PENDING, pending)):
        session.add_all(
            MailboxRequest(
                service_account_link_id=link.id,
                organisation_id=org.id,
                email=f"m{i}-{status.value}@{link.domain}",
                status=status,
            )
            for i in range(count)
        )
    session.add_all(  # answered: the state used, the code queued for its redemption job
        MailboxRequest(
            service_account_link_id=link.id,
            organisation_id=org.id,
            email=f"a{i}@{link.domain}",
            status=MailboxStatus.PENDING,
            state_used_at=utcnow(),
        )
        for i in range(answered)
    )
    subs = [f"acc_{secrets.token_hex(5)}" for _ in range(revoke + refused)]
    revocations.queue(session, subs, organisation_id=org.id, reason="test")
    session.flush()
    if refused:
        from models import PendingRevocation

        for row in session.query(PendingRevocation).filter(
            PendingRevocation.sub.in_(subs[revoke:])
        ):
            row.refused_at = utcnow()
    session.commit()


def _reconcile_state(jobs, *, cursor, due_in: timedelta, finished=False, lag=0, total=10):
    now = utcnow()
    jobs.set_state(
        f"pass:{sync.RECONCILE_TASK}",
        {
            "pass_no": 3,
            "started_at": (now + due_in - sync.RECONCILE_PERIOD).isoformat(),
            "due_at": (now + due_in).isoformat(),
            "finished_at": now.isoformat() if finished else None,
            "total": total,
            "done": 0,
            "cursor": cursor,
            "overdue_noted": False,
            "late_passes": 1 if lag else 0,
            "last_lag_seconds": lag,
            "deferrals": 0,
        },
    )
    jobs.set_state("pass:index", {"names": [sync.RECONCILE_TASK]})


def test_work_waiting_per_job_type_for_one_organisation_and_for_all(app, session):
    ours, theirs = make_org(session, "Ours Background"), make_org(session, "Theirs Background")
    _work(session, ours, queued=5, pending=3, revoke=2, refused=1, answered=2)
    _work(session, theirs, queued=40, pending=7, revoke=9, answered=4)
    our_links = _interviewing_links(session, ours, 3)
    their_links = _interviewing_links(session, theirs, 4)
    jobs = deps.jobs.of(app)
    # a reconciliation pass under way, past the first of our links
    cursor = sorted(our_links + their_links)[0]
    _reconcile_state(jobs, cursor=cursor, due_in=timedelta(minutes=5))
    left = len([i for i in our_links if i > cursor]), len([i for i in their_links if i > cursor])

    mine = {w.kind: w.count for w in background.waiting(session, jobs, ours.id)}
    assert mine == {
        "mailboxes_to_send": 5,
        "mailboxes_awaiting_answer": 3,
        "codes_to_redeem": 2,
        "revocations": 2,  # the refused one is shown apart, as needing attention
        "reconciliation": left[0],
    }
    everyone = {w.kind: w.count for w in background.waiting(session, jobs)}
    assert everyone == {
        "mailboxes_to_send": 45,
        "mailboxes_awaiting_answer": 10,
        "codes_to_redeem": 6,
        "revocations": 11,
        "reconciliation": left[0] + left[1],
    }
    # no pass under way: nothing left to reconcile
    _reconcile_state(jobs, cursor=None, due_in=timedelta(minutes=5), finished=True)
    assert {w.kind: w.count for w in background.waiting(session, jobs)}["reconciliation"] == 0


def test_the_page_and_metrics_say_the_same_about_work_waiting_and_falling_behind(
    token, app, session, admin_client, org
):
    client, _ = admin_client
    theirs = make_org(session, "Neighbour Background")
    _work(session, org, queued=12, pending=0, revoke=1)
    _work(session, theirs, queued=300, pending=20, revoke=0)
    jobs = deps.jobs.of(app)

    page = client.get(PAGE).get_data(as_text=True)
    assert 'data-role="background-work"' in page and 'data-role="falling-behind"' not in page
    assert 'data-kind="mailboxes_to_send">12<' in page  # ours only, never the neighbour's 300
    assert 'data-kind="mailboxes_awaiting_answer">0<' in page
    assert 'data-kind="revocations">1<' in page
    assert "300" not in page and "Neighbour Background" not in page
    body = _metrics(app)
    assert body["work_waiting"]["mailboxes_to_send"] == {
        "task": "enterprise.send_batches",
        "waiting": 312,
    }
    assert body["falling_behind"] == []

    # reconciliation overdue by 20 minutes: both say it is falling behind
    _reconcile_state(jobs, cursor=None, due_in=timedelta(minutes=-20))
    page = client.get(PAGE).get_data(as_text=True)
    assert "Reconciliation (interview events checked against calendars) is falling behind" in page
    assert "20 minutes past its period" in page
    body = _metrics(app)
    assert body["falling_behind"] == [sync.RECONCILE_TASK]
    assert 1190 <= body["periodic"][sync.RECONCILE_TASK]["lag_seconds"] <= 1300

    # finished, but late: still behind (on both) until a pass finishes in time
    _reconcile_state(jobs, cursor=None, due_in=timedelta(minutes=-1), finished=True, lag=180)
    page = client.get(PAGE).get_data(as_text=True)
    assert "its last pass finished 3 minutes after its period ended" in page
    assert _metrics(app)["falling_behind"] == [sync.RECONCILE_TASK]
    _reconcile_state(jobs, cursor=None, due_in=timedelta(minutes=5), finished=True, lag=0)
    assert 'data-role="falling-behind"' not in client.get(PAGE).get_data(as_text=True)
    assert _metrics(app)["falling_behind"] == []


def test_with_nothing_waiting_the_page_shows_no_background_section(app, admin_client, session):
    client, _ = admin_client
    _work(session, make_org(session, "Busy Neighbour"), queued=50, pending=0, revoke=3)
    page = client.get(PAGE).get_data(as_text=True)
    assert 'data-role="background-work"' not in page
