"""The API's own deny-by-default: every token-checked route admits exactly the roles written in
tests/webapp/test_access.py's ACCESS table, per token, and nothing without a token."""

from __future__ import annotations

import re

import pytest

from models import LOGIN_ROLES, Role
from tests.api.conftest import ApiClient, assert_error
from tests.tenants import leaked, seed_neighbour, snapshot
from tests.webapp.test_access import ACCESS, EVERYONE, SIGNED_IN
from webapp import deps
from webapp.api import OPERATIONS

ROLE_DENIED = "cannot use this operation."


def _sample(rule: str) -> str:
    return re.sub(
        r"<(\w+)(?:\([^)]*\))?:(\w+)>",
        lambda m: "999999" if m.group(1) == "int" else "0" * 32,
        rule,
    )


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and ACCESS[rule.endpoint] != EVERYONE:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


@pytest.mark.parametrize("role", LOGIN_ROLES, ids=lambda r: r.value)
def test_every_api_route_admits_exactly_the_roles_in_the_table(
    app, client, session, token_user, role
):
    """... with a neighbouring organisation holding the same address and rows naming it: no
    answer shows them, and the neighbour's ids reach nothing of theirs."""
    me = token_user(role)
    api = ApiClient(client, me.token)
    neighbour = seed_neighbour(session, deps.cipher.of(app), [me.user])
    before = snapshot(session, neighbour.org.id)
    problems = []
    for rule, method in _api_rules(app):
        allowed = ACCESS[rule.endpoint]
        admitted = allowed == SIGNED_IN or role in allowed
        response = api.request(method, _sample(rule.rule)[len("/api/v1") :])
        body = response.get_json(silent=True) or {}
        role_denied = response.status_code == 403 and ROLE_DENIED in body.get("error", {}).get(
            "message", ""
        )
        if response.status_code == 401:
            problems.append(f"{method} {rule.rule}: token refused")
        elif admitted and role_denied:
            problems.append(f"{method} {rule.rule}: kept out")
        elif not admitted and not role_denied:
            problems.append(f"{method} {rule.rule}: let in ({response.status_code})")
        if response.status_code >= 500:
            problems.append(f"{method} {rule.rule}: server error {response.status_code}")
        if leaked(neighbour, response.get_data(as_text=True)):
            problems.append(f"{method} {rule.rule}: shows the neighbour's records")
    # Again, naming the neighbour's records (and oneself where a route names a person).
    for rule, method in _api_rules(app):
        for path in {_neighbour_sample(rule, neighbour), _own_sample(rule, me.user.id)} - {None}:
            response = api.request(method, path[len("/api/v1") :])
            if response.status_code >= 500:
                problems.append(f"{method} {path}: server error {response.status_code}")
            found = leaked(neighbour, response.get_data(as_text=True), asked=path)
            if found:
                problems.append(f"{method} {path}: shows the neighbour's {found}")
            if response.status_code < 300 and method != "GET":
                problems.append(f"{method} {path}: accepted ({response.status_code})")
    if snapshot(session, neighbour.org.id) != before:
        problems.append("the neighbouring organisation's records changed")
    assert not problems, "\n".join(problems)


def _neighbour_sample(rule, neighbour) -> str | None:
    values = {name: neighbour.path_value(rule.endpoint, name) for name in rule.arguments}
    if not values or None in values.values():
        return None
    return re.sub(r"<(\w+)(?:\([^)]*\))?:(\w+)>", lambda m: str(values[m.group(2)]), rule.rule)


def _own_sample(rule, user_id: int) -> str | None:
    if set(rule.arguments) != {"user_id"}:
        return None
    return re.sub(r"<int:user_id>", str(user_id), rule.rule)


def test_no_api_route_is_reachable_without_a_token(app, client):
    api = ApiClient(client)
    for rule, method in _api_rules(app):
        assert_error(api.request(method, _sample(rule.rule)[len("/api/v1") :]), 401, "unauthorized")


def test_every_operation_is_in_the_table_with_the_roles_it_declares(app):
    for op in OPERATIONS:
        declared = op.policy
        expected = ACCESS[op.endpoint]
        if expected == SIGNED_IN:
            assert declared == "any-user", op.endpoint
        else:
            assert declared == frozenset(expected), op.endpoint


def test_a_route_without_an_api_policy_is_refused(app, client, token_user):
    def forgotten():
        return "never"

    forgotten.access_policy = "public"  # session level says public, but the API has no policy
    app.add_url_rule("/api/v1/forgotten", endpoint="api.forgotten", view_func=forgotten)
    response = ApiClient(client, token_user(Role.ADMIN).token).get("/forgotten")
    assert_error(response, 403, "forbidden")
