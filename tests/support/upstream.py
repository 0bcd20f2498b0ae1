#!/usr/bin/env python3
"""A real TLS upstream for proxy / worker / e2e tests that records exactly
what it received.

    python3 tests/support/upstream.py --cert-dir D --port-file F --record-dir R \
        [--host 127.0.0.1] [--port 0] [--names api.test,other.test] [--plain]

* On first start it creates its own test CA (D/ca.crt, D/ca.key) and a server
  certificate (D/server.crt) for --names (DNS names and IP literals; default:
  api.test, other.test, *.api.test, localhost, 127.0.0.1..127.0.0.3, ::1), with
  the openssl CLI. Point the proxy's --upstream-ca at D/ca.crt.
* When listening it writes F (atomically) as JSON:
  {"port": N, "plainPort": M|null, "ca": "D/ca.crt", "pid": P}.
* Every request is recorded as R/<seq>.json: {"method", "target", "version",
  "headers": [[name, value], ...], "headRaw", "bodyLength", "bodySha256",
  "body" (text when <= 1 MiB, else null), "framing", "tls", "sni"}.
  Large bodies are hashed while streaming, never stored.

Endpoints (any method):
  /echo                  200 JSON {method, target, headers, body} of the request
  /echo-chunked?split=N  the request body echoed back as chunked, N-byte chunks
  /echo-headers          every request header echoed as X-Echo-<Name>: value
  /redirect?to=URL       302 Location: URL (as given, percent-decoded)
  /redirect-echo?...     302 Location: /landing?<the request's query>
  /big?n=BYTES           BYTES of 'x', chunked
  /upload                consumes the body; 200 JSON {length, sha256}
  /close-delimited       HTTP/1.0 style: body until close (echoes the target)
  /ws                    websocket: sends "auth=<Authorization header>" split over two
                         fragments, then echoes every message, reassembled, as one frame
                         (real RFC 6455 framing); each received message is recorded as
                         {"method": "WS", "target": "/ws", "wsOpcode", "body"}
  /response-headers?NAME=VALUE&...  every query parameter as a response header
                         NAME: VALUE (like httpbin's), body {"ok": true}
  /trickle?id=ID&data=A&then=B  chunked: sends A at once, then waits until
                         /release?id=ID is requested (at most 30 s), then B and the end
  /release?id=ID         releases the /trickle waiting on ID
  /status/N              empty response with status N
  /bad-framing           response with both Content-Length and chunked
  /echo-encoded          the /echo JSON compressed in the first coding of the request's
                         Accept-Encoding it knows (gzip, deflate, br, zstd; else identity)
  /echo-gzip, /echo-deflate, /echo-br, /echo-zstd, /echo-compress
                         the /echo JSON in that coding whatever the request accepts (a hostile
                         upstream; "compress" is sent as a coding nobody should decode);
                         ?chunked=1 sends it chunked, ?stack=gzip,br applies several codings
  /echo-body-decoded     the request body decoded per its Content-Encoding, as /echo JSON
  /slow-large?n=BYTES    200 with Content-Length BYTES, sends all but the last byte, then
                         waits for the client to go away (slow-upstream memory attacks)
  /hmac/..., /oauth/...  signing kinds (issue 16): see tests/support/signing_endpoints.py
  anything else          200 JSON {ok, target}
"""
import argparse
import base64
import ctypes
import gzip
import hashlib
import ipaddress
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import signing_endpoints  # noqa: E402

DEFAULT_NAMES = ["api.test", "other.test", "*.api.test", "localhost", "127.0.0.1", "127.0.0.2",
                 "127.0.0.3", "::1"]
MAX_STORED_BODY = 1 << 20


def ensure_certs(cert_dir, names):
    os.makedirs(cert_dir, exist_ok=True)
    ca_crt, ca_key = os.path.join(cert_dir, "ca.crt"), os.path.join(cert_dir, "ca.key")
    crt, key = os.path.join(cert_dir, "server.crt"), os.path.join(cert_dir, "server.key")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    if not (os.path.exists(ca_crt) and os.path.exists(ca_key)):
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca_crt, "-days", "30", "-subj", "/CN=osb test upstream CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    if not (os.path.exists(crt) and os.path.exists(key)):
        sans = []
        for n in names:
            try:
                ipaddress.ip_address(n)
                sans.append("IP:" + n)
            except ValueError:
                sans.append("DNS:" + n)
        with tempfile.TemporaryDirectory() as tmp:
            csr, ext = os.path.join(tmp, "s.csr"), os.path.join(tmp, "ext.cnf")
            with open(ext, "w") as f:
                f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n"
                        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
            run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                key, "-out", csr, "-subj", "/CN=" + names[0])
            run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "30", "-extfile", ext)
    return ca_crt, crt, key


