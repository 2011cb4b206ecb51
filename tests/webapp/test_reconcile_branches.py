"""Every branch of the reconciliation (calendar sync repairs drift both ways), one test each,
against the in-memory FakeBroker (tests/fakes.py). The end-to-end runs against the sandbox are in
test_scheduling_sync.py and test_scheduling_properties.py."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import select

from broker import errors as broker_errors
from models import (
    Attention,
    AuditEntry,
    CreatedEvent,
    EventStatus,
    Interview,
    InterviewStatus,
    LinkMode,
    LinkStatus,
    ProfileLink,
    Role,
    utcnow,
)
from tests.factories import make_user
from tests.fakes import credentials
from webapp.services.credentials import store_credentials
from webapp.services.scheduling.content import EVENT_PREFIX
from webapp.services.scheduling.sync import PENDING_GIVE_UP, reconcile

CALENDAR = "cal_primary"


@pytest.fixture
def riley_link(session, org, cipher):
    """Riley's active calendar link, with tokens good for an hour."""
    return _link(session, org, cipher, "riley.chen@northwind.example")


def _link(session, org, cipher, email: str) -> ProfileLink:
    user = make_user(session, org, Role.RECRUITER, email=email)
    sub = "acc_" + secrets.token_hex(6)
    row = ProfileLink(
        organisation_id=org.id,
        user_id=user.id,
        mode=LinkMode.BUSINESS,
        sub=sub,
        account_id=sub,
        profile_id="pro_" + secrets.token_hex(6),
        provider="google",
        account_email=email,
        status=LinkStatus.ACTIVE,
        target_calendar_id=CALENDAR,
        conflict_calendar_ids=[CALENDAR],
    )
    session.add(row)
    session.flush()
    store_credentials(row, credentials(sub), cipher)
    session.commit()
    return row


def _interview(
    session, link, status: InterviewStatus, event_status: EventStatus, *, age=dt.timedelta()
):
    """An interview hosted on ``link`` with one event row (``rdv-…``) in the given states."""
    interview = Interview(
        uid=secrets.token_hex(16),
        organisation_id=link.organisation_id,
        created_by_id=link.user_id,
        host_link_id=link.id,
        panel_link_ids=[link.id],
        status=status,
    )
    session.add(interview)
    session.flush()
    row = CreatedEvent(
        interview_id=interview.id,
        profile_link_id=link.id,
        calendar_id=CALENDAR,
        event_id=EVENT_PREFIX + secrets.token_hex(8),
        status=event_status,
    )
    session.add(row)
    session.commit()
    if age:
        # updated_at moves on every change; set it as the clock of the test wants it.
        session.execute(
            Interview.__table__.update()
            .where(Interview.id == interview.id)
            .values(updated_at=utcnow() - age)
        )
        session.commit()
    session.expire_all()
    return session.get(Interview, interview.id), session.get(CreatedEvent, row.id)


def _run(session, fake, cipher):
    counts = reconcile(session, fake, cipher)
    session.expire_all()
    return counts


def _actions(session) -> list[str]:
    return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_settled_interview_costs_one_read_and_changes_nothing(
    session, riley_link, fake_broker, cipher
):
    interview, row = _interview(
        session, riley_link, InterviewStatus.SCHEDULED, EventStatus.CONFIRMED
    )
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    assert _run(session, fake_broker, cipher) == {}
    assert [name for name, _sub in fake_broker.calls] == ["managed_events"]
    assert (interview.status, row.status) == (InterviewStatus.SCHEDULED, EventStatus.CONFIRMED)


def test_links_without_events_of_ours_are_not_read(session, org, riley_link, fake_broker, cipher):
    _link(session, org, cipher, "sam.patel@contoso.example")
    assert _run(session, fake_broker, cipher) == {}
    assert fake_broker.calls == []


def test_an_event_of_ours_no_interview_holds_is_deleted(session, riley_link, fake_broker, cipher):
    _unused, row = _interview(session, riley_link, InterviewStatus.SCHEDULED, EventStatus.CONFIRMED)
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    stray = fake_broker.put_event(riley_link.sub, CALENDAR, EVENT_PREFIX + "left-behind")
    theirs = fake_broker.put_event(
        riley_link.sub, CALENDAR, "team-offsite"
    )  # someone else's: left alone
    assert _run(session, fake_broker, cipher) == {"orphans_deleted": 1}
    assert fake_broker.live_event_ids(riley_link.sub) == {row.event_id, theirs.event_id}
    assert stray.event_id not in fake_broker.live_event_ids(riley_link.sub)


@pytest.mark.parametrize(
    "status", [InterviewStatus.CANCELLED, InterviewStatus.FAILED, InterviewStatus.CANCELLING]
)
def test_an_event_of_an_ended_interview_is_deleted_and_its_row_settled(
    session, riley_link, fake_broker, cipher, status
):
    interview, row = _interview(session, riley_link, status, EventStatus.DELETING)
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    assert _run(session, fake_broker, cipher) == {"orphans_deleted": 1}
    assert fake_broker.live_event_ids(riley_link.sub) == set()
    assert row.status is EventStatus.DELETED
    if status is InterviewStatus.CANCELLING:
        assert interview.status is InterviewStatus.CANCELLED  # all its events are gone now


