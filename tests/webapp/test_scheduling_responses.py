"""What the calendar says after an interview is written: panelists' replies and the GoTo link,
read from the aggregator on demand and never stored."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from models import Base, SchedulingPreference
from tests.webapp.scheduling_support import make_panel, managed
from tests.webapp.test_scheduling import first_slot, query_for, schedule
from webapp import deps

RILEY = "riley.chen@northwind.example"


def _database(app) -> dict[str, list[tuple]]:
    """Every row of every table, for comparing before and after."""
    engine = deps.database.of(app).engine
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def _responses(page: str) -> dict[str, str]:
    """attendee email → the response shown in the interview page's Responses table."""
    rows = re.findall(
        r'<td>[^<]*<span class="muted">([^<]+)</span></td>'
        r'<td><span class="badge[^"]*">([^<]+)</span></td>',
        page,
    )
    return dict(rows)


def test_panelists_replies_show_on_the_interview_page_and_are_not_stored(
    app, client, auth, session, sandbox, org, recruiter
):
    panel = make_panel(app, session, sandbox, org, 3)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    sandbox.deliver()
    [row] = interview.events
    declining, accepting, silent = (link.account_email for _u, link in panel)
    auth.login(recruiter.email)
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert {declining: "No reply", accepting: "No reply", silent: "No reply"}.items() <= _responses(
        page
    ).items()
    assert "declined" not in client.get("/interviews/").get_data(as_text=True)
    before = _database(app)

    sandbox.attendee_response(RILEY, declining, "declined", event_id=row.event_id)
    sandbox.attendee_response(RILEY, accepting, "accepted", event_id=row.event_id)
    sandbox.call("DELETE", "/stats")
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    shown = _responses(page)
    assert shown[declining] == "Declined" and shown[accepting] == "Accepted"
    assert shown[silent] == "No reply"
    listing = client.get("/interviews/").get_data(as_text=True)
    assert re.search(r'<span class="badge badge-failure">1 declined</span>', listing)
    # Each page read the calendar once: the badge costs no extra call to the aggregator.
    assert sandbox.stats()["requests"] == {"GET /v1/events": 2}

    # The replies live only in the calendar: not a row, not a column, not a value changed.
    assert _database(app) == before
    [ev] = [e for e in managed(app, session, interview.host_link) if e.event_id == row.event_id]
    assert {a.email: a.status for a in ev.attendees}[declining] == "declined"


def test_link_goto_choose_it_and_the_interview_page_shows_a_goto_link(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    response = auth.post(
        "/schedule/video/connect", {"provider": "go_to"}, form_page="/schedule/preferences"
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    grant = response.headers["Location"]
    assert grant.startswith(sandbox.url + "/conferencing_services/")
    assert "GoTo Meeting" in requests.get(grant, timeout=10).text
    back = requests.post(grant, data={"decision": "approve"}, allow_redirects=False, timeout=10)
    done = back.headers["Location"]
    assert "/schedule/video/done?last_linked_profile_id=" in done
    assert client.get(done.removeprefix("http://localhost")).status_code == 302
    page = client.get("/schedule/preferences").get_data(as_text=True)
    [profile_id] = re.findall(r'<option value="(pro_[^"]+)"', page)
    saved = auth.post(
        "/schedule/preferences",
        {
            "start": "08:00",
            "end": "18:00",
            "weekdays": ["1", "2", "3", "4", "5"],
            "video_profile": profile_id,
        },
        form_page="/schedule/preferences",
    )
    assert saved.status_code == 302
    assert (
        session.scalar(
            select(SchedulingPreference.video_profile).where(
                SchedulingPreference.user_id == recruiter.id
            )
        )
        == profile_id
    )

    panel = make_panel(app, session, sandbox, org, 2)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert "goto.sandbox" not in page  # the aggregator adds the link asynchronously
    sandbox.deliver()
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    link = re.search(
        r'<a href="(https://goto\.sandbox\.example/join/[0-9]+)"[^>]*>'
        r"Join \(GoTo Meeting\)</a>",
        page,
    )
    assert link, page
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    assert ev.join_url == link.group(1) and ev.conferencing_provider == "go_to"
