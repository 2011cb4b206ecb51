"""Replay every contract scenario against the documented-wire cassettes (record_mode="none").

The broker points at the real documented host (https://api.cronofy.com). vcrpy answers inside
urllib3 before any name resolution or socket connect, so the suite's internet guard
(tests/netguard.py) stays armed and would fail the test if anything leaked past the cassette —
``test_without_a_cassette_the_guard_blocks_the_real_host`` proves the guard is live.

Opt-in re-recording against the real Cronofy: see cassettes/README.md.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from pathlib import Path

import pytest
import vcr

from broker.cronofy import CronofyBroker
from broker.ratelimit import InProcessRateLimiter
from broker.types import (
    Attendee,
    AvailabilityQuery,
    Credentials,
    EventWrite,
    Group,
    LinkingProfile,
    Member,
    Period,
    SequencedAvailabilityQuery,
    SequenceStep,
    ServiceAccountAuthorizationRequest,
    SmartInviteWrite,
)
from tests import netguard
from tests.broker.adapter.contract import SCENARIOS, Ctx

ROOT = Path(__file__).resolve().parents[3]
CASSETTES = ROOT / "cassettes"
RECORDING = os.environ.get("RENDEZVOUS_RECORD_CASSETTES") == "1"

_spec = importlib.util.spec_from_file_location("cassette_build", CASSETTES / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
DOC = build.DOC
UTC = dt.UTC


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


_SCRUB_KEYS = {"access_token", "refresh_token", "code", "token", "client_secret"}


def _scrub_response(response):
    """On re-recording, replace tokens in JSON responses so a real recording holds no secret."""
    body = response.get("body", {}).get("string")
    if not body:
        return response
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return response

    def walk(node):
        if isinstance(node, dict):
            return {
                k: ("FILTERED" if k in _SCRUB_KEYS and isinstance(v, str) else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    response["body"]["string"] = json.dumps(walk(data)).encode()
    return response


def make_vcr(record: bool = False) -> vcr.VCR:
    options = dict(
        cassette_library_dir=str(CASSETTES / "recorded" if record else CASSETTES),
        record_mode="all" if record else "none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
        filter_headers=build.FILTER_HEADERS,
        filter_post_data_parameters=build.FILTER_POST_DATA,
        decode_compressed_response=True,
    )
    if record:
        options["before_record_response"] = _scrub_response
    return vcr.VCR(**options)


def documented_ctx() -> Ctx:
    creds = Credentials(
        access_token=DOC["access_token"],
        refresh_token=DOC["refresh_token"],
        expires_at=dt.datetime.now(UTC) + dt.timedelta(hours=1),
        scope=build.TOKEN_SCOPE,
        sub=DOC["sub"],
        account_id=DOC["sub"],
        linking_profile=LinkingProfile("google", "gsuite", DOC["profile_id"], "jane@example.com"),
    )
    sa_creds = Credentials(
        access_token=DOC["sa_access_token"],
        refresh_token=DOC["sa_refresh_token"],
        expires_at=dt.datetime.now(UTC) + dt.timedelta(minutes=30),
        scope="service_account/accounts/manage",
        sub="ser_61a8b807a341fc00bee53042",
        service_account_id=DOC["service_account_id"],
    )
    av = build.AVAILABILITY_BODY
    g1, g2 = av["participants"]
    query = AvailabilityQuery(
        groups=(
            Group(
                members=(
                    Member(
                        g1["members"][0]["sub"],
                        calendar_ids=(DOC["calendar_id"],),
                        managed_availability=True,
                    ),
                    Member(
                        g1["members"][1]["sub"],
                        available_periods=tuple(
                            Period(_t(p["start"]), _t(p["end"]))
                            for p in g1["members"][1]["available_periods"]
                        ),
                    ),
                ),
                required="all",
            ),
            Group(members=tuple(Member(m["sub"]) for m in g2["members"]), required=1),
        ),
        duration=dt.timedelta(minutes=60),
        periods=tuple(Period(_t(p["start"]), _t(p["end"])) for p in av["query_periods"]),
        buffer_before=dt.timedelta(minutes=30),
        buffer_after=dt.timedelta(minutes=15),
        start_interval=dt.timedelta(minutes=30),
        response_format="slots",
        max_results=20,
    )

    def _step(item: dict) -> SequenceStep:
        buffer = item["buffer"]
        minutes = lambda side, bound: dt.timedelta(minutes=buffer[side][bound]["minutes"])  # noqa: E731
        members = tuple(
            Member(
                m["sub"],
                calendar_ids=tuple(m.get("calendar_ids") or ()),
                available_periods=tuple(
                    Period(_t(p["start"]), _t(p["end"])) for p in m.get("available_periods") or ()
                ),
            )
            for m in item["participants"][0]["members"]
        )
        return SequenceStep(
            item["sequence_id"],
            (Group(members=members, required="all"),),
            dt.timedelta(minutes=item["required_duration"]["minutes"]),
            start_interval=dt.timedelta(minutes=item["start_interval"]["minutes"]),
            gap_before_min=minutes("before", "minimum"),
            gap_before_max=minutes("before", "maximum"),
            gap_after_min=minutes("after", "minimum"),
            gap_after_max=minutes("after", "maximum"),
        )

    seq = build.SEQUENCED_BODY
    sequenced = SequencedAvailabilityQuery(
        steps=tuple(_step(item) for item in seq["sequence"]),
        periods=tuple(Period(_t(p["start"]), _t(p["end"])) for p in seq["query_periods"]),
    )
    u = build.UPSERT_BODY
    event = EventWrite(
        event_id=u["event_id"],
        summary=u["summary"],
        description=u["description"],
        start=_t(u["start"]),
        end=_t(u["end"]),
        tzid=u["tzid"],
        attendees=(Attendee("a.candidate@example.net", "A. Candidate"),),
        remove_attendees=("old@example.net",),
        location="Room 4",
        url=u["url"],
        reminders_minutes=(60, 10),
        transparency="opaque",
        conferencing_profile_id="default",
        subscription_url="https://app.example.com/cronofy/event-hooks",
    )
    si = build.SMART_INVITE_BODY
    invite = SmartInviteWrite(
        smart_invite_id=si["smart_invite_id"],
        recipient_email=si["recipient"]["email"],
        summary=si["event"]["summary"],
        description=si["event"]["description"],
        start=_t(si["event"]["start"]),
        end=_t(si["event"]["end"]),
        tzid=si["event"]["tzid"],
        location="Room 4",
        callback_url=si["callback_url"],
        organizer_name="Acme Recruiting",
        organizer_email=si["organizer"]["email"],
    )
    return Ctx(
        redirect_uri=DOC["redirect_uri"],
        new_code=lambda: DOC["code"],
        creds=creds,
        sa_creds=sa_creds,
        profile_id=DOC["profile_id"],
        calendar_id=DOC["calendar_id"],
        unknown_calendar_id=DOC["unknown_calendar_id"],
        window_start=dt.date.fromisoformat(DOC["window_start"]),
        window_end=dt.date.fromisoformat(DOC["window_end"]),
        tzid=DOC["tzid"],
        availability=query,
        sequenced=sequenced,
        event=event,
        channel_callback_url=DOC["channel_callback_url"],
        sa_requests=tuple(ServiceAccountAuthorizationRequest(**r) for r in build.SA_REQUESTS),
        smart_invite=invite,
        conferencing_redirect_uri=DOC["conferencing_redirect_uri"],
    )


def documented_broker() -> CronofyBroker:
    return CronofyBroker(
        DOC["client_id"],
        DOC["client_secret"],
        data_center="us",
        rate_limiter=InProcessRateLimiter(1000, 100_000),
        sleep=lambda s: None,
    )


@pytest.mark.skipif(RECORDING, reason="re-recording run")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_replays_against_documented_cassette(name):
    with make_vcr().use_cassette(f"{name}.yaml") as cassette:
        broker = documented_broker()
        SCENARIOS[name](broker, documented_ctx())
        broker.close()
    assert cassette.all_played, f"{name}: the adapter skipped documented calls"


def test_every_cassette_has_a_scenario_and_vice_versa():
    on_disk = {p.stem for p in CASSETTES.glob("*.yaml")}
    assert on_disk == set(SCENARIOS) == set(build.CASSETTES)


def test_cassettes_on_disk_are_what_build_py_writes():
    """The committed YAML is the generator's output (run cassettes/build.py after editing)."""
    import yaml

    for name in build.CASSETTES:
        on_disk = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())
        assert on_disk == build.cassette(name), f"{name}.yaml is stale"


