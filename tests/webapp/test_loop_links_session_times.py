"""A candidate moving one session of the loop their link booked is offered only times the loop
accepts (the same ``loops.session_times`` as the recruiter's interview page): every time offered
for the middle session is accepted when submitted, one after another."""

from __future__ import annotations

import datetime as dt
import re

from tests.webapp.loop_support import compose_loop, plan_for
from tests.webapp.loop_support import session_interviews as interviews_of
from tests.webapp.scheduling_support import next_weekday
from tests.webapp.test_loop_links import TITLES, book_through, csrf
from tests.webapp.test_scheduling import actor_of, broker_cipher
from webapp import deps
from webapp.services.loops import changes, ordinary
from webapp.services.loops import links as loop_links

SLOT_RE = re.compile(r'name="slot" id="[^"]+" value="([^"]+)"')


def test_every_time_offered_for_one_session_is_accepted(
    app, client, session, sandbox, recruiter, panel
):
    (_a, la), (_b, lb) = panel
    four = compose_loop(
        app,
        session,
        recruiter,
        plan_for(
            [[la], [lb], [la], [la, lb]],
            titles=TITLES,
            max_break=120,
            start_date=next_weekday(22),  # weeks ahead: quiet calendars, room to move
        ),
    )
    _link, token = loop_links.offer_loop(
        session,
        deps.sealer.of(app),
        actor_of(recruiter),
        four.uid,
        expires_days=30,
        candidate_may_change=True,
    )
    starts = book_through(client, token)
    sandbox.deliver()
    broker, cipher = broker_cipher(app)
    session.expire_all()  # booked by the candidate's request
    # The last session moved as late as the recruiter's page offers: room for the third.
    fourth = interviews_of(session, four)[3]
    later = ordinary.reschedule_grid(
        session, broker, cipher, deps.sealer.of(app), actor_of(recruiter), fourth, "Europe/London"
    ).grid.slots
    assert later
    last = later[-1].start
    changes.move_session(
        session,
        broker,
        cipher,
        deps.sealer.of(app),
        actor_of(recruiter),
        four.uid,
        4,
        last,
        jobs=deps.jobs.of(app),
    )
    sandbox.deliver()
    page = client.get(f"/c/{token}/reschedule?session=3")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    offered = [dt.datetime.fromisoformat(v) for v in SLOT_RE.findall(html)]
    assert offered, html
    hour = dt.timedelta(hours=1)
    for start in offered:
        assert starts[1] + hour <= start and start + hour <= last
        moved = client.post(
            f"/c/{token}/reschedule",
            data={"csrf_token": csrf(html), "session": "3", "slot": start.isoformat()},
        )
        assert moved.status_code == 303, (start, moved.get_data(as_text=True))
        sandbox.deliver()
        session.expire_all()
        # Back where it was, by the recruiter, for the next time offered.
        changes.move_session(
            session,
            broker,
            cipher,
            deps.sealer.of(app),
            actor_of(recruiter),
            four.uid,
            3,
            starts[2],
            jobs=deps.jobs.of(app),
        )
        sandbox.deliver()
    assert all(i.status.live for i in interviews_of(session, four))
