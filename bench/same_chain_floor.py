#!/usr/bin/env python3
"""The product's file path rebuilt from stock tools: the floor of *this
architecture* on this machine, measured in the same run as the product
(files_bench.py).

A REST upload crosses four processes and one mutual-TLS hop:

    curl --HTTP/loopback--> API --mTLS 1.3/loopback--> worker --UNIX socket--> helper --> tmpfs

Here every box is a `socat` doing only the copy, with the same transport on
each hop (plain loopback TCP from curl, TLS 1.3 with client certificates
between the "API" and the "worker", a UNIX socket to the "helper", a
tmpfs file at the end) and 1 MiB buffers, as the product uses:

    upload:   curl -T FILE http://A   -> socat TCP-LISTEN:A -> OPENSSL:B
              socat OPENSSL-LISTEN:B  -> UNIX-CONNECT:S
              socat UNIX-LISTEN:S     -> /dev/shm/FILE
    download: the same chain reversed, except that the "worker" reads the
              file itself (the product's helper hands the worker a read-only
              descriptor); curl -o /dev/null --http0.9 (socat speaks no HTTP,
              so the body comes without a header).

What the floor leaves out is what the product adds on top of moving bytes:
HTTP parsing and the response, API-key authentication, the gRPC call that
authorises each transfer and grants its ticket, entering the sandbox's
mount namespace with its user, path resolution with openat2, framing and the
size check. The ratio product / floor is the share of the machine's
capacity *for this chain* that the product delivers.

The second floor, bench/min_file_chain.cpp, is the same chain as the
cheapest C++ we can write (blocking threads, OpenSSL, the helper splicing
into the file, the worker reading the file for a download): what any
implementation of this architecture can reach here.

Run alone: same_chain_floor.py FILE [BUILD/bench/min_file_chain]  -> JSON (MB/s).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BUF = 1 << 20  # socat -b: the product's 1 MiB pieces


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    P-256 like the product's worker and control-plane identities."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=d, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=floor-ca", "-days", "1")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}")
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext")
    return {n: os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def _tls(c, side):
    key = "server" if side == "server" else "client"
    return (f"cert={c[key + '.pem']},key={c[key + '.key']},cafile={c['ca.pem']},verify=1,"
            "openssl-min-proto-version=TLS1.3")


def _wait_listening(port=None, path=None, timeout=10.0):
    """Readiness of a socat listener: connectable (TCP) or present (UNIX)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path is not None and os.path.exists(path):
            return
        if port is not None:
            ss = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
            if ss.strip():
                return
        time.sleep(0.01)  # bench readiness poll
    raise SystemExit("same_chain_floor: a socat listener did not come up")


def _chain(c, d, up, src, dst):
    """Starts the three relays; returns (processes, curl command)."""
    a, b = _free_port(), _free_port()
    sock = os.path.join(d, f"helper-{time.monotonic_ns()}.sock")
    socat = ["socat", "-u", "-b", str(BUF)]
    if up:
        procs = [subprocess.Popen(socat + [f"UNIX-LISTEN:{sock}", f"OPEN:{dst},creat,trunc,wronly"])]
        _wait_listening(path=sock)
        procs.append(subprocess.Popen(socat + [f"OPENSSL-LISTEN:{b},bind=127.0.0.1,reuseaddr,{_tls(c, 'server')}",
                                               f"UNIX-CONNECT:{sock}"]))
        _wait_listening(port=b)
        procs.append(subprocess.Popen(socat + [f"TCP-LISTEN:{a},bind=127.0.0.1,reuseaddr",
                                               f"OPENSSL:127.0.0.1:{b},{_tls(c, 'client')}"]))
        _wait_listening(port=a)
        return procs, ["curl", "-sS", "-T", src, f"http://127.0.0.1:{a}/x"]
    procs = [subprocess.Popen(socat + [f"OPEN:{src},rdonly",
                                       f"OPENSSL-LISTEN:{b},bind=127.0.0.1,reuseaddr,{_tls(c, 'server')}"])]
    _wait_listening(port=b)
    procs.append(subprocess.Popen(socat + [f"OPENSSL:127.0.0.1:{b},{_tls(c, 'client')}",
                                           f"TCP-LISTEN:{a},bind=127.0.0.1,reuseaddr"]))
    _wait_listening(port=a)
    return procs, ["curl", "-sS", "--http0.9", "-o", "/dev/null", f"http://127.0.0.1:{a}/x"]


def _once(c, d, up, path):
    size = os.path.getsize(path)
    shm = tempfile.mktemp(prefix="osb-chain-", dir="/dev/shm")
    if not up:
        subprocess.run(["cp", path, shm], check=True)
    procs, curl = _chain(c, d, up, path if up else shm, shm)
    try:
        t0 = time.perf_counter()
        client = subprocess.Popen(curl, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if up:
            # curl waits for an HTTP answer socat never sends: the upload is
            # done when the body is in the tmpfs file (the header is ~100 B).
            while not (os.path.exists(shm) and os.path.getsize(shm) >= size):
                time.sleep(0.001)  # bench completion poll: <= 1 ms of 1 GiB
            dt = time.perf_counter() - t0
            client.kill()
        else:
            client.wait()
            dt = time.perf_counter() - t0
        client.wait()
        return size / dt / 1e6
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if os.path.exists(shm):
            os.unlink(shm)


def _once_min(binary, c, d, up, path):
    """One transfer through bench/min_file_chain (curl as the client)."""
    size = os.path.getsize(path)
    shm = tempfile.mktemp(prefix="osb-chain-", dir="/dev/shm")
    port_file = os.path.join(d, f"port-{time.monotonic_ns()}")
    if not up:
        subprocess.run(["cp", path, shm], check=True)
    chain = subprocess.Popen([binary, "upload" if up else "download", shm, c["ca.pem"], c["server.pem"],
                              c["server.key"], port_file])
    try:
        _wait_listening(path=port_file)
        url = f"http://127.0.0.1:{open(port_file).read().strip()}/x"
        curl = ["curl", "-sS", "--fail", "-T", path, url] if up else ["curl", "-sS", "--fail", "-o", "/dev/null", url]
        t0 = time.perf_counter()
        subprocess.run(curl, check=True, stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        if chain.wait(timeout=60) != 0 or (up and os.path.getsize(shm) != size):
            raise SystemExit("same_chain_floor: min_file_chain failed")
        return size / dt / 1e6
    finally:
        if chain.poll() is None:
            chain.kill()
            chain.wait()
        if os.path.exists(shm):
            os.unlink(shm)


def measure(path, min_chain=None, runs=3):
    """Best of `runs` for each direction, MB/s: {"socat": {upload, download},
    "min": {upload, download}} ("min" only when the min_file_chain binary is given)."""
    with tempfile.TemporaryDirectory(prefix="osb-chain-") as d:
        c = _certs(d)
        out = {"socat": {"upload": max(_once(c, d, True, path) for _ in range(runs)),
                         "download": max(_once(c, d, False, path) for _ in range(runs))}}
        if min_chain:
            out["min"] = {"upload": max(_once_min(min_chain, c, d, True, path) for _ in range(runs)),
                          "download": max(_once_min(min_chain, c, d, False, path) for _ in range(runs))}
        return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None), indent=2))