def test_cassettes_hold_no_request_secrets():
    secrets = [DOC["client_secret"], DOC["code"], "Bearer "]
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {path.name}"
        import yaml

        for interaction in yaml.safe_load(text)["interactions"]:
            rq = interaction["request"]
            assert "authorization" not in {h.lower() for h in rq["headers"]}
            body = json.loads(rq["body"]) if rq["body"] else {}
            assert not set(body) & set(build.FILTER_POST_DATA), path.name


def test_without_a_cassette_the_guard_blocks_the_real_host():
    broker = documented_broker()
    with pytest.raises(netguard.NetworkAccessBlocked):
        broker.calendars(documented_ctx().creds)


def test_a_request_off_the_documented_contract_does_not_replay():
    """record_mode="none": an undocumented request is an error, never a silent live call."""
    from vcr.errors import CannotOverwriteExistingCassetteException

    with make_vcr().use_cassette("calendars.yaml"):
        broker = documented_broker()
        with pytest.raises(CannotOverwriteExistingCassetteException):
            broker.profiles(documented_ctx().creds)


# --- opt-in re-recording against the real Cronofy ------------------------------------------------

REAL_ENV = (
    "CRONOFY_CLIENT_ID",
    "CRONOFY_CLIENT_SECRET",
    "CRONOFY_TEST_ACCESS_TOKEN",
    "CRONOFY_TEST_REFRESH_TOKEN",
    "CRONOFY_TEST_CALENDAR_ID",
)
READ_ONLY_SCENARIOS = (
    "userinfo",
    "profiles",
    "calendars",
    "free_busy",
    "refresh",
    "event_lifecycle",
    "channels",
    "close_unknown_channel",
)


