"""People's time zones: the IANA names a person may choose, and how they are shown."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from webapp.services.errors import Invalid

#: Names a browser or calendar may report for UTC, and the one zone list shows for it.
_UTC_ALIASES = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
        "GMT",
        "Etc/GMT",
        "Etc/GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "GMT0",
        "GMT+0",
        "GMT-0",
        "Etc/Greenwich",
        "Greenwich",
    }
)


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """The IANA zones a person can choose (the region/city names, plus Etc/UTC), sorted."""
    return tuple(
        sorted(
            z
            for z in available_timezones()
            if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
        )
    ) + ("Etc/UTC",)


@lru_cache(maxsize=1)
def _zone_set() -> frozenset[str]:
    return frozenset(zone_names())


def person_zone(name: str | None) -> str:
    """The listed IANA name for a person's time zone (UTC aliases become Etc/UTC), or Invalid."""
    value = (name or "").strip()
    if value in _UTC_ALIASES:
        return "Etc/UTC"
    if len(value) <= 64 and value in _zone_set():
        return value
    raise Invalid(
        "Choose a time zone from the list: an IANA name such as Europe/London or America/New_York.",
        field="timezone",
    )


def known_zone(name: str | None) -> str | None:
    """``person_zone`` for a proposal (from a browser or a calendar): None when not usable."""
    try:
        return person_zone(name)
    except Invalid:
        return None


def zone_label(tzid: str) -> str:
    """A short name people recognise: "New York" for America/New_York, "UTC" for Etc/UTC."""
    if tzid in _UTC_ALIASES:
        return "UTC"
    return tzid.rsplit("/", 1)[-1].replace("_", " ")