def test_an_orphan_the_aggregator_will_not_delete_is_left_and_counted(
    session, riley_link, fake_broker, cipher
):
    _unused, row = _interview(session, riley_link, InterviewStatus.CANCELLED, EventStatus.DELETING)
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    fake_broker.fail("delete_event", broker_errors.Unavailable("busy", status=503))
    assert _run(session, fake_broker, cipher) == {"orphans_left": 1}
    assert fake_broker.live_event_ids(riley_link.sub) == {row.event_id}
    assert row.status is EventStatus.DELETING  # the next run tries again
    assert _run(session, fake_broker, cipher) == {"orphans_deleted": 1}
    assert row.status is EventStatus.DELETED


def test_an_event_deleted_in_the_calendar_cancels_the_interview(
    session, riley_link, fake_broker, cipher
):
    interview, row = _interview(
        session, riley_link, InterviewStatus.SCHEDULED, EventStatus.CONFIRMED
    )
    fake_broker.put_event(
        riley_link.sub, CALENDAR, row.event_id, deleted=True
    )  # reported as deleted
    assert _run(session, fake_broker, cipher) == {"cancelled_in_calendar": 1}
    assert row.status is EventStatus.DELETED
    assert interview.status is InterviewStatus.CANCELLED_IN_CALENDAR
    assert interview.needs_notice
    assert _actions(session)[-1] == "interview.cancelled_in_calendar"


def test_a_reschedule_whose_job_never_confirmed_is_confirmed(
    session, riley_link, fake_broker, cipher
):
    interview, row = _interview(session, riley_link, InterviewStatus.SCHEDULED, EventStatus.PENDING)
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    assert _run(session, fake_broker, cipher) == {"confirmed": 1}
    assert row.status is EventStatus.CONFIRMED
    assert interview.status is InterviewStatus.SCHEDULED


def test_a_write_that_landed_after_its_job_gave_up_is_confirmed(
    session, riley_link, fake_broker, cipher
):
    old = PENDING_GIVE_UP + dt.timedelta(minutes=1)
    interview, row = _interview(
        session, riley_link, InterviewStatus.PENDING, EventStatus.PENDING, age=old
    )
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id)
    assert _run(session, fake_broker, cipher) == {"confirmed": 1}
    assert row.status is EventStatus.CONFIRMED
    assert interview.status is InterviewStatus.SCHEDULED  # every event confirmed


def test_a_write_that_never_landed_fails_the_interview_after_the_grace(
    session, riley_link, fake_broker, cipher
):
    old = PENDING_GIVE_UP + dt.timedelta(minutes=1)
    interview, row = _interview(
        session, riley_link, InterviewStatus.PENDING, EventStatus.PENDING, age=old
    )
    assert _run(session, fake_broker, cipher) == {"failed": 1}
    assert row.status is EventStatus.DELETED
    assert interview.status is InterviewStatus.FAILED and interview.needs_notice
    assert _actions(session)[-1] == "interview.write_failed"


def test_a_write_still_in_its_grace_period_is_left_to_its_job(
    session, riley_link, fake_broker, cipher
):
    young = PENDING_GIVE_UP - dt.timedelta(minutes=5)
    interview, row = _interview(
        session, riley_link, InterviewStatus.PENDING, EventStatus.PENDING, age=young
    )
    assert _run(session, fake_broker, cipher) == {}
    assert (interview.status, row.status) == (InterviewStatus.PENDING, EventStatus.PENDING)


def test_a_delete_that_landed_is_settled(session, riley_link, fake_broker, cipher):
    interview, row = _interview(
        session, riley_link, InterviewStatus.CANCELLING, EventStatus.DELETING
    )
    fake_broker.put_event(riley_link.sub, CALENDAR, row.event_id, deleted=True)
    assert _run(session, fake_broker, cipher) == {"deleted": 1}
    assert row.status is EventStatus.DELETED
    assert interview.status is InterviewStatus.CANCELLED


def test_an_unreachable_link_is_counted_and_the_others_still_repaired(
    session, org, riley_link, fake_broker, cipher
):
    other = _link(session, org, cipher, "sam.patel@contoso.example")
    _first, unreachable_row = _interview(
        session, riley_link, InterviewStatus.SCHEDULED, EventStatus.CONFIRMED
    )
    interview, row = _interview(session, other, InterviewStatus.SCHEDULED, EventStatus.PENDING)
    fake_broker.put_event(other.sub, CALENDAR, row.event_id)
    fake_broker.fail("managed_events", broker_errors.Unavailable("down", status=502))
    counts = _run(session, fake_broker, cipher)
    assert counts == {"links_unreachable": 1, "confirmed": 1}
    assert unreachable_row.status is EventStatus.CONFIRMED  # nothing concluded from silence
    assert row.status is EventStatus.CONFIRMED


def test_a_revoked_grant_marks_the_link_and_is_counted_unreachable(
    session, riley_link, fake_broker, cipher
):
    interview, row = _interview(
        session, riley_link, InterviewStatus.SCHEDULED, EventStatus.CONFIRMED
    )
    fake_broker.fail("managed_events", broker_errors.NeedsReauth("revoked", status=401))
    assert _run(session, fake_broker, cipher) == {"links_unreachable": 1}
    session.refresh(riley_link)
    assert (riley_link.status, riley_link.attention) == (
        LinkStatus.NEEDS_ATTENTION,
        Attention.RECONNECT,
    )
    assert "calendar.needs_attention" in _actions(session)
    assert interview.status is InterviewStatus.SCHEDULED and row.status is EventStatus.CONFIRMED
    assert _run(session, fake_broker, cipher) == {}, "a link needing attention is not read again"
    assert fake_broker.called("managed_events") == 1
