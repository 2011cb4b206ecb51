"""Video for interviews: link Zoom, GoTo or Microsoft Teams through the aggregator's
conferencing authorization, or save one's own meeting-room link (Webex and any other tool),
sent as explicit conferencing; working hours per user."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from models import AuditEntry, SchedulingPreference
from tests.webapp.scheduling_support import make_panel, managed
from tests.webapp.test_scheduling import first_slot, query_for, schedule

WEEKDAYS = ["1", "2", "3", "4", "5"]
ROOM = "https://northwind.webex.com/meet/riley.chen"


def _pref(session, user):
    session.expire_all()
    return session.scalar(
        select(SchedulingPreference).where(SchedulingPreference.user_id == user.id)
    )


def _save(auth, **fields):
    return auth.post(
        "/schedule/preferences",
        {"start": "08:00", "end": "18:00", "weekdays": WEEKDAYS, **fields},
        form_page="/schedule/preferences",
    )


def _written(app, session, interview):
    [ev] = [
        e
        for e in managed(app, session, interview.host_link)
        if e.event_id == interview.events[0].event_id
    ]
    return ev


def test_link_zoom_choose_it_and_interviews_get_a_zoom_link(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "No video account linked" in page
    # Exactly the services the aggregator can link; Webex is not one of them.
    assert re.findall(r'name="provider" value="([^"]+)"', page) == ["zoom", "go_to", "ms_teams"]
    response = auth.post(
        "/schedule/video/connect", {"provider": "zoom"}, form_page="/schedule/preferences"
    )
    assert response.status_code == 303
    grant = response.headers["Location"]
    assert grant.startswith(sandbox.url + "/conferencing_services/")
    back = requests.post(grant, data={"decision": "approve"}, allow_redirects=False, timeout=10)
    done = back.headers["Location"]
    assert done.startswith("http://localhost/schedule/video/done?last_linked_profile_id=pro_")
    assert client.get(done.removeprefix("http://localhost")).status_code == 302
    page = client.get("/schedule/preferences").get_data(as_text=True)
    profile_id = re.search(r'<option value="(pro_[^"]+)"', page).group(1)
    assert re.search(rf'<option value="{profile_id}" >Zoom — riley.chen@northwind.example<', page)
    assert _save(auth, video_profile=profile_id).status_code == 302
    pref = _pref(session, recruiter)
    assert pref.video_profile == profile_id and pref.start_minute == 8 * 60

    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    sandbox.deliver()
    ev = _written(app, session, interview)
    assert ev.join_url and "zoom.sandbox.example" in ev.join_url


@pytest.mark.parametrize("provider", ["cisco_webex", "webex", "", "google_meet"])
def test_webex_and_other_unknown_providers_cannot_be_linked(
    client, auth, session, sandbox, recruiter, provider
):
    auth.login(recruiter.email)
    sandbox.call("DELETE", "/stats")
    response = auth.post(
        "/schedule/video/connect", {"provider": provider}, form_page="/schedule/preferences"
    )
    assert response.status_code == 400
    assert "save your own meeting-room link" in response.get_data(as_text=True)
    assert "POST /v1/conferencing_service_authorizations" not in sandbox.stats()["requests"]


def test_own_webex_room_goes_into_the_interview_as_explicit_conferencing(
    app, client, auth, session, sandbox, org, recruiter
):
    auth.login(recruiter.email)
    assert (
        _save(
            auth, video_profile="explicit", video_room_name="Webex", video_room_url=f"  {ROOM}  "
        ).status_code
        == 302
    )
    pref = _pref(session, recruiter)
    assert (pref.video_profile, pref.video_room_name, pref.video_room_url) == (
        "explicit",
        "Webex",
        ROOM,
    )
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert 'value="explicit" selected' in page and f'value="{ROOM}"' in page

    panel = make_panel(app, session, sandbox, org, 2)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    ev = _written(app, session, interview)  # explicit: no provisioning to wait for
    assert ev.join_url == ROOM and ev.conferencing_provider == "Webex"
    page = client.get(f"/interviews/{interview.uid}").get_data(as_text=True)
    assert f'<a href="{ROOM}" rel="noopener noreferrer">Join (Webex)</a>' in page


@pytest.mark.parametrize(
    "fields",
    [
        {"video_profile": "explicit", "video_room_name": "Webex"},  # no link
        {"video_room_url": "http://northwind.webex.com/meet/riley", "video_room_name": "Webex"},
        {"video_room_url": "javascript:alert(1)", "video_room_name": "Webex"},
        {
            "video_room_url": "https://northwind.webex.com/meet/riley chen",
            "video_room_name": "Webex",
        },
        {
            "video_room_url": "https://northwind.webex.com/meet/\x00riley",
            "video_room_name": "Webex",
        },
        {"video_room_url": "https://northwind.webex.com/\nmeet", "video_room_name": "Webex"},
        {
            "video_room_url": "https://riley:secret@northwind.webex.com/meet",
            "video_room_name": "Webex",
        },
        {"video_room_url": "https://" + "a" * 490 + ".example/x", "video_room_name": "Webex"},
        {"video_room_url": "https://nörthwind.example/meet", "video_room_name": "Webex"},
        {"video_room_url": "https://10.0.0.7/meet", "video_room_name": "Webex"},
        {"video_room_url": "https://localhost/meet", "video_room_name": "Webex"},
        {"video_room_url": "https:///meet", "video_room_name": "Webex"},
        {"video_room_url": "https://northwind.webex.com:99999/meet", "video_room_name": "Webex"},
        {"video_room_url": ROOM},  # no tool name
        {"video_room_url": ROOM, "video_room_name": "W" * 41},
        {"video_room_url": ROOM, "video_room_name": "<b>Webex</b>"},
        {"video_room_url": ROOM, "video_room_name": "Web\u200bex"},
    ],
)
def test_bad_meeting_room_links_are_refused_and_nothing_changes(
    client, auth, session, sandbox, recruiter, fields
):
    auth.login(recruiter.email)
    assert _save(auth, video_profile="default").status_code == 302
    before = _pref(session, recruiter)
    snapshot = (before.video_profile, before.video_room_url, before.start_minute)
    response = _save(auth, **{"start": "07:00", **fields})
    assert response.status_code == 400
    assert "meeting room" in response.get_data(as_text=True)
    after = _pref(session, recruiter)
    assert (after.video_profile, after.video_room_url, after.start_minute) == snapshot


def test_clearing_the_link_forgets_it(client, auth, session, sandbox, recruiter):
    auth.login(recruiter.email)
    assert (
        _save(
            auth, video_profile="explicit", video_room_name="Webex", video_room_url=ROOM
        ).status_code
        == 302
    )
    assert _save(auth, video_profile="default", video_room_url="").status_code == 302
    pref = _pref(session, recruiter)
    assert (pref.video_profile, pref.video_room_url, pref.video_room_name) == (
        "default",
        None,
        None,
    )


def test_a_chosen_webex_profile_from_before_falls_back_with_a_notice(
    app, client, auth, session, sandbox, org, recruiter
):
    """A person who chose a Webex "profile" holds an id the aggregator never knew: the page says
    so, and an interview still gets a video link (the calendar's own) instead of failing."""
    session.add(
        SchedulingPreference(
            organisation_id=org.id,
            user_id=recruiter.id,
            start_minute=8 * 60,
            end_minute=18 * 60,
            weekdays="12345",
            video_profile="pro_webexfrombefore",
        )
    )
    session.commit()
    auth.login(recruiter.email)
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "The video account you chose is no longer linked" in page
    assert 'value="default" selected' in page

    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(
        app, session, recruiter, query, first_slot(app, session, recruiter, query).start
    )
    assert interview.status.value == "scheduled"
    sandbox.deliver()
    ev = _written(app, session, interview)
    assert ev.join_url and "meet.sandbox.example" in ev.join_url  # Riley's Google calendar
    pref = _pref(session, recruiter)
    assert pref.video_profile is None and pref.video_fallback_at is not None
    assert (
        session.scalar(select(AuditEntry).where(AuditEntry.action == "interview.video_fallback"))
        is not None
    )
    page = client.get("/schedule/preferences").get_data(as_text=True)
    assert "refused the video account you had chosen" in page
    assert _save(auth, video_profile="default").status_code == 302
    assert _pref(session, recruiter).video_fallback_at is None
    assert "refused the video account" not in client.get("/schedule/preferences").get_data(
        as_text=True
    )


def test_preferences_refuse_bad_input_and_unknown_video_profiles(
    client, auth, session, sandbox, recruiter
):
    auth.login(recruiter.email)
    for bad in (
        {"start": "18:00", "end": "09:00", "weekdays": ["1"]},
        {"start": "nine", "end": "17:00", "weekdays": ["1"]},
        {"start": "09:00", "end": "17:00"},
        {"start": "09:00", "end": "17:00", "weekdays": ["1"], "video_profile": "pro_someone_elses"},
    ):
        response = auth.post("/schedule/preferences", bad, form_page="/schedule/preferences")
        assert response.status_code == 400
    assert session.scalar(select(SchedulingPreference)) is None


def test_no_video_means_no_link(app, session, sandbox, org, recruiter):
    panel = make_panel(app, session, sandbox, org, 1)
    query = query_for(panel)
    interview, _ = schedule(
        app,
        session,
        recruiter,
        query,
        first_slot(app, session, recruiter, query).start,
        video=False,
    )
    sandbox.deliver()
    ev = _written(app, session, interview)
    assert ev.join_url is None
