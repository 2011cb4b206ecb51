"""Write the vcrpy cassettes in this folder from the reference's documented examples.

    uv run python cassettes/build.py          # rewrite every cassettes/*.yaml

Each cassette is one contract scenario of ``tests/broker/adapter/contract.py``. Responses are
the documented example responses, as collected in the team's earlier Cronofy API reference notes
(section given per cassette) and corrected where the official documentation or SDK test fixtures
differ (listed in README.md); requests are the documented request examples as the adapter puts
them on the wire.
Where two documented examples use different illustrative ids for what must be the same object
(e.g. the calendar in §3.4 and the event in §4.1), the ids are aligned so a scenario can follow
one object across calls. Secrets are filtered exactly as a real recording would be (see
``FILTER_POST_DATA`` and ``FILTER_HEADERS``, shared with the replay tests).

This module is also imported by the replay tests for the documented input values (``DOC``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import urlencode

import yaml

HERE = Path(__file__).resolve().parent
API = "https://api.cronofy.com"
APP = "https://app.cronofy.com"

#: Same settings a real re-recording uses (ARCHITECTURE #11, plus ``token`` for revoke bodies).
FILTER_HEADERS = ["authorization"]
FILTER_POST_DATA = ["client_secret", "refresh_token", "code", "token"]

# --- documented values ---------------------------------------------------------------------------

CAL = "cal_n23kjnwrw2_jsdfjksn234"  # §3.2 / §3.4
PROFILE = "pro_n23kjnwrw2"
SUB = "acc_5700a00eb0ccd07000000000"  # §3.2
TOKEN_SCOPE = "read_account list_calendars read_events create_event delete_event"

DOC = {
    "client_id": "CID",
    "client_secret": "CSECRET",
    "redirect_uri": "http://localhost/cb",
    "code": "Xy12Xy12Xy12Xy12Xy12Xy12Xy12Xy12",
    "access_token": "P531x88i05Ld2yXHIQ7WjiEyqlmOHsgI",
    "refresh_token": "3gBYG1XamYDUEXUyybbummQWEe5YqPmf",
    "sub": SUB,
    "profile_id": PROFILE,
    "calendar_id": CAL,
    "unknown_calendar_id": "cal_unknown_000000",
    "sa_access_token": "sa-access-token-example",
    "sa_refresh_token": "sa-refresh-token-example",
    "service_account_id": "ser_529716002600402",
    "window_start": "2025-01-20",  # §4.1/§4.2: from/to are dates read in tzid, to exclusive
    "window_end": "2025-01-27",
    "tzid": "Europe/London",
    "channel_callback_url": "https://app.example.com/cronofy/push/42",
    "conferencing_redirect_uri": "https://app.example.com/conferencing-done",
}

TOKEN_RESPONSE = {  # §1.2
    "token_type": "bearer",
    "access_token": "P531x88i05Ld2yXHIQ7WjiEyqlmOHsgI",
    "expires_in": 3600,
    "refresh_token": "3gBYG1XamYDUEXUyybbummQWEe5YqPmf",
    "scope": TOKEN_SCOPE,
    "account_id": "acc_5ba21743f408617d1269ea1e",
    "sub": "acc_5ba21743f408617d1269ea1e",
    "linking_profile": {
        "provider_name": "google",
        "provider_service": "gsuite",
        "profile_id": PROFILE,
        "profile_name": "jane@example.com",
    },
}

REFRESH_RESPONSE = {  # §1.3 (new access token; a rotated refresh token, which Cronofy "may" issue)
    "token_type": "bearer",
    "access_token": "aFreshAccessTokenFromRefresh0001",
    "expires_in": 3600,
    "refresh_token": "aRotatedRefreshTokenFromRefresh1",
    "scope": TOKEN_SCOPE,
}

INVALID_GRANT = {"error": "invalid_grant"}  # §1.2 / §1.3 / §11

USERINFO = {  # §3.2
    "sub": SUB,
    "email": "jane@example.com",
    "name": "Jane Doe",
    "zoneinfo": "Europe/London",
    "cronofy.type": "account",
    "cronofy.data": {
        "authorization": {"scope": "read_write", "status": "active"},
        "profiles": [
            {
                "provider_name": "google",
                "provider_service": "gsuite",
                "profile_id": PROFILE,
                "profile_name": "jane@example.com",
                "profile_connected": True,
                "profile_initial_sync_required": False,
                "profile_calendars": [
                    {
                        "calendar_id": CAL,
                        "calendar_name": "Home",
                        "calendar_readonly": False,
                        "calendar_deleted": False,
                        "calendar_primary": True,
                        "calendar_integrated_conferencing_available": True,
                        "calendar_attachments_available": False,
                        "permission_level": "sandbox",
                    }
                ],
            },
            {
                "provider_name": "apple",
                "provider_service": "icloud",
                "profile_id": "pro_fe145c37de",
                "profile_name": "jane@icloud.example",
                "profile_connected": False,
                "profile_relink_url": "https://app.cronofy.com/relink/apple?email=jane%40icloud.example",
                "profile_calendars": [],
            },
        ],
        "conferencing_profiles": [
            {
                "provider_name": "zoom",
                "profile_id": "pro_jknsdfk234",
                "profile_name": "jane@example.com",
                "profile_connected": True,
            },
        ],
    },
}

USERINFO_SA = {  # §2.2
    "sub": "ser_61a8b807a341fc00bee53042",
    "email": "svc-calendar@example.org",
    "cronofy.type": "service_account",
    "cronofy.data": {
        "service_account": {"provider_name": "exchange", "domain": "example.org"},
        "authorization": {
            "scope": "service_account/accounts/manage service_account/resources/manage",
            "status": "active",
            "delegated_scope": "read_write",
        },
    },
}

PROFILES = {
    "profiles": [  # §3.3
        {
            "provider_name": "google",
            "provider_service": "gsuite",
            "profile_id": PROFILE,
            "profile_name": "jane@example.com",
            "profile_connected": True,
        },
        # Microsoft 365: provider_name exchange, provider_service office365 (cronofy-csharp
        # test fixture GetProfiles.cs).
        {
            "provider_name": "exchange",
            "provider_service": "office365",
            "profile_id": "pro_o365jane",
            "profile_name": "jane@example.onmicrosoft.com",
            "profile_connected": True,
        },
        {
            "provider_name": "apple",
            "profile_id": "pro_fe145c37de",
            "profile_name": "jane@icloud.example",
            "profile_connected": False,
            "profile_relink_url": "https://app.cronofy.com/relink/apple?email=...",
        },
    ]
}

CALENDARS = {
    "calendars": [
        {  # §3.4
            "provider_name": "google",
            "profile_id": PROFILE,
            "profile_name": "jane@example.com",
            "calendar_id": CAL,
            "calendar_name": "Home",
            "calendar_readonly": False,
            "calendar_deleted": False,
            "calendar_primary": True,
            "calendar_integrated_conferencing_available": True,
            "calendar_attachments_available": False,
            "permission_level": "unrestricted",
        }
    ]
}

FREE_BUSY = {
    "pages": {"current": 1, "total": 1},
    "free_busy": [  # §4.2
        {
            "calendar_id": CAL,
            "start": "2025-01-21T09:00:00Z",
            "end": "2025-01-21T10:00:00Z",
            "free_busy_status": "busy",
        },
        {
            "calendar_id": CAL,
            "start": "2025-01-22",
            "end": "2025-01-24",
            "free_busy_status": "tentative",
        },
    ],
}

EVENT = {  # §4.1 (calendar id aligned with §3.4); a managed event, so its uid is not external
    "calendar_id": CAL,
    "event_uid": "evt_54008b1a4a41730f8d5c6037",
    "event_id": "interview-8812",
    "summary": "Interview: A. Candidate",
    "description": "",
    "start": "2025-01-21T09:00:00Z",
    "end": "2025-01-21T10:00:00Z",
    "deleted": False,
    "created": "2025-01-10T08:00:01Z",
    "updated": "2025-01-10T09:24:16Z",
    "location": {"description": "Room 4"},
    "participation_status": "needs_action",
    "attendees": [
        {
            "email": "a.candidate@example.net",
            "display_name": "A. Candidate",
            "status": "needs_action",
        }
    ],
    "organizer": {"email": "jane@example.com", "display_name": "Jane Doe"},
    "transparency": "opaque",
    "status": "confirmed",
    "categories": [],
    "recurring": False,
    "series_identifier": None,
    "event_private": False,
    "meeting_url": "https://meet.example.com/abc",
    "conferencing": {"provider_name": "zoom", "join_url": "https://zoom.example/j/123"},
    "options": {"delete": True, "update": True, "change_participation_status": True},
}
NEXT_PAGE = f"{API}/v1/events/pages/08a07b034306679e"
EVENTS_PAGE_1 = {"pages": {"current": 1, "total": 2, "next_page": NEXT_PAGE}, "events": [EVENT]}
EVENTS_PAGE_2 = {
    "pages": {"current": 2, "total": 2},
    "events": [  # §4.1 pagination rule
        dict(
            EVENT,
            event_id="interview-8813",
            event_uid="evt_54008b1a4a41730f8d5c6038",
            start="2025-01-22T09:00:00Z",
            end="2025-01-22T10:00:00Z",
            attendees=[],
        )
    ],
}

UPSERT_BODY = {  # §5.1, as the adapter sends it (end as a UTC string, no lat/long)
    "event_id": "interview-8812",
    "summary": "Interview: A. Candidate",
    "description": "Plain text only, up to 4096 chars",
    "start": "2025-01-21T09:00:00Z",
    "end": "2025-01-21T10:00:00Z",
    "tzid": "Europe/London",
    "location": {"description": "Room 4"},
    "url": "https://app.example.com/interviews/8812",
    "attendees": {
        "invite": [{"email": "a.candidate@example.net", "display_name": "A. Candidate"}],
        "remove": [{"email": "old@example.net"}],
    },
    "reminders": [{"minutes": 60}, {"minutes": 10}],
    "transparency": "opaque",
    "conferencing": {"profile_id": "default"},
    "subscriptions": [
        {
            "type": "webhook",
            "uri": "https://app.example.com/cronofy/event-hooks",
            "interactions": [{"type": "conferencing_assigned"}, {"type": "conferencing_failing"}],
        }
    ],
}

AVAILABILITY_BODY = {  # §6.1, with query_periods (the documented name; not available_periods)
    "participants": [
        {
            "members": [
                {"sub": "acc_567236000909002", "calendar_ids": [CAL], "managed_availability": True},
                {
                    "sub": "acc_678347111010113",
                    "available_periods": [
                        {"start": "2025-01-21T12:00:00Z", "end": "2025-01-21T17:00:00Z"}
                    ],
                },
            ],
            "required": "all",
        },
        {
            "members": [
                {"sub": "res_5ba21743f408617d12693521"},
                {"sub": "res_64b17d868090ea21640ad6e0"},
            ],
            "required": 1,
        },
    ],
    "required_duration": {"minutes": 60},
    "query_periods": [
        {"start": "2025-01-21T09:00:00Z", "end": "2025-01-21T18:00:00Z"},
        {"start": "2025-01-22T09:00:00Z", "end": "2025-01-22T18:00:00Z"},
    ],
    "buffer": {"before": {"minutes": 30}, "after": {"minutes": 15}},
    "start_interval": {"minutes": 30},
    "response_format": "slots",
    "max_results": 20,
}
_SEQ_BUFFER = {
    "before": {"minimum": {"minutes": 30}, "maximum": {"minutes": 60}},
    "after": {"minimum": {"minutes": 15}, "maximum": {"minutes": 30}},
}
SEQUENCED_BODY = {  # §6.2, the documentation's example request
    "query_periods": [
        {"start": "2025-01-19T09:00:00Z", "end": "2025-01-19T18:00:00Z"},
        {"start": "2025-01-20T09:00:00Z", "end": "2025-01-20T18:00:00Z"},
    ],
    "sequence": [
        {
            "sequence_id": "123",
            "ordinal": 1,
            "participants": [
                {
                    "members": [{"sub": "acc_5ba21743f408617d1269ea1e", "calendar_ids": [CAL]}],
                    "required": "all",
                }
            ],
            "required_duration": {"minutes": 60},
            "start_interval": {"minutes": 60},
            "buffer": _SEQ_BUFFER,
        },
        {
            "sequence_id": "456",
            "ordinal": 2,
            "participants": [
                {
                    "members": [
                        {
                            "sub": "acc_64b17d868090ea21640c914c",
                            "available_periods": [
                                {"start": "2025-01-19T09:00:00Z", "end": "2025-01-19T12:00:00Z"},
                                {"start": "2025-01-20T10:00:00Z", "end": "2025-01-20T20:00:00Z"},
                            ],
                        }
                    ],
                    "required": "all",
                }
            ],
            "required_duration": {"minutes": 60},
            "start_interval": {"minutes": 60},
            "buffer": _SEQ_BUFFER,
        },
    ],
}
SEQUENCED_RESPONSE = {  # §6.2, the shape of the SDK fixtures (pycronofy, cronofy-csharp)
    "sequences": [
        {
            "sequence": [
                {
                    "sequence_id": "123",
                    "start": "2025-01-19T09:00:00Z",
                    "end": "2025-01-19T10:00:00Z",
                    "participants": [{"sub": "acc_5ba21743f408617d1269ea1e"}],
                },
                {
                    "sequence_id": "456",
                    "start": "2025-01-19T10:30:00Z",
                    "end": "2025-01-19T11:30:00Z",
                    "participants": [{"sub": "acc_64b17d868090ea21640c914c"}],
                },
            ]
        }
    ]
}
AVAILABILITY_RESPONSE = {
    "available_slots": [  # §6.1
        {
            "start": "2025-01-21T09:00:00Z",
            "end": "2025-01-21T10:00:00Z",
            "participants": [
                {"sub": "acc_567236000909002"},
                {"sub": "res_5ba21743f408617d12693521"},
            ],
        }
    ]
}

CHANNEL = {
    "channel_id": "chn_54cf7c7cb4ad4c1027000001",  # §7.1
    "callback_url": DOC["channel_callback_url"],
    "filters": {"calendar_ids": [CAL], "only_managed": True},
}

SA_REQUESTS = [  # §2.3
    {
        "email": "jane@example.org",
        "callback_url": "https://app.example.com/cronofy/sa-callback?user=42",
        "scope": "read_account list_calendars read_events create_event delete_event",
        "state": "u42",
    },
    {
        "email": "room-1@example.org",
        "callback_url": "https://app.example.com/cb",
        "scope": "read_free_busy",
        "state": "r1",
    },
]

SMART_INVITE_EVENT = {  # §9.1
    "summary": "Interview",
    "description": "...",
    "start": "2025-01-21T09:00:00Z",
    "end": "2025-01-21T10:00:00Z",
    "tzid": "Europe/London",
    "location": {"description": "Room 4"},
}
SMART_INVITE_BODY = {  # the current documentation's request: method, organizer email, callback
    "method": "request",
    "smart_invite_id": "inv-8812",
    "callback_url": "https://app.example.com/cronofy/smart-invite",
    "recipient": {"email": "a.candidate@example.net"},
    "organizer": {"name": "Acme Recruiting", "email": "invitations@app.example.com"},
    "event": SMART_INVITE_EVENT,
}
#: The documented response gives the event's times as {time, tzid} objects (no top-level tzid).
SMART_INVITE_EVENT_OUT = {
    "summary": "Interview",
    "description": "...",
    "start": {"time": "2025-01-21T09:00:00Z", "tzid": "Europe/London"},
    "end": {"time": "2025-01-21T10:00:00Z", "tzid": "Europe/London"},
    "location": {"description": "Room 4"},
}
ICS = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Cronofy//Smart Invite//EN\nEND:VCALENDAR\n"
SMART_INVITE_RESPONSE = {
    "smart_invite_id": "inv-8812",
    "callback_url": "https://app.example.com/cronofy/smart-invite",
    "recipient": {"email": "a.candidate@example.net", "status": "pending"},
    "event": SMART_INVITE_EVENT_OUT,
    "attachments": {"icalendar": ICS},
}

VALIDATION_ERROR = {
    "errors": {
        "summary": [  # §10 / §11 error body
            {"key": "errors.required", "description": "summary must be specified"}
        ]
    }
}
#: §5.1 "summary (≤ 1024 chars)" answered in the §11 shape; the key name is illustrative.
TOO_LONG_ERROR = {
    "errors": {
        "summary": [
            {"key": "errors.too_long", "description": "summary must be at most 1024 characters"}
        ]
    }
}


# --- cassette writing ----------------------------------------------------------------------------


def _filtered(body: dict | None) -> dict | None:
    if body is None:
        return None
    return {k: v for k, v in body.items() if k not in FILTER_POST_DATA}


def req(
    method: str, path: str, body: dict | None = None, query: dict | None = None, host: str = API
) -> dict:
    uri = f"{host}{path}"
    if query:
        uri += "?" + urlencode(query, doseq=True)
    headers = {"Accept": ["*/*"]}
    if body is not None:
        headers["Content-Type"] = ["application/json"]
    return {
        "method": method,
        "uri": uri,
        "body": json.dumps(_filtered(body)) if body is not None else None,
        "headers": headers,
    }


def resp(status: int, body: dict | None = None, *, message: str = "", headers=None) -> dict:
    h = {"Content-Type": ["application/json; charset=utf-8"]}
    h.update(headers or {})
    return {
        "status": {"code": status, "message": message or _REASONS.get(status, "")},
        "headers": h,
        "body": {"string": json.dumps(body) if body is not None else ""},
    }


_REASONS = {
    200: "OK",
    202: "Accepted",
    207: "Multi-Status",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    422: "Unprocessable Entity",
    423: "Locked",
    429: "Too Many Requests",
}
TOKEN_HEADERS = {"Cache-Control": ["no-store"], "Pragma": ["no-cache"]}


def _token_req(body: dict) -> dict:
    return req(
        "POST",
        "/oauth/token",
        {"client_id": DOC["client_id"], "client_secret": DOC["client_secret"], **body},
    )


EXCHANGE = _token_req(
    {"grant_type": "authorization_code", "code": DOC["code"], "redirect_uri": DOC["redirect_uri"]}
)
REFRESH = _token_req({"grant_type": "refresh_token", "refresh_token": DOC["refresh_token"]})
FREE_BUSY_QUERY = {
    "tzid": DOC["tzid"],
    "from": DOC["window_start"],
    "to": DOC["window_end"],
    "include_managed": "true",
    "localized_times": "false",
}
EVENTS_QUERY = {
    "tzid": DOC["tzid"],
    "calendar_ids[]": [CAL],
    "from": DOC["window_start"],
    "to": DOC["window_end"],
    "only_managed": "true",
    "include_managed": "true",
    "include_deleted": "false",
    "include_moved": "false",
    "include_geo": "false",
    "localized_times": "false",
}
BATCH_BODY = {
    "batch": [
        {"method": "POST", "relative_url": f"/v1/calendars/{CAL}/events", "data": UPSERT_BODY},
        {
            "method": "POST",
            "relative_url": f"/v1/calendars/{DOC['unknown_calendar_id']}/events",
            "data": dict(UPSERT_BODY, event_id="interview-8812b"),
        },
    ]
}

CASSETTES: dict[str, list[tuple[dict, dict]]] = {
    "exchange_code": [  # §1.2
        (EXCHANGE, resp(200, TOKEN_RESPONSE, headers=TOKEN_HEADERS)),
        (EXCHANGE, resp(400, INVALID_GRANT)),
    ],
    "refresh": [(REFRESH, resp(200, REFRESH_RESPONSE, headers=TOKEN_HEADERS))],  # §1.3
    "refresh_invalid_grant": [  # §1.3 errors
        (
            _token_req(
                {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token-we-ever-had"}
            ),
            resp(400, INVALID_GRANT),
        ),
    ],
    "refresh_on_401": [  # §1.3: "A 401 from any API call is the signal to refresh"
        (req("GET", "/v1/userinfo"), resp(401, None)),
        (REFRESH, resp(200, REFRESH_RESPONSE, headers=TOKEN_HEADERS)),
        (req("GET", "/v1/userinfo"), resp(200, USERINFO)),
    ],
    "userinfo": [(req("GET", "/v1/userinfo"), resp(200, USERINFO))],  # §3.2
    "userinfo_service_account": [(req("GET", "/v1/userinfo"), resp(200, USERINFO_SA))],  # §2.2
    "profiles": [(req("GET", "/v1/profiles"), resp(200, PROFILES))],  # §3.3
    "calendars": [(req("GET", "/v1/calendars"), resp(200, CALENDARS))],  # §3.4
    "free_busy": [(req("GET", "/v1/free_busy", query=FREE_BUSY_QUERY), resp(200, FREE_BUSY))],
    "availability": [  # §6.1
        (req("POST", "/v1/availability", AVAILABILITY_BODY), resp(200, AVAILABILITY_RESPONSE)),
    ],
    "sequenced_availability": [  # §6.2
        (
            req("POST", "/v1/sequenced_availability", SEQUENCED_BODY),
            resp(200, SEQUENCED_RESPONSE),
        ),
    ],
    "event_lifecycle": [  # §5.1, §4.1 (two pages), §5.2
        (req("POST", f"/v1/calendars/{CAL}/events", UPSERT_BODY), resp(202)),
        (req("GET", "/v1/events", query=EVENTS_QUERY), resp(200, EVENTS_PAGE_1)),
        (req("GET", "/v1/events/pages/08a07b034306679e"), resp(200, EVENTS_PAGE_2)),
        (req("DELETE", f"/v1/calendars/{CAL}/events", {"event_id": "interview-8812"}), resp(202)),
    ],
    "upsert_rejected": [  # §5.1 422 with the §11 error body
        (
            req("POST", f"/v1/calendars/{CAL}/events", dict(UPSERT_BODY, summary="x" * 1025)),
            resp(422, TOO_LONG_ERROR),
        ),
    ],
    "profile_disconnected": [  # §5.1 errors: 423 no provider credentials
        (req("POST", f"/v1/calendars/{CAL}/events", UPSERT_BODY), resp(423)),
    ],
    "channels": [  # §7.1
        (
            req(
                "POST",
                "/v1/channels",
                {
                    "callback_url": DOC["channel_callback_url"],
                    "filters": {"calendar_ids": [CAL], "only_managed": True},
                },
            ),
            resp(200, {"channel": CHANNEL}),
        ),
        (req("GET", "/v1/channels"), resp(200, {"channels": [CHANNEL]})),
        (req("DELETE", f"/v1/channels/{CHANNEL['channel_id']}", {}), resp(202)),
    ],
    "close_unknown_channel": [  # §7.1 "404 unknown"
        (req("DELETE", "/v1/channels/chn_000000000000000000000000", {}), resp(404)),
    ],
    "service_account_authorizations": [  # §2.3
        (req("POST", "/v1/service_account_authorizations", SA_REQUESTS[0]), resp(202)),
        (
            req(
                "POST",
                "/v1/service_account_authorizations",
                {"service_account_authorizations": SA_REQUESTS},
            ),
            resp(202),
        ),
    ],
    "resources": [  # §2.6
        (
            req("GET", "/v1/resources"),
            resp(200, {"resources": [{"email": "board-room@example.org", "name": "Board room"}]}),
        ),
    ],
    "smart_invite": [  # §9.1
        (req("POST", "/v1/smart_invites", SMART_INVITE_BODY), resp(200, SMART_INVITE_RESPONSE)),
        (
            req(
                "GET",
                "/v1/smart_invites",
                query={"smart_invite_id": "inv-8812", "recipient_email": "a.candidate@example.net"},
            ),
            resp(200, dict(SMART_INVITE_RESPONSE, replies=[])),
        ),
        (
            req(
                "POST",
                "/v1/smart_invites",
                {
                    "smart_invite_id": "inv-8812",
                    "method": "cancel",
                    "recipient": {"email": "a.candidate@example.net"},
                },
            ),
            resp(
                200,
                dict(
                    SMART_INVITE_RESPONSE,
                    recipient={"email": "a.candidate@example.net", "status": "declined"},
                ),
            ),
        ),
    ],
    "batch": [  # §10
        (
            req("POST", "/v1/batch", BATCH_BODY),
            resp(207, {"batch": [{"status": 202}, {"status": 422, "data": VALIDATION_ERROR}]}),
        ),
    ],
    "conferencing_authorization": [  # §8.1
        (
            req(
                "POST",
                "/v1/conferencing_service_authorizations",
                {"redirect_uri": DOC["conferencing_redirect_uri"], "provider_name": "zoom"},
            ),
            resp(
                200,
                {
                    "authorization_request": {
                        "url": "https://app.cronofy.com/conferencing_services/xxxxx"
                    }
                },
            ),
        ),
    ],
    "revoke": [  # §1.4, then §1.3 errors
        (
            req(
                "POST",
                "/oauth/token/revoke",
                {"client_id": "CID", "client_secret": "CSECRET", "token": DOC["refresh_token"]},
            ),
            resp(200),
        ),
        (REFRESH, resp(400, INVALID_GRANT)),
        (
            req(
                "POST",
                "/oauth/token/revoke",
                {"client_id": "CID", "client_secret": "CSECRET", "sub": SUB},
            ),
            resp(200),
        ),
    ],
    "revoke_service_account": [  # §1.4 by token (the refresh token recommended), §1.3 errors
        (
            req(
                "POST",
                "/oauth/token/revoke",
                {"client_id": "CID", "client_secret": "CSECRET", "token": DOC["sa_refresh_token"]},
            ),
            resp(200),
        ),
        (
            _token_req({"grant_type": "refresh_token", "refresh_token": DOC["sa_refresh_token"]}),
            resp(400, INVALID_GRANT),
        ),
    ],
    "revoke_profile": [(req("POST", f"/v1/profiles/{PROFILE}/revoke", {}), resp(202))],  # §1.5
}


def cassette(name: str) -> dict:
    return {
        "interactions": [
            {"request": copy.deepcopy(rq), "response": copy.deepcopy(rs)}
            for rq, rs in CASSETTES[name]
        ],
        "version": 1,
    }


def main() -> None:
    for name in CASSETTES:
        path = HERE / f"{name}.yaml"
        path.write_text(
            "# Built by cassettes/build.py from the documented examples — see cassettes/README.md\n"
            + yaml.safe_dump(cassette(name), sort_keys=False, allow_unicode=True, width=100)
        )
    print(f"wrote {len(CASSETTES)} cassettes to {HERE}")


if __name__ == "__main__":
    main()
