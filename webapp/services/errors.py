"""Every error a service raises on purpose, each on a base that says what it means to a caller.

The bases carry the HTTP meaning: the API answers each error with its nearest base's status
(one table, ``webapp.api.errors.STATUS``), and web pages pick theirs from the same bases. A
concrete error may add a stable ``code`` for API clients (``slot_taken``…); ``message`` is always
safe to show a user and never holds a secret or a vendor's text.

    base            API status   meaning
    Invalid         422          the input was refused
    Unprocessable   422          understood, but cannot be done in the current state
    Unauthorized    401          the presented credential is not valid
    Forbidden       403          the actor may not do this
    NotFound        404          no such record visible to this actor
    Conflict        409          the current state stands in the way (retry may help)
    Gone            410          the thing existed but can no longer be used
    UpstreamFailed  502          the calendar service did not accept a change
    Unavailable     503          a service this needs cannot be reached now
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from webapp.services.availability.model import Query


class ServiceError(Exception):
    """Base of the errors a service raises on purpose; ``message`` is safe to show a user."""

    #: A specific, stable error code for API clients; None: the base's generic code.
    code: ClassVar[str | None] = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# ---------------------------------------------------------------------------------------------
# Bases, by what they mean to the caller


class Invalid(ServiceError):
    """The input was refused; nothing was changed."""


class Unprocessable(ServiceError):
    """The request is understood but cannot be carried out in the current state."""


class Unauthorized(ServiceError):
    """The presented credential is not (or no longer) valid."""


class Forbidden(ServiceError):
    """The actor may not do this."""


class NotFound(ServiceError):
    """No such record visible to this actor (also used for other organisations' records)."""


class Conflict(ServiceError):
    """The current state stands in the way; nothing was changed."""


class Gone(ServiceError):
    """The thing existed but can no longer be used."""


class UpstreamFailed(ServiceError):
    """The calendar service did not accept a change."""


class Unavailable(ServiceError):
    """A service this operation needs cannot be reached now; nothing was changed."""


# ---------------------------------------------------------------------------------------------
# Connecting calendars


class StateRejected(Invalid):
    """The OAuth ``state`` is missing, unknown, used, expired or belongs to someone else."""


class Declined(Forbidden):
    """The person said no on the aggregator's consent page."""


class AggregatorTrouble(Unavailable):
    """The aggregator could not be reached or refused for now; nothing was stored."""

    code = "calendar_unavailable"


class NoBudgetNow(AggregatorTrouble):
    """Not asked at all: the aggregator budget this work may use had no room within its
    patience (a paced pass defers the rest); ``retry_in`` seconds until it will."""

    def __init__(self, message: str, *, retry_in: float | None = None):
        super().__init__(message)
        self.retry_in = retry_in


class ReconnectNeeded(Conflict):
    """The link lost access at the aggregator; the person must reconnect."""

    code = "reconnect_needed"


class ServiceAccountTrouble(Unprocessable):
    """The service account cannot be used now (needs reconnecting, or the aggregator refused)."""


# ---------------------------------------------------------------------------------------------
# Scheduling


class WriteFailed(UpstreamFailed):
    """A calendar write or delete did not go through; the job retries it."""


class SlotTaken(Conflict):
    """The chosen time is no longer free for the panel. ``asked`` (the booking's question, its
    panel, duration, buffers and room) lets the caller offer fresh slots; ``moving`` is the
    interview being moved, whose own time does not count against them."""

    code = "slot_taken"

    def __init__(
        self,
        message: str,
        *,
        asked: Query | None = None,
        start: dt.datetime | None = None,
        moving: int | None = None,
    ):
        super().__init__(message)
        self.asked = asked
        self.start = start
        self.moving = moving


class LinkUnusable(Gone):
    """The candidate link is unknown, expired, used or revoked (``state`` says which)."""

    def __init__(self, message: str, state: str):
        super().__init__(message)
        self.state = state


# ---------------------------------------------------------------------------------------------
# The API's own requests


class ChangeRefused(Forbidden):
    """The candidate may not reschedule or cancel through their link (the recruiter did not allow
    it, the cut-off before the interview has passed, or the interview is no longer on)."""


class TokenRejected(Unauthorized):
    """The presented token is not (or no longer) valid; ``reason`` is for the audit trail."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class KeyReused(Invalid):
    """The idempotency key was first used for a different request."""

    code = "idempotency_key_reused"


class KeyInUse(Conflict):
    """The first request with this idempotency key has not finished (or its answer cannot be
    replayed)."""

    code = "idempotency_key_in_use"
