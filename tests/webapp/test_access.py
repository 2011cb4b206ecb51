"""Deny by default: every route declares who may use it, the declaration is written down in one
table here, and it is enforced for every role.

Adding a route means adding a row to ACCESS. The test fails on a route without a row, on a row
that disagrees with the route's declared policy, and on any role that gets through (or is kept
out) contrary to the table.
"""

import re

import pytest

from models import LOGIN_ROLES, Role
from tests.factories import make_org, make_user
from tests.tenants import leaked, seed_neighbour, snapshot
from webapp import deps
from webapp.security import ANY_USER, PUBLIC, policy_of

R, C, A, Q = Role.RECRUITER, Role.COORDINATOR, Role.ADMIN, Role.COMPLIANCE
EVERYONE = "everyone"  # no login needed
SIGNED_IN = "signed-in"  # any role

#: endpoint → who may use it. The one place the access policy is written down.
ACCESS: dict[str, object] = {
    "auth.login": EVERYONE,
    "auth.logout": SIGNED_IN,
    "auth.accept_invite": EVERYONE,
    "auth.choose_account": EVERYONE,
    "sso.start": EVERYONE,
    "sso.callback": EVERYONE,
    "sso.settings": {A},
    "sso.save": {A},
    "sso.password_login": {A},
    "main.home": SIGNED_IN,
    "main.my_managers": {C},
    "profile.show": SIGNED_IN,
    "profile.change_password": SIGNED_IN,
    "profile.set_timezone": SIGNED_IN,
    "admin.users": {A},
    "admin.invite": {A},
    "admin.user": {A},
    "admin.change_role": {A},
    "admin.set_timezone": {A},
    "admin.deactivate": {A},
    "admin.forget_sso_identity": {A},
    "admin.reactivate": {A},
    "admin.reissue_invite": {A},
    "admin.set_hours": {A},
    "admin.invite_to_log_in": {A},
    "admin.assign": {A},
    "admin.unassign": {A},
    "calendar.show": {R, C},
    "calendar.start_connect": {R, C},
    "calendar.callback": {R, C},
    "calendar.choose": {R, C},
    "calendar.confirm_disconnect": {R, C},
    "calendar.disconnect": {R, C},
    "calendar.add_colleague": {R, C},
    "calendar.remove_colleague": {R, C},
    "settings.integration": {A},
    "settings.business_toggle": {A},
    "settings.confirm_reset": {A},
    "settings.reset": {A},
    "hooks.push": EVERYONE,
    "hooks.service_account": EVERYONE,
    "hooks.smart_invite": EVERYONE,
    "enterprise.index": {A},
    "enterprise.retry_revocation": {A},
    "enterprise.resolved_revocation": {A},
    "enterprise.start_connect": {A},
    "enterprise.callback": {A},
    "enterprise.choose": {A},
    "enterprise.request_mailboxes": {A},
    "enterprise.list_summary": {A},
    "enterprise.list_unused": {A},
    "enterprise.request_rooms": {A},
    "enterprise.progress": {A},
    "enterprise.retry": {A},
    "enterprise.unlink": {A},
    "enterprise.confirm_unlink": {A},
    "enterprise.relink": {A},
    "enterprise.confirm_disconnect": {A},
    "enterprise.disconnect": {A},
    "enterprise.confirm_reset": {A},
    "enterprise.reset": {A},
    "schedule.index": {R, C},
    "schedule.create": {R, C},
    "schedule.preferences": {R, C},
    "schedule.save_preferences": {R, C},
    "schedule.connect_video": {R, C},
    "schedule.video_done": {R, C},
    "schedule_busy.show": {R, C},
    "pools.index": {A, R},
    "pools.create": {A, R},
    "pools.show": {A, R},
    "pools.update": {A, R},
    "pools.delete": {A, R},
    "pools.add_member": {A, R},
    "pools.update_member": {A, R},
    "pools.remove_member": {A, R},
    "interviews.index": {R, C},
    "interviews.show": {R, C},
    "interviews.cancel_form": {R, C},
    "interviews.cancel": {R, C},
    "interviews.reschedule_form": {R, C},
    "interviews.reschedule": {R, C},
    "interviews.status": {R, C},
    "candidate_links.index": {R},
    "candidate_links.create": {R},
    "candidate_links.revoke": {R},
    "candidate_links.offer_loop": {R},
    "loops.index": {R, C},
    "loops.create": {R, C},
    "loops.show": {R, C},
    "loops.reschedule": {R, C},
    "loops.book": {R, C},
    "loops.move": {R, C},
    "loops.cancel": {R, C},
    "loops.cancel_session": {R, C},
    "loops.move_session": {R, C},
    "candidate.page": EVERYONE,
    "candidate.book": EVERYONE,
    "candidate.calendar_file": EVERYONE,
    "candidate.reschedule_page": EVERYONE,
    "candidate.reschedule": EVERYONE,
    "candidate.cancel_page": EVERYONE,
    "candidate.cancel": EVERYONE,
    "outbox.index": {A},
    "outbox.show": {A},
    "outbox.html": {A},
    "outbox.attachment": {A},
    "compliance.inventory": {Q},
    "compliance.audit": {Q},
    "compliance.audit_export": {Q},
    "compliance.people": {Q},
    "compliance.person": {Q},
    "compliance.person_export": {Q},
    "compliance.propose_erasure": {Q},
    "compliance.erasures": {Q, A},
    "compliance.decide_erasure": {Q, A},
    "compliance.confirm_erasure": {Q, A},
    "compliance.erasure_receipt": {Q, A},
    "health.healthz": EVERYONE,
    "health.readyz": EVERYONE,
    "health.metrics": EVERYONE,  # no session: a bearer token (tests/webapp/test_metrics.py)
    # JSON API (issue 9): roles are the token owner's, checked by the API itself (sessions are
    # never accepted there: see test_the_api_never_accepts_a_session and tests/api/test_access.py).
    "api.me": SIGNED_IN,
    "api.update_me": SIGNED_IN,
    "api.calendar_links": {R, C},
    "api.link_calendars": {R, C},
    "api.disconnect_link": {R, C},
    "api.panel_members": {R, C},
    "api.rooms": {R, C},
    "api.availability": {R, C},
    "api.interviews": {R, C},
    "api.create_interview": {R, C},
    "api.interview": {R, C},
    "api.reschedule": {R, C},
    "api.cancel": {R, C},
    "api.scheduling_links": {R},
    "api.create_scheduling_link": {R},
    "api.revoke_scheduling_link": {R},
    "api.domains": {A},
    "api.mailboxes": {A},
    "api.request_mailboxes": {A},
    "api.inventory": {Q},
    "api.audit": {Q},
    "api.subject_export": {Q},
    "api.openapi_json": EVERYONE,
    "api.docs": EVERYONE,
    "api.fallback": SIGNED_IN,
    "api_tokens.index": SIGNED_IN,
    "api_tokens.create": SIGNED_IN,
    "api_tokens.revoke": SIGNED_IN,
}


