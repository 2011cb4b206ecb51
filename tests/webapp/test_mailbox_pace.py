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


# --- the organisation's fair share of the background lane ----------------------------------


def test_while_other_organisations_have_background_work_waiting_the_budget_is_their_share(
    session,
):
    ours = _domain(session, make_org(session), "ours-fair")
    _requests(session, ours, 2000, MailboxStatus.QUEUED)
    pace = pace_of(session, ours.id, now=NOW, background_per_minute=400)
    assert pace.sharing == 1 and pace.per_minute == pytest.approx(400 / CALLS_PER_MAILBOX)
    neighbour = _domain(session, make_org(session), "neighbour-fair")
    _requests(session, neighbour, 10_000, MailboxStatus.PENDING)
    pace = pace_of(session, ours.id, now=NOW, background_per_minute=400)
    assert pace.sharing == 2 and pace.basis == "budget"
    assert pace.per_minute == pytest.approx(200 / CALLS_PER_MAILBOX)
    assert pace.seconds_left == round(2000 * 60 * CALLS_PER_MAILBOX / 200)  # ~20 minutes
    assert pace.text.startswith("At best about 20 minutes to go")
    assert "your organisation's share" in pace.text
    assert "1 other organisation has background work waiting" in pace.text
    assert "(half of it is yours)" in pace.text
    assert "neighbour" not in pace.text.lower()  # counted, never named
    # a third organisation asking for budget right now (the limiter's count) makes it a third
    third = pace_of(session, ours.id, now=NOW, background_per_minute=400, asking=3)
    assert third.sharing == 3 and "2 other organisations have" in third.text
    assert "a third of it is yours" in third.text


def test_an_observed_pace_faster_than_the_fair_share_is_held_to_it(session):
    ours = _domain(session, make_org(session), "ours-held")
    _requests(session, ours, 1200, MailboxStatus.QUEUED)
    # 1,500 answered over the last 5 minutes while we had the lane to ourselves: 300 a minute
    _requests(
        session, ours, 1500, MailboxStatus.LINKED,
        answered_ago=lambda i: timedelta(minutes=5) * (i + 1) / 1500,
    )  # fmt: skip
    alone = pace_of(session, ours.id, now=NOW, background_per_minute=400, asking=1)
    assert alone.basis == "observed" and alone.per_minute == pytest.approx(300, rel=0.01)
    assert not alone.held_to_share and "at the current pace" in alone.text
    # another organisation now has work waiting: our half of the lane is ~100 a minute
    _requests(session, _domain(session, make_org(session), "other-held"), 50, MailboxStatus.QUEUED)
    shared = pace_of(session, ours.id, now=NOW, background_per_minute=400)
    assert shared.held_to_share and shared.per_minute == pytest.approx(200 / CALLS_PER_MAILBOX)
    assert shared.seconds_left == round(1200 * 60 * CALLS_PER_MAILBOX / 200)
    assert shared.text.startswith("About 12 minutes to go at your organisation's fair share")
    # a slower observed pace is already what we get: it stays the estimate
    slow = _domain(session, make_org(session), "ours-slow")
    _requests(session, slow, 30, MailboxStatus.QUEUED)
    _requests(session, slow, 20, MailboxStatus.LINKED, answered_ago=lambda i: timedelta(minutes=4))
    kept = pace_of(session, slow.id, now=NOW, background_per_minute=400)
    assert kept.sharing == 3 and not kept.held_to_share and kept.per_minute == pytest.approx(5)


def test_revocations_due_count_as_background_work_waiting_but_not_refused_or_later_ones(session):
    from webapp.services import revocations

    ours = _domain(session, make_org(session), "ours-rev")
    _requests(session, ours, 100, MailboxStatus.QUEUED)
    due_org, later_org, refused_org = (make_org(session) for _ in range(3))
    revocations.queue(session, ["acc_due"], organisation_id=due_org.id, reason="t")
    revocations.queue(session, ["acc_later"], organisation_id=later_org.id, reason="t")
    revocations.queue(session, ["acc_refused"], organisation_id=refused_org.id, reason="t")
    revocations.queue(session, ["acc_orphan"], organisation_id=None, reason="t")
    session.commit()
    from models import PendingRevocation

    rows = {r.sub: r for r in session.query(PendingRevocation)}
    for row in rows.values():
        row.next_attempt_at = NOW - timedelta(minutes=1)
    rows["acc_later"].next_attempt_at = NOW + timedelta(minutes=30)
    rows["acc_refused"].refused_at = NOW - timedelta(hours=1)
    session.commit()
    assert pace_of(session, ours.id, now=NOW, background_per_minute=400).sharing == 2


def test_the_page_says_when_the_budget_is_shared_with_other_organisations(
    admin_client, session, sandbox, org
):
    client, auth = admin_client
    ours = connect_domain(client, auth, session, sandbox)
    _requests(session, ours, 40, MailboxStatus.QUEUED, at=now_utc())
    page = client.get(PAGE).get_data(as_text=True)
    assert "At best" in page and "background work waiting" not in page
    theirs = _domain(session, make_org(session), "neighbour-shared")
    _requests(session, theirs, 500, MailboxStatus.QUEUED, at=now_utc())
    page = client.get(PAGE).get_data(as_text=True)
    assert "your organisation&#39;s share" in page or "your organisation's share" in page
    assert "1 other organisation has background work waiting" in page
    progress = client.get(_progress_url(page)).get_json()
    assert "(half of it is yours)" in progress["eta"]
    assert "neighbour" not in progress["eta"].lower()
