"""Nothing lost, nothing doubled: a hypothesis state machine drives create / reschedule / cancel /
external deletes while the sandbox injects faults (timeout, 5xx, 429, failed refresh, 423), runs
the retrying jobs and reconciliation, and checks the invariants after every step:

* never an event without its interview (every ``rdv-`` event in a calendar is held by a row);
* never two events for one interview (one event per CreatedEvent row at most);
* once the broker is back and the jobs have run, every scheduled interview has its event and no
  cancelled, failed or cancelled-in-calendar interview has one;
* never two live interviews whose times overlap for a shared panel member, however many
  schedulers book at once (``race``: two to four threads, each with its own database session,
  book overlapping times for panels that may share someone, as two recruiters' tabs would).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from broker.cronofy import CronofyBroker
from models import CreatedEvent, Interview, InterviewStatus, LinkStatus, ProfileLink, Role
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.factories import make_org, make_user
from tests.held_jobs import HeldJobs
from tests.webapp.scheduling_support import link_calendar, next_weekday
from tests.webapp.test_scheduling import actor_of, sealer_of
from tests.webapp.test_scheduling_sync import run_retries
from webapp import deps
from webapp.services.availability import model
from webapp.services.errors import ServiceError
from webapp.services.scheduling import booking, rescheduling, sync

FAULTS = {
    "5xx": [
        {"method": "*", "path": "/v1/calendars/*/events", "status": 503},
        {"method": "GET", "path": "/v1/events", "status": 500},
    ],
    "429": [
        {
            "method": "*",
            "path": "/v1/calendars/*/events",
            "status": 429,
            "headers": {"Retry-After": "0"},
        }
    ],
    "timeout": [{"method": "*", "path": "/v1/calendars/*/events", "latency_ms": 1500}],
    "refresh": [{"method": "POST", "path": "/oauth/token", "status": 503}],
    "423": [
        {
            "method": "*",
            "path": "/v1/calendars/*/events",
            "status": 423,
            "body": {"error": "profile_disconnected"},
        }
    ],
}


@pytest.fixture
def machine_world(app, session, sandbox):
    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    recruiter = make_user(
        session, org, Role.RECRUITER, email="riley.chen@northwind.example", name="Riley Chen"
    )
    link = link_calendar(app, session, sandbox, recruiter)
    colleague = make_user(
        session, org, Role.RECRUITER, email="morgan.lee@northwind.example", name="Morgan Lee"
    )
    link_calendar(app, session, sandbox, colleague)
    # Adapter-level retries off and short timeouts: the app's own retry path is under test.
    deps.broker.install(
        app,
        CronofyBroker(
            SANDBOX_CLIENT_ID,
            SANDBOX_CLIENT_SECRET,
            api_base_url=sandbox.url,
            app_base_url=sandbox.url,
            max_retries=0,
            timeout=(1, 1),
        ),
    )
    return recruiter, link


def test_nothing_lost_nothing_doubled_under_faults(app, session, sandbox, machine_world):
    recruiter, host = machine_world
    me = actor_of(recruiter)
    other = session.scalar(select(ProfileLink).where(ProfileLink.id != host.id))
    panels = {"host": (host,), "both": (host, other), "other": (other,)}
    seal = sealer_of(app)
    starts = itertools.count()
    #: uid → (start, end, link ids of the panel) as booked: the test's own record, kept across
    #: examples (the database is too).
    times: dict[str, tuple[dt.datetime, dt.datetime, frozenset[int]]] = {}
    first_day = next_weekday(2)

    def next_start() -> dt.datetime:
        n = next(starts)  # distinct future times; the availability check is not under test here
        day = first_day + dt.timedelta(days=n // 8)
        return dt.datetime.combine(day, dt.time(8 + n % 8), dt.UTC)

    def jobs():
        return deps.jobs.of(app)

    def calendar_ids() -> list[str]:
        events = sandbox.call("GET", "/events", params={"email": host.account_email})["events"]
        return [e["event_id"] for e in events if (e.get("event_id") or "").startswith("rdv-")]

    class Machine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            sandbox.call("DELETE", "/faults")
            self.uids: list[str] = []
            self.faulty = False
            self.timeouts = False
            self.times = times

        def _restore_link(self):
            session.expire_all()
            link = session.get(ProfileLink, host.id)
            if link.status is not LinkStatus.ACTIVE:  # the person reconnects
                link.status = LinkStatus.ACTIVE
                session.commit()

        def _interview(self, index: int) -> Interview | None:
            if not self.uids:
                return None
            session.expire_all()
            return session.scalar(
                select(Interview).where(Interview.uid == self.uids[index % len(self.uids)])
            )

        @rule(video=st.booleans())
        def create(self, video):
            query = model.Query(panel_link_ids=(host.id,), duration=60)
            start = next_start()
            try:
                interview, payload = booking.create_interview(
                    session,
                    deps.broker.of(app),
                    deps.cipher.of(app),
                    seal,
                    me,
                    booking.NewInterview(
                        query=query,
                        start=start,
                        candidate_name="Cand",
                        candidate_email="cand@gmail.example",
                        title="Prop",
                        video=video,
                    ),
                    check_slot=False,
                    jobs=jobs(),  # the write job runs at once
                )
            except ServiceError:
                return
            self.uids.append(interview.uid)
            self.times[interview.uid] = (
                start,
                start + dt.timedelta(minutes=60),
                frozenset({host.id}),
            )

        @rule(data=st.data(), racers=st.integers(2, 4))
        def race(self, data, racers):
            """Several schedulers at once, around a new time or one already booked; the
            aggregator check is skipped (it cannot see pending bookings): claims alone decide."""
            # Draw the same way whatever happened so far (who won a race is up to the threads).
            existing, index = data.draw(st.booleans()), data.draw(st.integers(0, 50))
            taken = sorted(t[0] for t in self.times.values())
            around = taken[index % len(taken)] if taken and existing else next_start()
            asks = [
                (
                    data.draw(st.sampled_from(sorted(panels))),
                    around + dt.timedelta(minutes=data.draw(st.sampled_from([-30, 0, 15, 45]))),
                    data.draw(st.sampled_from([30, 60])),
                )
                for _ in range(racers)
            ]
            barrier = threading.Barrier(racers)
            won: list[tuple[int, str, str, tuple]] = []

            def attempt(panel_name, start, minutes):
                links = panels[panel_name]
                with deps.database.of(app).sessions() as own:
                    barrier.wait(timeout=30)
                    try:
                        interview, payload = booking.create_interview(
                            own,
                            deps.broker.of(app),
                            deps.cipher.of(app),
                            seal,
                            me,
                            booking.NewInterview(
                                query=model.Query(
                                    panel_link_ids=tuple(link.id for link in links),
                                    duration=minutes,
                                ),
                                start=start,
                                candidate_name="Racer",
                                candidate_email="racer@gmail.example",
                                title="Race",
                            ),
                            check_slot=False,
                            jobs=HeldJobs(),  # the winners' writes run after the race, below
                        )
                    except ServiceError:  # taken, or a calendar needing reconnection now
                        return
                    won.append(
                        (
                            interview.id,
                            interview.uid,
                            payload,
                            (
                                start,
                                start + dt.timedelta(minutes=minutes),
                                frozenset(link.id for link in links),
                            ),
                        )
                    )

            threads = [threading.Thread(target=attempt, args=ask) for ask in asks]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            for interview_id, uid, payload, times in won:
                self.uids.append(uid)
                self.times[uid] = times
                with app.app_context():
                    jobs().enqueue("scheduling.write_interview", interview_id, payload)

        @rule(index=st.integers(0, 20))
        def reschedule(self, index):
            interview = self._interview(index)
            if interview is None or interview.status is not InterviewStatus.SCHEDULED:
                return
            start = next_start()
            try:
                moved, payload = rescheduling.reschedule_interview(
                    session,
                    deps.broker.of(app),
                    deps.cipher.of(app),
                    seal,
                    me,
                    interview.uid,
                    start,
                    check_slot=False,
                    jobs=jobs(),  # the write job runs at once
                )
            except ServiceError:
                session.rollback()
                return
            _was, was_end, links = self.times[moved.uid]
            self.times[moved.uid] = (start, start + (was_end - _was), links)

        @rule(index=st.integers(0, 20))
        def cancel(self, index):
            interview = self._interview(index)
            if interview is None:
                return
            try:
                booking.cancel_interview(session, me, interview.uid, jobs=jobs())
            except ServiceError:
                return

        @rule(index=st.integers(0, 20))
        def delete_in_calendar(self, index):
            interview = self._interview(index)
            if interview is None or interview.events[0].event_id not in calendar_ids():
                return
            sandbox.call(
                "POST",
                "/external-change",
                json={
                    "email": host.account_email,
                    "action": "delete",
                    "event_id": interview.events[0].event_id,
                },
            )

        @rule(kind=st.sampled_from(sorted(FAULTS)))
        def fault_on(self, kind):
            sandbox.call("DELETE", "/faults")
            sandbox.call("POST", "/faults", json={"rules": FAULTS[kind]})
            self.timeouts = self.timeouts or kind == "timeout"
            if kind == "refresh":
                sandbox.call("POST", "/tokens/expire", json={"email": host.account_email})
            self.faulty = True

        @precondition(lambda self: self.faulty)
        @rule()
        def fault_off(self):
            sandbox.call("DELETE", "/faults")
            self._restore_link()
            self.faulty = False

        @rule()
        def run_jobs(self):
            run_retries(app)

        @rule()
        def deliver(self):
            sandbox.deliver()

        @rule()
        def reconcile(self):
            try:
                sync.reconcile(
                    session,
                    deps.broker.of(app),
                    deps.cipher.of(app),
                )
            except ServiceError:
                session.rollback()

        @invariant()
        def never_two_live_interviews_overlap_for_a_shared_member(self):
            session.expire_all()
            live = [
                i.uid
                for i in session.scalars(
                    select(Interview).where(
                        Interview.status.in_((InterviewStatus.PENDING, InterviewStatus.SCHEDULED))
                    )
                )
            ]
            for a, b in itertools.combinations(sorted(live), 2):
                (s1, e1, p1), (s2, e2, p2) = self.times[a], self.times[b]
                assert not (p1 & p2 and s1 < e2 and s2 < e1), (self.times[a], self.times[b])

        @invariant()
        def never_an_event_without_its_interview_nor_two_for_one(self):
            held = {row.event_id for row in session.scalars(select(CreatedEvent))}
            present = calendar_ids()
            assert len(present) == len(set(present)), present
            assert set(present) <= held, set(present) - held

        def teardown(self):
            # The broker is back: jobs and reconciliation must converge.
            sandbox.call("DELETE", "/faults")
            self._restore_link()
            if self.timeouts:  # a timed-out request may still land at the aggregator
                time.sleep(1.6)
            for _ in range(5):
                if not run_retries(app):
                    break
            sync.reconcile(session, deps.broker.of(app), deps.cipher.of(app))
            session.expire_all()
            present = set(calendar_ids())
            for uid in self.uids:
                interview = session.scalar(select(Interview).where(Interview.uid == uid))
                events = {e.event_id for e in interview.events}
                assert interview.status not in (
                    InterviewStatus.PENDING,
                    InterviewStatus.CANCELLING,
                ), interview.status
                if interview.status is InterviewStatus.SCHEDULED:
                    assert events <= present, (uid, "scheduled without its event")
                else:
                    assert not events & present, (uid, interview.status, "event left behind")

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
