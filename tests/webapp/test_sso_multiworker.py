"""First sign-ins racing each other across gunicorn workers on PostgreSQL (the PostgreSQL pass
of .ci/run): a double-click or two tabs finishing the same first sign-in open one account bound
once; two identities naming one address never both get it; and each sign-in stays inside the
organisation it was started for, even when a neighbour verified the same domain with the same
provider.

The provider (oidc-provider-mock on loopback) holds every token request until all the tabs'
requests have arrived, so the workers reach the admission together. Only the ``testing``
environment may reach a provider on loopback over plain http, so the workers run in it.
"""

from __future__ import annotations

import html
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from models import AuditEntry, LinkStatus, Role, ServiceAccountLink, User
from tests.conftest import CSRF_RE
from tests.factories import make_org, make_user
from tests.idp import Idp
from tests.tenants import seed_neighbour, snapshot
from tests.webapp.test_multiworker import gunicorn, postgres_only  # noqa: F401 (fixture)
from tests.webapp.test_sso import DOMAIN, configure, verify_domain

CONTINUE = re.compile(r'id="sso-continue" href="([^"]+)"')
SSO_ENV = {
    "RENDEZVOUS_ENV": "testing",
    "RENDEZVOUS_SSO_ALLOW_INSECURE_ISSUERS": "true",
    # Many tabs start from one loopback address within seconds.
    "RENDEZVOUS_LOGIN_RATE_LIMIT": "1000 per minute",
}


@pytest.fixture
def idp():
    provider = Idp()
    yield provider
    provider.stop()


def _tab(base: str, idp: Idp, email: str, sub: str, organisation_id: int):
    """A browser tab that started a sign-in and authorized at the provider, not yet back: its
    session and the URL the provider sends it back to."""
    browser = requests.Session()
    token = CSRF_RE.search(browser.get(base + "/login/sso", timeout=10).text).group(1)
    started = browser.post(
        base + "/login/sso",
        data={"csrf_token": token, "email": email, "organisation_id": organisation_id},
        timeout=10,
    )
    assert started.status_code == 200, started.text[:500]
    back = idp.authorize(html.unescape(CONTINUE.search(started.text).group(1)), sub)
    return browser, back


def _come_back_at_once(idp: Idp, tabs):
    """Every tab's browser returns from the provider at the same time; their answers."""
    idp.token_barrier = threading.Barrier(len(tabs))

    def finish(tab):
        browser, back = tab
        return browser.get(back, allow_redirects=False, timeout=60)

    with ThreadPoolExecutor(len(tabs)) as pool:
        return list(pool.map(finish, tabs))


def _accounts(session, organisation_id, email):
    session.expire_all()
    return list(
        session.scalars(
            select(User).where(User.organisation_id == organisation_id, User.email == email)
        )
    )


def _audit(session, organisation_id, action):
    return list(
        session.scalars(
            select(AuditEntry).where(
                AuditEntry.organisation_id == organisation_id, AuditEntry.action == action
            )
        )
    )


def _neighbour_on_the_same_provider(session, cipher, idp, people):
    """A second organisation that verified the same domain (Google Workspace) and signs in with
    the same issuer, holding namesakes of ``people``."""
    neighbour = seed_neighbour(session, cipher, people)
    link = session.scalar(
        select(ServiceAccountLink).where(
            ServiceAccountLink.organisation_id == neighbour.org.id,
            ServiceAccountLink.domain == DOMAIN,
        )
    )
    link.provider, link.status = "google", LinkStatus.ACTIVE
    session.commit()
    their_admin = make_user(session, neighbour.org, Role.ADMIN, email="admin@neighbour.example")
    configure(session, cipher, their_admin, idp.url, create=True)
    return neighbour