class Recorder:
    def __init__(self, record_dir):
        self.dir = record_dir
        self.lock = threading.Lock()
        self.seq = 0
        os.makedirs(record_dir, exist_ok=True)

    def write(self, rec):
        with self.lock:
            self.seq += 1
            path = os.path.join(self.dir, "%06d.json" % self.seq)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, path)


class BadRequest(Exception):
    pass


class Conn:
    """Buffered reader over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError()
        self.buf += data

    def read_until(self, delim, limit=1 << 20):
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise BadRequest("too long")
            self.fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_some(self, n):
        if not self.buf:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)


def read_body(conn, headers):
    """Yields body pieces; returns framing name via the generator's value."""
    te = [v for k, v in headers if k.lower() == "transfer-encoding"]
    cl = [v for k, v in headers if k.lower() == "content-length"]
    if te:
        if te[-1].lower() != "chunked":
            raise BadRequest("unsupported transfer-encoding")
        while True:
            line = conn.read_until(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n") != b"\r\n":
                    pass
                return
            remaining = size
            while remaining:
                piece = conn.read_some(min(remaining, 65536))
                remaining -= len(piece)
                yield piece
            if conn.read_exact(2) != b"\r\n":
                raise BadRequest("bad chunk end")
    elif cl:
        remaining = int(cl[0])
        while remaining:
            piece = conn.read_some(min(remaining, 65536))
            remaining -= len(piece)
            yield piece


def response(status, reason, headers, body=b"", chunked=False):
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode("latin-1") + b"\r\n" + (b"" if chunked else body)


def chunked(body, split):
    out = b""
    for i in range(0, len(body), split):
        piece = body[i:i + split]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


_LIBS = {}


def _lib(name):
    if name not in _LIBS:
        _LIBS[name] = ctypes.CDLL(name)
    return _LIBS[name]


def brotli_compress(data):
    lib = _lib("libbrotlienc.so.1")
    lib.BrotliEncoderMaxCompressedSize.restype = ctypes.c_size_t
    lib.BrotliEncoderMaxCompressedSize.argtypes = [ctypes.c_size_t]
    lib.BrotliEncoderCompress.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_size_t,
                                          ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p]
    bound = lib.BrotliEncoderMaxCompressedSize(ctypes.c_size_t(len(data))) or len(data) + 1024
    out = ctypes.create_string_buffer(bound)
    size = ctypes.c_size_t(bound)
    ok = lib.BrotliEncoderCompress(5, 22, 0, ctypes.c_size_t(len(data)), data, ctypes.byref(size), out)
    if not ok:
        raise RuntimeError("brotli failed")
    return out.raw[:size.value]


def brotli_decompress(data):
    lib = _lib("libbrotlidec.so.1")
    lib.BrotliDecoderDecompress.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                                            ctypes.c_char_p]
    cap = max(1 << 20, len(data) * 64)
    out = ctypes.create_string_buffer(cap)
    size = ctypes.c_size_t(cap)
    if lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(size), out) != 1:
        raise BadRequest("bad br body")
    return out.raw[:size.value]


def zstd_compress(data):
    lib = _lib("libzstd.so.1")
    lib.ZSTD_compressBound.restype = ctypes.c_size_t
    lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
    lib.ZSTD_compress.restype = ctypes.c_size_t
    lib.ZSTD_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    bound = lib.ZSTD_compressBound(ctypes.c_size_t(len(data)))
    out = ctypes.create_string_buffer(bound)
    n = lib.ZSTD_compress(out, ctypes.c_size_t(bound), data, ctypes.c_size_t(len(data)), 3)
    return out.raw[:n]


def zstd_decompress(data):
    return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout


def encode(coding, data):
    if coding in ("gzip", "x-gzip"):
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return brotli_compress(data)
    if coding == "zstd":
        return zstd_compress(data)
    if coding == "compress":  # not LZW, but no proxy may pass it on undecoded anyway
        return zlib.compress(data)[::-1]
    raise ValueError(coding)


def decode(coding, data):
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)
    if coding == "br":
        return brotli_decompress(data)
    if coding == "zstd":
        return zstd_decompress(data)
    if coding == "identity":
        return data
    raise BadRequest("unknown coding " + coding)


