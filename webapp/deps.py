"""One home for the objects the app builds once and shares: database, broker, cipher, sealer,
job queue, callback guard. This module alone knows where they are kept (``app.extensions``);
everything else asks for them by name, typed:

    deps.broker()              # inside an app context (a request, a job, a CLI command)
    deps.cipher.of(app)        # given the app (WSGI middleware, tests)
    deps.jobs.install(app, j)  # once, while the app is built

Services never come here: they receive what they need as arguments (Flask-free).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flask import Flask, abort, current_app

if TYPE_CHECKING:
    from broker.port import CalendarBroker
    from webapp.callbacks import CallbackGuard
    from webapp.db import Database
    from webapp.jobs.queue import Jobs
    from webapp.mail import Mailer
    from webapp.security import Sealer, TokenCipher

T = TypeVar("T")


class Shared(Generic[T]):
    """One shared object of the app, kept under ``rendezvous.<name>`` in ``app.extensions``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = f"rendezvous.{name}"

    def __call__(self) -> T:
        """The current app's object (needs an app context)."""
        return current_app.extensions[self.key]

    def of(self, app: Flask) -> T:
        """``app``'s object, without an app context."""
        return app.extensions[self.key]

    def install(self, app: Flask, value: T) -> T:
        """Give ``app`` its object (while building it)."""
        app.extensions[self.key] = value
        return value

    def installed(self, app: Flask) -> bool:
        return self.key in app.extensions

    def __repr__(self) -> str:
        return f"<shared {self.key}>"


#: The engine and its session factory (``webapp.db.db_session`` gives the request's session).
database: Shared[Database] = Shared("db")
#: The calendar aggregator, or None when none is configured.
broker: Shared[CalendarBroker | None] = Shared("broker")
#: Calendar tokens and other secrets at rest (key ring, AES-GCM).
cipher: Shared[TokenCipher] = Shared("cipher")
#: Opaque references and sealed JSON in URLs and job arguments.
sealer: Shared[Sealer] = Shared("sealer")
#: The background job queue.
jobs: Shared[Jobs] = Shared("jobs")
#: Outgoing mail: SMTP, the development outbox, or None (production without SMTP).
mailer: Shared[Mailer | None] = Shared("mailer")
#: Rate limits and audit throttling of unauthenticated callback requests, shared by workers.
callback_guard: Shared[CallbackGuard] = Shared("callback_guard")
#: Response headers computed once from the config.
security_headers: Shared[tuple[tuple[str, str], ...]] = Shared("security_headers")
#: The OpenAPI document, built on first request.
openapi: Shared[dict[str, Any]] = Shared("openapi")

#: What the lean callback app shares with the main app (see ``webapp.create_app``).
CALLBACK_APP_SHARES: tuple[Shared[Any], ...] = (
    database,
    broker,
    cipher,
    sealer,
    jobs,
    callback_guard,
    mailer,
)


def share(source: Flask, target: Flask, slots: tuple[Shared[Any], ...]) -> None:
    """Give ``target`` the very objects ``source`` holds in ``slots``."""
    for slot in slots:
        slot.install(target, slot.of(source))


def required_broker() -> CalendarBroker:
    """The calendar broker, or a 503 page when no aggregator is configured."""
    found = broker()
    if found is None:
        abort(503)
    return found


def candidate_notify():
    """What the scheduling services need to email a candidate about a change (``Notify``):
    the shared objects, the public host (the calendar UID's domain) and the sender address."""
    from urllib.parse import urlsplit

    from webapp.services.scheduling.notices import Notify

    config = current_app.config
    return Notify(
        broker=broker(),
        cipher=cipher(),
        sealer=sealer(),
        ics_domain=urlsplit(config["PUBLIC_BASE_URL"]).hostname or "rendezvous",
        sender=config.get("MAIL_FROM") or "Rendezvous <no-reply@localhost>",
    )
