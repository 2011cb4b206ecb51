"""The seeded world, lined up with the app's demo organisation "Northwind Talent".

Deterministic: the same seed on the same day gives the same identities, ids and events
(``random.Random(seed)``; events are laid out over the four weeks from today's date).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterable
from typing import Any

from . import models as m
from .config import SandboxConfig
from .state import World
from .timeutil import WireTime, format_utc, zone

DEFAULT_PASSWORD = "sandbox"
SERVICE_ACCOUNT_PASSWORD = "svc-sandbox"
LONDON, NEW_YORK, BERLIN = "Europe/London", "America/New_York", "Europe/Berlin"
SEED_DAYS = 28

DOMAINS = [
    m.Domain("northwind.example", "google", "gsuite", True),
    m.Domain("contoso.example", "office365", "office365", True),
    m.Domain(
        "fabrikam.example",
        "exchange",
        "exchange",
        True,
        ews_url="https://mail.fabrikam.example/EWS/Exchange.asmx",
        impersonation_excluded=[
            "ceo.office@fabrikam.example",
            "legal.hold@fabrikam.example",
            "board.secretary@fabrikam.example",
        ],
    ),
    m.Domain("gmail.example", "google", "gmail", False),
    m.Domain("outlook.example", "live_connect", "outlook_com", False),
    m.Domain("icloud.example", "apple", "icloud", False),
]

# (email, name, kind, tzid, admin_of)
PEOPLE: list[tuple[str, str, str, str, str | None]] = [
    # The app's demo users (fixed decision 1).
    ("riley.chen@northwind.example", "Riley Chen", "person", LONDON, None),
    ("sam.patel@contoso.example", "Sam Patel", "person", NEW_YORK, None),
    ("morgan.lee@northwind.example", "Morgan Lee", "person", LONDON, None),
    ("alex.kim@northwind.example", "Alex Kim", "admin", LONDON, "northwind.example"),
    ("jordan.diaz@northwind.example", "Jordan Diaz", "person", NEW_YORK, None),
    # More of Northwind.
    ("taylor.nguyen@northwind.example", "Taylor Nguyen", "person", LONDON, None),
    ("casey.brooks@northwind.example", "Casey Brooks", "person", NEW_YORK, None),
    ("priya.shah@northwind.example", "Priya Shah", "person", BERLIN, None),
    ("drew.martin@northwind.example", "Drew Martin", "person", LONDON, None),
    # Contoso (Microsoft 365): three managers and their assistant.
    ("dana.wright@contoso.example", "Dana Wright", "person", NEW_YORK, None),
    ("lee.okafor@contoso.example", "Lee Okafor", "person", LONDON, None),
    ("maria.garcia@contoso.example", "Maria Garcia", "person", BERLIN, None),
    (
        "pa.office@contoso.example",
        "Pat Avery (Office of the Directors)",
        "assistant",
        NEW_YORK,
        None,
    ),
    ("noah.fischer@contoso.example", "Noah Fischer", "person", BERLIN, None),
    ("it.admin@contoso.example", "Contoso IT Admin", "admin", NEW_YORK, "contoso.example"),
    # Personal identities.
    ("jamie.rivera@gmail.example", "Jamie Rivera", "person", LONDON, None),
    ("avery.morgan@outlook.example", "Avery Morgan", "person", NEW_YORK, None),
    ("quinn.baker@icloud.example", "Quinn Baker", "person", BERLIN, None),
]

ROOMS = [
    ("room.aurora@northwind.example", "Aurora (6 seats)", LONDON),
    ("room.borealis@northwind.example", "Borealis (12 seats)", LONDON),
    ("boardroom@contoso.example", "Contoso Boardroom", NEW_YORK),
    ("room.hudson@contoso.example", "Hudson (4 seats)", NEW_YORK),
    ("room.spree@fabrikam.example", "Spree (8 seats)", BERLIN),
    ("room.havel@fabrikam.example", "Havel (10 seats)", BERLIN),
]

#: The assistant's delegated calendars: (manager email, writable).
DELEGATIONS = [
    ("dana.wright@contoso.example", True),
    ("lee.okafor@contoso.example", True),
    ("maria.garcia@contoso.example", False),
]

_FABRIKAM_FIRST = [
    "anna",
    "ben",
    "clara",
    "david",
    "elena",
    "felix",
    "greta",
    "hannes",
    "ines",
    "jonas",
    "katrin",
    "lukas",
    "mia",
    "nils",
    "olga",
    "paul",
    "rosa",
    "stefan",
    "tina",
    "uwe",
    "vera",
    "wolf",
    "yara",
    "zoe",
    "emil",
    "frida",
    "karl",
    "lena",
    "max",
    "nora",
]
_FABRIKAM_LAST = [
    "becker",
    "schulz",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "neumann",
    "schwarz",
    "zimmermann",
    "braun",
    "krueger",
    "hartmann",
    "lange",
    "werner",
    "krause",
    "meier",
    "lehmann",
    "schmid",
    "schulze",
    "maier",
    "koehler",
    "herrmann",
    "koenig",
    "walter",
    "mayer",
    "huber",
    "kaiser",
    "fuchs",
    "peters",
]


def fabrikam_people() -> list[tuple[str, str, str, str, str | None]]:
    """30 ordinary Fabrikam mailboxes, the service account, and 3 outside its impersonation
    scope."""
    people: list[tuple[str, str, str, str, str | None]] = [
        (
            f"{first}.{last}@fabrikam.example",
            f"{first.title()} {last.title()}",
            "person",
            BERLIN,
            None,
        )
        for first, last in zip(_FABRIKAM_FIRST, _FABRIKAM_LAST, strict=True)
    ]
    people += [
        ("ceo.office@fabrikam.example", "Office of the CEO", "person", BERLIN, None),
        ("legal.hold@fabrikam.example", "Legal Hold", "person", BERLIN, None),
        ("board.secretary@fabrikam.example", "Board Secretary", "person", BERLIN, None),
        (
            "svc-calendar@fabrikam.example",
            "Calendar Service Account",
            "service_account",
            BERLIN,
            "fabrikam.example",
        ),
    ]
    return people


def stable_id(seed: int, prefix: str, *parts: str, length: int = 24) -> str:
    digest = hashlib.sha256(("|".join([str(seed), prefix, *parts])).encode()).hexdigest()
    return prefix + digest[:length]


SUMMARIES = [
    "Team sync",
    "1:1",
    "Budget review",
    "Customer call",
    "Design review",
    "Quarterly planning",
    "Project kickoff",
    "Vendor meeting",
    "Lunch",
    "All hands",
    "Hiring committee",
    "Interview debrief",
    "Roadmap review",
    "Training",
    "Board prep",
    "Sprint planning",
    "Coffee chat",
    "Status update",
    "Offsite planning",
    "Legal review",
]


def seed_world(config: SandboxConfig, *, now: dt.datetime) -> World:
    """Build the seeded world for ``config.seed`` with events over the four weeks from ``now``
    (the sandbox clock's time at reset)."""
    world = World()
    seeded_at = now.astimezone(dt.UTC).replace(microsecond=0)
    world.seeded_at = format_utc(seeded_at)
    today = seeded_at.date()
    rng = random.Random(config.seed)
    for domain in DOMAINS:
        world.domains[domain.name] = m.Domain(
            **vars(domain) | {"impersonation_excluded": list(domain.impersonation_excluded)}
        )

    for email, name, kind, tzid, admin_of in PEOPLE + fabrikam_people():
        _add_identity(world, config.seed, email, name, kind, tzid, admin_of)
    for email, name, tzid in ROOMS:
        _add_identity(world, config.seed, email, name, "room", tzid, None)

    _add_extra_calendars(world, config.seed)

    for ident in sorted(world.identities.values(), key=lambda i: i.email):
        if ident.kind == "service_account":
            continue
        cal = _primary_calendar(world, ident)
        for event in generate_events(rng, ident, cal, today, seeded_at, config.seed):
            world.events_in(cal.calendar_id)[event.event_uid] = event
    _add_holidays(world, config.seed, today, seeded_at)
    world.rebuild_indexes()
    return world


def _add_identity(
    world: World, seed: int, email: str, name: str, kind: str, tzid: str, admin_of: str | None
) -> m.Identity:
    domain = world.domains[email.split("@", 1)[1]]
    password = SERVICE_ACCOUNT_PASSWORD if kind == "service_account" else DEFAULT_PASSWORD
    prefix = "res_" if kind == "room" else "acc_"
    account_id = "" if kind == "service_account" else stable_id(seed, prefix, email)
    ident = m.Identity(
        email=email,
        name=name,
        password=password,
        domain=domain.name,
        kind=kind,
        tzid=tzid,
        account_id=account_id,
        admin_of=admin_of,
    )
    world.identities[email.lower()] = ident
    if kind == "service_account":
        return ident
    profile_id = stable_id(seed, "pro_", email, length=12)
    world.accounts[account_id] = m.Account(account_id, email, name, tzid, [profile_id])
    world.profiles[profile_id] = m.Profile(
        profile_id, account_id, email, domain.provider_name, domain.provider_service
    )
    cal_name = {"google": email, "apple": "Home"}.get(domain.provider_name, "Calendar")
    if kind == "room":
        cal_name = name
    cal_id = f"cal_{profile_id[4:]}_{stable_id(seed, '', email, 'primary', length=12)}"
    world.calendars[cal_id] = m.Calendar(
        calendar_id=cal_id,
        profile_id=profile_id,
        name=cal_name,
        owner_email=email,
        primary=True,
        integrated_conferencing=domain.provider_name in {"google", "office365"},
    )
    return ident


def _primary_calendar(world: World, ident: m.Identity) -> m.Calendar:
    profile_id = world.accounts[ident.account_id].profile_ids[0]
    return next(
        c for c in world.profile_calendars(profile_id) if c.primary and c.source_calendar_id is None
    )


def _add_extra_calendars(world: World, seed: int) -> None:
    assistant = world.identity("pa.office@contoso.example")
    assert assistant is not None
    pa_profile = world.accounts[assistant.account_id].profile_ids[0]
    for manager_email, writable in DELEGATIONS:
        manager = world.identity(manager_email)
        assert manager is not None
        source = _primary_calendar(world, manager)
        cal_id = f"cal_{pa_profile[4:]}_{stable_id(seed, '', manager_email, 'delegate', length=12)}"
        world.calendars[cal_id] = m.Calendar(
            calendar_id=cal_id,
            profile_id=pa_profile,
            name=f"{manager.name} — Calendar",
            owner_email=manager.email,
            readonly=not writable,
            integrated_conferencing=True,
            source_calendar_id=source.calendar_id,
        )
    # A read-only holiday calendar for two recruiters, as Google adds by default.
    for email in ("riley.chen@northwind.example", "morgan.lee@northwind.example"):
        ident = world.identity(email)
        assert ident is not None
        profile_id = world.accounts[ident.account_id].profile_ids[0]
        cal_id = f"cal_{profile_id[4:]}_{stable_id(seed, '', email, 'holidays', length=12)}"
        world.calendars[cal_id] = m.Calendar(
            calendar_id=cal_id,
            profile_id=profile_id,
            name="Holidays in United Kingdom",
            owner_email=email,
            readonly=True,
        )


def _holiday_calendars(world: World) -> Iterable[m.Calendar]:
    return (c for c in world.calendars.values() if c.name == "Holidays in United Kingdom")


def _add_holidays(world: World, seed: int, today: dt.date, seeded_at: dt.datetime) -> None:
    # Fixed-offset "holidays" relative to today keep the seed day-independent in shape.
    for cal in _holiday_calendars(world):
        for offset, title in ((9, "Bank holiday"), (23, "Company day off")):
            day = today + dt.timedelta(days=offset)
            uid = stable_id(seed, "evt_external_", cal.calendar_id, title)
            world.events_in(cal.calendar_id)[uid] = make_event(
                uid,
                cal.calendar_id,
                title,
                day.isoformat(),
                (day + dt.timedelta(days=1)).isoformat(),
                LONDON,
                LONDON,
                seeded_at - dt.timedelta(days=60),
                transparency="transparent",
                organizer=None,
            )


def make_event(
    uid: str,
    calendar_id: str,
    summary: str,
    start: str,
    end: str,
    start_tzid: str,
    owner_tzid: str,
    created: dt.datetime,
    **fields: Any,
) -> m.Event:
    """An event whose epoch span is computed from its wire values (dates in the owner's zone)."""
    start_ts = WireTime(start, start_tzid).timestamp(owner_tzid)
    end_ts = WireTime(end, start_tzid).timestamp(owner_tzid)
    stamp = format_utc(created)
    return m.Event(
        event_uid=uid,
        calendar_id=calendar_id,
        summary=summary,
        start=start,
        end=end,
        start_tzid=start_tzid,
        end_tzid=start_tzid,
        start_ts=start_ts,
        end_ts=end_ts,
        created=stamp,
        updated=stamp,
        updated_ts=int(created.timestamp()),
        **fields,
    )


def generate_events(
    rng: random.Random,
    ident: m.Identity,
    cal: m.Calendar,
    today: dt.date,
    seeded_at: dt.datetime,
    seed: int,
) -> list[m.Event]:
    """Working-hours meetings, stand-ups, all-day absences, tentative and free events."""
    tz = zone(ident.tzid)
    created = seeded_at - dt.timedelta(days=rng.randint(3, 30))
    events: list[m.Event] = []
    busy_level = {"room": (2, 5), "assistant": (3, 6)}.get(ident.kind, (2, 6))
    if ident.domain == "fabrikam.example":
        busy_level = (1, 3)
    organizer = {"email": ident.email, "display_name": ident.name}
    counter = 0

    def add(summary: str, start: str, end: str, **fields: Any) -> None:
        nonlocal counter
        counter += 1
        uid = stable_id(seed, "evt_external_", ident.email, str(counter))
        fields.setdefault("organizer", organizer)
        events.append(
            make_event(
                uid, cal.calendar_id, summary, start, end, ident.tzid, ident.tzid, created, **fields
            )
        )

    vacation_start = rng.randint(3, SEED_DAYS - 4) if rng.random() < 0.35 else None
    for offset in range(SEED_DAYS):
        day = today + dt.timedelta(days=offset)
        if vacation_start is not None and offset == vacation_start:
            length = rng.randint(1, 3)
            add(
                "Out of office",
                day.isoformat(),
                (day + dt.timedelta(days=length)).isoformat(),
                transparency="opaque",
            )
        if day.weekday() >= 5:
            continue
        if ident.kind != "room" and day.weekday() == 4 and rng.random() < 0.4:
            add(
                "Working from home",
                day.isoformat(),
                (day + dt.timedelta(days=1)).isoformat(),
                transparency="transparent",
            )
        if ident.kind in {"person", "admin", "assistant"} and rng.random() < 0.5:
            _add_local(
                add,
                tz,
                day,
                9 * 60 + 30,
                15,
                "Daily stand-up",
                recurring=True,
                series_identifier=stable_id(seed, "ser_", ident.email, "standup", length=10),
            )
        taken: list[tuple[int, int]] = []
        for _ in range(rng.randint(*busy_level)):
            duration = rng.choice([30, 30, 45, 60, 60, 90])
            start_min = rng.randrange(8 * 60, 18 * 60 - duration + 1, 15)
            if any(start_min < e and start_min + duration > s for s, e in taken):
                continue
            taken.append((start_min, start_min + duration))
            roll = rng.random()
            fields: dict[str, Any] = {}
            if roll < 0.10:
                fields["participation_status"] = "tentative"
            elif roll < 0.16:
                fields["status"] = "tentative"
            elif roll < 0.24:
                fields["transparency"] = "transparent"
            summary = "Focus time" if fields.get("transparency") else rng.choice(SUMMARIES)
            if ident.kind == "room":
                summary = f"Booked: {rng.choice(SUMMARIES)}"
            _add_local(add, tz, day, start_min, duration, summary, **fields)
    return events


def _add_local(
    add, tz, day: dt.date, start_min: int, duration: int, summary: str, **fields
) -> None:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz) + dt.timedelta(minutes=start_min)
    end = start + dt.timedelta(minutes=duration)
    add(summary, format_utc(start), format_utc(end), **fields)


def identity_listing(world: World) -> list[dict[str, Any]]:
    """What ``GET /_sandbox/identities`` shows: enough to log in on the consent page."""
    rows = []
    for ident in sorted(world.identities.values(), key=lambda i: (i.domain, i.kind, i.email)):
        domain = world.domains[ident.domain]
        account = world.accounts.get(ident.account_id)
        rows.append(
            {
                "email": ident.email,
                "name": ident.name,
                "provider_name": domain.provider_name,
                "provider_service": domain.provider_service,
                "domain": ident.domain,
                "kind": ident.kind,
                "tzid": ident.tzid,
                "password": ident.password,
                "password_hint": f"dev-only password: {ident.password}",
                "sub": ident.account_id or None,
                "profile_ids": list(account.profile_ids) if account else [],
                "admin_of": ident.admin_of,
                "ews_url": domain.ews_url,
                "impersonation_excluded": ident.email in domain.impersonation_excluded,
            }
        )
    return rows
