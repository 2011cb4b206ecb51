"""The loop page with its start times (webapp/views/loops.py). While the one aggregator call is
out, the page and its start times section are rendered with the options' place marked; once it
answers, only the options are made. Each option is a radio button with its whole itinerary, the
page's most repeated markup (up to twenty options of up to eight sessions), so built here rather
than by the template; what a stop shows besides its times is the same in every option (pool
picks aside), so it is made once per page. Every text is escaped; the values and times are our
own formats (ISO times, numbers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from flask import render_template
from markupsafe import Markup, escape

from webapp.services.errors import ServiceError
from webapp.services.loops.availability import Itinerary, LoopTimes, PendingLoopTimes, Stop

#: Where the start times section, and the options in it, go into a page rendered before the
#: aggregator answered (comments only the templates write: whatever a person typed is escaped,
#: so it cannot hold one).
TIMES_MARK = Markup("<!--rdv:loop-times-->")
OPTIONS_MARK = Markup("<!--rdv:loop-options-->")


def page(context: dict, tz: dt.tzinfo, times: LoopTimes | None, trouble: str | None) -> str:
    """The loop page (``templates/loops/show.html``) with its start times already read, if any."""
    return render_template(
        "loops/show.html",
        times=times,
        trouble=trouble,
        times_html=None,
        offered=bool(times and times.options),
        options_html=OptionMarkup(tz).options(times.options) if times else "",
        **context,
    )


def page_when_answered(context: dict, tz: dt.tzinfo, pending: PendingLoopTimes) -> str:
    """The loop page while its start times are in flight: all of it is rendered, the start
    times section as it is when some are offered; then only the options are made (or, with
    none or the reason why, the section again)."""
    outer = render_template("loops/show.html", times=None, times_html=TIMES_MARK, **context)
    ready = render_template(
        "loops/_times.html", trouble=None, offered=True, options_html=OPTIONS_MARK, **context
    )
    ready_page = outer.replace(TIMES_MARK, ready, 1)
    trouble = None
    try:
        times = pending.result()
    except ServiceError as exc:
        times, trouble = None, exc.message
    if times is not None and times.options:
        return ready_page.replace(OPTIONS_MARK, OptionMarkup(tz).options(times.options), 1)
    section = render_template(
        "loops/_times.html", trouble=trouble, offered=False, options_html="", **context
    )
    return outer.replace(TIMES_MARK, section, 1)


class OptionMarkup:
    """Options as ``templates/loops/_times.html`` lists them, in one zone."""

    def __init__(self, tz: dt.tzinfo) -> None:
        self.tz = tz
        self._what: dict[tuple, str] = {}
        self._times: dict[dt.datetime, tuple[dt.datetime, str]] = {}
        self._iso: dict[dt.datetime, str] = {}

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

    def _local(self, moment: dt.datetime) -> tuple[dt.datetime, str]:
        """A time in the page's zone and as HH:MM (one session's end is often the next one's
        start, and options share their times: each is converted once)."""
        made = self._times.get(moment)
        if made is None:
            local = moment.astimezone(self.tz)
            made = self._times[moment] = (local, f"{local:%H:%M}")
        return made

    def _value(self, option: Itinerary) -> str:
        """``option.value``, each start's ISO form made once per page."""
        iso = self._iso
        parts = []
        for s in option.stops:
            made = iso.get(s.start)
            if made is None:
                made = iso[s.start] = s.start.astimezone(dt.UTC).isoformat()
            parts.append(made)
        return ",".join(parts)

    def stops(self, stops: Sequence[Stop]) -> str:
        first = self._local(stops[0].start)[0].date()
        out = ['<ol class="itinerary">']
        for s in stops:
            start, begins = self._local(s.start)
            other = f' <span class="muted">{start:%a %d %b}</span>' if start.date() != first else ""
            out.append(
                f'  <li><span class="itinerary-time">{begins}–{self._local(s.end)[1]}{other}'
                f"</span>\n    {self._stop_what(s)}</li>"
            )
        out.append("</ol>")
        return "\n".join(out)

    def options(self, options: Sequence[Itinerary]) -> Markup:
        """Every option, the first one checked."""
        out = []
        for i, option in enumerate(options, 1):
            checked = " checked" if i == 1 else ""
            start = self._local(option.start)[0]
            out.append(
                f'<div class="loop-option">\n'
                f'  <input type="radio" name="option" id="option-{i}" '
                f'value="{escape(self._value(option))}"{checked}>\n'
                f'  <label for="option-{i}"><span class="loop-option-start">'
                f'{start:%A %d %B, %H:%M}</span> <span class="muted">until '
                f"{self._local(option.end)[1]}</span></label>\n"
                f"{self.stops(option.stops)}\n</div>"
            )
        return Markup("\n".join(out))  # nosec B704: every text above is escaped
