"""The transport announces a request once it is written and before its answer is read
(``broker.sent``), over real HTTP and HTTPS: a loopback server holds its answer until the test
has heard the announcement, so a transport that announced late (or never) fails here."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from broker.cronofy.transport import Transport
from broker.errors import Unavailable
from broker.sent import announce_sent, when_sent
from tests.broker.adapter._ok_transport import bare_transport
from tests.tls import self_signed

WAIT = 10  # seconds: only reached when something is broken


class HeldServer:
    """Answers each POST 200 with the body it read, once ``release`` is set."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.release = threading.Event()
        self.bodies: list[bytes] = []
        self.answered = 0
        held = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                held.bodies.append(body)
                held.release.wait(WAIT)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                held.answered += 1

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://localhost:{self.server.server_address[1]}/v1/availability"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["http", "https"])
def served(request, tmp_path, monkeypatch):
    """(the held server, a transport of our own session that trusts it)."""
    tls = None
    cert = None
    if request.param == "https":
        cert, key = self_signed(tmp_path)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
    server = HeldServer(tls)
    transport = bare_transport(timeout=WAIT)
    if cert is not None:  # requests takes the CA bundle from the environment first
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    yield server, transport
    server.stop()
    transport.close()


def _send(transport: Transport, url: str, payload: dict, heard: list) -> threading.Thread:
    """Send ``payload`` from a thread of its own that records (thread, answered so far) each
    time it hears the announcement; the response lands in ``heard`` last."""

    def run():
        me = threading.get_ident()
        with when_sent(lambda: heard.append(("sent", me == threading.get_ident()))):
            resp = transport.send("POST", url, headers={}, json=payload, idempotent=True)
        heard.append(("answer", resp.json()))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _until(predicate) -> bool:
    done = threading.Event()
    for _ in range(WAIT * 100):
        if predicate():
            return True
        done.wait(0.01)
    return False


def test_a_request_is_announced_once_written_before_its_answer(served):
    server, transport = served
    for n in range(2):  # a new connection, then the pooled one again
        heard: list = []
        server.release.clear()
        thread = _send(transport, server.url, {"n": n}, heard)
        assert _until(lambda heard=heard: heard), "the request was never announced"
        # announced in the sending thread, while the server still holds the answer back
        assert heard == [("sent", True)] and server.answered == n
        assert _until(lambda n=n: len(server.bodies) == n + 1)
        assert json.loads(server.bodies[n]) == {"n": n}  # the whole request had been written
        server.release.set()
        thread.join(WAIT)
        assert heard == [("sent", True), ("answer", {"n": n})]


def test_only_inside_the_block_and_only_its_own_thread_hears(served):
    server, transport = served
    server.release.set()
    heard: list = []
    with when_sent(lambda: heard.append("main")):
        other = _send(transport, server.url, {"other": True}, [])  # another thread's request
        other.join(WAIT)
    assert heard == []
    transport.send("POST", server.url, headers={}, json={"after": True}, idempotent=True)
    assert heard == []


def test_blocks_nest_and_restore_the_outer_callback():
    heard: list = []
    with when_sent(lambda: heard.append("outer")):
        with when_sent(lambda: heard.append("inner")):
            announce_sent()
        announce_sent()
    announce_sent()  # nobody asked: nothing happens
    assert heard == ["inner", "outer"]


def test_a_certificate_that_does_not_verify_is_unavailable_and_nothing_is_announced(tmp_path):
    """The TLS handshake fails before a byte of the request is written: no announcement, and
    the failure is the aggregator being unavailable (ssl's error carries a string ``reason``,
    which once broke the check for a request that never left)."""
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = HeldServer(tls)
    server.release.set()
    transport = bare_transport(timeout=WAIT)  # trusts the system's authorities only
    heard: list = []
    try:
        with when_sent(lambda: heard.append("sent")), pytest.raises(Unavailable):
            transport.send("POST", server.url, headers={}, json={}, idempotent=True)
    finally:
        server.stop()
        transport.close()
    assert heard == [] and server.bodies == []
