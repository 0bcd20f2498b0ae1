#!/usr/bin/env python3
"""End-to-end SigV4 re-signing cost through the running `osb proxy`, against
plain token substitution in the same run (bench/run.sh calls it).

small: bench_client keep-alive requests on one connection, alternating
       plain (a bearer token substituted) and SigV4 (a GET signed with the
       sandbox's token, verified and re-signed); the proxy's CPU per request
       comes from /proc/PID/stat over each run.
big:   one 100 MiB upload each way: plain (a token in a header, body
       streamed through the replacer) and SigV4 aws-chunked
       (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks, every chunk
       re-signed); proxy CPU over the upload and its peak RSS growth
       (sampled), to show the memory stays bounded.
Usage: sigv4_e2e.py PROXY_PID PROXY_PORT HOST UP_PORT PROXY_CA BENCH_CLIENT
       TOKEN AKID SIGV4_TOKEN SECONDS REPS  -> JSON on stdout.
"""
import hashlib
import hmac
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def key_for(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sigv4_head(method, path, host, akid, secret, extra, payload):
    """A SigV4-signed head (header form), as an SDK in the sandbox makes it."""
    amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = [("host", host), ("x-amz-content-sha256", payload), ("x-amz-date", amz)] + \
        [(k.lower(), v) for k, v in extra]
    headers.sort()
    signed = ";".join(k for k, _ in headers)
    canon = "\n".join([method, path, "", "".join("%s:%s\n" % kv for kv in headers), signed, payload])
    scope = "%s/us-east-1/s3/aws4_request" % amz[:8]
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canon.encode()).hexdigest()])
    sig = hmac.new(key_for(secret, amz[:8], "us-east-1", "s3"), sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (akid, scope, signed, sig)
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in headers] + ["Authorization: " + auth,
                                                                                        "User-Agent: osb-bench"]
    return "\r\n".join(lines) + "\r\n\r\n", sig, amz, scope


def client_run(args, extra):
    out = subprocess.run([args["client"], "--sni", args["host"], "--port", str(args["up_port"]), "--connect",
                          "127.0.0.3:%d" % args["up_port"], "--proxy", "127.0.0.1:%d" % args["pp"], "--ca",
                          args["ca"], "--conns", "1", "--seconds", str(args["seconds"])] + extra,
                         capture_output=True, check=True, text=True)
    return json.loads(out.stdout)


def small(args):
    host = "%s:%d" % (args["host"], args["up_port"])
    res = {"plain": [], "sigv4": []}
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        head, _, _, _ = sigv4_head("GET", "/small", host, args["akid"], args["sigv4_token"], [],
                                   hashlib.sha256(b"").hexdigest())
        f.write(head)
        sigv4_file = f.name
    try:
        for _ in range(args["reps"]):
            for mode, extra in (("plain", ["--token", args["token"]]), ("sigv4", ["--request-file", sigv4_file])):
                t0 = ticks(args["pid"])
                r = client_run(args, extra)
                t1 = ticks(args["pid"])
                if r.get("errors"):
                    raise SystemExit("%s run had errors: %s" % (mode, r))
                res[mode].append({"proxy_cpu_us_per_req": (t1 - t0) / TICK * 1e6 / max(1, r["requests"]),
                                  "p50_us": r["p50_us"], "rps": r["rps"]})
    finally:
        os.unlink(sigv4_file)
    return res


def tunnel(args):
    s = socket.create_connection(("127.0.0.1", args["pp"]))
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (args["host"].encode(), args["up_port"],
                                                                   args["host"].encode(), args["up_port"]))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    ctx = ssl.create_default_context(cafile=args["ca"])
    return ctx.wrap_socket(s, server_hostname=args["host"])


def upload(args, head, body_iter):
    stop = threading.Event()
    peak = [rss_kib(args["pid"])]
    base = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(args["pid"]))
            stop.wait(0.02)

    th = threading.Thread(target=sample)
    th.start()
    t0, w0 = ticks(args["pid"]), time.monotonic()
    s = tunnel(args)
    s.sendall(head.encode())
    for piece in body_iter:
        s.sendall(piece)
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    t1, w1 = ticks(args["pid"]), time.monotonic()
    stop.set()
    th.join()
    s.close()
    status = resp.split(b" ", 2)[1] if resp else b"0"
    return {"status": int(status), "proxy_cpu_ms": (t1 - t0) / TICK * 1e3, "wall_s": w1 - w0,
            "rss_growth_kib": peak[0] - base}


def big(args):
    n = 100 << 20
    chunk = 64 << 10
    block = os.urandom(chunk)
    host = "%s:%d" % (args["host"], args["up_port"])
    res = {"plain": [], "sigv4": []}
    for _ in range(max(1, args["reps"] // 2)):
        plain_head = ("POST /upload HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                      % (host, args["token"], n))
        res["plain"].append(upload(args, plain_head, (block for _ in range(n // chunk))))
        pieces = n // chunk + 1
        enc = (n // chunk) * (len("%x;chunk-signature=" % chunk) + 64 + 2 + chunk + 2) + len("0;chunk-signature=") + 68
        head, seed, amz, scope = sigv4_head("PUT", "/upload", host, args["akid"], args["sigv4_token"],
                                            [("Content-Encoding", "aws-chunked"),
                                             ("X-Amz-Decoded-Content-Length", str(n)),
                                             ("Content-Length", str(enc))],
                                            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        key = key_for(args["sigv4_token"], amz[:8], "us-east-1", "s3")
        empty = hashlib.sha256(b"").hexdigest()
        h_block = hashlib.sha256(block).hexdigest()

        def chunks():
            prev = seed
            for i in range(pieces):
                last = i == pieces - 1
                sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, empty, empty if last else h_block])
                prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
                data = b"" if last else block
                yield b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode()) + data + b"\r\n"

        res["sigv4"].append(upload(args, head, chunks()))
    return res


def main():
    a = sys.argv[1:]
    args = {"pid": int(a[0]), "pp": int(a[1]), "host": a[2], "up_port": int(a[3]), "ca": a[4], "client": a[5],
            "token": a[6], "akid": a[7], "sigv4_token": a[8], "seconds": float(a[9]), "reps": int(a[10])}
    out = {"small": small(args), "big_100MiB": big(args)}
    med = lambda rows, k: statistics.median(r[k] for r in rows)
    s, b = out["small"], out["big_100MiB"]
    out["summary"] = {
        "small_plain_proxy_cpu_us": med(s["plain"], "proxy_cpu_us_per_req"),
        "small_sigv4_proxy_cpu_us": med(s["sigv4"], "proxy_cpu_us_per_req"),
        "small_plain_p50_us": med(s["plain"], "p50_us"),
        "small_sigv4_p50_us": med(s["sigv4"], "p50_us"),
        "big_plain_proxy_cpu_ms": med(b["plain"], "proxy_cpu_ms"),
        "big_sigv4_proxy_cpu_ms": med(b["sigv4"], "proxy_cpu_ms"),
        "big_plain_rss_growth_kib": max(r["rss_growth_kib"] for r in b["plain"]),
        "big_sigv4_rss_growth_kib": max(r["rss_growth_kib"] for r in b["sigv4"]),
        "big_status": sorted({r["status"] for r in b["plain"] + b["sigv4"]}),
    }
    sm = out["summary"]
    sm["small_ratio_cpu"] = sm["small_sigv4_proxy_cpu_us"] / max(1e-9, sm["small_plain_proxy_cpu_us"])
    sm["big_ratio_cpu"] = sm["big_sigv4_proxy_cpu_ms"] / max(1e-9, sm["big_plain_proxy_cpu_ms"])
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
