"""Coordinators compose and book loops for the hiring managers assigned to them, with the rules
of the one-interview schedule page: free/busy only (no event titles on any page), the sessions
written to the manager's calendar, nobody scheduled for a manager not assigned to them, and
nothing reachable in a neighbouring organisation."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from models import Interview, InterviewLoop, LoopState
from tests.tenants import NEIGHBOUR_PASSWORD, seed_neighbour
from tests.webapp.loop_support import session_interviews
from tests.webapp.test_loops import compose_form
from tests.webapp.test_scheduling import actor_of
from tests.webapp.test_scheduling import coordinator_setup as _coordinator_setup
from webapp import deps
from webapp.services.scheduling import access

coordinator_setup = _coordinator_setup  # the fixture of the one-interview coordinator tests


def seeded_details(sandbox, *people):
    """What the sandbox's seeded events of these people say (titles, notes, guests)."""
    out = set()
    for person in people:
        for ev in sandbox.call("GET", "/events", params={"email": person.email})["events"]:
            for detail in [
                ev.get("summary"),
                ev.get("description"),
                (ev.get("location") or {}).get("description"),
                *[a.get("email") for a in ev.get("attendees") or []],
            ]:
                if detail and len(detail) >= 5 and detail != "Busy":
                    out.add(detail)
    return out


def test_a_coordinator_books_a_loop_for_an_assigned_manager_seeing_free_busy_only(
    app, client, auth, session, sandbox, coordinator_setup
):
    coordinator, manager, other = coordinator_setup
    mlink = access.host_link_for(session, actor_of(manager), None)[0]
    olink = access.host_link_for(session, actor_of(other), None)[0]
    panel = [(manager, mlink), (other, olink)]
    auth.login(coordinator.email)
    form_page = client.get("/schedule/loops/").get_data(as_text=True)
    assert 'name="on_behalf_of"' in form_page and manager.name in form_page
    offered = re.search(r'<select id="on_behalf_of".*?</select>', form_page, re.S).group(0)
    assert f'<option value="{manager.id}"' in offered
    # Not assigned: not offered (looked for in that list only: an id may read like a length).
    assert f'<option value="{other.id}"' not in offered
    response = auth.post("/schedule/loops/", compose_form(panel, on_behalf_of=str(manager.id)))
    assert response.status_code == 303, response.get_data(as_text=True)
    url = response.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert "Book every session" in page
    secrets = seeded_details(sandbox, manager, other)
    assert secrets, "the sandbox seeds events for both people"
    for detail in secrets:
        assert detail not in page and detail not in form_page, detail
    option = re.search(r'name="option" id="option-1" value="([^"]+)"', page).group(1)
    done = auth.post(f"{url}/book", {"option": option}, form_page=url)
    assert done.status_code == 303, done.get_data(as_text=True)
    loop = session.scalar(select(InterviewLoop).where(InterviewLoop.uid == url.rsplit("/", 1)[1]))
    assert loop.state is LoopState.BOOKED and loop.on_behalf_of_id == manager.id
    interviews = session_interviews(session, loop)
    assert len(interviews) == 4
    # Written to the manager's calendar, for the manager (as a one-interview booking is).
    assert {(i.host_link_id, i.on_behalf_of_id) for i in interviews} == {(mlink.id, manager.id)}
    booked = client.get(url).get_data(as_text=True)
    assert booked.count("Scheduled") == 4
    for detail in secrets:
        assert detail not in booked, detail
    # The coordinator may cancel a session from the interview page, by the loop's rules.
    cancel = auth.post(f"/interviews/{interviews[1].uid}/cancel", {"confirm": "yes"})
    assert cancel.status_code == 303


def test_a_coordinator_cannot_compose_for_a_manager_not_assigned_or_reach_a_neighbour(
    app, client, auth, session, sandbox, coordinator_setup
):
    coordinator, manager, other = coordinator_setup
    mlink = access.host_link_for(session, actor_of(manager), None)[0]
    olink = access.host_link_for(session, actor_of(other), None)[0]
    panel = [(manager, mlink), (other, olink)]
    auth.login(coordinator.email)
    page = "/schedule/loops/"
    refused = auth.post(page, compose_form(panel, on_behalf_of=str(other.id)))
    assert refused.status_code == 403
    missing = auth.post(page, compose_form(panel))  # nobody chosen to schedule for
    assert missing.status_code == 400
    assert "Choose the hiring manager" in missing.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(InterviewLoop)) == 0
    response = auth.post(page, compose_form(panel, on_behalf_of=str(manager.id)))
    assert response.status_code == 303
    url = response.headers["Location"]
    auth.logout()
    # The neighbouring organisation's namesakes (same addresses), coordinator and manager.
    neighbour = seed_neighbour(session, deps.cipher.of(app), [coordinator, manager])
    auth.login(coordinator.email, NEIGHBOUR_PASSWORD)
    assert client.get(url).status_code == 404
    mine = "/schedule/loops/"
    assert url.rsplit("/", 1)[1] not in client.get(mine).get_data(as_text=True)
    booking = auth.post(f"{url}/book", {"option": "x"}, form_page=mine)
    assert booking.status_code == 404
    # Nor can they schedule for our manager (the namesake's assignments are their own).
    twin_manager = neighbour.twins[manager.email]
    assert twin_manager.id != manager.id
    across = auth.post(mine, compose_form(panel, on_behalf_of=str(manager.id)))
    assert across.status_code in (400, 403)
    ours = select(func.count()).select_from(Interview)
    assert session.scalar(ours.where(Interview.organisation_id == coordinator.organisation_id)) == 0
