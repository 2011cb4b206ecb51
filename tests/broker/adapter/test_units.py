"""Adapter behaviour that needs no server: endpoints, URLs, reprs, error texts, boundaries."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.cronofy import CronofyBroker
from broker.errors import Invalid, LinkHint, NeedsReauth, RateLimited
from broker.port import CalendarBroker
from broker.types import (
    AvailabilityQuery,
    BatchDelete,
    Credentials,
    EventWrite,
    Group,
    Member,
    Period,
    ServiceAccountAuthorizationRequest,
)

ROOT = Path(__file__).resolve().parents[3]
UTC = dt.UTC


def broker(**kw) -> CronofyBroker:
    return CronofyBroker("cid", "very-secret", sleep=lambda s: None, **kw)


@pytest.mark.parametrize(
    ("dc", "api", "app"),
    [
        ("us", "https://api.cronofy.com", "https://app.cronofy.com"),
        (None, "https://api.cronofy.com", "https://app.cronofy.com"),
        ("de", "https://api-de.cronofy.com", "https://app-de.cronofy.com"),
        ("sg", "https://api-sg.cronofy.com", "https://app-sg.cronofy.com"),
    ],
)
def test_data_center_selects_hosts(dc, api, app):
    b = broker(data_center=dc)
    assert (b.api_base_url, b.app_base_url) == (api, app)


def test_explicit_base_urls_and_validation():
    b = broker(api_base_url="http://127.0.0.1:9/", app_base_url="http://127.0.0.1:9")
    assert b.api_base_url == "http://127.0.0.1:9" and b.app_base_url == "http://127.0.0.1:9"
    with pytest.raises(ValueError):
        broker(data_center="mars")
    with pytest.raises(ValueError):
        broker(api_base_url="http://127.0.0.1:9")


def test_pycronofy_settings_are_never_mutated():
    import pycronofy

    before = (pycronofy.settings.API_BASE_URL, pycronofy.settings.APP_BASE_URL)
    b = broker(api_base_url="http://127.0.0.1:9", app_base_url="http://127.0.0.1:9")
    b.authorization_url("http://localhost/cb", "s")
    assert (pycronofy.settings.API_BASE_URL, pycronofy.settings.APP_BASE_URL) == before


def test_authorization_url():
    url = broker(data_center="uk").authorization_url(
        "http://localhost/cb",
        "st4te",
        provider_name="office365",
        delegated_scope=("read_free_busy",),
    )
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "https://app-uk.cronofy.com/oauth/authorize"
    )
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["response_type"] == "code" and q["client_id"] == "cid"
    assert q["redirect_uri"] == "http://localhost/cb" and q["state"] == "st4te"
    assert q["avoid_linking"] == "true" and q["provider_name"] == "office365"
    assert q["delegated_scope"] == "read_free_busy"
    assert "read_events" in q["scope"].split()
    assert "very-secret" not in url
    plain = parse_qs(urlsplit(broker().authorization_url("http://x/cb", "s")).query)
    assert "provider_name" not in plain and "delegated_scope" not in plain


def test_enterprise_connect_url():
    url = broker().enterprise_connect_url("http://localhost/ec", "adm1n")
    parts = urlsplit(url)
    assert parts.path == "/enterprise_connect/oauth/authorize"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["scope"] == "service_account/accounts/manage service_account/resources/manage"
    assert "read_events" in q["delegated_scope"].split() and q["state"] == "adm1n"


def test_credentials_repr_hides_tokens():
    c = Credentials("ACCESS-SECRET", "REFRESH-SECRET", dt.datetime.now(UTC), "s", sub="acc_1")
    assert "ACCESS-SECRET" not in repr(c) and "REFRESH-SECRET" not in repr(c)
    assert "acc_1" in repr(c)
    assert c.expires_within(60)
    assert "very-secret" not in repr(broker())


def test_cronofy_broker_satisfies_the_port():
    assert isinstance(broker(), CalendarBroker)
    port_methods = {n for n in vars(CalendarBroker) if not n.startswith("_")}
    assert port_methods <= set(dir(CronofyBroker))


def test_error_texts():
    e = NeedsReauth(
        link_hint=LinkHint(sub="acc_1", profile_id="pro_2"),
        reason="invalid_grant",
        status=400,
        operation="refresh",
    )
    assert str(e) == (
        "calendar link needs to be re-authorized during refresh (HTTP 400) "
        "[invalid_grant; sub=acc_1, profile=pro_2]"
    )
    assert "Invalid" in repr(Invalid(fields={"summary": ["errors.required"]}))
    assert RateLimited(retry_after=2.0).retry_after == 2.0


@pytest.mark.parametrize(
    "event",
    [
        EventWrite(
            "", "x", dt.datetime(2025, 1, 1, 9, tzinfo=UTC), dt.datetime(2025, 1, 1, 10, tzinfo=UTC)
        ),
        EventWrite(
            "e", "", dt.datetime(2025, 1, 1, 9, tzinfo=UTC), dt.datetime(2025, 1, 1, 10, tzinfo=UTC)
        ),
        EventWrite("e", "x", dt.datetime(2025, 1, 1, 9), dt.datetime(2025, 1, 1, 10)),  # naive
        EventWrite(
            "e",
            "x",
            dt.datetime(2025, 1, 1, 10, tzinfo=UTC),
            dt.datetime(2025, 1, 1, 9, tzinfo=UTC),
        ),
        EventWrite(
            "e",
            "x",
            dt.datetime(2025, 1, 1, 9, tzinfo=UTC),
            dt.datetime(2025, 1, 1, 10, tzinfo=UTC),
            conferencing_profile_id="explicit",
            conferencing_description="Webex",
        ),
        EventWrite(
            "e",
            "x",
            dt.datetime(2025, 1, 1, 9, tzinfo=UTC),
            dt.datetime(2025, 1, 1, 10, tzinfo=UTC),
            conferencing_profile_id="explicit",
            conferencing_description="Webex",
            conferencing_join_url="http://acme.webex.com/meet/riley",
        ),
    ],
)
def test_bad_event_is_refused_before_any_request(event):
    creds = Credentials("a", "r", dt.datetime.now(UTC), "", sub="acc_1")
    # The host is unroutable: reaching the network would fail differently (and the guard is on).
    with pytest.raises(Invalid):
        broker().upsert_event(creds, "cal_1", event)


def test_explicit_conferencing_goes_out_in_the_documented_form():
    """cronofy-csharp CanUpsertExplicitConferencing: profile_id, provider_description, join_url."""
    from broker.cronofy.encode import event_body

    event = EventWrite(
        "e",
        "x",
        dt.datetime(2025, 1, 1, 9, tzinfo=UTC),
        dt.datetime(2025, 1, 1, 10, tzinfo=UTC),
        conferencing_profile_id="explicit",
        conferencing_description="Webex",
        conferencing_join_url="https://acme.webex.com/meet/riley",
    )
    assert event_body(event)["conferencing"] == {
        "profile_id": "explicit",
        "provider_description": "Webex",
        "join_url": "https://acme.webex.com/meet/riley",
    }
    default = EventWrite("e", "x", event.start, event.end, conferencing_profile_id="default")
    assert event_body(default)["conferencing"] == {"profile_id": "default"}


@pytest.mark.parametrize("provider", ["cisco_webex", "webex", "google_meet", ""])
def test_only_documented_conferencing_providers_are_asked_for(provider):
    creds = Credentials("a", "r", dt.datetime.now(UTC), "", sub="acc_1")
    with pytest.raises(Invalid) as info:
        broker().conferencing_authorization_url(
            creds, "https://app.example/done", provider_name=provider
        )
    assert "provider_name" in info.value.fields


def test_batch_and_sa_sizes_are_checked_locally():
    creds = Credentials("a", "r", dt.datetime.now(UTC), "", sub="acc_1")
    with pytest.raises(Invalid):
        broker().batch(creds, [BatchDelete("cal", str(i)) for i in range(51)])
    with pytest.raises(Invalid):
        broker().batch(creds, [])
    req = ServiceAccountAuthorizationRequest("a@example.org", "https://x/cb", "read_free_busy")
    with pytest.raises(Invalid):
        broker().authorize_service_account_users(creds, [req] * 51)


def test_availability_needs_whole_minutes_and_periods():
    t = dt.datetime(2025, 1, 21, 9, tzinfo=UTC)
    q = AvailabilityQuery(
        groups=(Group((Member("acc_1"),)),),
        duration=dt.timedelta(seconds=90),
        periods=(Period(t, t + dt.timedelta(hours=2)),),
    )
    with pytest.raises(Invalid):
        broker().availability(q)
    with pytest.raises(Invalid):
        broker().availability(
            AvailabilityQuery(
                groups=(Group((Member("acc_1"),)),), duration=dt.timedelta(minutes=30)
            )
        )


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_dependency_rules():
    """broker never imports flask/webapp/models; only the broker/cronofy package imports pycronofy
    (nothing else in the application: not webapp, models, the sandbox or the entry points)."""
    adapter = ROOT / "broker" / "cronofy"
    assert (adapter / "__init__.py").is_file()
    production = [*ROOT.glob("*.py")] + [
        path for top in ("broker", "webapp", "models") for path in (ROOT / top).rglob("*.py")
    ]
    importers = set()
    for path in production:
        names = _imports(path)
        if "pycronofy" in names:
            importers.add(path.relative_to(ROOT).as_posix())
        parts = path.relative_to(ROOT).parts
        if parts[0] == "broker" and "sandbox" not in parts:
            # the sandbox is a Flask app by design and is never imported by production
            assert not names & {"flask", "webapp", "models"}, path
    outside = {p for p in importers if not p.startswith("broker/cronofy/")}
    assert importers and not outside, outside


def test_importing_the_broker_does_not_import_flask():
    code = (
        "import sys, broker.cronofy, broker.port, broker.notifications, broker.ratelimit; "
        "bad = [m for m in ('flask', 'webapp', 'models', 'broker.sandbox') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_query_days_are_dates_in_the_query_zone():
    """``from``/``to`` go out as dates in ``tzid``: an instant is widened to the local day that
    holds it, and a window ending at local midnight gives the day after the last day shown."""
    from broker.cronofy.encode import query_days

    la = dt.timezone(dt.timedelta(hours=-8))
    # Mon 20 .. Fri 24 January in Los Angeles: midnight to midnight, local.
    start = dt.datetime(2031, 1, 20, 0, 0, tzinfo=la)
    end = dt.datetime(2031, 1, 25, 0, 0, tzinfo=la)
    assert query_days(start, end, "America/Los_Angeles") == ("2031-01-20", "2031-01-25")
    # The same instants read as UTC days would drop nothing either: 08:00Z on the 25th → 26th.
    assert query_days(start, end, "Etc/UTC") == ("2031-01-20", "2031-01-26")
    # Dates go out as they are; None stays unsent.
    assert query_days(dt.date(2031, 1, 20), dt.date(2031, 1, 25), "Europe/London") == (
        "2031-01-20",
        "2031-01-25",
    )
    assert query_days(None, None, "Etc/UTC") == (None, None)
    with pytest.raises(Invalid):
        query_days(dt.datetime(2031, 1, 20), None, "Etc/UTC")  # naive
    with pytest.raises(Invalid):
        query_days(dt.date(2031, 1, 20), None, "Mars/Olympus")
