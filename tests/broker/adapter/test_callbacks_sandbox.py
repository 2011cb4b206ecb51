"""End to end over real HTTP: the sandbox POSTs signed notifications and Enterprise Connect
callbacks to a loopback receiver; broker.notifications verifies and parses them, and the
broker redeems the callback's code — the full asynchronous contract of §2.3–2.5 and §7."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from broker.notifications import (
    HMAC_HEADER,
    parse_notification,
    parse_service_account_callback,
    verify_hmac,
)
from broker.types import ServiceAccountAuthorizationRequest
from tests.broker.adapter import sandbox_control as sc


class Receiver:
    """Collects (path, raw body, signature header) of every POST it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, str | None]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, body, self.headers.get(HMAC_HEADER)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_receiver():
    r = Receiver()
    yield r
    r.stop()


def _deliver(control) -> None:
    control.deliver()


def _admin_creds(control, broker):
    code = sc.code_for(
        control, "alex.kim@northwind.example", broker.enterprise_connect_url(sc.REDIRECT_URI, "adm")
    )
    return broker.exchange_code(code, sc.REDIRECT_URI)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("where", ["authorization", "top_level"])
def test_service_account_flow_end_to_end(control, broker, callback_receiver, signed, where):
    """Every variant the sandbox can be switched to (signature or not; state inside
    ``authorization`` or at the top level) parses to the same answer."""
    control.reset()
    control.update_config(sa_callback_signed=signed, sa_callback_state=where)
    sa = _admin_creds(control, broker)
    assert sa.service_account_id and sa.service_account_id.startswith("ser_")
    info = broker.userinfo(sa)
    assert info.kind == "service_account" and info.domain == "northwind.example"

    ok_url = f"{callback_receiver.url}/cronofy/sa-callback?user=42"
    requests_ = [
        ServiceAccountAuthorizationRequest(
            "taylor.nguyen@northwind.example",
            ok_url,
            "read_account list_calendars read_free_busy",
            "u42",
        ),
        ServiceAccountAuthorizationRequest(
            "nobody@northwind.example",
            f"{callback_receiver.url}/cronofy/sa-callback?user=43",
            "read_free_busy",
            "u43",
        ),
    ]
    broker.authorize_service_account_users(sa, requests_)
    _deliver(control)

    by_state = {}
    for path, body, signature in callback_receiver.received:
        if signed:
            assert verify_hmac(body, signature, [sc.CLIENT_SECRET]), "callback not signed"
            assert not verify_hmac(body, signature, ["another-secret"])
        else:
            assert signature is None
        cb = parse_service_account_callback(body)
        by_state[cb.state] = (path, cb)
    assert set(by_state) == {"u42", "u43"}

    path, ok = by_state["u42"]
    assert ok.success and ok.code
    # the code is redeemed with redirect_uri = the exact callback_url, query string included
    user = broker.exchange_code(ok.code, ok_url)
    assert user.sub and user.sub.startswith("acc_")
    assert broker.userinfo(user).email == "taylor.nguyen@northwind.example"

    _, failed = by_state["u43"]
    assert not failed.success and failed.code is None
    assert failed.error and failed.error_key


def test_channel_notifications_end_to_end(control, broker, link, callback_receiver):
    control.reset()
    creds = link()
    channel = broker.create_channel(creds, f"{callback_receiver.url}/cronofy/push/42")
    _deliver(control)
    assert callback_receiver.received, "no verification notification was delivered"
    path, body, signature = callback_receiver.received[0]
    assert path == "/cronofy/push/42"
    assert verify_hmac(body, signature, [sc.CLIENT_SECRET])
    note = parse_notification(body)
    assert note.type == "verification" and note.channel_id == channel.channel_id

    # a profile-level notification on demand
    callback_receiver.received.clear()
    control.call(
        "POST", "/notify", {"email": "riley.chen@northwind.example", "type": "profile_disconnected"}
    )
    _deliver(control)
    kinds = {
        parse_notification(b).type
        for _, b, s in callback_receiver.received
        if verify_hmac(b, s, [sc.CLIENT_SECRET])
    }
    assert "profile_disconnected" in kinds
    broker.close_channel(creds, channel.channel_id)
