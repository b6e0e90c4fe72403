"""The conftest guards hold: no network beyond loopback, HOME is a temp dir."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import NetworkAccessError


def test_non_loopback_connection_fails() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkAccessError),
    ):
        sock.connect(("192.0.2.1", 443))


def test_dns_lookup_of_public_name_fails() -> None:
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("example.org", 443)


def test_loopback_connection_works() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(16))

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"ping")
    thread.join(timeout=5)
    server.close()
    assert received == [b"ping"]


def test_home_is_a_temporary_directory(isolated_home: Path) -> None:
    assert Path(os.environ["HOME"]) == isolated_home
    assert Path.home() == isolated_home
    assert list(isolated_home.iterdir()) == []
