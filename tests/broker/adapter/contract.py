"""Contract scenarios: each written once, run against the cassettes *and* against the sandbox.

A scenario is a function ``(broker, ctx)`` that drives the CalendarBroker port and checks what
the documented contract promises — shapes, identities, error types — never values only one
backend would produce. ``ctx`` supplies every input (ids, times, credentials) and two hooks for
server-side state changes the scenario needs (``expire_token``, ``disconnect_profile``); for
the cassettes they are no-ops because the recorded answers already reflect them.

The scenario name is also the cassette file name (``cassettes/<name>.yaml``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from broker.errors import Invalid, NeedsReauth, NotFound, ProfileDisconnected
from broker.port import CalendarBroker
from broker.types import (
    AvailabilityQuery,
    BatchUpsert,
    Credentials,
    EventWrite,
    SequencedAvailabilityQuery,
    ServiceAccountAuthorizationRequest,
    SmartInviteWrite,
)

UTC = dt.UTC


@dataclass
class Ctx:
    redirect_uri: str
    #: Returns a fresh, unused authorization code for ``redirect_uri``.
    new_code: Callable[[], str]
    creds: Credentials
    sa_creds: Credentials
    profile_id: str
    calendar_id: str
    unknown_calendar_id: str
    #: A window of days (``window_end`` exclusive), read in ``tzid``: the documented
    #: ``from``/``to``.
    window_start: dt.date
    window_end: dt.date
    availability: AvailabilityQuery
    #: A sequence whose gap bounds some options can meet.
    sequenced: SequencedAvailabilityQuery
    event: EventWrite
    channel_callback_url: str
    sa_requests: tuple[ServiceAccountAuthorizationRequest, ...]
    smart_invite: SmartInviteWrite
    conferencing_redirect_uri: str
    expire_token: Callable[[Credentials], None] = lambda creds: None
    disconnect_profile: Callable[[str], None] = lambda profile_id: None
    #: Gives fresh credentials for scenarios that destroy theirs (revoke).
    fresh_creds: Callable[[], Credentials] | None = None
    tzid: str = "Europe/London"
    notes: dict = field(default_factory=dict)


def exchange_code(b: CalendarBroker, ctx: Ctx) -> None:
    code = ctx.new_code()
    creds = b.exchange_code(code, ctx.redirect_uri)
    assert creds.access_token and creds.refresh_token
    assert creds.sub and creds.sub.startswith("acc_")
    assert creds.account_id == creds.sub
    assert creds.linking_profile is not None and creds.linking_profile.profile_id.startswith("pro_")
    assert creds.expires_at > dt.datetime.now(UTC)
    assert "read_events" in creds.scope or "read_write" in creds.scope
    # single use: a replayed code is refused with a typed error, not a crash
    with pytest.raises(Invalid) as info:
        b.exchange_code(code, ctx.redirect_uri)
    assert info.value.fields == {"code": ("invalid_grant",)}


def refresh(b: CalendarBroker, ctx: Ctx) -> None:
    new = b.refresh(ctx.creds)
    assert new.access_token and new.access_token != ctx.creds.access_token
    assert new.refresh_token  # may or may not have rotated — the caller stores it either way
    assert new.sub == ctx.creds.sub and new.linking_profile == ctx.creds.linking_profile
    assert new.expires_at > dt.datetime.now(UTC)


def refresh_invalid_grant(b: CalendarBroker, ctx: Ctx) -> None:
    bogus = replace(ctx.creds, refresh_token="not-a-refresh-token-we-ever-had")
    with pytest.raises(NeedsReauth) as info:
        b.refresh(bogus)
    assert info.value.reason == "invalid_grant"
    assert info.value.link_hint is not None and info.value.link_hint.sub == ctx.creds.sub


def refresh_on_401(b: CalendarBroker, ctx: Ctx) -> None:
    ctx.expire_token(ctx.creds)
    seen: list[Credentials] = []
    info = b.userinfo(ctx.creds, on_refresh=seen.append)
    assert info.sub == ctx.creds.sub
    assert len(seen) == 1 and seen[0].access_token != ctx.creds.access_token
    assert seen[0].sub == ctx.creds.sub


def userinfo(b: CalendarBroker, ctx: Ctx) -> None:
    info = b.userinfo(ctx.creds)
    assert info.kind == "account" and info.sub == ctx.creds.sub
    assert info.email and "@" in info.email
    assert any(p.profile_id == ctx.profile_id for p in info.profiles)
    calendars = [c for p in info.profiles for c in p.calendars]
    assert any(c.calendar_id == ctx.calendar_id for c in calendars)
    for p in info.profiles:
        assert isinstance(p.connected, bool)
        if not p.connected:
            assert p.relink_url


def userinfo_service_account(b: CalendarBroker, ctx: Ctx) -> None:
    info = b.userinfo(ctx.sa_creds)
    assert info.kind == "service_account"
    assert info.sub.startswith("ser_")
    assert info.domain and "." in info.domain
    assert info.profiles == ()


def profiles(b: CalendarBroker, ctx: Ctx) -> None:
    found = b.profiles(ctx.creds)
    assert any(p.profile_id == ctx.profile_id and p.connected for p in found)
    assert all(p.provider_name for p in found)
    # Microsoft 365 is exchange + office365 on the wire; the service is kept to tell it apart.
    for p in found:
        if p.provider_service == "office365":
            assert p.provider_name == "exchange"


def calendars(b: CalendarBroker, ctx: Ctx) -> None:
    found = b.calendars(ctx.creds)
    target = [c for c in found if c.calendar_id == ctx.calendar_id]
    assert target and not target[0].readonly and not target[0].deleted
    assert all(c.profile_id and c.name for c in found)
    assert all(c.permission_level in (None, "sandbox", "unrestricted") for c in found)


def free_busy(b: CalendarBroker, ctx: Ctx) -> None:
    found = b.free_busy(ctx.creds, start=ctx.window_start, end=ctx.window_end, tzid=ctx.tzid)
    assert found, "the window should hold at least one busy period"
    for p in found:
        assert p.status in {"busy", "tentative", "free", "unavailable"}
        assert p.start < p.end if type(p.start) is type(p.end) else True
        assert p.calendar_id


def availability(b: CalendarBroker, ctx: Ctx) -> None:
    slots = b.availability(ctx.availability)
    assert slots, "the query periods should have room"
    subs = {m.sub for g in ctx.availability.groups for m in g.members}
    first_period = min(p.start for p in ctx.availability.periods)
    last_period = max(p.end for p in ctx.availability.periods)
    for s in slots:
        assert s.end - s.start >= ctx.availability.duration
        assert first_period <= s.start and s.end <= last_period
        assert set(s.participants) <= subs and s.participants


def sequenced_availability(b: CalendarBroker, ctx: Ctx) -> None:
    query = ctx.sequenced
    options = b.sequenced_availability(query)
    assert options, "the query periods should have room for the sequence"
    assert list(options) == sorted(options, key=lambda o: o.start)
    first_period = min(p.start for p in query.periods)
    last_period = max(p.end for p in query.periods)
    for option in options:
        assert [sid for sid, _slot in option.slots] == [s.sequence_id for s in query.steps]
        assert first_period <= option.start and option.end <= last_period
        prev_end, prev_step = None, None
        for step, (_sid, slot) in zip(query.steps, option.slots, strict=True):
            assert slot.end - slot.start == step.duration
            assert set(slot.participants) <= {m.sub for g in step.groups for m in g.members}
            assert slot.participants
            if prev_end is not None and prev_step is not None:
                lows = [g for g in (prev_step.gap_after_min, step.gap_before_min) if g]
                highs = [g for g in (prev_step.gap_after_max, step.gap_before_max) if g is not None]
                gap = slot.start - prev_end
                assert gap >= max(lows, default=dt.timedelta(0))
                assert not highs or gap <= min(highs)
            prev_end, prev_step = slot.end, step


def event_lifecycle(b: CalendarBroker, ctx: Ctx) -> None:
    b.upsert_event(ctx.creds, ctx.calendar_id, ctx.event)
    events = b.managed_events(
        ctx.creds,
        calendar_ids=(ctx.calendar_id,),
        start=ctx.window_start,
        end=ctx.window_end,
        tzid=ctx.tzid,
    )
    ours = [e for e in events if e.event_id == ctx.event.event_id]
    assert len(ours) == 1
    event = ours[0]
    assert event.calendar_id == ctx.calendar_id and event.event_uid
    assert not event.deleted
    assert {a.email for a in ctx.event.attendees} <= {a.email for a in event.attendees}
    assert all(e.event_id for e in events), "only_managed returns only our events"
    # A managed (partner) event's uid is Cronofy's own, never an external event's uid.
    assert all(not e.event_uid.startswith("evt_external_") for e in events)
    b.delete_event(ctx.creds, ctx.calendar_id, ctx.event.event_id)


def upsert_rejected(b: CalendarBroker, ctx: Ctx) -> None:
    with pytest.raises(Invalid) as info:
        b.upsert_event(ctx.creds, ctx.calendar_id, replace(ctx.event, summary="x" * 1025))
    assert "summary" in info.value.fields
    assert all(k.startswith("errors.") for k in info.value.fields["summary"])


def profile_disconnected(b: CalendarBroker, ctx: Ctx) -> None:
    ctx.disconnect_profile(ctx.profile_id)
    with pytest.raises(ProfileDisconnected) as info:
        b.upsert_event(ctx.creds, ctx.calendar_id, ctx.event)
    assert info.value.status == 423
    assert info.value.link_hint and info.value.link_hint.sub == ctx.creds.sub


def channels(b: CalendarBroker, ctx: Ctx) -> None:
    ch = b.create_channel(
        ctx.creds, ctx.channel_callback_url, calendar_ids=(ctx.calendar_id,), only_managed=True
    )
    assert ch.channel_id.startswith("chn_")
    assert ch.callback_url == ctx.channel_callback_url
    assert ch.calendar_ids == (ctx.calendar_id,) and ch.only_managed
    assert ch.channel_id in {c.channel_id for c in b.channels(ctx.creds)}
    b.close_channel(ctx.creds, ch.channel_id)


def close_unknown_channel(b: CalendarBroker, ctx: Ctx) -> None:
    with pytest.raises(NotFound):
        b.close_channel(ctx.creds, "chn_000000000000000000000000")


def service_account_authorizations(b: CalendarBroker, ctx: Ctx) -> None:
    b.authorize_service_account_user(ctx.sa_creds, ctx.sa_requests[0])
    b.authorize_service_account_users(ctx.sa_creds, ctx.sa_requests)


def resources(b: CalendarBroker, ctx: Ctx) -> None:
    found = b.resources(ctx.sa_creds)
    assert found and all("@" in r.email for r in found)


def smart_invite(b: CalendarBroker, ctx: Ctx) -> None:
    created = b.upsert_smart_invite(ctx.smart_invite)
    assert created.smart_invite_id == ctx.smart_invite.smart_invite_id
    assert created.recipient_email == ctx.smart_invite.recipient_email
    assert created.icalendar and created.icalendar.startswith("BEGIN:VCALENDAR")
    # The response's times ({time, tzid} objects, as documented) are the ones we sent.
    assert (created.start, created.end) == (ctx.smart_invite.start, ctx.smart_invite.end)
    status = b.smart_invite(ctx.smart_invite.smart_invite_id, ctx.smart_invite.recipient_email)
    assert status.recipient_status in {"pending", "accepted", "tentative", "declined"}
    cancelled = b.cancel_smart_invite(
        ctx.smart_invite.smart_invite_id, ctx.smart_invite.recipient_email
    )
    assert cancelled.icalendar and "BEGIN:VCALENDAR" in cancelled.icalendar


def batch(b: CalendarBroker, ctx: Ctx) -> None:
    result = b.batch(
        ctx.creds,
        [
            BatchUpsert(ctx.calendar_id, ctx.event),
            BatchUpsert(
                ctx.unknown_calendar_id, replace(ctx.event, event_id=ctx.event.event_id + "b")
            ),
        ],
    )
    assert [e.ok for e in result.entries] == [True, False]
    assert result.entries[0].status == 202
    assert 400 <= result.entries[1].status < 500
    assert not result.ok and result.failures == (result.entries[1],)


def conferencing_authorization(b: CalendarBroker, ctx: Ctx) -> None:
    url = b.conferencing_authorization_url(
        ctx.creds, ctx.conferencing_redirect_uri, provider_name="zoom"
    )
    assert url.startswith("http")


def revoke(b: CalendarBroker, ctx: Ctx) -> None:
    creds = ctx.fresh_creds() if ctx.fresh_creds else ctx.creds
    b.revoke(creds.refresh_token)
    with pytest.raises(NeedsReauth):
        b.refresh(creds)
    b.revoke_sub(creds.sub)  # unknown/already revoked is still 200 (RFC 7009)


def revoke_service_account(b: CalendarBroker, ctx: Ctx) -> None:
    """A service account is revoked with its refresh token, the documented way (revoking by a
    ``ser_…`` sub is unconfirmed): afterwards its refresh token is refused."""
    b.revoke(ctx.sa_creds.refresh_token)
    with pytest.raises(NeedsReauth) as info:
        b.refresh(ctx.sa_creds)
    assert info.value.reason == "invalid_grant"


def revoke_profile(b: CalendarBroker, ctx: Ctx) -> None:
    creds = ctx.fresh_creds() if ctx.fresh_creds else ctx.creds
    b.revoke_profile(creds, creds.linking_profile.profile_id)


SCENARIOS: dict[str, Callable[[CalendarBroker, Ctx], None]] = {
    f.__name__: f
    for f in (
        exchange_code,
        refresh,
        refresh_invalid_grant,
        refresh_on_401,
        userinfo,
        userinfo_service_account,
        profiles,
        calendars,
        free_busy,
        availability,
        sequenced_availability,
        event_lifecycle,
        upsert_rejected,
        profile_disconnected,
        channels,
        close_unknown_channel,
        service_account_authorizations,
        resources,
        smart_invite,
        batch,
        conferencing_authorization,
        revoke,
        revoke_service_account,
        revoke_profile,
    )
}
