"""Loops offered through candidate links race each other and the recruiter across gunicorn
workers on PostgreSQL: three candidates (each with their own link to a loop over the same
people) and the recruiter booking a fourth such loop pick the same itinerary at once; the
sessions' claims let exactly one loop have it, the others keep nothing and their links stay
open (the PostgreSQL pass of .ci/run runs this)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from sqlalchemy import select

from models import InterviewLoop, InterviewStatus, LoopState, SchedulingLink, SlotClaim
from tests.conftest import CSRF_RE
from tests.webapp.loop_support import plan_for
from tests.webapp.test_multiworker import SECRET_KEY, _our_events, _scheduled, gunicorn
from tests.webapp.test_scheduling import actor_of
from webapp.security import Sealer
from webapp.services.loops import compose
from webapp.services.loops import links as loop_links

OPTION_RE = re.compile(r'name="option" id="[^"]+" value="([^"]+)"')


@pytest.fixture
def on_postgres(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several worker processes need PostgreSQL (the PostgreSQL pass of .ci/run)")


def test_candidates_and_the_recruiter_racing_for_one_itinerary_make_one_loop(
    on_postgres, app, session, sandbox, org, recruiter, panel, database_url, redis_url, tmp_path
):
    from tests.webapp.test_booking_claims import run_together, web_login

    sealer = Sealer.from_secret(SECRET_KEY)  # the serving app's
    (_a, la), (_b, lb) = panel
    people = [[la], [lb], [la], [la, lb]]
    loops = [
        compose.compose_loop(
            session,
            sealer,
            actor_of(recruiter),
            plan_for(people, title=f"Onsite {n}", candidate_tzid="Europe/London"),
        )
        for n in range(4)
    ]
    tokens = [
        loop_links.offer_loop(session, sealer, actor_of(recruiter), loop.uid, expires_days=3)[1]
        for loop in loops[:3]
    ]
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, _out):
        pages = [requests.Session() for _ in tokens]
        forms = [
            s.get(f"{base}/c/{t}", timeout=60).text for s, t in zip(pages, tokens, strict=True)
        ]
        options = OPTION_RE.findall(forms[0])
        assert options, forms[0][:500]
        option = options[0]
        assert all(option in OPTION_RE.findall(f) for f in forms)
        browser = web_login(base, recruiter.email)
        page = browser.get(f"{base}/schedule/loops/{loops[3].uid}", timeout=60).text
        assert option in page
        # Every racer's aggregator check passes before anyone's claims commit.
        sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)

        def candidate(n):
            def go():
                response = pages[n].post(
                    f"{base}/c/{tokens[n]}",
                    timeout=60,
                    allow_redirects=False,
                    data={"csrf_token": CSRF_RE.search(forms[n]).group(1), "option": option},
                )
                assert response.status_code in (303, 409), response.text[:300]
                return ("won" if response.status_code == 303 else "lost", n)

            return go

        def recruiter_books():
            response = browser.post(
                f"{base}/schedule/loops/{loops[3].uid}/book",
                timeout=60,
                allow_redirects=False,
                data={"csrf_token": CSRF_RE.search(page).group(1), "option": option},
            )
            assert response.status_code in (303, 409), response.text[:300]
            return ("won" if response.status_code == 303 else "lost", 3)

        outcomes = run_together([candidate(0), candidate(1), candidate(2), recruiter_books])
        sandbox.call("DELETE", "/faults")
        interviews = _scheduled(session)
    assert sorted(o for o, _n in outcomes) == ["lost"] * 3 + ["won"], outcomes
    [winner] = [n for o, n in outcomes if o == "won"]
    session.expire_all()
    states = [session.get(InterviewLoop, loop.id).state for loop in loops]
    assert states == [LoopState.BOOKED if n == winner else LoopState.DRAFT for n in range(4)]
    assert len(interviews) == 4 and all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    holders = {c.interview_id for c in session.scalars(select(SlotClaim))}
    assert holders == {i.id for i in interviews}
    for n, loop in enumerate(loops[:3]):
        link = session.scalar(select(SchedulingLink).where(SchedulingLink.loop_id == loop.id))
        assert (link.used_at is not None) == (n == winner), n  # a loser's link stays open
    starts = sorted(e["start"] for e in _our_events(sandbox, recruiter.email))
    assert len(starts) == 4
    first = dt.datetime.fromisoformat(option.split(",")[0]).astimezone(dt.UTC)
    assert starts[0] == first.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_double_submit_of_a_loop_link_books_once_across_workers(
    on_postgres, app, session, sandbox, org, recruiter, panel, database_url, redis_url, tmp_path
):
    """The candidate's form posted twice at once (a double click reaching two workers): one
    request books the loop, the other shows that booking; four sessions, one link use."""
    from tests.webapp.test_booking_claims import run_together

    sealer = Sealer.from_secret(SECRET_KEY)
    (_a, la), (_b, lb) = panel
    loop = compose.compose_loop(
        session,
        sealer,
        actor_of(recruiter),
        plan_for([[la], [lb], [la], [la, lb]], candidate_tzid="Europe/London"),
    )
    _link, token = loop_links.offer_loop(
        session, sealer, actor_of(recruiter), loop.uid, expires_days=3
    )
    with gunicorn(sandbox, database_url, redis_url, tmp_path, jobs_worker=True) as (base, _out):
        with requests.Session() as candidate:
            form = candidate.get(f"{base}/c/{token}", timeout=60).text
            option = OPTION_RE.findall(form)[0]
            sandbox.add_fault(method="POST", path="/v1/sequenced_availability", latency_ms=400)

            def submit():
                response = candidate.post(
                    f"{base}/c/{token}",
                    timeout=60,
                    allow_redirects=False,
                    data={"csrf_token": CSRF_RE.search(form).group(1), "option": option},
                )
                assert response.status_code in (200, 303), response.text[:300]
                if response.status_code == 200:
                    assert "Your interviews are booked" in response.text
                return response.status_code

            codes = run_together([submit, submit])
            sandbox.call("DELETE", "/faults")
            interviews = _scheduled(session)
    assert sorted(codes) == [200, 303], codes
    session.expire_all()
    assert session.get(InterviewLoop, loop.id).state is LoopState.BOOKED
    assert len(interviews) == 4 and all(i.status is InterviewStatus.SCHEDULED for i in interviews)
    assert len(_our_events(sandbox, recruiter.email)) == 4
