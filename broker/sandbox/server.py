"""Run a sandbox in a background thread on a free port (for tests, benchmarks and embedding)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from .app import Runtime, create_sandbox_app
from .client import SandboxClient
from .state import SandboxState


class _ReadGuard:
    """The socket's read side, which reads nothing once the response has been written."""

    def __init__(self, raw):
        self._raw = raw
        self.closed_for_request = False

    def read(self, size: int = -1) -> bytes:
        return b"" if self.closed_for_request else self._raw.read(size)

    def readline(self, size: int = -1) -> bytes:
        return b"" if self.closed_for_request else self._raw.readline(size)

    def readinto(self, buffer) -> int:
        return 0 if self.closed_for_request else self._raw.readinto(buffer)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


class KeepAliveRequestHandler(WSGIRequestHandler):
    """werkzeug's handler closes every connection; this one keeps HTTP/1.1 connections open.

    Clients pool connections against the real service, and the broker proves it through
    ``/_sandbox/stats``. werkzeug drains the socket after each response (safe only because it
    closes the connection), which would swallow the next pipelined request; so each request body
    is read to its end here and the drain then sees an empty stream.
    """

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds ~40 ms to every response on a reused connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def make_environ(self):
        environ = super().make_environ()
        chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        length = environ.get("CONTENT_LENGTH") or "0"
        if not chunked and length.isdigit():
            body = LimitedStream(environ["wsgi.input"], int(length))
            environ["wsgi.input"] = body
            environ["sandbox.keep_alive"] = (body, self.rfile)
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and self.close_connection is False
            and getattr(self, "_keep_alive", False)
        ):
            return
        super().send_header(keyword, value)

    def run_wsgi(self) -> None:
        real = self.rfile
        guard = _ReadGuard(real)
        self.rfile = guard  # type: ignore[assignment]
        self._keep_alive = True
        try:
            super().run_wsgi()
        finally:
            self.rfile = real
        if not guard.closed_for_request:
            self.close_connection = True  # the body was not read to its end: start afresh


class KeepAliveApp:
    """WSGI wrapper: when the response is complete, finish reading the request and seal it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        result = self.app(environ, start_response)
        body_and_guard = environ.get("sandbox.keep_alive")

        def iterate():
            try:
                yield from result
            finally:
                if hasattr(result, "close"):
                    result.close()
                if body_and_guard is not None:
                    body, guard = body_and_guard
                    body.exhaust()
                    guard.closed_for_request = True

        return iterate()


class SandboxStartError(RuntimeError):
    """The sandbox could not be started or did not answer."""


@dataclass
class SandboxHandle:
    url: str
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def runtime(self) -> Runtime:
        return self.app.extensions["sandbox"]

    @property
    def state(self) -> SandboxState:
        return self.runtime.state

    @cached_property
    def client(self) -> SandboxClient:
        """The control API, e.g. ``handle.client.reset()`` (broker/sandbox/client.py)."""
        return SandboxClient(self.url)

    def stop(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        self.runtime.stop()


def start_sandbox(
    client_id: str,
    client_secret: str | list[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: str | None = None,
    **options: Any,
) -> SandboxHandle:
    """Start a sandbox on ``host:port`` (0 = a free port) and wait until it answers."""
    app = create_sandbox_app(
        client_id=client_id, client_secret=client_secret, state_file=state_file, **options
    )
    try:
        server = make_server(
            host, port, KeepAliveApp(app), threaded=True, request_handler=KeepAliveRequestHandler
        )
    except OSError as exc:
        app.extensions["sandbox"].stop()
        raise SandboxStartError(f"cannot listen on {host}:{port}: {exc}") from exc
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    handle = SandboxHandle(
        url=f"http://{host}:{server.port}", app=app, server=server, thread=thread
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if requests.get(handle.url + "/_sandbox/config", timeout=2).ok:
                return handle
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            handle.stop()
            raise SandboxStartError(f"the sandbox at {handle.url} did not answer within 10 s")
        time.sleep(0.05)
