"""Test-suite guards shared by every test.

* Any socket connection to a non-loopback address fails: no test reaches the
  network (Globus HTTP is answered by canned responses).
* ``HOME`` (and the XDG directories) point at a fresh temporary directory for
  every test, so nothing reads or writes the developer's ``~/.gladier``,
  token storage or configuration.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach a non-loopback address."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)) and not isinstance(address, tuple):
        # AF_UNIX socket path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: refuse


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkAccessError(f"test tried to connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkAccessError(f"test tried to connect to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback((host, 0)):
        raise NetworkAccessError(f"test tried to resolve {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("XPCS_FLOWS_CONFIG", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("XPCS_FLOWS_CLIENT_ID", raising=False)
    monkeypatch.delenv("XPCS_FLOWS_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("XPCS_FLOWS_NATIVE_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_SCOPE", raising=False)
    monkeypatch.delenv("GLADIER_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLADIER_CLIENT_SECRET", raising=False)
    return home
