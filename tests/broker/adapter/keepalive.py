"""Serve the sandbox's WSGI app over HTTP/1.1 *keep-alive* (tests and benchmark only).

Werkzeug's development server (which ``broker.sandbox.server.start_sandbox`` uses) answers every
request with ``Connection: close`` (werkzeug ≥ 2.1 always does), so no client can ever reuse a
connection to it and connection pooling cannot be observed. The real Cronofy API keeps
connections alive. This small threaded server speaks HTTP/1.1 with persistent connections and
hands each request to the same sandbox Flask app, so pooled and unpooled clients can be
compared; ``/_sandbox/stats`` then counts real distinct connections.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _handler_for(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "content-length"]
            builder = EnvironBuilder(path=parts.path, query_string=parts.query,
                                     method=self.command, headers=headers, data=body,
                                     base_url=f"http://{self.headers.get('Host', 'localhost')}")
            environ = builder.get_environ()
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = map(str, self.client_address[:2])
            response = Response.from_app(app, environ)
            data = response.get_data()
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, *args) -> None:  # quiet
            return None

    return Handler


@dataclass
class KeepAliveHandle:
    url: str
    server: ThreadingHTTPServer
    thread: threading.Thread
    runtime: object

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.runtime.stop()


def start_keepalive_sandbox(client_id: str, client_secret: str, **options) -> KeepAliveHandle:
    from broker.sandbox.app import create_sandbox_app

    app = create_sandbox_app(client_id=client_id, client_secret=client_secret, **options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(app))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="keepalive-sandbox",
                              daemon=True)
    thread.start()
    return KeepAliveHandle(url=f"http://127.0.0.1:{server.server_address[1]}", server=server,
                           thread=thread, runtime=app.extensions["sandbox"])
