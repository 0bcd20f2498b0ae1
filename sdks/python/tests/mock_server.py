"""A real HTTP server on 127.0.0.1 (random port, background thread) that records
every request and answers from a script of replies, for the SDK's unit tests."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional


@dataclass
class Recorded:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    text: Optional[str] = None
    #: Close the connection without answering (a network error for the client).
    drop: bool = False
    headers: Dict[str, str] = field(default_factory=dict)


class MockServer:
    def __init__(self, tls_context: Optional[ssl.SSLContext] = None) -> None:
        self.requests: List[Recorded] = []
        self._script: List[Reply] = []
        self._fallback = Reply(200, {})
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.requests.append(
                        Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = owner._script.pop(0) if owner._script else owner._fallback
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.text is not None:
                    payload = reply.text.encode("utf-8")
                elif reply.body is not None:
                    payload = json.dumps(reply.body).encode("utf-8")
                else:
                    payload = b""
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls_context is not None:
            self._server.socket = tls_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "MockServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(self, *replies: Reply) -> "MockServer":
        with self._lock:
            self._script.extend(replies)
        return self

    def fallback(self, reply: Reply) -> "MockServer":
        self._fallback = reply
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self._fallback = Reply(200, {})

    def last(self) -> Recorded:
        return self.requests[-1]

    def calls(self) -> List[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


def dead_url() -> str:
    """An address where nothing listens (a port bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