def ws_frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def ws_read(conn):
    """One client frame (masked): returns (fin, opcode, unmasked payload)."""
    b0, b1 = conn.read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(conn.read_exact(2), "big")
    elif n == 127:
        n = int.from_bytes(conn.read_exact(8), "big")
    mask = conn.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
    data = conn.read_exact(n)
    return bool(b0 & 0x80), b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        sock = self.request
        sni = None
        if srv.ssl_ctx is not None:
            try:
                sock = srv.ssl_ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return
            sni = getattr(sock, "osb_sni", None) or srv.last_sni.get(threading.get_ident())
        conn = Conn(sock)
        try:
            while self.one(conn, sni):
                pass
        except (EOFError, ConnectionError, ssl.SSLError, OSError, BadRequest, ValueError, IndexError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def one(self, conn, sni):
        srv = self.server
        head = conn.read_until(b"\r\n\r\n", limit=1 << 20)
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append([k, v.strip()])
        h = {k.lower(): v for k, v in headers}
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        framing = "chunked" if te else ("content-length" if "content-length" in h else "none")
        url = urllib.parse.urlsplit(target)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        sha = hashlib.sha256()
        length = 0
        stored = bytearray()
        if path != "/ws":
            for piece in read_body(conn, headers):
                sha.update(piece)
                length += len(piece)
                if len(stored) <= MAX_STORED_BODY:
                    stored += piece
        body = bytes(stored) if length <= MAX_STORED_BODY else None
        srv.recorder.write({
            "method": method, "target": target, "version": version, "headers": headers,
            "headRaw": head.decode("latin-1"), "bodyLength": length, "bodySha256": sha.hexdigest(),
            "body": body.decode("latin-1") if body is not None else None, "framing": framing,
            "tls": srv.ssl_ctx is not None, "sni": sni,
        })
        keep = h.get("connection", "").lower() != "close"
        conn_hdr = [] if keep else [("Connection", "close")]
        if path.startswith(signing_endpoints.PREFIXES):  # issue 16: hmac receiver, OAuth token endpoint
            signing_endpoints.serve(conn, method, path, headers, body, conn_hdr, response)
        elif path == "/echo" or path.startswith("/echo/"):
            doc = {"method": method, "target": target, "headers": headers,
                   "body": body.decode("latin-1") if body is not None else None, "bodyLength": length}
            conn.send(response(200, "OK", [("Content-Type", "application/json")] + conn_hdr,
                               json.dumps(doc).encode()))
        elif path in ("/echo-encoded", "/echo-gzip", "/echo-deflate", "/echo-br", "/echo-zstd",
                      "/echo-compress"):
            doc = json.dumps({"method": method, "target": target, "headers": headers,
                              "body": body.decode("latin-1") if body is not None else None}).encode()
            if path == "/echo-encoded":
                accepted = [e.split(";")[0].strip().lower() for e in h.get("accept-encoding", "").split(",")]
                codings = [c for c in accepted if c in ("gzip", "deflate", "br", "zstd")][:1]
            else:
                codings = query.get("stack", [path[len("/echo-"):]])[0].split(",")
            for c in codings:
                doc = encode(c, doc)
            hdrs = [("Content-Type", "application/json")] + conn_hdr
            if codings:
                hdrs.append(("Content-Encoding", ", ".join(codings)))
            if query.get("chunked", ["0"])[0] == "1":
                conn.send(response(200, "OK", hdrs, chunked=True))
                conn.send(chunked(doc, 5))
            else:
                conn.send(response(200, "OK", hdrs, doc))
        elif path == "/echo-body-decoded":
            data = body or b""
            codings = [c.strip().lower() for c in h.get("content-encoding", "").split(",") if c.strip()]
            for c in reversed(codings):
                data = decode(c, data)
            doc = {"body": data.decode("latin-1"), "contentEncoding": h.get("content-encoding")}
            conn.send(response(200, "OK", [("Content-Type", "application/json")] + conn_hdr,
                               json.dumps(doc).encode()))
        elif path == "/slow-large":
            n = int(query.get("n", ["1048576"])[0])
            conn.send(response(200, "OK", conn_hdr + [("Content-Length", str(n))], chunked=True)
                      .replace(b"Transfer-Encoding: chunked\r\n", b""))
            block = b"y" * 65536
            left = n - 1
            while left > 0:
                piece = block[:min(left, len(block))]
                conn.send(piece)
                left -= len(piece)
            try:
                while True:
                    conn.fill()  # until the peer goes away
            except (EOFError, OSError, ssl.SSLError):
                pass
            return False
        elif path == "/echo-chunked":
            split = int(query.get("split", ["7"])[0])
            conn.send(response(200, "OK", [("Content-Type", "text/plain")] + conn_hdr, chunked=True))
            conn.send(chunked(body or b"", max(1, split)))
        elif path == "/echo-headers":
            echo = [("X-Echo-" + k, v) for k, v in headers]
            conn.send(response(200, "OK", echo + conn_hdr, b"ok"))
        elif path == "/redirect":
            conn.send(response(302, "Found", [("Location", query.get("to", ["/"])[0])] + conn_hdr, b""))
        elif path == "/redirect-echo":
            conn.send(response(302, "Found", [("Location", "/landing?" + url.query)] + conn_hdr, b""))
        elif path == "/big":
            n = int(query.get("n", ["1048576"])[0])
            conn.send(response(200, "OK", conn_hdr, chunked=True))
            block = b"x" * 65536
            while n > 0:
                piece = block[:min(n, len(block))]
                conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                n -= len(piece)
            conn.send(b"0\r\n\r\n")
        elif path == "/upload":
            doc = {"length": length, "sha256": sha.hexdigest()}
            conn.send(response(200, "OK", [("Content-Type", "application/json")] + conn_hdr,
                               json.dumps(doc).encode()))
        elif path == "/close-delimited":
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + target.encode())
            return False
        elif path == "/ws":
            key = h.get("sec-websocket-key", "")
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                      .digest()).decode()
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n")
            # First message: the Authorization header it received, split over
            # two fragments (so a value straddles frames); then echo.
            auth = h.get("authorization", "").encode()
            half = len(auth) // 2
            conn.send(ws_frame(0x1, b"auth=" + auth[:half], fin=False) + ws_frame(0x0, auth[half:], fin=True))
            message, message_op = b"", 0
            while True:
                fin, opcode, payload = ws_read(conn)
                if opcode == 0x8:
                    conn.send(ws_frame(0x8, payload))
                    return False
                if opcode & 0x8:  # ping/pong: answered as they are
                    conn.send(ws_frame(opcode, payload))
                    continue
                if opcode != 0:
                    message_op = opcode
                message += payload
                if fin:
                    srv.recorder.write({"method": "WS", "target": "/ws", "wsOpcode": message_op,
                                        "body": message.decode("latin-1")})
                    conn.send(ws_frame(message_op, message))
                    message = b""
        elif path == "/response-headers":
            fields = [(k, v) for k, vs in query.items() for v in vs]
            conn.send(response(200, "OK", fields + [("Content-Type", "application/json")] + conn_hdr,
                               b'{"ok": true}'))
        elif path == "/trickle":
            gate = srv.gate(query.get("id", [""])[0])
            conn.send(response(200, "OK", [("Content-Type", "text/plain")] + conn_hdr, chunked=True))
            first = query.get("data", [""])[0].encode("latin-1")
            conn.send(b"%x\r\n" % len(first) + first + b"\r\n")
            gate.wait(30)
            rest = query.get("then", [""])[0].encode("latin-1")
            if rest:
                conn.send(b"%x\r\n" % len(rest) + rest + b"\r\n")
            conn.send(b"0\r\n\r\n")
        elif path == "/release":
            srv.gate(query.get("id", [""])[0]).set()
            conn.send(response(200, "OK", conn_hdr, b"released"))
        elif path.startswith("/status/"):
            conn.send(response(int(path.split("/")[2]), "Status", conn_hdr, b""))
        elif path == "/bad-framing":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n")
        else:
            conn.send(response(200, "OK", [("Content-Type", "application/json")] + conn_hdr,
                               json.dumps({"ok": True, "target": target}).encode()))
        return keep


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ssl_ctx, recorder, family):
        self.address_family = family
        self.ssl_ctx = ssl_ctx
        self.recorder = recorder
        self.last_sni = {}
        self.gates = {}
        self.gates_lock = threading.Lock()
        super().__init__(addr, Handler)

    def gate(self, name):
        with self.gates_lock:
            return self.gates.setdefault(name, threading.Event())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert-dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record-dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--names", default=",".join(DEFAULT_NAMES))
    ap.add_argument("--plain", action="store_true", help="also listen for plain HTTP (plainPort)")
    args = ap.parse_args()

    ca, crt, key = ensure_certs(args.cert_dir, [n for n in args.names.split(",") if n])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])
    recorder = Recorder(args.record_dir)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    tls_srv = Server((args.host, args.port), ctx, recorder, family)

    def on_sni(sslobj, name, _ctx):
        tls_srv.last_sni[threading.get_ident()] = name

    ctx.sni_callback = on_sni
    servers = [tls_srv]
    plain_port = None
    if args.plain:
        plain = Server((args.host, 0), None, recorder, family)
        servers.append(plain)
        plain_port = plain.server_address[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    info = {"port": tls_srv.server_address[1], "plainPort": plain_port, "ca": os.path.abspath(ca),
            "pid": os.getpid()}
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.rename(tmp, args.port_file)
    print("upstream ready", json.dumps(info), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
