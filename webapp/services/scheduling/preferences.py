"""Scheduling preferences: working hours and the video provider."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    SchedulingPreference,
)
from webapp.services import Actor
from webapp.services.audit import record
from webapp.services.errors import Invalid


def preference_of(
    session: Session, organisation_id: int | None, user_id: int | None
) -> SchedulingPreference | None:
    query = select(SchedulingPreference).where(
        SchedulingPreference.organisation_id == organisation_id
    )
    query = query.where(
        SchedulingPreference.user_id.is_(None)
        if user_id is None
        else SchedulingPreference.user_id == user_id
    )
    return session.scalar(query)


def parse_minutes(value: str, name: str) -> int:
    """``HH:MM`` (00:00–24:00) as minutes after midnight."""
    try:
        hh, mm = value.split(":")
        total = int(hh) * 60 + int(mm)
    except (ValueError, AttributeError):
        raise Invalid("Times look like 09:00.", field=name) from None
    if not 0 <= total <= 24 * 60 or not 0 <= int(mm) < 60:
        raise Invalid("Times look like 09:00.", field=name)
    return total


def save_preferences(
    session: Session,
    actor: Actor,
    *,
    start: str,
    end: str,
    weekdays: Sequence[str],
    video_profile: str | None,
    allowed_video: Iterable[str] = (),
    video_room_url: str | None = None,
    video_room_name: str | None = None,
) -> SchedulingPreference:
    """Save the user's own working hours (in their own time zone) and video provider (with
    their own meeting-room link, if they give one)."""
    from webapp.services import video

    start_minute, end_minute = parse_minutes(start, "start"), parse_minutes(end, "end")
    if end_minute <= start_minute:
        raise Invalid("The working day must end after it starts.", field="end")
    days = "".join(sorted({d for d in weekdays if d in "1234567" and len(d) == 1}))
    if not days:
        raise Invalid("Choose at least one working day.", field="weekdays")
    allowed = {"default", "none", video.OWN_ROOM, *allowed_video}
    if video_profile and video_profile not in allowed:
        raise Invalid("Choose one of the listed video providers.", field="video_profile")
    room_url = room_name = None
    if (video_room_url or "").strip() or video_profile == video.OWN_ROOM:
        room_url = video.clean_room_url(video_room_url)
        room_name = video.clean_room_name(video_room_name)
    pref = preference_of(session, actor.organisation_id, actor.user_id)
    if pref is None:
        pref = SchedulingPreference(organisation_id=actor.organisation_id, user_id=actor.user_id)
        session.add(pref)
    pref.start_minute, pref.end_minute, pref.weekdays = start_minute, end_minute, days
    pref.video_profile = video_profile or None
    pref.video_room_url, pref.video_room_name = room_url, room_name
    pref.video_fallback_at = None
    record(
        session,
        actor,
        "scheduling.preferences_changed",
        target_type="user",
        target_id=actor.user_id,
    )
    session.commit()
    return pref