@pytest.fixture
def _internet_allowed():
    netguard.uninstall()
    yield
    netguard.install()


@pytest.mark.skipif(not RECORDING, reason="set RENDEZVOUS_RECORD_CASSETTES=1 to re-record")
@pytest.mark.parametrize("name", READ_ONLY_SCENARIOS)
def test_rerecord_against_real_cronofy(name, _internet_allowed):
    missing = [k for k in REAL_ENV if not os.environ.get(k)]
    if missing:
        pytest.fail(f"re-recording needs {', '.join(missing)}")
    env = os.environ
    base = documented_ctx()
    creds = Credentials(
        access_token=env["CRONOFY_TEST_ACCESS_TOKEN"],
        refresh_token=env["CRONOFY_TEST_REFRESH_TOKEN"],
        expires_at=dt.datetime.now(UTC) + dt.timedelta(minutes=5),
        scope="",
        sub=None,
    )
    broker = CronofyBroker(
        env["CRONOFY_CLIENT_ID"],
        env["CRONOFY_CLIENT_SECRET"],
        data_center=env.get("CRONOFY_DATA_CENTER", "us"),
    )
    info = broker.userinfo(creds)
    profile = info.profiles[0]
    creds = Credentials(
        **{
            **{f: getattr(creds, f) for f in Credentials.__dataclass_fields__},
            "sub": info.sub,
            "linking_profile": LinkingProfile(
                profile.provider_name,
                profile.provider_service,
                profile.profile_id,
                profile.profile_name,
            ),
        }
    )
    now = dt.datetime.now(UTC).replace(microsecond=0)
    ctx = base
    ctx.creds = creds
    ctx.profile_id = profile.profile_id
    ctx.calendar_id = env["CRONOFY_TEST_CALENDAR_ID"]
    ctx.window_start = (now - dt.timedelta(days=1)).date()
    ctx.window_end = (now + dt.timedelta(days=14)).date()
    ctx.event = EventWrite(
        event_id=f"rendezvous-contract-{int(now.timestamp())}",
        summary="Rendezvous contract check",
        start=now + dt.timedelta(days=2),
        end=now + dt.timedelta(days=2, hours=1),
        attendees=(Attendee("a.candidate@example.net"),),
    )
    ctx.channel_callback_url = env.get(
        "CRONOFY_TEST_CHANNEL_URL", "https://example.com/cronofy/push/contract"
    )
    (CASSETTES / "recorded").mkdir(exist_ok=True)
    with make_vcr(record=True).use_cassette(f"{name}.yaml"):
        SCENARIOS[name](broker, ctx)
