#!/usr/bin/env python3
"""The floors of each hop a file crosses through the product, measured on
this machine in the same run as the product itself (files_bench.py).

A REST upload goes: curl -> loopback HTTP -> API server -> gRPC over
loopback mutual TLS -> worker -> a UNIX socket -> the sandbox's file helper
-> the sandbox's tmpfs. Each hop below is the cheapest thing that does the
same transfer with nothing else on top:

  * host_cat:      `cat FILE > /dev/null` (the issue's yardstick)
  * pipe:          `cat FILE | cat > /dev/null` (one copy across processes)
  * tmpfs_write:   `cat FILE > /dev/shm/x` (the last hop's write)
  * aes_gcm:       `openssl speed -evp aes-128-gcm` at 16 KiB records, one core
                   (the TLS cipher gRPC negotiates; encrypt only)
  * curl_put_null: `curl -T FILE` to an HTTP sink that discards the body
                   (the first hop alone: curl, loopback TCP, a reader)
  * curl_get_null: `curl -o /dev/null` from an HTTP source that sendfile()s
                   the file (the last hop of a download alone)

Run alone: hop_floors.py FILE  -> prints JSON (MB/s per hop).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def _timed(cmd, shell=False):
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _best(fn, n=3):
    return min(fn() for _ in range(n))


class _Sink(threading.Thread):
    """HTTP/1.1 server on loopback: PUT bodies are read and dropped (by
    Content-Length), GET answers with the file via sendfile()."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]

    def run(self):
        while True:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                d = conn.recv(65536)
                if not d:
                    return
                head += d
            hdr, rest = head.split(b"\r\n\r\n", 1)
            lines = hdr.decode("latin-1").split("\r\n")
            method = lines[0].split()[0]
            fields = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            if method == "PUT":
                if fields.get("expect", "").lower() == "100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                left = int(fields.get("content-length", "0")) - len(rest)
                while left > 0:
                    n = conn.recv_into(view, min(len(buf), left))
                    if n == 0:
                        return
                    left -= n
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            else:
                size = os.path.getsize(self.path)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
                with open(self.path, "rb") as f:
                    conn.sendfile(f)

    def close(self):
        self.lsock.close()


def _aes_gcm_mbps():
    out = subprocess.run(["openssl", "speed", "-evp", "aes-128-gcm", "-seconds", "1", "-bytes", "16384"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("AES-128-GCM"):
            return float(line.split()[-1].rstrip("k")) * 1000 / 1e6
    return None


def measure(path):
    size = os.path.getsize(path)
    _timed(f"cat {path} > /dev/null", shell=True)  # warm
    rate = lambda s: size / s / 1e6  # noqa: E731
    out = {"bytes": size}
    out["host_cat"] = rate(_best(lambda: _timed(f"cat {path} > /dev/null", shell=True)))
    out["pipe"] = rate(_best(lambda: _timed(f"cat {path} | cat > /dev/null", shell=True)))
    shm = tempfile.mktemp(prefix="osb-floor-", dir="/dev/shm")
    try:
        out["tmpfs_write"] = rate(_best(lambda: _timed(f"cat {path} > {shm}", shell=True)))
    finally:
        if os.path.exists(shm):
            os.unlink(shm)
    out["aes_gcm"] = _aes_gcm_mbps()
    sink = _Sink(path)
    sink.start()
    try:
        url = f"http://127.0.0.1:{sink.port}/x"
        out["curl_put_null"] = rate(_best(lambda: _timed(["curl", "-sS", "--fail", "-T", path, url])))
        out["curl_get_null"] = rate(_best(lambda: _timed(["curl", "-sS", "--fail", "-o", "/dev/null", url])))
    finally:
        sink.close()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1]), indent=2))
