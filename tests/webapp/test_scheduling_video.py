"""Video accounts and scheduling preferences: link Zoom through the aggregator's conferencing
authorization, pick it for interviews, and working hours per user."""

from __future__ import annotations

import requests
from sqlalchemy import select

from models import SchedulingPreference
from tests.webapp.scheduling_support import make_panel, managed
from tests.webapp.test_scheduling import first_slot, query_for, schedule


def test_link_zoom_choose_it_and_interviews_get_a_zoom_link(app, client, auth, session, sandbox,
                                                             org, recruiter):
    auth.login(recruiter.email)
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "No video account linked" in page and "Webex" in page
    response = auth.post("/schedule/video/connect", {"provider": "zoom"},
                         form_page="/schedule/preferences")
    assert response.status_code == 303
    grant = response.headers["Location"]
    assert grant.startswith(sandbox.url + "/conferencing_services/")
    back = requests.post(grant, data={"decision": "approve"}, allow_redirects=False, timeout=10)
    assert back.headers["Location"].endswith("/schedule/video/done")
    assert client.get("/schedule/video/done").status_code == 302
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "zoom" in page
    import re

    profile_id = re.search(r'<option value="(pro_[^"]+)"', page).group(1)
    saved = auth.post("/schedule/preferences", {"start": "08:00", "end": "18:00",
                                                 "weekdays": ["1", "2", "3", "4", "5"],
                                                 "video_profile": profile_id},
                      form_page="/schedule/preferences")
    assert saved.status_code == 302
    pref = session.scalar(select(SchedulingPreference).where(
        SchedulingPreference.user_id == recruiter.id))
    assert pref.video_profile == profile_id and pref.start_minute == 8 * 60

    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(app, session, recruiter, query,
                            first_slot(app, session, recruiter, query).start)
    sandbox.deliver()
    [ev] = [e for e in managed(app, session, interview.host_link)
            if e.event_id == interview.events[0].event_id]
    assert ev.join_url and "zoom.sandbox.example" in ev.join_url


def test_preferences_refuse_bad_input_and_unknown_video_profiles(client, auth, session, sandbox,
                                                                 recruiter):
    auth.login(recruiter.email)
    for bad in ({"start": "18:00", "end": "09:00", "weekdays": ["1"]},
                {"start": "nine", "end": "17:00", "weekdays": ["1"]},
                {"start": "09:00", "end": "17:00"},
                {"start": "09:00", "end": "17:00", "weekdays": ["1"],
                 "video_profile": "pro_someone_elses"}):
        response = auth.post("/schedule/preferences", bad, form_page="/schedule/preferences")
        assert response.status_code == 400
    assert session.scalar(select(SchedulingPreference)) is None


def test_no_video_means_no_link(app, session, sandbox, org, recruiter):
    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(app, session, recruiter, query,
                            first_slot(app, session, recruiter, query).start, video=False)
    sandbox.deliver()
    [ev] = [e for e in managed(app, session, interview.host_link)
            if e.event_id == interview.events[0].event_id]
    assert ev.join_url is None