def _declared(policy):
    if policy == PUBLIC:
        return EVERYONE
    if policy == ANY_USER:
        return SIGNED_IN
    return set(policy) if isinstance(policy, frozenset) else None


def test_every_route_is_in_the_table_and_agrees_with_its_declared_policy(app):
    missing, disagreeing = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        declared = _declared(getattr(view, "api_policy", None) or policy_of(view))
        if rule.endpoint not in ACCESS:
            missing.append(f"{rule.rule} ({rule.endpoint})")
        elif declared != ACCESS[rule.endpoint]:
            disagreeing.append(
                f"{rule.endpoint}: declared {declared}, table {ACCESS[rule.endpoint]}"
            )
    assert not missing, "routes missing from ACCESS: " + ", ".join(missing)
    assert not disagreeing, "; ".join(disagreeing)
    stale = set(ACCESS) - {r.endpoint for r in app.url_map.iter_rules()}
    assert not stale, f"ACCESS lists endpoints that no longer exist: {stale}"


def test_a_route_without_policy_is_refused(app, client):
    @app.route("/forgotten")
    def forgotten():
        return "should never be served"

    assert client.get("/forgotten").status_code == 403


def _sample_path(rule) -> str:
    """Fill the rule's variables with values that name nothing (ids that do not exist)."""
    return re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: "999999" if m.group(1) == "int" else "no-such-value",
        rule.rule,
    )


@pytest.fixture
def matrix_app(app_config):
    from webapp import create_app

    # CSRF would answer 400 before the access check; this test is about the access check.
    return create_app(dict(app_config, WTF_CSRF_ENABLED=False))


def _neighbour_path(rule, neighbour) -> str | None:
    """The rule's path naming the neighbour's records, or None when it names nothing of theirs."""
    values = {}
    for name in rule.arguments:
        value = "json" if name == "fmt" else neighbour.path_value(rule.endpoint, name)
        if value is None:
            return None
        values[name] = value
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: str(values[m.group(2)]), rule.rule)


