"""Run a sandbox in a background thread on a free port (for tests, benchmarks and embedding)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from .app import Runtime, create_sandbox_app
from .state import SandboxState


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

    def control(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """Call the control API, e.g. ``handle.control("POST", "/_sandbox/reset")``."""
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.url + path, json=json, **kwargs)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        self.runtime.stop()


def start_sandbox(client_id: str, client_secret: str | list[str], *, host: str = "127.0.0.1",
                  port: int = 0, state_file: str | None = None, **options: Any) -> SandboxHandle:
    """Start a sandbox on ``host:port`` (0 = a free port) and wait until it answers."""
    app = create_sandbox_app(client_id=client_id, client_secret=client_secret,
                             state_file=state_file, **options)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        app.extensions["sandbox"].stop()
        raise SandboxStartError(f"cannot listen on {host}:{port}: {exc}") from exc
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    handle = SandboxHandle(url=f"http://{host}:{server.port}", app=app, server=server,
                           thread=thread)
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
