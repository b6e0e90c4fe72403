"""Fixtures for the deployments tests: a real HTTP status server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes
    status: int = 200
    delay: float = 0.0


@dataclass
class StatusServer:
    """A loopback HTTP server with settable routes; records the paths asked."""

    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def json(self, path: str, payload: Any, *, status: int = 200, delay: float = 0.0) -> None:
        self.routes[path] = Route(json.dumps(payload).encode(), status, delay)

    def raw(self, path: str, body: bytes, *, status: int = 200, delay: float = 0.0) -> None:
        self.routes[path] = Route(body, status, delay)


@pytest.fixture
def status_server() -> Iterator[StatusServer]:
    state = StatusServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            route = state.routes.get(self.path)
            if route is None:
                self.send_response(404)
                self.end_headers()
                return
            if route.delay:
                time.sleep(route.delay)
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
