"""A small RFC 6455 WebSocket client (standard library only).

Enough for the command streams of the OpenSandbox API: client-masked frames,
text and binary messages (fragmented messages reassembled), ping/pong, and the
close handshake. TLS uses the same trust rules as the HTTP client (the system
store, or only ``ca_file``). A refused upgrade raises the same error classes
as a REST call (``NotFoundError`` for 404, ...), with the server's message.

Thread safety: one thread may receive while another sends (sends are
serialized by a lock).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

from .errors import ConnectionError, OpenSandboxError, error_for_status

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_MESSAGE = 64 * 1024 * 1024

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocket:
    """One client connection. Use :func:`connect`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._buf = b""
        self.close_code: Optional[int] = None
        self.close_reason = ""
        self._closed = False

    # ---- sending ----
    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", n)
        mask = os.urandom(4)
        header += mask
        masked = _mask(payload, mask) if payload else b""
        with self._send_lock:
            if self._closed:
                raise ConnectionError("the WebSocket is closed")
            self._sock.sendall(bytes(header) + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    def send_json(self, obj: object) -> None:
        self.send_text(json.dumps(obj))

    def send_binary(self, data: bytes) -> None:
        self._send_frame(OP_BINARY, data)

    def close(self, code: int = 1000) -> None:
        try:
            self._send_frame(OP_CLOSE, struct.pack("!H", code))
        except (OSError, OpenSandboxError):
            pass
        with self._send_lock:
            self._closed = True

    def shutdown(self) -> None:
        """Drops the connection at once (unblocks a receiving thread)."""
        with self._send_lock:
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    # ---- receiving ----
    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise EOFError
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _read_frame(self) -> Tuple[bool, int, bytes]:
        b0, b1 = self._read_exact(2)
        fin, opcode, masked, n = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        if n > _MAX_MESSAGE:
            raise ConnectionError("the server sent a frame larger than 64 MiB")
        mask = self._read_exact(4) if masked else None
        payload = self._read_exact(n)
        if mask:
            payload = _mask(payload, mask)
        return fin, opcode, payload

    def recv(self) -> Optional[Tuple[bool, bytes]]:
        """The next message as (is_binary, payload); None once the connection closed."""
        parts = []
        kind = None
        try:
            while True:
                fin, opcode, payload = self._read_frame()
                if opcode == OP_PING:
                    self._send_frame(OP_PONG, payload)
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode == OP_CLOSE:
                    if len(payload) >= 2:
                        (self.close_code,) = struct.unpack("!H", payload[:2])
                        self.close_reason = payload[2:].decode("utf-8", "replace")
                    try:
                        self._send_frame(OP_CLOSE, payload[:2])
                    except (OSError, OpenSandboxError):
                        pass
                    with self._send_lock:
                        self._closed = True
                    self._sock.close()
                    return None
                if opcode in (OP_TEXT, OP_BINARY):
                    kind = opcode
                parts.append(payload)
                if fin:
                    return kind == OP_BINARY, b"".join(parts)
        except (EOFError, OSError):
            with self._send_lock:
                self._closed = True
            return None


def _mask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def connect(
    api_url: str,
    path: str,
    headers: Dict[str, str],
    *,
    timeout: float,
    ca_file: Optional[str] = None,
) -> WebSocket:
    """Opens ``path`` on the server at ``api_url`` and completes the upgrade."""
    parts = urlsplit(api_url)
    tls = parts.scheme == "https"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if tls else 80)
    target = (parts.path.rstrip("/") + path) or "/"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        # Frames are small writes back to back (stdin, keystrokes): no Nagle delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            sock = context.wrap_socket(sock, server_hostname=host)
    except (OSError, ssl.SSLError) as err:
        raise ConnectionError(f"cannot reach {api_url}: {err}", 0, "GET", path) from None
    key = base64.b64encode(os.urandom(16)).decode()
    host_header = host if ":" not in host else f"[{host}]"
    if parts.port:
        host_header += f":{port}"
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ] + [f"{k}: {v}" for k, v in headers.items()]
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the upgrade", 0, "GET", path)
            head += chunk
            if len(head) > 65536:
                raise ConnectionError("the upgrade response is too large", 0, "GET", path)
    except OSError as err:
        sock.close()
        raise ConnectionError(f"cannot reach {api_url}: {err}", 0, "GET", path) from None
    raw_head, rest = head.split(b"\r\n\r\n", 1)
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if status != 101:
        length = int(response_headers.get("content-length", "0") or 0)
        body = rest
        try:
            while len(body) < min(length, 65536):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                body += chunk
        except OSError:
            pass
        sock.close()
        message = f"HTTP {status}"
        try:
            doc = json.loads(body.decode("utf-8", "replace"))
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                message = doc["error"]
        except ValueError:
            pass
        raise error_for_status(status, message, "GET", path)
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    if response_headers.get("sec-websocket-accept") != expected:
        sock.close()
        raise ConnectionError("the server's WebSocket accept key is wrong", 0, "GET", path)
    sock.settimeout(None)
    ws = WebSocket(sock)
    ws._buf = rest
    return ws
