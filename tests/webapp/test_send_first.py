"""``busy.send_first``: a page's call is on the wire before the page goes on with its own work
(which would otherwise hold the call's thread back from the interpreter), and the page never
waits for more than that, the call's end, or ``SEND_WAIT``."""

from __future__ import annotations

import threading

import pytest

from broker.sent import announce_sent
from tests.webapp.test_scheduling import actor_of, broker_cipher, query_for
from webapp.services.availability import busy, free_slots

WAIT = 10  # seconds: only reached when something is broken


@pytest.fixture
def patient(monkeypatch):
    """A page that would wait far longer than any test for its call to leave: returning early
    can then only be the announcement (or the call's end)."""
    monkeypatch.setattr(busy, "SEND_WAIT", WAIT * 3)


def test_it_returns_once_the_request_is_on_the_wire_not_when_answered(patient):
    answer = threading.Event()

    def call():
        announce_sent()  # what the transport does once the request is written
        answer.wait(WAIT)
        return "slots"

    pending = busy.send_first(call)
    assert not pending.done()  # returned on the announcement, the answer still out
    answer.set()
    assert pending.result(WAIT) == "slots"


def test_a_call_that_never_announces_is_waited_for_until_it_ends(patient):
    """A broker that does not announce (a test double) leaves the page to wait for the call."""
    pending = busy.send_first(lambda: "slots")
    assert pending.done() and pending.result() == "slots"


def test_a_call_that_fails_first_lets_the_page_go_on_and_keeps_its_error(patient):
    def call():
        raise LookupError("the aggregator is away")

    pending = busy.send_first(call)
    assert pending.done()
    with pytest.raises(LookupError):
        pending.result()


def test_a_call_held_back_longer_than_the_wait_does_not_hold_the_page(monkeypatch):
    """Held back by the rate limiter, say: the page does its own work after ``SEND_WAIT``."""
    monkeypatch.setattr(busy, "SEND_WAIT", 0.01)
    go = threading.Event()

    def call():
        go.wait(WAIT)
        announce_sent()
        return "slots"

    pending = busy.send_first(call)
    assert not pending.done()
    go.set()
    assert pending.result(WAIT) == "slots"


def test_the_schedule_page_goes_on_only_once_its_call_is_written(
    app, session, sandbox, recruiter, panel, patient, monkeypatch
):
    """Through the whole stack (pycronofy's request handler, the transport, the pooled
    connection) against the sandbox, whose answer is held back by two seconds: ``start_grid``
    returns after the transport announced the written request (slowed down here, so a page
    that did not wait for it would return first) and before the answer."""
    from broker.cronofy import transport

    announced = threading.Event()
    announce = transport.announce_sent

    def slow_announce():
        threading.Event().wait(0.3)
        announced.set()
        announce()

    monkeypatch.setattr(transport, "announce_sent", slow_announce)
    broker, cipher = broker_cipher(app)
    sandbox.add_fault(method="POST", path="/v1/availability", latency_ms=2000)
    pending = free_slots.start_grid(
        session, broker, cipher, actor_of(recruiter), query_for(panel, duration=30), with_busy=False
    )
    assert announced.is_set()
    assert not pending._slots.done()  # the answer was still out
    assert pending.result().slots
