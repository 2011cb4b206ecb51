"""Parsing and formatting of the wire's times, dates and time zones (§0.3)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadTime(ValueError):
    """A value that is not a time, date or zone the API accepts."""


@lru_cache(maxsize=256)
def zone(tzid: str) -> ZoneInfo:
    """Return the IANA zone ``tzid`` or raise BadTime."""
    if not isinstance(tzid, str) or not tzid or tzid.startswith("/") or ".." in tzid:
        raise BadTime(f"unknown time zone {tzid!r}")
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadTime(f"unknown time zone {tzid!r}") from None


def format_utc(moment: dt.datetime) -> str:
    """``2025-01-21T09:00:00Z`` — UTC, seconds precision, as Cronofy writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_ts(ts: int) -> str:
    return format_utc(dt.datetime.fromtimestamp(ts, UTC))


def parse_datetime(value: str, tzid: str = "Etc/UTC") -> dt.datetime:
    """Parse an ISO 8601 time; a time without an offset is read in ``tzid``."""
    if not isinstance(value, str) or not value.strip():
        raise BadTime("must be an ISO 8601 time")
    text = value.strip()
    if text.endswith("UTC"):
        text = text[:-3] + "Z"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadTime(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tzid))
    return moment.astimezone(UTC).replace(microsecond=0)


def parse_date(value: str) -> dt.date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise BadTime(f"{value!r} is not a date")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadTime(f"{value!r} is not a date") from None


def is_date(value: object) -> bool:
    return isinstance(value, str) and bool(_DATE_RE.match(value))


def local_midnight(day: dt.date, tzid: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone(tzid)).astimezone(UTC)


@dataclass(frozen=True)
class WireTime:
    """An event boundary: either a UTC time or an all-day date, plus the zone it was given in."""

    value: str  # "2025-01-21T09:00:00Z" or "2025-01-21"
    tzid: str

    @property
    def all_day(self) -> bool:
        return is_date(self.value)

    def timestamp(self, owner_tzid: str) -> int:
        """Seconds since the epoch; a date means local midnight in the calendar owner's zone."""
        if self.all_day:
            return int(local_midnight(parse_date(self.value), owner_tzid).timestamp())
        return int(parse_datetime(self.value).timestamp())


def parse_event_time(value: object, default_tzid: str) -> WireTime:
    """Accept ``"...Z"``, ``"YYYY-MM-DD"`` or ``{"time": ..., "tzid": ...}`` (§5.1)."""
    tzid = default_tzid
    if isinstance(value, dict):
        tzid = value.get("tzid") or default_tzid
        value = value.get("time")
    zone(tzid)
    if is_date(value):
        parse_date(value)  # type: ignore[arg-type]
        return WireTime(value, tzid)  # type: ignore[arg-type]
    return WireTime(format_utc(parse_datetime(value, tzid)), tzid)  # type: ignore[arg-type]


def localize(value: str, tzid: str) -> dict[str, str]:
    """The ``localized_times`` form: ``{"time": "<local time with offset>", "tzid": ...}``."""
    if is_date(value):
        return {"time": value, "tzid": tzid}
    local = parse_datetime(value).astimezone(zone(tzid))
    return {"time": local.isoformat(), "tzid": tzid}


def parse_query_bound(value: str, tzid: str) -> dt.datetime:
    """A ``from``/``to`` query value (a date, checked by the caller): local midnight in ``tzid``."""
    if is_date(value):
        return local_midnight(parse_date(value), tzid)
    return parse_datetime(value, tzid)
