"""The members' busy overlay of the week grid, read on its own.

The schedule page shows the panel's free slots as soon as the one availability call answers;
each member's busy blocks (free/busy only: start, end and status) come from a second request
the page's script makes, or inline when the person asks for them without the script. The
question is checked exactly as for the slots (the same panel rules, the same coordinator rule,
the same organisation), one free/busy read per member runs concurrently, and our own bookings
are added to each member's blocks as on the page. The viewer's own lane, and only it, also
shows their own events' titles. Nothing read here is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from broker.port import CalendarBroker
from models import ProfileLink, User
from webapp.security import TokenCipher
from webapp.services import Actor, delegation_watch
from webapp.services.availability.busy import PendingBusy
from webapp.services.availability.free_slots import held_busy, held_for
from webapp.services.availability.model import Grid, Query
from webapp.services.availability.roster import resolve_panel
from webapp.services.availability.windows import validate_query, window_for


def busy_overlay(
    session: Session,
    broker: CalendarBroker,
    cipher: TokenCipher,
    actor: Actor,
    query: Query,
    *,
    choices: Sequence[tuple[ProfileLink, User]] | None = None,
) -> Grid:
    """The panel's busy blocks over the query's days, as a grid without slots (the slots are the
    availability call's, which this does not make). The actor's own calendar, when on the
    panel, has its blocks titled with the actor's own events (``busy.PendingBusy``)."""
    validate_query(query)
    members = resolve_panel(
        session,
        actor,
        query.panel_link_ids,
        on_behalf_of_id=query.on_behalf_of_id,
        choices=choices,
        allow_empty=bool(query.pools),  # a panel wholly from pools: no lanes, no busy to read
    )
    window, days = window_for(query)
    pending = PendingBusy(
        session, broker, cipher, members, days, query.tzid, owner_id=actor.user_id
    )
    held = held_for(session, members, window)
    busy, problems = held_busy(pending, members, held)
    failed = [m.link for m in members if m.link.id in problems and m.link.is_delegated]
    if failed:  # a colleague withdrew the calendar shared with its owner: say so on their lane
        lost = delegation_watch.recheck_owners(session, broker, cipher, failed)
        for link in lost:
            problems[link.id] = delegation_watch.withdrawn_message(session, [link])
    return Grid(query, members, window, (), busy, problems, days)
