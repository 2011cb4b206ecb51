"""A signal that a call's request is on the wire, for callers that overlap their own work with
the aggregator's answer.

A page that sends its availability call from a pool thread and meanwhile does its own work
(database reads, the page around the slots) in the request thread wants the request to leave
*first*: CPython lets one thread run at a time, and a thread that blocked (on the rate
limiter's Redis round trip, on the socket's send) gets the interpreter back only when the
working thread waits on I/O or, at worst, after the 5 ms switch interval. Measured under
gunicorn, that held the schedule page's call back by up to 6 ms before it was sent. Waiting
for this signal instead costs the page the ~1 ms it takes to send the request, after which the
pool thread only waits on the socket and the page's work fills the aggregator's time.

``when_sent(callback)`` sets, for the calling thread, what to call once a request's bytes are
written (``CronofyBroker``'s transport calls :func:`announce_sent`); a broker that never
announces (a test double) leaves the caller to wait for the call to finish, never longer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def when_sent(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, ``callback`` is called (in this thread) each time a request of this
    thread has been written to its connection."""
    previous = getattr(_local, "callback", None)
    _local.callback = callback
    try:
        yield
    finally:
        _local.callback = previous


def announce_sent() -> None:
    """A request of this thread has just been written: tell whoever asked (if anyone)."""
    callback = getattr(_local, "callback", None)
    if callback is not None:
        callback()
