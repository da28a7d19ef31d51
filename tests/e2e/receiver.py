"""A webhook receiver for tests: a real HTTP server on loopback that keeps what it receives.

``stop()`` closes its socket, so deliveries meet a refused connection, as with a receiver that
is down; ``start()`` opens it again on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_base_port


class Receiver:
    def __init__(self) -> None:
        self.port = free_base_port(1)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived: list[float] = []
        """``time.perf_counter()`` at each delivery's arrival, in the order of ``received``."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/koopkracht"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.arrived.append(time.perf_counter())
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for _, body in self.received]

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} deliveries within {timeout} s"
        return self.messages()
