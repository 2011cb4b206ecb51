"""A loop's plan as a person composes it: its sessions in order (title, length, who, room, video,
gaps, a pool pick and a shadow), the candidate and the days it may take; and a session once its
people and room are checked (``checking.check_plan``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from models import Pool
from webapp.services.availability import model

#: Sessions in a loop: at least two (one is an interview), at most what one sequenced
#: availability call takes comfortably (the aggregator allows ten steps).
MIN_SESSIONS, MAX_SESSIONS = 2, 8
#: Longest break between two sessions of a one-day loop (minutes).
MAX_BREAK = 240
DEFAULT_BREAK = 60
#: Gaps a session may ask for before or after it (as availability buffers).
MAX_GAP = 120
#: Most people one session picks from a pool.
MAX_POOL_PICK = 5
#: Longest sealed details accepted (names, email, nine titles, JSON-escaped, + AES-GCM).
MAX_SEALED = 16384


@dataclass(frozen=True)
class SessionPlan:
    title: str
    duration: int = 60
    panel_link_ids: tuple[int, ...] = ()
    room: str | None = None
    video: bool = True
    buffer_before: int = 0
    buffer_after: int = 0
    #: "Any ``pool_count`` from pool ``pool_id``" besides the people named.
    pool_id: int | None = None
    pool_count: int = 0
    #: Also bring a shadow (trainee) of the pool, when one is free (never counted in the N).
    bring_shadow: bool = False


@dataclass(frozen=True)
class LoopPlan:
    title: str
    candidate_name: str
    candidate_email: str
    sessions: tuple[SessionPlan, ...]
    start_date: dt.date
    days: int = 5
    tzid: str = "Europe/London"
    candidate_tzid: str | None = None
    split_days: bool = False
    max_break: int | None = DEFAULT_BREAK
    #: A coordinator's loop: the assigned hiring manager whose calendar holds the sessions.
    on_behalf_of_id: int | None = None


@dataclass(frozen=True)
class LoopDetails:
    """What the loop's row keeps sealed."""

    candidate_name: str
    candidate_email: str
    title: str
    session_titles: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ResolvedSession:
    """A session with its people and room checked against what the actor may choose."""

    plan: SessionPlan
    members: tuple[model.PanelMember, ...]
    room: model.Room | None
    pool: Pool | None = None
    #: The pool's members who could be picked: linked calendar, not a shadow, not named.
    candidates: tuple[model.PanelMember, ...] = ()
    #: The pool's shadows who could be brought along (linked calendar, not named), when the
    #: session asks for one.
    shadows: tuple[model.PanelMember, ...] = ()

    @property
    def count(self) -> int:
        return self.plan.pool_count if self.pool is not None else 0
