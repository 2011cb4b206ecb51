"""schemathesis over every operation of /api/v1/openapi.json, with a real token for each role and
a seeded organisation whose calendars live in the sandbox: no server errors, every response (and
status code) as documented, and no operation reachable without a token."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from models import Role
from tests.api.conftest import issue_token
from tests.factories import assign, make_org, make_user
from tests.webapp.scheduling_support import link_calendar

#: Modest, so the whole run stays well under a minute and a half.
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def app_config(app_config):
    # The fuzzer sends far more than a person would; limits are tested in test_auth.py.
    app_config["API_RATE_LIMIT"] = "1000000 per minute"
    return app_config


@pytest.fixture
def tokens_by_role(app, session, sandbox):
    """One organisation with every role; the schedulers' calendars are linked at the sandbox."""
    org = make_org(session)
    org.business_connect_enabled = True
    session.commit()
    recruiter = make_user(session, org, Role.RECRUITER, email="riley.chen@northwind.example")
    manager = make_user(session, org, Role.RECRUITER, email="dana.wright@contoso.example")
    coordinator = make_user(session, org, Role.COORDINATOR, email="morgan.lee@northwind.example")
    for user in (recruiter, manager, coordinator):
        link_calendar(app, session, sandbox, user)
    assign(session, coordinator, manager)
    people = {
        Role.RECRUITER: recruiter,
        Role.COORDINATOR: coordinator,
        Role.ADMIN: make_user(session, org, Role.ADMIN, email="it@northwind.example"),
        Role.COMPLIANCE: make_user(session, org, Role.COMPLIANCE),
    }
    tokens = {role: issue_token(session, user) for role, user in people.items()}
    tokens["org"] = org
    return tokens


@pytest.fixture
def enterprise_domain(app, session, sandbox, live_server, tokens_by_role):
    """A connected Enterprise Connect domain with a few of its people as users of the org."""
    from tests.conftest import AuthActions
    from tests.webapp.test_enterprise import FABRIKAM, connect_domain, users_on

    app.config["PUBLIC_BASE_URL"] = live_server.url  # the aggregator calls the app back
    client = app.test_client()
    auth = AuthActions(client)
    auth.login("it@northwind.example")
    users_on(session, tokens_by_role["org"], FABRIKAM[:3])
    return connect_domain(client, auth, session, sandbox)


@pytest.fixture
def api_schema(sandbox, app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


def _fuzz(case, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=CHECKS)


# One test per role (schemathesis's lazy schemas do not combine with parametrized fixtures).
@schema.parametrize()
@FUZZ
def test_every_operation_as_a_recruiter(case, tokens_by_role):
    _fuzz(case, tokens_by_role[Role.RECRUITER])


@schema.parametrize()
@FUZZ
def test_every_operation_as_a_coordinator(case, tokens_by_role):
    _fuzz(case, tokens_by_role[Role.COORDINATOR])


@schema.parametrize()
@FUZZ
def test_every_operation_as_an_it_admin(case, tokens_by_role, enterprise_domain):
    _fuzz(case, tokens_by_role[Role.ADMIN])


@schema.parametrize()
@FUZZ
def test_every_operation_as_a_compliance_reviewer(case, tokens_by_role):
    _fuzz(case, tokens_by_role[Role.COMPLIANCE])


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_operation_is_reachable_without_a_token(case, app_config):
    response = case.call()
    if case.method.upper() != case.operation.method.upper():
        # schemathesis also probes methods the path does not have: those never reach anything.
        assert response.status_code in (401, 405), (
            case.method,
            case.formatted_path,
            response.status_code,
        )
        return
    assert response.status_code == 401, (case.method, case.formatted_path, response.status_code)
    assert response.json()["error"]["code"] == "unauthorized"
    case.validate_response(response, checks=CHECKS)
