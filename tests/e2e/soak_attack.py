#!/usr/bin/env python3
"""Runs INSIDE the attacker sandbox (soak_e2e_test.py passes it to
`python3 -c`). One attack from issue 13, sustained until the file
/tmp/soak-stop appears (or --max-s passes) or the process is killed:

  head       N connections to the explicit proxy that never finish a head
  handshake  N connections to :443 (transparent TLS) holding half a ClientHello
  dns        N TCP connections to the sandbox's resolver holding half a length prefix
  slow-up    N TLS requests with a 100 MiB Content-Length body, 1 byte a second
  slow-down  N TLS requests for a 64 MiB response, read 1 byte a second
  refused    as many refused requests (CONNECT to a host outside the allowlist)
             as it can make, 8 at a time; "ready" once N were made

Connections the worker closes are opened again once a round (a second), so
the attack stays at full strength. After the first round it writes
/tmp/soak-state ("ready tag=TAG pid=P ..."); each later round rewrites it
with its counts.
"""
import argparse
import os
import select
import socket
import ssl
import threading
import time

STATE, STOP = "/tmp/soak-state", "/tmp/soak-stop"
TAG = ""


def proxy_addr():
    url = os.environ["HTTPS_PROXY"].split("://", 1)[1].rstrip("/")
    host, port = url.rsplit(":", 1)
    return host, int(port)


def resolver():
    for line in open("/etc/resolv.conf"):
        if line.startswith("nameserver"):
            return line.split()[1]
    raise SystemExit("no nameserver")


def client_hello():
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="api.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class Attack:
    def __init__(self, mode, n):
        self.mode, self.n = mode, n
        self.socks = []
        self.opened = self.failed = 0
        self.ctx = ssl.create_default_context()
        self.hello = client_hello() if mode == "handshake" else b""
        # Resolved once: the flood is against the proxy, not the resolver.
        api = (socket.gethostbyname("api.test"), 443)
        self.target = {"head": proxy_addr(), "handshake": api, "dns": (resolver(), 53),
                       "slow-up": api, "slow-down": api}.get(mode)

    def open_one(self):
        s = socket.socket()
        s.settimeout(15)
        try:
            if self.mode == "slow-down":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(self.target)
            if self.mode == "head":
                s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.te")
            elif self.mode == "handshake":
                s.sendall(self.hello[:len(self.hello) // 2])
            elif self.mode == "dns":
                s.sendall(b"\x00")
            else:
                s = self.ctx.wrap_socket(s, server_hostname="api.test")
                if self.mode == "slow-up":
                    s.sendall(b"POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 104857600\r\n\r\nx")
                else:
                    s.sendall(b"GET /big?n=67108864 HTTP/1.1\r\nHost: api.test\r\n\r\n")
            self.opened += 1
            self.socks.append(s)
        except OSError:
            self.failed += 1
            s.close()

    def tick(self):
        """One round: drop connections the worker closed, trickle on the
        slow ones, then open again up to N."""
        alive = []
        if self.mode in ("slow-up", "slow-down"):
            for s in self.socks:
                try:
                    if self.mode == "slow-up":
                        s.send(b"x")
                        alive.append(s)
                    elif s.recv(1):
                        alive.append(s)
                except OSError:
                    pass
        else:
            readable = set()
            for i in range(0, len(self.socks), 500):
                r, _, _ = select.select(self.socks[i:i + 500], [], [], 0)
                readable.update(r)
            for s in self.socks:
                if s in readable:
                    try:
                        s.recv(4096)
                    except OSError:
                        pass
                    s.close()  # anything from the worker here is a close or an error: open again
                else:
                    alive.append(s)
        self.socks = alive
        while len(self.socks) < self.n:
            self.open_one()


def refused_flood(stop_at, ready_after):
    host, port = proxy_addr()
    counts = {"round": 0, "sent": 0, "403": 0, "other": 0}
    lock = threading.Lock()

    def worker():
        while time.monotonic() < stop_at and not os.path.exists(STOP):
            try:
                with socket.create_connection((host, port), timeout=10) as s:
                    s.sendall(b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n")
                    line = s.recv(64)
                key = "403" if b" 403 " in line else "other"
            except OSError:
                key = "other"
            with lock:
                counts["sent"] += 1
                counts[key] += 1
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)  # reporting cadence, not synchronisation
        counts["round"] += 1
        write_state("ready" if counts["sent"] >= ready_after else "starting", counts)
    for t in threads:
        t.join()
    write_state("done", counts)


def write_state(word, counts):
    with open(STATE + ".tmp", "w") as f:
        f.write(f"{word} tag={TAG} pid={os.getpid()} " + " ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
    os.rename(STATE + ".tmp", STATE)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--max-s", type=float, default=90)
    p.add_argument("--tag", default="")
    a = p.parse_args()
    global TAG
    TAG = a.tag
    for path in (STATE, STOP):
        if os.path.exists(path):
            os.unlink(path)
    stop_at = time.monotonic() + a.max_s
    if a.mode == "refused":
        return refused_flood(stop_at, a.n)
    attack = Attack(a.mode, a.n)
    attack.tick()
    rounds = 1
    while time.monotonic() < stop_at and not os.path.exists(STOP):
        write_state("ready", {"round": rounds, "held": len(attack.socks), "opened": attack.opened,
                              "failed": attack.failed})
        time.sleep(1)  # the attack's own cadence (one trickle byte a second), not synchronisation
        attack.tick()
        rounds += 1
    write_state("done", {"round": rounds, "held": len(attack.socks), "opened": attack.opened,
                         "failed": attack.failed})


if __name__ == "__main__":
    main()
