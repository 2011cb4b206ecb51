"""Arranging interview-loop tests: a plan of sessions over a panel, composed as a draft."""

from __future__ import annotations

import requests
from sqlalchemy import select

from models import Interview, InterviewLoop, LoopSession
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.test_scheduling import actor_of
from webapp import deps
from webapp.services.loops import compose
from webapp.services.loops import plan as loop_plan

CANDIDATE, CANDIDATE_EMAIL = "Ada Loop", "ada.loop@gmail.example"


def plan_for(people, *, titles=None, room=None, room_sessions=(), **kw) -> loop_plan.LoopPlan:
    """One session per entry of ``people`` (a list of link lists), 60 minutes each by default."""
    titles = titles or [f"Session {n}" for n in range(1, len(people) + 1)]
    sessions = tuple(
        loop_plan.SessionPlan(
            title=title,
            duration=kw.pop(f"duration{n}", 60) if f"duration{n}" in kw else 60,
            panel_link_ids=tuple(link.id for link in links),
            room=room if n in room_sessions else None,
            video=True,
        )
        for n, (title, links) in enumerate(zip(titles, people, strict=True), start=1)
    )
    return loop_plan.LoopPlan(
        title=kw.pop("title", "Onsite"),
        candidate_name=CANDIDATE,
        candidate_email=CANDIDATE_EMAIL,
        sessions=sessions,
        start_date=kw.pop("start_date", next_weekday(1)),
        days=kw.pop("days", 3),
        tzid=kw.pop("tzid", "Europe/London"),
        **kw,
    )


def compose_loop(app, session, user, plan) -> InterviewLoop:
    return compose.compose_loop(session, deps.sealer.of(app), actor_of(user), plan)


def session_interviews(session, loop) -> list[Interview]:
    session.expire_all()
    rows = session.scalars(
        select(LoopSession).where(LoopSession.loop_id == loop.id).order_by(LoopSession.ordinal)
    )
    return [session.get(Interview, r.interview_id) for r in rows if r.interview_id]


def option_posted(base, browser, token, path, value, *, said="done", refused=None):
    """A request for ``run_together``: a loop's start time ``value`` posted to ``path`` with the
    signed-in browser's cookies (in a session of its own); ``said`` once it redirected. With
    ``refused``, a refusal (409, or 400 for a start time no longer offered) is an outcome too,
    answered with it; without, only the redirect is."""

    def go():
        with requests.Session() as own:
            own.cookies.update(browser.cookies)
            response = own.post(
                f"{base}{path}",
                data={"csrf_token": token, "option": value},
                timeout=60,
                allow_redirects=False,
            )
        expected = (303,) if refused is None else (303, 409, 400)
        assert response.status_code in expected, response.text[:300]
        return said if response.status_code == 303 else refused

    return go
