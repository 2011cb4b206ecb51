"""One worked example per API operation, shown in the OpenAPI document and on /api/v1/docs: the
path and query values, the JSON body sent and the JSON answered. tests/api/test_docs.py checks
every example against its operation's schemas, so they cannot drift from what the API does.

Keys are operation ids (the endpoint functions' names). The people and times are invented; ids
are consistent across operations (link 41 is Riley's calendar link, and so on).
"""

from __future__ import annotations

from typing import Any

_ORG = {"id": 7, "name": "Northwind Traders"}

_ME = {
    "id": 12,
    "email": "riley.chen@northwind.example",
    "name": "Riley Chen",
    "role": "recruiter",
    "timezone": "America/New_York",
    "effective_timezone": "America/New_York",
    "organisation": _ORG,
    "token": {
        "id": 3,
        "name": "ATS sync",
        "prefix": "rdv_Xk3f",
        "expires_at": "2027-02-21T14:05:00+00:00",
    },
}

_CALENDAR_LINK = {
    "id": 41,
    "mode": "business",
    "provider": "google",
    "account_email": "riley.chen@northwind.example",
    "status": "active",
    "target_calendar_id": "cal_n23kJZwQ@Uc3wVMcRmH",
    "conflict_calendar_ids": [],
    "linked_at": "2026-10-02T09:14:00+00:00",
}

_INTERVIEW_UID = "5f0c1e7a9b2d4c3e8f6a1b2c3d4e5f60"

_INTERVIEW = {
    "uid": _INTERVIEW_UID,
    "status": "scheduled",
    "title": "Onsite: Senior Backend Engineer",
    "start": "2026-11-24T15:00:00+00:00",
    "end": "2026-11-24T16:00:00+00:00",
    "in_calendar": True,
    "on_behalf_of_id": None,
    "panel_link_ids": [41, 42, 43],
    "created_at": "2026-11-20T10:31:07+00:00",
}

_SCHEDULING_LINK = {
    "id": 9,
    "candidate_name": "Sam Okafor",
    "title": "Phone screen: Product Designer",
    "url": "https://rendezvous.northwind.example/c/9.Yk7PqLw2tZ0nE4vR8sB1xC5mD3hJ6gF",
    "state": "open",
    "panel_link_ids": [41, 42],
    "duration_minutes": 45,
    "window_start": "2026-11-23T05:00:00+00:00",
    "window_end": "2026-11-28T05:00:00+00:00",
    "video": True,
    "expires_at": "2026-11-30T10:00:00+00:00",
    "created_at": "2026-11-23T10:00:00+00:00",
    "used_at": None,
    "revoked_at": None,
    "interview_uid": None,
    "candidate_may_change": True,
    "change_cutoff_hours": 24,
}

_MAILBOX_COUNTS = {
    "queued": 0,
    "pending": 2,
    "linked": 37,
    "failed": 1,
    "unlinked": 0,
    "waiting": 2,
    "total": 40,
}

