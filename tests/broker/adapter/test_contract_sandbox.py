"""The same contract scenarios as test_cassettes.py, against the local sandbox aggregator.

Each scenario gets a freshly reset sandbox and real authorizations made through the consent
control API with URLs the broker built, so the broker's authorization URLs, code exchange and
every later call are checked against the sandbox's implementation of the documented contract.
"""

from __future__ import annotations

import datetime as dt

import pytest

from broker.types import (
    Attendee,
    AvailabilityQuery,
    EventWrite,
    Group,
    Member,
    Period,
    SequencedAvailabilityQuery,
    SequenceStep,
    ServiceAccountAuthorizationRequest,
    SmartInviteWrite,
)
from tests.broker.adapter import sandbox_control as sc
from tests.broker.adapter.contract import SCENARIOS, Ctx

UTC = dt.UTC


def _next_weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


#: The sandbox's strict mode: where the sources are silent, the stricter reading for the app
#: (these are its defaults; set here so the contract says what it runs against).
STRICT = {"sa_callback_signed": False, "revoke_non_account_subs": "refuse"}


@pytest.fixture
def ctx(control, broker) -> Ctx:
    control.reset()
    control.update_config(**STRICT)
    control.rate_limit(per_second=10_000, per_minute=100_000, enabled=False)

    def code_for(email: str) -> str:
        return sc.code_for(control, email, broker.authorization_url(sc.REDIRECT_URI, "st"))

    def link(email: str):
        return broker.exchange_code(code_for(email), sc.REDIRECT_URI)

    creds = link("riley.chen@northwind.example")
    morgan = link("morgan.lee@northwind.example")
    jordan = link("jordan.diaz@northwind.example")
    sa_code = sc.code_for(
        control, "alex.kim@northwind.example", broker.enterprise_connect_url(sc.REDIRECT_URI, "adm")
    )
    sa_creds = broker.exchange_code(sa_code, sc.REDIRECT_URI)

    calendar = next(c for c in broker.calendars(creds) if c.primary and not c.readonly)
    today = dt.datetime.now(UTC).date()
    day1 = _next_weekday(today + dt.timedelta(days=1))
    day2 = _next_weekday(day1 + dt.timedelta(days=1))
    at = lambda day, hour: dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)  # noqa: E731
    window_start, window_end = today, today + dt.timedelta(days=14)

    availability = AvailabilityQuery(
        groups=(
            Group(
                members=(Member(creds.sub, calendar_ids=(calendar.calendar_id,)),), required="all"
            ),
            Group(members=(Member(morgan.sub), Member(jordan.sub)), required=1),
        ),
        duration=dt.timedelta(minutes=60),
        periods=(Period(at(day1, 7), at(day1, 19)), Period(at(day2, 7), at(day2, 19))),
        buffer_before=dt.timedelta(minutes=15),
        start_interval=dt.timedelta(minutes=30),
        response_format="slots",
        max_results=20,
    )
    sequenced = SequencedAvailabilityQuery(
        steps=(
            SequenceStep(
                "screen",
                availability.groups[:1],
                dt.timedelta(minutes=60),
                start_interval=dt.timedelta(minutes=60),
                gap_after_min=dt.timedelta(minutes=15),
                gap_after_max=dt.timedelta(minutes=30),
            ),
            SequenceStep(
                "panel",
                availability.groups[1:],
                dt.timedelta(minutes=60),
                start_interval=dt.timedelta(minutes=15),
                gap_before_min=dt.timedelta(minutes=30),
                gap_before_max=dt.timedelta(minutes=60),
            ),
        ),
        periods=availability.periods,
    )
    event = EventWrite(
        event_id="interview-8812",
        summary="Interview: A. Candidate",
        description="Plain text only",
        start=at(day2, 10),
        end=at(day2, 11),
        tzid="Europe/London",
        attendees=(Attendee("a.candidate@example.net", "A. Candidate"),),
        location="Room 4",
        conferencing_profile_id="default",
        reminders_minutes=(60, 10),
        subscription_url="https://app.example.com/cronofy/event-hooks",
    )
    sa_requests = tuple(
        ServiceAccountAuthorizationRequest(
            email=email,
            callback_url="https://app.example.com/cronofy/sa-callback?user=42",
            scope="read_account list_calendars read_events create_event delete_event",
            state=f"u{i}",
        )
        for i, email in enumerate(
            ("taylor.nguyen@northwind.example", "casey.brooks@northwind.example")
        )
    )
    invite = SmartInviteWrite(
        smart_invite_id="inv-8812",
        recipient_email="a.candidate@example.net",
        summary="Interview",
        start=at(day2, 10),
        end=at(day2, 11),
        tzid="Europe/London",
        description="...",
        location="Room 4",
        callback_url="https://app.example.com/cronofy/smart-invite",
        organizer_name="Acme Recruiting",
        organizer_email="invitations@app.example.com",
    )
    return Ctx(
        redirect_uri=sc.REDIRECT_URI,
        new_code=lambda: code_for("priya.shah@northwind.example"),
        creds=creds,
        sa_creds=sa_creds,
        profile_id=creds.linking_profile.profile_id,
        calendar_id=calendar.calendar_id,
        unknown_calendar_id="cal_doesnotexist_000000000000",
        window_start=window_start,
        window_end=window_end,
        availability=availability,
        sequenced=sequenced,
        event=event,
        channel_callback_url="https://app.example.com/cronofy/push/42",
        sa_requests=sa_requests,
        smart_invite=invite,
        conferencing_redirect_uri="https://app.example.com/conferencing-done",
        expire_token=lambda c: control.expire_tokens(access_token=c.access_token),
        disconnect_profile=control.disconnect_profile,
        fresh_creds=lambda: link("drew.martin@northwind.example"),
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_against_sandbox(name, broker, ctx):
    SCENARIOS[name](broker, ctx)


def test_strict_mode_refuses_what_the_sources_do_not_confirm(broker, ctx):
    """Revoking a service account by its ``ser_…`` sub is unconfirmed: the strict sandbox
    refuses it (the app revokes with the refresh token instead, scenario
    revoke_service_account), and the broker reports the refusal as Invalid, not an outage."""
    from broker.errors import Invalid

    with pytest.raises(Invalid) as info:
        broker.revoke_sub(ctx.sa_creds.sub or ctx.sa_creds.service_account_id)
    assert info.value.status == 400
    assert broker.userinfo(ctx.sa_creds).kind == "service_account"  # still authorized


def test_delegated_calendars_show_with_readonly_flags(control, broker, link):
    """An assistant's account lists the managers' calendars shared with it (§1, Business
    Connect by a general account); a view-only delegation comes back read-only."""
    control.reset()
    creds = link("pa.office@contoso.example")
    calendars = broker.calendars(creds)
    own = [c for c in calendars if c.primary]
    delegated = [c for c in calendars if not c.primary]
    assert own and len(delegated) >= 3
    assert any(c.readonly for c in delegated) and any(not c.readonly for c in delegated)
    info = broker.userinfo(creds)
    assert {c.calendar_id for p in info.profiles for c in p.calendars} >= {
        c.calendar_id for c in calendars
    }


def test_sequenced_availability_against_the_strict_sandbox(broker, ctx):
    """A three-step loop in one call: every option keeps the steps in order, inside the query
    periods, with each gap within its bounds, and each step's slot is one the single
    availability query confirms for the same people (buffers included)."""
    riley, pool = ctx.availability.groups
    minute = dt.timedelta(minutes=1)
    steps = (
        SequenceStep("screen", (riley,), 30 * minute, start_interval=30 * minute),
        SequenceStep(
            "panel",
            (pool,),
            60 * minute,
            start_interval=15 * minute,
            gap_before_min=15 * minute,
            gap_before_max=90 * minute,
        ),
        SequenceStep("debrief", (riley,), 30 * minute, gap_before_max=30 * minute),
    )
    query = SequencedAvailabilityQuery(steps=steps, periods=ctx.availability.periods)
    options = broker.sequenced_availability(query)
    assert options, "two office days have room for a short loop"
    assert list(options) == sorted(options, key=lambda o: o.start)
    starts, ends = min(p.start for p in query.periods), max(p.end for p in query.periods)
    pool_subs = {m.sub for m in pool.members}
    for option in options:
        assert [sid for sid, _slot in option.slots] == ["screen", "panel", "debrief"]
        screen, panel, debrief = (slot for _sid, slot in option.slots)
        assert starts <= screen.start and debrief.end <= ends
        assert 15 * minute <= panel.start - screen.end <= 90 * minute
        assert dt.timedelta(0) <= debrief.start - panel.end <= 30 * minute
        assert screen.participants == debrief.participants == (riley.members[0].sub,)
        assert panel.participants and set(panel.participants) <= pool_subs
    first = options[0]
    for step in steps:
        slot = first.slot(step.sequence_id)
        checked = broker.availability(
            AvailabilityQuery(
                groups=step.groups,
                duration=step.duration,
                query_slots=(slot.start,),
                buffer_before=step.gap_before_min,
                response_format="slots",
            )
        )
        assert [s.start for s in checked] == [slot.start]


def test_sequenced_availability_refusals_from_the_sandbox_are_invalid(broker, ctx):
    """An unauthorized sub is the sandbox's 422, reported as Invalid with the field."""
    from broker.errors import Invalid

    stranger = Group(members=(Member("acc_nobody_000000000000"),))
    query = SequencedAvailabilityQuery(
        steps=(SequenceStep("a", (stranger,), dt.timedelta(minutes=30)),),
        periods=ctx.availability.periods,
    )
    with pytest.raises(Invalid) as info:
        broker.sequenced_availability(query)
    assert info.value.status == 422 and "participants" in info.value.fields
