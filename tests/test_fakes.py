"""The in-memory FakeBroker keeps to the broker port, and refuses what it does not model."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from broker import errors
from broker.port import CalendarBroker
from tests.fakes import FakeBroker, NotFaked, credentials


def test_the_fake_has_every_method_of_the_port_with_its_parameters():
    fake = FakeBroker()
    assert isinstance(fake, CalendarBroker)
    for name, method in inspect.getmembers(CalendarBroker, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = inspect.signature(getattr(fake, name))
        theirs = inspect.signature(method)
        # The same parameters, of the same kinds, with the same defaults.
        expected = [(p.name, p.kind, p.default) for p in list(theirs.parameters.values())[1:]]
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == expected, name


def test_queued_failures_are_raised_in_order_and_none_answers_normally():
    fake = FakeBroker()
    creds = credentials("acc_riley")
    fake.put_event("acc_riley", "cal_1", "rdv-1")
    fake.fail("managed_events", None, errors.Unavailable(status=503))
    assert [e.event_id for e in fake.managed_events(creds)] == ["rdv-1"]
    with pytest.raises(errors.Unavailable):
        fake.managed_events(creds)
    assert len(fake.managed_events(creds)) == 1
    with pytest.raises(ValueError):
        fake.fail("no_such_method", errors.Unavailable())


def test_deleted_events_are_reported_only_when_asked():
    fake = FakeBroker()
    creds = credentials("acc_riley")
    fake.put_event("acc_riley", "cal_1", "rdv-1")
    fake.delete_event(creds, "cal_1", "rdv-1")
    assert fake.managed_events(creds) == ()
    [gone] = fake.managed_events(creds, include_deleted=True)
    assert gone.deleted and gone.event_id == "rdv-1"


def test_batches_keep_the_aggregators_limits_and_only_a_service_account_may_send():
    from broker.types import ServiceAccountAuthorizationRequest

    fake = FakeBroker()
    request = ServiceAccountAuthorizationRequest(
        email="a@fabrikam.example", callback_url="https://x.example/cb", state="s", scope="x"
    )
    with pytest.raises(errors.Forbidden):
        fake.authorize_service_account_users(credentials("acc_riley"), [request])
    with pytest.raises(errors.Invalid):
        fake.authorize_service_account_users(credentials("ser_fab"), [request] * 51)
    fake.authorize_service_account_users(credentials("ser_fab"), [request] * 50)
    assert [len(b) for b in fake.batches] == [50]


def test_what_is_not_modelled_is_refused_not_answered():
    fake = FakeBroker()
    with pytest.raises(NotFaked, match="userinfo"):
        fake.userinfo(credentials("acc_riley"))
    with pytest.raises(NotFaked, match="window"):
        fake.managed_events(credentials("acc_riley"), start=dt.date.today())
