"""Every action code the audit trail records, with what it means in plain words.

This is the one place action codes are defined: ``audit.record`` refuses (under test) or logs
(in production) a code that is not listed here, tests/webapp/test_audit_codes.py checks that
every code the code base records is listed, and the audit trail's legend and its "kind of
action" filter are generated from this table. Codes keep their historical spelling (the trail
is append-only, so renaming one would split its history); an area gathers the codes a reviewer
looks for together, whatever their prefix (an erasure's completion is ``subject.erased``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    key: str
    title: str
    codes: dict[str, str]


AREAS: tuple[Area, ...] = (
    Area(
        "auth",
        "Signing in",
        {
            "auth.login": "Someone logged in.",
            "auth.login_failed": "A login was refused (wrong email or password, or locked).",
            "auth.logout": "Someone logged out.",
        },
    ),
    Area(
        "sso",
        "Single sign-on",
        {
            "sso.configured": "An IT admin set or changed the identity provider (never its "
            "secret, only that it was replaced).",
            "sso.identity_forgotten": "An IT admin unbound an account from its identity at the "
            "provider; its sessions ended and the next sign-in binds again by address.",
            "sso.password_login": "An IT admin turned password login on or off, or chose the "
            "break-glass IT admin.",
            "sso.login_started": "Someone was sent to their organisation's identity provider.",
            "sso.login": "Someone signed in through the identity provider.",
            "sso.user_created": "A first sign-in through the identity provider created the "
            "account.",
            "sso.login_refused": "A sign-in through the identity provider was refused (the "
            "detail says why).",
        },
    ),
    Area(
        "user",
        "People and roles",
        {
            "user.invited": "An IT admin invited someone to the organisation.",
            "user.invite_reissued": "An IT admin sent an invitation again (the old link stops).",
            "user.invite_accepted": "An invited person set their password and joined.",
            "user.role_changed": "An IT admin changed someone's role.",
            "user.deactivated": "An IT admin deactivated an account (it can no longer log in).",
            "user.reactivated": "An IT admin reactivated an account.",
            "user.password_changed": "Someone changed their password.",
            "user.timezone_changed": "Someone changed their time zone.",
            "assignment.created": "An IT admin let a coordinator schedule for a hiring manager.",
            "assignment.removed": "An IT admin ended a coordinator's assignment.",
        },
    ),
    Area(
        "api_token",
        "API tokens",
        {
            "api_token.created": "Someone created a personal API token.",
            "api_token.revoked": "An API token was revoked.",
            "api_token.denied": "A request with an API token was refused.",
        },
    ),
    Area(
        "calendar",
        "Calendar links (Business Connect)",
        {
            "business_connect.activated": "An IT admin turned Business Connect on.",
            "business_connect.deactivated": "An IT admin turned Business Connect off.",
            "business_connect.reset": "An IT admin reset Business Connect (all links removed).",
            "calendar.connect_started": "Someone started linking their calendar.",
            "calendar.connected": "Someone linked their calendar.",
            "calendar.relinked": "Someone linked their calendar again.",
            "calendar.connect_declined": "Someone declined the calendar provider's consent page.",
            "calendar.connect_rejected": "A calendar link was refused (wrong or reused state, "
            "or an account already linked elsewhere).",
            "calendar.connect_failed": "Linking a calendar failed at the calendar service.",
            "calendar.disconnected": "A calendar was unlinked.",
            "calendar.delegated_added": "Someone made a colleague's calendar, delegated to "
            "their own calendar account, that colleague's calendar for panels.",
            "calendar.delegated_removed": "Someone took a colleague's delegated calendar off "
            "their calendar account.",
            "calendar.settings_changed": "Someone chose which calendars to use.",
            "calendar.channel_failed": "Change notifications for a calendar could not be set up.",
            "calendar.needs_attention": "A calendar link stopped working and needs relinking.",
            "calendar.reconnected": "A calendar link that had stopped works again.",
            "calendar.superseded": "A calendar link was replaced by a newer link of the "
            "same account.",
            "calendar.revoke_retried": "An IT admin retried revoking a calendar authorization.",
            "calendar.revoke_resolved_elsewhere": "An authorization to revoke was marked as "
            "revoked outside Rendezvous.",
            "calendar.revoke_refused": "The calendar service refused to revoke an authorization.",
            "calendar.revoke_gave_up": "Revoking an authorization was given up after retries.",
            "calendar.revoked_in_bulk": "Queued calendar authorizations were revoked.",
            "oauth.state_rejected": "A calendar consent answer was refused (unknown, expired or "
            "someone else's).",
            "tokens.rotated": "Stored calendar tokens were re-encrypted under a new key.",
            "video.connect_started": "Someone started linking a video conferencing account.",
        },
    ),
    Area(
        "ec",
        "Enterprise Connect (domains, mailboxes, rooms)",
        {
            "ec.connect_started": "An IT admin started connecting a domain.",
            "ec.connected": "An IT admin connected a domain.",
            "ec.reconnected": "An IT admin connected a domain again.",
            "ec.connect_declined": "The domain's consent page was declined.",
            "ec.connect_rejected": "A domain connection was refused.",
            "ec.connect_failed": "Connecting a domain failed at the calendar service.",
            "ec.mailboxes_requested": "An IT admin asked to link mailboxes (people without a "
            "login among them become directory people).",
            "ec.rooms_requested": "An IT admin asked to link meeting rooms.",
            "ec.relink_requested": "An IT admin asked to link a mailbox again.",
            "ec.retry": "An IT admin retried mailboxes that had failed.",
            "ec.list_downloaded": "An IT admin downloaded the unused lines of a mailbox list.",
            "ec.batch_refused": "The calendar service refused a batch of mailbox requests.",
            "ec.mailbox_linked": "A mailbox was linked.",
            "ec.room_linked": "A meeting room was linked.",
            "ec.mailbox_failed": "A mailbox could not be linked.",
            "ec.unlinked": "An IT admin unlinked a mailbox or room.",
            "ec.disconnected": "An IT admin disconnected a domain.",
            "ec.reset": "An IT admin reset Enterprise Connect.",
        },
    ),
    Area(
        "interview",
        "Interviews and scheduling",
        {
            "interview.scheduled": "An interview was booked.",
            "interview.written": "An interview's calendar event was written.",
            "interview.rescheduled": "An interview was moved to another time.",
            "interview.cancelled": "An interview was cancelled.",
            "interview.cancelled_in_calendar": "An interview's event was deleted in a calendar.",
            "interview.write_failed": "An interview's calendar event could not be written.",
            "interview.video_fallback": "An interview got a different video link than asked for.",
            "interview.candidate_replied": "A candidate answered an invitation.",
            "pool.created": "A recruiter or IT admin created an interviewer pool.",
            "pool.changed": "An interviewer pool's name or note was changed.",
            "pool.deleted": "An interviewer pool was deleted (its members with it).",
            "pool.member_added": "A person was added to an interviewer pool, with their limits.",
            "pool.member_changed": "A pool member's limits or shadow flag were changed.",
            "pool.member_removed": "A person was taken out of an interviewer pool.",
            "interview.candidate_notice_queued": "The candidate's email about a moved or "
            "cancelled interview was queued.",
            "interview.candidate_notice_skipped": "The candidate could not be told of a moved "
            "or cancelled interview (no address kept, or it could not be read).",
            "interview.candidate_reschedule": "A candidate's own move through their link was "
            "refused (the detail says why: not allowed on the link, or after the cut-off).",
            "interview.candidate_cancel": "A candidate's own cancellation through their link "
            "was refused (the detail says why: not allowed on the link, or after the cut-off).",
            "scheduling.preferences_changed": "Someone changed their working hours or video.",
            "scheduling.hours_changed": "An IT admin set someone's working hours (a directory "
            "person's, say, who never logs in).",
            "scheduling_link.created": "A recruiter created a self-scheduling link.",
            "scheduling_link.revoked": "A recruiter revoked a self-scheduling link.",
        },
    ),
    Area(
        "loop",
        "Interview loops",
        {
            "loop.composed": "A recruiter composed an interview loop (its sessions, not yet "
            "booked).",
            "loop.booked": "Every session of an interview loop was booked at once (each is an "
            "interview of its own).",
            "loop.write_failed": "A session of a loop could not be written to the calendar: "
            "every session was taken back (the detail names the session).",
            "loop.rescheduled": "A whole interview loop was moved to another itinerary.",
            "loop.move_failed": "A whole-loop move could not be written to the calendar: every "
            "session went back to its previous time (or, a previous time being booked "
            "meanwhile, the move is finished by retries); the detail says which.",
            "loop.cancelled": "An interview loop was cancelled.",
            "loop.offered": "A recruiter created a self-scheduling link that offers a composed "
            "interview loop.",
            "loop.candidate_notice_queued": "The candidate's itinerary (booked or moved) or "
            "cancellation notice for a loop was queued (one email for the whole loop).",
            "loop.candidate_notice_skipped": "The candidate could not be told of a loop's change "
            "(its sealed details could not be read).",
            "loop.candidate_change_refused": "A candidate's own move or cancellation of a loop "
            "through their link was refused (the detail says why: not allowed on the link, "
            "after the cut-off).",
        },
    ),
    Area(
        "erasure",
        "Erasure",
        {
            "erasure.proposed": "A compliance reviewer proposed erasing a person.",
            "erasure.rejected": "A proposed erasure was rejected; nothing was erased.",
            "subject.erased": "A person was erased; only the receipt remains.",
        },
    ),
    Area(
        "compliance",
        "Compliance look-ups and retention",
        {
            "subject.exported": "A reviewer exported everything stored about a person.",
            "subject.candidate_lookup": "A reviewer looked up a candidate's email.",
            "audit.exported": "A reviewer exported the audit trail.",
            "retention.purged": "Records past their retention were deleted.",
        },
    ),
    Area(
        "callback",
        "Calls from the calendar service",
        {
            "callback.forged": "A call claiming to be from the calendar service was refused.",
            "callback.replayed": "A call already answered was sent again and refused.",
            "callback.unsigned": "An unsigned call was accepted on its one-time reference.",
            "webhook.bad_signature": "Calls with a wrong signature were refused.",
            "webhook.foreign_notification": "A notification for another link was ignored.",
        },
    ),
    Area(
        "mail",
        "Email",
        {
            "mail.sent": "An email was sent.",
            "mail.refused": "The mail server refused an email's recipient.",
        },
    ),
    Area(
        "demo",
        "Demo",
        {"demo.seeded": "The demo organisation was created (development only)."},
    ),
)

#: Every code and its meaning.
CODES: dict[str, str] = {code: text for area in AREAS for code, text in area.codes.items()}

#: The area of every code.
AREA_OF: dict[str, Area] = {code: area for area in AREAS for code in area.codes}

AREAS_BY_KEY: dict[str, Area] = {area.key: area for area in AREAS}


def area_named(name: str) -> Area | None:
    """The area a filter value names ("erasure", "Erasure", "erasure."), if any."""
    return AREAS_BY_KEY.get(name.strip().rstrip(".").lower())
