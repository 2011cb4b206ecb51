"""Cursor pagination: ``?limit=`` (1–100) and an opaque ``cursor`` from the previous page.

A cursor is sealed (AES-GCM, webapp.security.Sealer) around the list it belongs to,
the organisation and user it was issued to, and the position reached. It cannot be read, altered,
or replayed on another list, organisation or person: such a cursor is refused with 422.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from webapp import deps
from webapp.api.errors import ApiError
from webapp.services import Actor

T = TypeVar("T")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_PURPOSE = "api-cursor"


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None


def issue(kind: str, actor: Actor, position: dict[str, Any]) -> str:
    payload = {"k": kind, "o": actor.organisation_id, "u": actor.user_id, "p": position}
    return deps.sealer().seal(_PURPOSE, json.dumps(payload, separators=(",", ":")))


def position(kind: str, actor: Actor, cursor: str | None) -> dict[str, Any] | None:
    """The position sealed in ``cursor`` (None for the first page); 422 if it is not ours."""
    if not cursor:
        return None
    raw = deps.sealer().open(_PURPOSE, cursor)
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if (
        not isinstance(payload, dict)
        or payload.get("k") != kind
        or payload.get("o") != actor.organisation_id
        or payload.get("u") != actor.user_id
        or not isinstance(payload.get("p"), dict)
    ):
        raise ApiError(
            422,
            "This cursor is not valid for this list. Start again without one.",
            fields={"cursor": ["This is not a cursor issued for this list."]},
        )
    return payload["p"]


def by_key(
    kind: str,
    actor: Actor,
    items: Iterable[T],
    key: Callable[[T], Any],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> Page:
    """Page through an in-memory list ordered by a unique, comparable ``key`` (keyset)."""
    after = position(kind, actor, cursor)
    ordered: Sequence[T] = sorted(items, key=key, reverse=descending)
    if after is not None:
        last = after.get("after")
        ordered = [i for i in ordered if (key(i) < last if descending else key(i) > last)]
    chunk = list(ordered[:limit])
    more = len(ordered) > limit
    next_cursor = issue(kind, actor, {"after": key(chunk[-1])}) if more and chunk else None
    return Page(chunk, next_cursor)