@pytest.mark.parametrize("role", [None, *LOGIN_ROLES], ids=lambda r: r.value if r else "anonymous")
def test_every_route_admits_exactly_the_roles_in_the_table(matrix_app, session, role):
    """... with a neighbouring organisation holding the same address and rows naming it: the
    role's pages never show them, and the neighbour's ids reach nothing of theirs."""
    from tests.factories import PASSWORD

    client = matrix_app.test_client()
    neighbour = None
    if role is not None:
        user = make_user(session, make_org(session), role)
        neighbour = seed_neighbour(session, deps.cipher.of(matrix_app), [user])
        before = snapshot(session, neighbour.org.id)
        login = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert login.status_code == 302 and login.headers["Location"] == "/", login.headers
    problems = []
    for rule in matrix_app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint == "auth.logout":
            continue  # logout would end the session the loop relies on (tested elsewhere)
        allowed = ACCESS[rule.endpoint]
        if rule.endpoint.startswith("api.") and allowed != EVERYONE:
            continue  # token-checked, never by session: test_the_api_never_accepts_a_session
        admitted = allowed == EVERYONE or (
            role is not None and (allowed == SIGNED_IN or role in allowed)
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_sample_path(rule), method=method)
            location = response.headers.get("Location", "")
            kept_out = response.status_code == 403 or (
                response.status_code == 302 and location.startswith("/login?next=")
            )
            if admitted and kept_out:
                problems.append(f"{method} {rule.rule}: kept out ({response.status_code})")
            if not admitted and not kept_out:
                problems.append(f"{method} {rule.rule}: let in ({response.status_code})")
            if not admitted and role is None and response.status_code != 302:
                problems.append(f"{method} {rule.rule}: anonymous not sent to log in")
            if neighbour and leaked(neighbour, response.get_data(as_text=True)):
                problems.append(f"{method} {rule.rule}: shows the neighbour's records")
    if neighbour is not None:
        problems += _neighbour_problems(matrix_app, client, neighbour, user.id)
        if snapshot(session, neighbour.org.id) != before:
            problems.append("the neighbouring organisation's records changed")
    assert not problems, "\n".join(problems)


def _neighbour_problems(app, client, neighbour, own_id: int) -> list[str]:
    """Every route again, naming the neighbour's records; the pages about oneself; searches for
    the shared address."""
    address = next(iter(neighbour.twins))
    requests = [
        ("GET", f"/compliance/people/{own_id}"),
        ("GET", f"/compliance/people/{own_id}/export.json"),
        ("GET", f"/admin/users/{own_id}"),
        ("GET", f"/compliance/people?q={address}"),
        ("GET", f"/compliance/audit?target={address}"),
        ("GET", f"/compliance/audit?actor={address}"),
        ("GET", f"/compliance/audit/export.json?target={address}"),
        ("GET", f"/admin/calendar/enterprise/?q={address}"),
    ]
    for rule in app.url_map.iter_rules():
        skipped = ("static", "auth.logout", "auth.accept_invite", "api.fallback")
        if (
            rule.endpoint in skipped
            or rule.endpoint.startswith(("hooks.", "candidate."))
            or not rule.arguments
        ):
            continue
        path = _neighbour_path(rule, neighbour)
        if path is not None:
            requests += [(m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    problems = []
    for method, path in requests:
        response = client.open(path, method=method)
        if response.status_code >= 500:
            problems.append(f"{method} {path}: server error")
        found = leaked(neighbour, response.get_data(as_text=True), asked=path)
        if found:
            problems.append(f"{method} {path}: shows the neighbour's {found}")
        if response.status_code in (200, 201, 303) and method != "GET":
            problems.append(f"{method} {path}: accepted ({response.status_code})")
    return problems


def test_navigation_shows_each_role_only_what_it_may_open(client, auth, session):
    org = make_org(session)
    expectations = {
        Role.RECRUITER: (
            {"Home", "My profile"},
            {
                "Users",
                "Compliance",
                "My hiring managers",
                "Calendar integration",
                "Erasure requests",
            },
        ),
        Role.COORDINATOR: (
            {"Home", "My profile", "My hiring managers"},
            {"Users", "Compliance", "Calendar integration", "Erasure requests"},
        ),
        Role.ADMIN: (
            {"Home", "My profile", "Users", "Calendar integration", "Erasure requests"},
            {"Compliance", "My hiring managers"},
        ),
        Role.COMPLIANCE: (
            {"Home", "My profile", "Compliance", "Erasure requests"},
            {"Users", "My hiring managers", "Calendar integration"},
        ),
    }
    for role, (shown, hidden) in expectations.items():
        user = make_user(session, org, role)
        auth.login(user.email)
        page = client.get("/").get_data(as_text=True)
        nav = page[page.index('<nav aria-label="Main">') : page.index("</nav>")]
        for label in shown:
            assert f">{label}</a>" in nav, (role, label)
        for label in hidden:
            assert f">{label}</a>" not in nav, (role, label)
        auth.logout()


def test_the_api_never_accepts_a_session(matrix_app, session):
    """Whatever the role, a browser session gets 401 from every token-checked API route."""
    from tests.factories import PASSWORD

    problems = []
    for role in LOGIN_ROLES:
        client = matrix_app.test_client()
        user = make_user(session, make_org(session), role)
        assert (
            client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code
            == 302
        )
        for rule in matrix_app.url_map.iter_rules():
            if not rule.endpoint.startswith("api.") or ACCESS[rule.endpoint] == EVERYONE:
                continue
            path = re.sub(
                r"<(\w+)(?:\([^)]*\))?:(\w+)>",
                lambda m: "999999" if m.group(1) == "int" else "0" * 32,
                rule.rule,
            )
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                status = client.open(path, method=method).status_code
                if status != 401:
                    problems.append(f"{role.value} {method} {path}: {status}")
    assert not problems, "\n".join(problems)
