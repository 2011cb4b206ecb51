"""The mailbox page's expected time to finish: waiting requests ÷ the pace observed from the
``completed_at`` already stored on answered requests over the last 10 minutes, or, before any
answer, the background lane's budget (said so on the page). Per domain, per organisation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from models import LinkStatus, MailboxKind, MailboxRequest, MailboxStatus, ServiceAccountLink
from models import utcnow as now_utc
from tests.factories import make_org
from tests.webapp.test_enterprise import PAGE, connect_domain
from webapp.services.enterprise.pace import CALLS_PER_MAILBOX, Pace, pace_of

NOW = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)


def _domain(session, org, name):
    link = ServiceAccountLink(
        organisation_id=org.id,
        provider="exchange",
        domain=f"{name}.example",
        sub=f"ser_{name}",
        account_email=f"svc@{name}.example",
        status=LinkStatus.ACTIVE,
    )
    session.add(link)
    session.commit()
    return link


def _requests(session, link, count, status, *, answered_ago=None, kind=MailboxKind.MAILBOX, at=NOW):
    """``count`` requests; answered ones finished ``answered_ago(i)`` before ``at``."""
    start = session.query(MailboxRequest).count()
    session.add_all(
        MailboxRequest(
            service_account_link_id=link.id,
            organisation_id=link.organisation_id,
            email=f"m{start + i}@{link.domain}",
            status=status,
            kind=kind,
            completed_at=at - answered_ago(i) if answered_ago else None,
        )
        for i in range(count)
    )
    session.commit()


def test_nothing_waiting_says_nothing(session):
    link = _domain(session, make_org(session), "done")
    _requests(session, link, 5, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(minutes=1))
    pace = pace_of(session, link.id, now=NOW, background_per_minute=400)
    assert pace == Pace(0, "done", seconds_left=0) and pace.text == ""


def test_the_observed_pace_over_the_last_ten_minutes(session):
    link = _domain(session, make_org(session), "observed")
    _requests(session, link, 60, MailboxStatus.QUEUED)
    _requests(session, link, 30, MailboxStatus.PENDING)
    # 40 answered over the last 4 minutes (linked and failed both count) ...
    _requests(
        session, link, 30, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(seconds=8 * i)
    )
    _requests(session, link, 10, MailboxStatus.FAILED, answered_ago=lambda i: timedelta(minutes=4))
    # ... and what does not: older answers, unlinked mailboxes, rooms
    _requests(session, link, 50, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(minutes=11))
    _requests(
        session, link, 50, MailboxStatus.UNLINKED, answered_ago=lambda i: timedelta(minutes=1)
    )
    _requests(
        session, link, 50, MailboxStatus.LINKED,
        answered_ago=lambda i: timedelta(minutes=1), kind=MailboxKind.ROOM,
    )  # fmt: skip
    pace = pace_of(session, link.id, now=NOW, background_per_minute=400)
    assert pace.basis == "observed" and pace.waiting == 90
    assert pace.per_minute == pytest.approx(10.0)  # 40 in 4 minutes
    assert pace.seconds_left == 9 * 60
    assert pace.text == (
        "About 9 minutes to go at the current pace "
        "(10 mailboxes a minute over the last 10 minutes)."
    )


def test_a_burst_seconds_ago_is_not_taken_for_a_steady_pace(session):
    link = _domain(session, make_org(session), "burst")
    _requests(session, link, 100, MailboxStatus.QUEUED)
    _requests(session, link, 5, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(seconds=2))
    pace = pace_of(session, link.id, now=NOW, background_per_minute=400)
    assert pace.per_minute == pytest.approx(5.0)  # over at least a minute, not 5 in 2 s
    assert pace.seconds_left == 20 * 60


def test_before_any_answer_the_background_budget_gives_the_best_case(session):
    link = _domain(session, make_org(session), "fresh")
    _requests(session, link, 2000, MailboxStatus.QUEUED)
    _requests(session, link, 10, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(hours=1))
    pace = pace_of(session, link.id, now=NOW, background_per_minute=400)
    assert pace.basis == "budget"
    assert pace.per_minute == pytest.approx(400 / CALLS_PER_MAILBOX)
    assert pace.seconds_left == round(2000 * 60 * CALLS_PER_MAILBOX / 400)  # ~10 minutes
    assert pace.text.startswith("At best about 10 minutes to go")
    assert "budget for background work" in pace.text and "other domains share" in pace.text
    unknown = pace_of(session, link.id, now=NOW, background_per_minute=None)
    assert unknown.basis == "unknown" and unknown.text.startswith("No estimate yet")


def test_long_estimates_read_in_hours(session):
    link = _domain(session, make_org(session), "long")
    _requests(session, link, 1500, MailboxStatus.QUEUED)
    _requests(session, link, 10, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(minutes=1))
    assert pace_of(session, link.id, now=NOW, background_per_minute=None).text.startswith(
        "About 2 hours 30 min to go"
    )


def _progress_url(page: str) -> str:
    return re.search(r'data-progress-url="([^"]+)"', page).group(1).replace("&amp;", "&")


def test_the_page_and_its_progress_show_each_organisations_own_estimate(
    admin_client, session, sandbox, org
):
    """Ours: 30 waiting, 20 answered over 4 minutes (5 a minute, about 6 minutes). A second
    organisation, much further along and faster, changes nothing of ours."""
    client, auth = admin_client
    ours = connect_domain(client, auth, session, sandbox)
    theirs = _domain(session, make_org(session), "neighbour-pace")
    now = now_utc()
    _requests(session, ours, 30, MailboxStatus.QUEUED, at=now)
    _requests(
        session, ours, 20, MailboxStatus.LINKED, at=now,
        answered_ago=lambda i: timedelta(minutes=4) * (i + 1) / 20,
    )  # fmt: skip
    _requests(session, theirs, 1000, MailboxStatus.PENDING, at=now)
    _requests(
        session, theirs, 500, MailboxStatus.LINKED, at=now,
        answered_ago=lambda i: timedelta(seconds=i % 120),
    )  # fmt: skip

    page = client.get(PAGE).get_data(as_text=True)
    expected = "About 6 minutes to go at the current pace (5.0 mailboxes a minute"
    assert expected in page and 'data-role="eta"' in page
    progress = client.get(_progress_url(page)).get_json()
    assert progress["waiting"] == 30 and progress["eta"].startswith(expected)
    assert client.get(f"{PAGE}{theirs.id}/progress").status_code == 404

    # Everything answered: the estimate goes away, on the page and in the live counts.
    session.query(MailboxRequest).filter_by(
        service_account_link_id=ours.id, status=MailboxStatus.QUEUED
    ).update({"status": MailboxStatus.LINKED, "completed_at": now})
    session.commit()
    assert client.get(_progress_url(page)).get_json()["eta"] == ""
    assert re.search(r'data-role="eta"[^>]*hidden', client.get(PAGE).get_data(as_text=True))
