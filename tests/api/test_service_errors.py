"""Service errors are answered by their base class: one table, the same status and code as ever.

Each concrete error is raised inside a throwaway blueprint that uses the API's error handling,
so what is checked is the JSON a client receives, not a helper's return value.
"""

from __future__ import annotations

import inspect

import pytest
from flask import Blueprint, Flask

from webapp.api import errors as api_errors
from webapp.services import errors

#: Every error a service raises on purpose → (HTTP status, error code) as the API answers it.
#: Statuses and codes are the ones the API gave before the errors moved onto their bases.
EXPECTED: dict[type[errors.ServiceError], tuple[int, str]] = {
    errors.ServiceError: (422, "invalid"),
    errors.Invalid: (422, "invalid"),
    errors.Unprocessable: (422, "invalid"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Gone: (410, "gone"),
    errors.UpstreamFailed: (502, "calendar_write_failed"),
    errors.Unavailable: (503, "unavailable"),
    errors.StateRejected: (422, "invalid"),
    errors.Declined: (403, "forbidden"),
    errors.AggregatorTrouble: (503, "calendar_unavailable"),
    errors.NoBudgetNow: (503, "calendar_unavailable"),
    errors.ReconnectNeeded: (409, "reconnect_needed"),
    errors.ServiceAccountTrouble: (422, "invalid"),
    errors.WriteFailed: (502, "calendar_write_failed"),
    errors.SlotTaken: (409, "slot_taken"),
    errors.LinkUnusable: (410, "gone"),
    errors.ChangeRefused: (403, "forbidden"),
    errors.TokenRejected: (401, "unauthorized"),
    errors.KeyReused: (422, "idempotency_key_reused"),
    errors.KeyInUse: (409, "idempotency_key_in_use"),
}

BASES = {
    errors.Invalid,
    errors.Unprocessable,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.Gone,
    errors.UpstreamFailed,
    errors.Unavailable,
}


def _make(cls: type[errors.ServiceError], message: str) -> errors.ServiceError:
    if cls in (errors.LinkUnusable, errors.TokenRejected):
        return cls(message, "unknown")  # type: ignore[call-arg]
    return cls(message)


@pytest.fixture
def raising_client():
    """A client for an app whose ``/raise/<name>`` raises that service error."""
    app = Flask("service-errors")
    bp = Blueprint("raising", __name__)

    @bp.route("/raise/<name>")
    def raise_it(name: str):
        raise _make(getattr(errors, name), f"{name} happened.")

    @bp.route("/field")
    def with_field():
        raise errors.Invalid("Pick a later date.", field="start_date")

    api_errors.init_blueprint(bp)
    app.register_blueprint(bp)
    return app.test_client()


def test_every_service_error_in_the_module_has_an_expected_answer():
    found = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, errors.ServiceError)
    }
    assert found == set(EXPECTED)


def test_every_concrete_error_sits_on_exactly_one_base():
    for cls in set(EXPECTED) - BASES - {errors.ServiceError}:
        assert len([b for b in cls.__mro__ if b in BASES]) == 1, cls


def test_the_table_maps_bases_only():
    assert set(api_errors.STATUS) == BASES | {errors.ServiceError}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_error_is_answered_with_its_base_status_and_its_code(raising_client, cls):
    response = raising_client.get(f"/raise/{cls.__name__}")
    status, code = EXPECTED[cls]
    assert response.status_code == status
    assert response.get_json() == {
        "error": {"code": code, "message": f"{cls.__name__} happened.", "fields": {}}
    }


def test_a_new_error_on_a_base_needs_no_new_mapping(raising_client):
    class RoomBooked(errors.Conflict):
        pass

    assert api_errors._status_and_code(RoomBooked("Taken.")) == (409, None)


def test_the_field_an_error_names_is_reported(raising_client):
    response = raising_client.get("/field")
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"start_date": ["Pick a later date."]}
