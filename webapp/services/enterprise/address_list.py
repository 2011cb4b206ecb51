"""The list of mailboxes an IT admin pastes or uploads: one record per address, with the
person's name and time zone when the list gives them, and a reason for every line it cannot
use.

Accepted shapes:

* a CSV file (or pasted CSV) whose first row is a header naming an ``email`` column, and
  optionally ``name`` and ``timezone`` columns (other columns are ignored);
* lines without a header: bare addresses (one per line, or several separated by commas,
  semicolons or spaces) and ``Name <email>`` entries (``"Lee, Ann" <ann@x>`` when the name
  holds a comma).

A time zone must be an IANA name (``Europe/London``); a UTC alias becomes ``Etc/UTC``. At most
:data:`MAX_ADDRESSES` entries (usable or not) are read from one list; a longer one is refused
whole, so a list never costs more than that many records.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from webapp.services import zones
from webapp.services.errors import Invalid

#: The most addresses one pasted list or file may hold.
MAX_ADDRESSES = 20_000
#: The longest name kept from a list (longer ones are refused with a reason).
MAX_NAME = 200
#: How much of a refused line is kept to show it back.
MAX_LINE_SHOWN = 300

EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
_HEADERS = {
    "email": {"email", "e-mail", "mail", "email address", "e-mail address", "address", "upn"},
    "name": {"name", "display name", "displayname", "full name", "fullname"},
    "timezone": {"timezone", "time zone", "time_zone", "tz", "zone"},
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = re.compile(r"^(?P<name>[^<>]*?)\s*<\s*(?P<email>[^<>\s]+)\s*>$")


def _named(text: str) -> tuple[str | None, str] | None:
    """(name, lower-cased email) of ``Name <email>``, or None if it is not that shape."""
    match = _NAMED.match(text.strip())
    if not match or not valid_email(match["email"].lower()):
        return None
    name = match["name"].strip().strip("\"'").strip()
    return name or None, match["email"].lower()


@dataclass(frozen=True)
class Address:
    """One usable entry of the list: ``email`` is lower-cased and well-formed."""

    email: str
    name: str | None = None
    timezone: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A line (or an entry on it) the list could not use, and why."""

    line: int
    text: str
    reason: str
    #: The well-formed address on the line, when it has one (a bad time zone, a long name).
    email: str | None = None


@dataclass(frozen=True)
class AddressList:
    addresses: tuple[Address, ...]
    refused: tuple[Refusal, ...]


class TooManyAddresses(Invalid):
    """The list holds more than :data:`MAX_ADDRESSES` entries; nothing of it is used."""

    def __init__(self, found: int, limit: int = MAX_ADDRESSES):
        super().__init__(
            f"The list holds more than {limit:,} addresses; at most {limit:,} can be linked at "
            "a time. Split it into smaller lists. Nothing was sent."
        )
        self.found = found
        self.limit = limit


def valid_email(value: str) -> bool:
    return len(value) <= 320 and bool(EMAIL.match(value))


def shown(text: str) -> str:
    """A line as it may be shown back: control characters dropped, length capped."""
    return _CONTROL.sub("", text).strip()[:MAX_LINE_SHOWN]


def parse(text: str, *, limit: int = MAX_ADDRESSES) -> AddressList:
    """Read a pasted list or CSV file; raise :class:`TooManyAddresses` past ``limit``."""
    rows = list(_rows(text or ""))
    header = _header(rows[0][1]) if rows else None
    addresses: list[Address] = []
    refused: list[Refusal] = []
    if header is not None:
        body = rows[1:]
        for number, cells in body:
            _from_columns(number, cells, header, addresses, refused)
            if len(addresses) + len(refused) > limit:
                raise TooManyAddresses(len(addresses) + len(refused), limit)
    else:
        for number, cells in rows:
            _from_entries(number, cells, addresses, refused)
            if len(addresses) + len(refused) > limit:
                raise TooManyAddresses(len(addresses) + len(refused), limit)
    return AddressList(tuple(addresses), tuple(refused))


def _rows(text: str):
    """(line number, cells) of every row with something in it; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n")))
    start = 1
    try:
        for cells in reader:
            number, start = start, reader.line_num + 1
            if any(c.strip() for c in cells):
                yield number, cells
    except csv.Error as exc:  # a cell past the csv module's size limit (an unclosed quote)
        raise Invalid(
            f"The list cannot be read from line {start} on ({exc}): check its quotes. "
            "Nothing was sent."
        ) from None


def _header(cells: list[str]) -> dict[str, int] | None:
    """Column positions when the first row names an email column (and no cell is an address)."""
    names = [c.strip().lower() for c in cells]
    if any("@" in n for n in names):
        return None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        for key, spellings in _HEADERS.items():
            if name in spellings and key not in columns:
                columns[key] = index
    return columns if "email" in columns else None


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _from_columns(
    number: int,
    cells: list[str],
    header: dict[str, int],
    addresses: list[Address],
    refused: list[Refusal],
) -> None:
    line = shown(",".join(cells))
    raw = _cell(cells, header["email"])
    name = _cell(cells, header.get("name")) or None
    zone_text = _cell(cells, header.get("timezone"))
    if not raw:
        refused.append(Refusal(number, line, "no email address"))
        return
    email = raw.strip("<>\"' ").lower()
    if not valid_email(email):
        named = _named(raw)  # "Ann Lee <ann@x>" in the email column is fine too
        if named:
            email, name = named[1], name or named[0]
        else:
            refused.append(Refusal(number, line, "not a valid email address"))
            return
    _add(number, line, email, name, zone_text, addresses, refused)


def _from_entries(
    number: int, cells: list[str], addresses: list[Address], refused: list[Refusal]
) -> None:
    for cell in cells:
        cell = cell.strip()
        if not cell:
            continue
        if "<" in cell or ">" in cell:
            named = _named(cell)
            if named is None:
                refused.append(Refusal(number, shown(cell), "not a valid email address"))
            else:
                _add(number, shown(cell), named[1], named[0], "", addresses, refused)
            continue
        if cell.strip("\"'").lower() in _HEADERS["email"]:
            continue  # a lone header word ("email") heading a one-column list
        if "@" not in cell:
            refused.append(Refusal(number, shown(cell), "not a valid email address"))
            continue
        for token in re.split(r"[\s;]+", cell):
            token = token.strip().strip("\"'")
            if not token:
                continue
            email = token.lower()
            if valid_email(email):
                addresses.append(Address(email, None, None, number))
            else:
                refused.append(Refusal(number, shown(token), "not a valid email address"))


def _add(
    number: int,
    line: str,
    email: str,
    name: str | None,
    zone_text: str,
    addresses: list[Address],
    refused: list[Refusal],
) -> None:
    if name is not None:
        name = " ".join(_CONTROL.sub(" ", name).split()) or None
    if name is not None and len(name) > MAX_NAME:
        refused.append(Refusal(number, line, f"name longer than {MAX_NAME} characters", email))
        return
    zone = None
    if zone_text:
        try:
            zone = zones.person_zone(zone_text)
        except Invalid:
            refused.append(
                Refusal(
                    number,
                    line,
                    "unknown time zone (use an IANA name such as Europe/London)",
                    email,
                )
            )
            return
    addresses.append(Address(email, name, zone, number))
