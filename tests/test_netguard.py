"""The suite's guard against reaching the internet is itself tested."""

import socket

import pytest

from tests.netguard import NetworkAccessBlocked


def test_connecting_outside_loopback_fails():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkAccessBlocked):
            sock.connect(("93.184.215.14", 443))


def test_resolving_a_public_name_fails():
    with pytest.raises(NetworkAccessBlocked):
        socket.getaddrinfo("api.cronofy.com", 443)


def test_requests_to_the_real_aggregator_fail():
    import requests

    with pytest.raises((NetworkAccessBlocked, requests.exceptions.ConnectionError)) as info:
        requests.get("https://api.cronofy.com/v1/account", timeout=1)
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, NetworkAccessBlocked) for e in chain) or "NetworkAccessBlocked" in str(
        info.value
    )


def test_loopback_is_allowed():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