def test_tabs_finishing_one_first_sign_in_open_one_account_per_organisation(
    postgres_only,  # noqa: F811
    app,
    session,
    cipher,
    org,
    database_url,
    redis_url,
    sandbox,
    idp,
    tmp_path,
):
    address = f"casey.ng@{DOMAIN}"
    admin = make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}")
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url, create=True)
    # The neighbour verified the same domain and uses the same issuer (as every Google
    # Workspace does): the same person (sub) signs in to each organisation separately.
    neighbour = make_org(session, "Neighbour on the same provider")
    verify_domain(session, neighbour)
    their_admin = make_user(session, neighbour, Role.ADMIN, email=f"it.admin@{DOMAIN}")
    configure(session, cipher, their_admin, idp.url, create=True)
    idp.user("idp-sub-casey", email=address)

    with gunicorn(sandbox, database_url, redis_url, tmp_path, extra_env=SSO_ENV) as (base, out):
        ours = [_tab(base, idp, address, "idp-sub-casey", org.id) for _ in range(6)]
        theirs = [_tab(base, idp, address, "idp-sub-casey", neighbour.id) for _ in range(4)]
        answers = _come_back_at_once(idp, ours + theirs)
        assert [a.status_code for a in answers] == [302] * 10, out()[-3000:]
        assert all(a.headers["Location"] == "/" for a in answers)
        # Every tab holds a session of its own organisation's account.
        homes = [browser.get(base + "/", timeout=10) for browser, _ in ours + theirs]
        assert all(h.status_code == 200 for h in homes)
        assert all(org.name in h.text for h in homes[:6])
        assert all(neighbour.name in h.text for h in homes[6:])

    for organisation, tabs in ((org, 6), (neighbour, 4)):
        [account] = _accounts(session, organisation.id, address)
        assert (account.sso_issuer, account.sso_sub) == (idp.url, "idp-sub-casey")
        assert account.role is Role.RECRUITER
        assert len(_audit(session, organisation.id, "sso.user_created")) == 1
        logins = _audit(session, organisation.id, "sso.login")
        assert len(logins) == tabs
        assert {entry.target_id for entry in logins} == {str(account.id)}
        assert not _audit(session, organisation.id, "sso.login_refused")


def test_two_identities_naming_one_address_never_both_get_the_account(
    postgres_only,  # noqa: F811
    app,
    session,
    cipher,
    org,
    database_url,
    redis_url,
    sandbox,
    idp,
    tmp_path,
):
    admin = make_user(session, org, Role.ADMIN, email=f"it.admin@{DOMAIN}")
    # Riley has a password account (a first sign-in binds it); Sam has none (it creates one).
    riley = make_user(session, org, Role.RECRUITER, email=f"riley.chen@{DOMAIN}")
    sam = f"sam.okafor@{DOMAIN}"
    verify_domain(session, org)
    configure(session, cipher, admin, idp.url, create=True)
    neighbour = _neighbour_on_the_same_provider(session, cipher, idp, [riley])
    twin = neighbour.twins[riley.email]
    before = snapshot(session, neighbour.org.id)
    subs = {riley.email: ("sub-riley-a", "sub-riley-b"), sam: ("sub-sam-a", "sub-sam-b")}
    for address, pair in subs.items():
        for sub in pair:
            idp.user(sub, email=address)

    with gunicorn(sandbox, database_url, redis_url, tmp_path, extra_env=SSO_ENV) as (base, out):
        tabs, who = [], []
        for address, pair in subs.items():
            for sub in pair:
                for _ in range(3):
                    tabs.append(_tab(base, idp, address, sub, org.id))
                    who.append((address, sub))
        answers = _come_back_at_once(idp, tabs)
        # Each tab's browser, with whatever cookies it was given, asks for a signed-in page.
        homes = [browser.get(base + "/", allow_redirects=False, timeout=10) for browser, _ in tabs]
        log = out()[-3000:]

    assert all(a.status_code in (302, 403) for a in answers), log
    for address, pair in subs.items():
        [account] = _accounts(session, org.id, address)
        assert account.sso_issuer == idp.url and account.sso_sub in pair
        winner = account.sso_sub
        for (addr, sub), answer, home in zip(who, answers, homes, strict=True):
            if addr != address:
                continue
            if sub == winner:
                assert answer.status_code == 302 and answer.headers["Location"] == "/", [
                    (r.detail, r.target_label) for r in _audit(session, org.id, "sso.login_refused")
                ]
                assert home.status_code == 200 and org.name in home.text
            else:
                # The other identity is told, and signed in nowhere: its browser is sent to
                # the sign-in page.
                assert answer.status_code == 403
                assert "another identity" in answer.text
                assert home.status_code == 302, home.text[:300]
                assert home.headers["Location"].startswith("/login")
        logins = [e for e in _audit(session, org.id, "sso.login") if e.target_id == str(account.id)]
        assert len(logins) == 3
    refusals = _audit(session, org.id, "sso.login_refused")
    assert len(refusals) == 6
    assert {r.detail["reason"] for r in refusals} == {"address bound to another identity"}
    # Nothing of the neighbour's (same domain, same provider, same addresses) was touched.
    session.refresh(twin)
    assert (twin.sso_issuer, twin.sso_sub, twin.last_login_at) == (None, None, None)
    assert not _accounts(session, neighbour.org.id, sam)
    assert not _audit(session, neighbour.org.id, "sso.login")
    assert snapshot(session, neighbour.org.id) == before
