"""A small fake of the OpenSandbox REST API for CLI tests.

It records every request (method, path, headers, parsed JSON body) and
answers from a table of canned responses keyed by (method, path). Unknown
routes answer 404 {"error": "no route ..."}. Runs in a thread on
127.0.0.1 (or `host`) with a free port; optionally over TLS.
"""
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeApi:
    def __init__(self, tls_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        self.requests = []
        self.routes = {}
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = None
                if raw:
                    body = json.loads(raw.decode("utf-8"))
                with api._lock:
                    api.requests.append({
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "raw": raw,
                    })
                    status, payload = api.routes.get(
                        (self.command, self.path),
                        (404, {"error": f"no route {self.command} {self.path}"}))
                data = b"" if payload is None else (
                    payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer((host, 0), Handler)
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, method, path, status, payload):
        with self._lock:
            self.routes[(method, path)] = (status, payload)

    def reset(self):
        with self._lock:
            self.requests.clear()
            self.routes.clear()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
