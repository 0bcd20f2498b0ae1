#!/usr/bin/env python3
"""Proxy memory under load.
  rss_probe.py upload PID PROXY_PORT HOST PORT CA GIB   -> RSS growth during a streamed upload
  rss_probe.py idle   PID PROXY_PORT HOST PORT CA N     -> RSS per idle keep-alive connection
  rss_probe.py slowbody PID PROXY_PORT HOST PORT CA N SLOW_HOST SLOW_PORT
      -> RSS growth while N connections each hold a 1 MiB request body
         short of its last byte (toward HOST:PORT) and N/2 connections each
         wait on a ~1 MiB response the upstream never finishes (SLOW_HOST,
         an upstream with /slow-large: tests/support/upstream.py); the
         slow-body attacks of issue 11 item 8, bounded by the per-sandbox
         body budget (16 MiB by default)
Prints one JSON object."""
import json
import socket
import ssl
import sys
import threading
import time

TOKEN = "osb_sealed_0123456789abcdef0123456789abcdef"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tunnel(pport, host, port, ctx):
    s = socket.create_connection(("127.0.0.1", pport))
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(1024)
    assert resp.startswith(b"HTTP/1.1 200"), resp
    return ctx.wrap_socket(s, server_hostname=host)


def read_response(s):
    data = b""
    while b"}" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def upload(pid, pport, host, port, ca, gib):
    ctx = ssl.create_default_context(cafile=ca)
    base = rss_kib(pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    block = (b"q" * 30000 + TOKEN.encode()).ljust(65536, b"r")
    n = int(gib * (1 << 30)) // len(block)
    s = tunnel(pport, host, port, ctx)
    t0 = time.monotonic()
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n" % (host.encode(), port, n * len(block)))
    for _ in range(n):
        s.sendall(block)
    resp = read_response(s)
    secs = time.monotonic() - t0
    stop.set()
    t.join()
    s.close()
    return {"bytes": n * len(block), "seconds": secs, "mb_per_s": n * len(block) / secs / 1e6,
            "rss_before_kib": base, "rss_peak_kib": peak[0], "rss_growth_kib": peak[0] - base,
            "response": resp.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")}


def idle(pid, pport, host, port, ca, n):
    ctx = ssl.create_default_context(cafile=ca)
    socks = []
    # Warm up (leaf certificate, allocator arenas) before the baseline.
    for _ in range(20):
        s = tunnel(pport, host, port, ctx)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port))
        read_response(s)
        socks.append(s)
    time.sleep(0.5)
    base = rss_kib(pid)
    for _ in range(n):
        s = tunnel(pport, host, port, ctx)
        s.sendall(b"GET /small?k=%s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n\r\n"
                  % (TOKEN.encode(), host.encode(), port, TOKEN.encode()))
        read_response(s)
        socks.append(s)
    time.sleep(1.0)
    after = rss_kib(pid)
    for s in socks:
        s.close()
    return {"connections": n, "rss_before_kib": base, "rss_after_kib": after,
            "kib_per_connection": (after - base) / n,
            "note": "each idle client connection also holds its idle upstream TLS connection"}


def slowbody(pid, pport, host, port, ca, n, slow_host, slow_port, body=1 << 20):
    ctx = ssl.create_default_context(cafile=ca)
    # Warm up (leaf certificates, TLS contexts, allocator arenas).
    for h, p in ((host, port), (slow_host, slow_port)):
        s = tunnel(pport, h, p, ctx)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (h.encode(), p))
        while s.recv(65536):
            pass
        s.close()
    time.sleep(0.5)
    base = rss_kib(pid)
    socks = []
    refused = 0
    t0 = time.monotonic()
    try:
        # Requests: a body with a token (so the proxy may buffer it whole to
        # substitute), all but its last byte.
        chunk = (TOKEN.encode() + b"a" * body)[:body - 1]
        for _ in range(n):
            s = tunnel(pport, host, port, ctx)
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n"
                      % (host.encode(), port, body))
            socks.append(s)
        for s in socks:
            try:
                s.sendall(chunk)
            except OSError:
                refused += 1  # answered 503 and closed
        # Responses: ~1 MiB that the upstream never finishes.
        for _ in range(n // 2):
            s = tunnel(pport, slow_host, slow_port, ctx)
            s.sendall(b"GET /slow-large?n=%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                      % (body - 1000, slow_host.encode(), slow_port))
            socks.append(s)
        # Wait until the proxy is quiet (RSS stops moving), bounded.
        deadline = time.monotonic() + 20
        last = rss_kib(pid)
        peak = last
        while time.monotonic() < deadline:
            time.sleep(0.5)  # sampling a gauge
            now = rss_kib(pid)
            peak = max(peak, now)
            if abs(now - last) < 512:
                break
            last = now
        after = rss_kib(pid)
    finally:
        for s in socks:
            s.close()
    conns = n + n // 2
    return {"request_connections": n, "response_connections": n // 2, "body_bytes": body,
            "refused_503": refused, "rss_before_kib": base, "rss_after_kib": after, "rss_peak_kib": max(peak, after),
            "growth_kib": after - base, "kib_per_connection": (after - base) / conns,
            "unbounded_estimate_kib": conns * body // 1024, "seconds": time.monotonic() - t0}


if __name__ == "__main__":
    mode = sys.argv[1]
    pid, pport, host, port, ca = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
    if mode == "upload":
        print(json.dumps(upload(pid, pport, host, port, ca, float(sys.argv[7]))))
    elif mode == "slowbody":
        print(json.dumps(slowbody(pid, pport, host, port, ca, int(sys.argv[7]), sys.argv[8], int(sys.argv[9]))))
    else:
        print(json.dumps(idle(pid, pport, host, port, ca, int(sys.argv[7]))))