#: operation id → {"path": {...}, "query": {...}, "request": body, "response": body}
EXAMPLES: dict[str, dict[str, Any]] = {
    "me": {"response": _ME},
    "update_me": {
        "request": {"timezone": "America/New_York"},
        "response": _ME,
    },
    "calendar_links": {
        "query": {"limit": 20},
        "response": {"items": [_CALENDAR_LINK], "next_cursor": None},
    },
    "link_calendars": {
        "path": {"link_id": 41},
        "response": {
            "items": [
                {
                    "calendar_id": "cal_n23kJZwQ@Uc3wVMcRmH",
                    "name": "Riley Chen",
                    "profile_name": "riley.chen@northwind.example",
                    "provider_name": "google",
                    "readonly": False,
                    "primary": True,
                    "deleted": False,
                },
                {
                    "calendar_id": "cal_n23kJZwQ@Uc3wVMcRmI",
                    "name": "Company holidays",
                    "profile_name": "riley.chen@northwind.example",
                    "provider_name": "google",
                    "readonly": True,
                    "primary": False,
                    "deleted": False,
                },
            ]
        },
    },
    "disconnect_link": {
        "path": {"link_id": 41},
        "response": {
            "account_email": "riley.chen@northwind.example",
            "revoked_at_aggregator": True,
            "revocation_queued": False,
            "tokens_deleted": True,
        },
    },
    "panel_members": {
        "response": {
            "items": [
                {
                    "link_id": 41,
                    "user_id": 12,
                    "name": "Riley Chen",
                    "timezone": "America/New_York",
                },
                {"link_id": 42, "user_id": 15, "name": "Dana Wright", "timezone": "Europe/London"},
                {
                    "link_id": 43,
                    "user_id": 18,
                    "name": "Kenji Sato",
                    "timezone": "Asia/Tokyo",
                },
            ]
        }
    },
    "rooms": {
        "response": {
            "items": [{"email": "room.harbour@northwind.example", "name": "Harbour (6 seats)"}]
        }
    },
    "availability": {
        "query": {
            "panel": [41, 42],
            "duration": 60,
            "start_date": "2026-11-24",
            "days": 1,
            "tzid": "America/New_York",
        },
        "response": {
            "window_start": "2026-11-24T05:00:00+00:00",
            "window_end": "2026-11-25T05:00:00+00:00",
            "tzid": "America/New_York",
            "members": [
                {
                    "link_id": 41,
                    "name": "Riley Chen",
                    "busy": [
                        {
                            "start": "2026-11-24T14:00:00+00:00",
                            "end": "2026-11-24T15:00:00+00:00",
                            "status": "busy",
                        }
                    ],
                    "problem": None,
                    "working_hours": {
                        "start": "09:00",
                        "end": "17:00",
                        "weekdays": "12345",
                        "tzid": "America/New_York",
                        "tzid_set": True,
                    },
                },
                {
                    "link_id": 42,
                    "name": "Dana Wright",
                    "busy": [],
                    "problem": None,
                    "working_hours": {
                        "start": "09:00",
                        "end": "17:30",
                        "weekdays": "12345",
                        "tzid": "Europe/London",
                        "tzid_set": True,
                    },
                },
            ],
            "slots": [
                {
                    "start": "2026-11-24T15:00:00+00:00",
                    "end": "2026-11-24T16:00:00+00:00",
                    "free_link_ids": [41, 42],
                },
                {
                    "start": "2026-11-24T16:00:00+00:00",
                    "end": "2026-11-24T17:00:00+00:00",
                    "free_link_ids": [41, 42],
                },
            ],
            "room": None,
        },
    },
    "interviews": {
        "query": {"limit": 20},
        "response": {
            "items": [_INTERVIEW],
            "next_cursor": "eyJrIjoiaW50ZXJ2aWV3cyJ9.Zk3x",
        },
    },
    "create_interview": {
        "request": {
            "panel": [41, 42, 43],
            "start": "2026-11-24T15:00:00+00:00",
            "duration": 60,
            "title": "Onsite: Senior Backend Engineer",
            "candidate_name": "Alex Morgan",
            "candidate_email": "alex.morgan@mail.example",
            "notes": "Systems design, then a conversation about the team.",
            "video": True,
            "tzid": "America/New_York",
            "candidate_tzid": "Europe/Berlin",
            "room": "room.harbour@northwind.example",
        },
        "response": {**_INTERVIEW, "status": "pending", "in_calendar": False},
    },
    "interview": {
        "path": {"uid": _INTERVIEW_UID},
        "response": {
            **_INTERVIEW,
            "join_url": "https://meet.northwind.example/abc-defg-hij",
            "attendees": [
                {
                    "email": "alex.morgan@mail.example",
                    "display_name": "Alex Morgan",
                    "status": "accepted",
                },
                {
                    "email": "dana.wright@northwind.example",
                    "display_name": "Dana Wright",
                    "status": "needs_action",
                },
            ],
            "panel": [
                {"user_id": 12, "name": "Riley Chen"},
                {"user_id": 15, "name": "Dana Wright"},
                {"user_id": 18, "name": "Kenji Sato"},
            ],
            "problem": None,
        },
    },
    "reschedule": {
        "path": {"uid": _INTERVIEW_UID},
        "request": {"start": "2026-11-25T15:30:00+00:00", "duration": 45},
        "response": {
            **_INTERVIEW,
            "status": "pending",
            "title": None,
            "start": "2026-11-25T15:30:00+00:00",
            "end": "2026-11-25T16:15:00+00:00",
            "in_calendar": False,
        },
    },
    "cancel": {
        "path": {"uid": _INTERVIEW_UID},
        "response": {
            **_INTERVIEW,
            "status": "cancelling",
            "title": None,
            "start": None,
            "end": None,
            "in_calendar": False,
        },
    },
    "scheduling_links": {
        "query": {"limit": 20},
        "response": {"items": [_SCHEDULING_LINK], "next_cursor": None},
    },
    "create_scheduling_link": {
        "request": {
            "panel": [41, 42],
            "duration": 45,
            "start_date": "2026-11-23",
            "days": 5,
            "expires_days": 7,
            "candidate_name": "Sam Okafor",
            "candidate_email": "sam.okafor@mail.example",
            "candidate_tzid": "America/New_York",
            "title": "Phone screen: Product Designer",
            "video": True,
            "email_candidate": True,
            "candidate_hours": {"start": "08:00", "end": "18:00"},
            "candidate_may_change": True,
            "change_cutoff_hours": 24,
        },
        "response": _SCHEDULING_LINK,
    },
    "revoke_scheduling_link": {
        "path": {"link_id": 9},
        "response": {
            **_SCHEDULING_LINK,
            "url": None,
            "state": "revoked",
            "revoked_at": "2026-11-24T08:12:44+00:00",
        },
    },
    "domains": {
        "response": {
            "items": [
                {
                    "id": 2,
                    "provider": "google",
                    "domain": "northwind.example",
                    "status": "active",
                    "linked_at": "2026-09-30T16:02:11+00:00",
                    "mailboxes": _MAILBOX_COUNTS,
                }
            ]
        }
    },
    "mailboxes": {
        "path": {"domain_id": 2},
        "query": {"status": "failed", "limit": 50},
        "response": {
            "items": [
                {
                    "id": 311,
                    "email": "former.employee@northwind.example",
                    "status": "failed",
                    "error_key": "unknown_mailbox",
                    "error_text": "No such mailbox on the domain.",
                    "requested_at": "2026-11-02T11:00:00+00:00",
                    "completed_at": "2026-11-02T11:00:41+00:00",
                }
            ],
            "next_cursor": None,
        },
    },
    "request_mailboxes": {
        "path": {"domain_id": 2},
        "request": {
            "emails": ["kenji.sato@northwind.example", "someone@elsewhere.example"],
            "all_users": False,
        },
        "response": {
            "queued": 1,
            "rejected": [
                {
                    "email": "someone@elsewhere.example",
                    "reason": "not on northwind.example",
                }
            ],
        },
    },
    "inventory": {
        "response": {
            "tables": [
                {
                    "name": "interviews",
                    "rows": 128,
                    "columns": [
                        {
                            "name": "uid",
                            "type": "VARCHAR(32)",
                            "category": "identifier",
                            "purpose": "Public id of the interview",
                            "retention": "Until the organisation is deleted",
                            "encrypted": False,
                            "hashed": False,
                        }
                    ],
                }
            ],
            "not_stored": ["Calendar event titles, descriptions and attendees"],
            "processor": "Cronofy (calendar aggregator)",
            "retention": [
                {"records": "Audit entries", "rule": "Kept for 400 days, then deleted"},
            ],
        }
    },
    "audit": {
        "query": {"action": "interview.", "since": "2026-11-01", "limit": 50},
        "response": {
            "items": [
                {
                    "id": 90211,
                    "at": "2026-11-20T10:31:07+00:00",
                    "actor_id": 12,
                    "actor_label": "riley.chen@northwind.example",
                    "action": "interview.created",
                    "target_type": "interview",
                    "target_id": "501",
                    "target_label": None,
                    "outcome": "success",
                    "ip_address": "203.0.113.24",
                    "request_id": "468f629ba249ad4f",
                    "detail": {"panel_size": 3},
                }
            ],
            "next_cursor": None,
        },
    },
    "subject_export": {
        "path": {"user_id": 12},
        "response": {
            "person_id": 12,
            "exported_at": "2026-11-24T09:00:00+00:00",
            "not_stored": ["Calendar event titles, descriptions and attendees"],
            "records": {
                "users": [
                    {
                        "id": 12,
                        "email": "riley.chen@northwind.example",
                        "name": "Riley Chen",
                        "password_hash": "(secret)",
                    }
                ]
            },
        },
    },
}
