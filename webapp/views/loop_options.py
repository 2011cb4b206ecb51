"""The loop page's start times: each option a radio button with its whole itinerary, the page's
most repeated markup (up to twenty options of up to eight sessions), so built here rather than
by the template, once the aggregator has answered (webapp/views/loops.py). What a stop shows
besides its times is the same in every option (pool picks aside), so it is made once per page.
Every text is escaped; the values and times are our own formats (ISO times, numbers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

from webapp.services.loops.availability import Itinerary, Stop


class OptionMarkup:
    """Options as ``templates/loops/_times.html`` lists them, in one zone."""

    def __init__(self, tz: dt.tzinfo) -> None:
        self.tz = tz
        self._what: dict[tuple, str] = {}

    def _stop_what(self, s: Stop) -> str:
        key = (s.ordinal, s.title, s.people, s.room, s.video, s.picked, s.why)
        made = self._what.get(key)
        if made is None:
            room = f' · <span class="itinerary-room">{escape(s.room.name)}</span>' if s.room else ""
            made = (
                f'<span class="itinerary-what"><strong>{escape(s.title)}</strong> — '
                f"{escape(', '.join(s.people))}{room}{' · video' if s.video else ''}</span>"
            )
            if s.why:
                made += (
                    f'\n    <details class="itinerary-why"><summary>Why '
                    f"{escape(', '.join(s.picked))}?</summary>Picked from the pool by load, "
                    f"under each person's limits: {escape(s.why)}</details>"
                )
            self._what[key] = made
        return made

    def stops(self, stops: Sequence[Stop]) -> str:
        tz = self.tz
        first = stops[0].start.astimezone(tz).date()
        out = ['<ol class="itinerary">']
        for s in stops:
            start = s.start.astimezone(tz)
            other = f' <span class="muted">{start:%a %d %b}</span>' if start.date() != first else ""
            out.append(
                f'  <li><span class="itinerary-time">{start:%H:%M}–'
                f"{s.end.astimezone(tz):%H:%M}{other}</span>\n    {self._stop_what(s)}</li>"
            )
        out.append("</ol>")
        return "\n".join(out)

    def options(self, options: Sequence[Itinerary]) -> Markup:
        """Every option, the first one checked."""
        tz = self.tz
        out = []
        for i, option in enumerate(options, 1):
            checked = " checked" if i == 1 else ""
            start = option.start.astimezone(tz)
            out.append(
                f'<div class="loop-option">\n'
                f'  <input type="radio" name="option" id="option-{i}" '
                f'value="{escape(option.value)}"{checked}>\n'
                f'  <label for="option-{i}"><span class="loop-option-start">'
                f'{start:%A %d %B, %H:%M}</span> <span class="muted">until '
                f"{option.end.astimezone(tz):%H:%M}</span></label>\n"
                f"{self.stops(option.stops)}\n</div>"
            )
        return Markup("\n".join(out))  # nosec B704: every text above is escaped
