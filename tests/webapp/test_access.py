"""Deny by default: every route declares who may use it, and the declaration is enforced."""

import pytest

from models import Role
from tests.factories import make_org, make_user
from webapp.security import ALL_ROLES, ANY_USER, PUBLIC, policy_of

#: Expected outcome per (path, role): 200 allowed, 403 refused, "login" sent to log in.
MATRIX = {
    "/": {None: "login", **{r: 200 for r in ALL_ROLES}},
    "/profile/": {None: "login", **{r: 200 for r in ALL_ROLES}},
    "/admin/users": {None: "login", Role.ADMIN: 200, Role.RECRUITER: 403, Role.COORDINATOR: 403,
                     Role.COMPLIANCE: 403},
    "/audit": {None: "login", Role.COMPLIANCE: 200, Role.ADMIN: 403, Role.RECRUITER: 403,
               Role.COORDINATOR: 403},
    "/managers": {None: "login", Role.COORDINATOR: 200, Role.ADMIN: 403, Role.RECRUITER: 403,
                  Role.COMPLIANCE: 403},
    "/admin/calendar/": {None: "login", Role.ADMIN: 200, Role.RECRUITER: 403,
                         Role.COORDINATOR: 403, Role.COMPLIANCE: 403},
    "/profile/calendar/": {None: "login", Role.RECRUITER: 200, Role.COORDINATOR: 200,
                           Role.ADMIN: 403, Role.COMPLIANCE: 403},
    "/login": {None: 200},
}


def test_every_route_declares_an_access_policy(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        policy = policy_of(app.view_functions[rule.endpoint])
        if policy is None or not (policy in (PUBLIC, ANY_USER) or isinstance(policy, frozenset)):
            undeclared.append(f"{rule.rule} ({rule.endpoint})")
    assert not undeclared, "routes without an access policy: " + ", ".join(undeclared)


def test_a_route_without_policy_is_refused(app, client):
    @app.route("/forgotten")
    def forgotten():
        return "should never be served"

    assert client.get("/forgotten").status_code == 403


@pytest.mark.parametrize("role", [None, *Role])
def test_access_matrix(client, auth, session, role):
    org = make_org(session)
    if role is not None:
        user = make_user(session, org, role)
        auth.login(user.email)
    for path, expected_by_role in MATRIX.items():
        if role not in expected_by_role:
            continue
        expected = expected_by_role[role]
        response = client.get(path)
        if expected == "login":
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login?next="), path
        else:
            assert response.status_code == expected, (path, role)


def test_navigation_shows_each_role_only_what_it_may_open(client, auth, session):
    org = make_org(session)
    expectations = {
        Role.RECRUITER: ({"Home", "My profile"},
                         {"Users", "Audit trail", "My hiring managers", "Calendar integration"}),
        Role.COORDINATOR: ({"Home", "My profile", "My hiring managers"},
                           {"Users", "Audit trail", "Calendar integration"}),
        Role.ADMIN: ({"Home", "My profile", "Users", "Calendar integration"},
                     {"Audit trail", "My hiring managers"}),
        Role.COMPLIANCE: ({"Home", "My profile", "Audit trail"},
                          {"Users", "My hiring managers", "Calendar integration"}),
    }
    for role, (shown, hidden) in expectations.items():
        user = make_user(session, org, role)
        auth.login(user.email)
        page = client.get("/").get_data(as_text=True)
        nav = page[page.index('<nav aria-label="Main">'):page.index("</nav>")]
        for label in shown:
            assert f">{label}</a>" in nav, (role, label)
        for label in hidden:
            assert f">{label}</a>" not in nav, (role, label)
        auth.logout()
