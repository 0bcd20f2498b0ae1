#!/usr/bin/env python3
"""Streaming exec and background commands through the whole product
(REST WebSocket -> control plane -> gRPC stream -> worker -> sandbox), against
a real `osb dev` (root).

    commands_bench.py --osb BUILD/osb --out bench/results [--n 50] [--attached 100] [--seconds 20]

Measures, in one run:
  * first-byte latency of a streamed `echo`: from sending the start message
    on an open WebSocket to the first stdout frame, and from opening the
    connection (TCP + upgrade) to that frame; p50/p99 over --n runs;
  * --attached background commands, each printing continuously (a 1 KiB line
    every 10 ms), all attached at once by WebSocket clients for --seconds:
    the osb dev process's RSS (before / peak) and CPU (cores used), and the
    bytes the clients received. `osb dev` runs the API server and the worker
    in one process, so the figures are for both.
Writes OUT/commands.json and OUT/commands.md.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from osb_dev import OsbDev, pct, rss_kib  # noqa: E402

PER_SANDBOX = 25  # under the per-sandbox cap of 32 running commands
PRINTER = ("import sys,time\nline=b'x'*1023+b'\\n'\nwhile True:\n"
           "    sys.stdout.buffer.write(line); sys.stdout.flush(); time.sleep(0.01)\n")


def thread_count(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def record_in_readme(path, md):
    """Puts the section between markers in README.md (summarize.py rewrites the rest)."""
    begin, end = "<!-- commands_bench -->", "<!-- /commands_bench -->"
    text = open(path).read() if os.path.exists(path) else ""
    if begin in text and end in text:
        text = text[:text.index(begin)] + text[text.index(end) + len(end):]
    section = begin + "\n" + md.replace("# Streaming exec", "## Streaming exec", 1) + end + "\n"
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n\n" + section)


def first_byte(api, sid):
    t0 = time.perf_counter()
    ws = api.ws(f"/api/sandboxes/{sid}/exec/stream")
    t1 = time.perf_counter()
    ws.send_json({"type": "start", "cmd": "echo", "args": ["hi"]})
    first = None
    while True:
        m = ws.recv()
        if m is None:
            break
        if m[0] and m[1][:1] == b"\x01" and first is None:
            first = time.perf_counter()
    ws.shutdown()
    return (first - t1) * 1000, (first - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osb", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--attached", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("commands_bench: needs root; skipped")
        return 0
    with OsbDev(args.osb, "commands", prefix="osbc", pool="10.205.0.0/16") as dev:
        sandboxes = [dev.ready]
        try:
            return run(args, dev, sandboxes)
        finally:
            for sid in sandboxes:
                try:
                    dev.api.call("DELETE", f"/api/sandboxes/{sid}")
                except Exception:  # noqa: BLE001 - best effort
                    pass


def run(args, dev, sandboxes):
    api = dev.api
    first_byte(api, sandboxes[0])  # warm-up
    on_open, on_connect = [], []
    for _ in range(args.n):
        a, b = first_byte(api, sandboxes[0])
        on_open.append(a)
        on_connect.append(b)

    need = (args.attached + PER_SANDBOX - 1) // PER_SANDBOX
    while len(sandboxes) < need:
        sandboxes.append(api.call("POST", "/api/sandboxes", {"timeout": 900, "memoryMB": 1024})["sandboxID"])
    ids = []
    for i in range(args.attached):
        sid = sandboxes[i // PER_SANDBOX]
        c = api.call("POST", f"/api/sandboxes/{sid}/commands", {"cmd": "python3", "args": ["-c", PRINTER]})
        ids.append((sid, c["id"]))
    rss_before = rss_kib(dev.pid)
    threads_before = thread_count(dev.pid)
    received = [0] * len(ids)
    dropped = [0] * len(ids)
    stop = threading.Event()
    conns = []

    def reader(i, ws):
        while not stop.is_set():
            m = ws.recv()
            if m is None:
                return
            if m[0]:
                received[i] += len(m[1]) - 1
            elif b'"dropped"' in m[1]:
                dropped[i] += json.loads(m[1])["bytes"]

    threads = []
    for i, (sid, cid) in enumerate(ids):
        ws = api.ws(f"/api/sandboxes/{sid}/commands/{cid}/attach")
        conns.append(ws)
        t = threading.Thread(target=reader, args=(i, ws), daemon=True)
        t.start()
        threads.append(t)
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), cpu_ticks(dev.pid)
    peak, threads_peak = rss_before, threads_before
    while time.monotonic() - t0 < args.seconds:
        peak = max(peak, rss_kib(dev.pid))
        threads_peak = max(threads_peak, thread_count(dev.pid))
        time.sleep(0.25)  # sampling interval
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(dev.pid) - c0) / hz / elapsed
    total = sum(received)
    stop.set()
    for ws in conns:
        ws.shutdown()
    for sid, cid in ids:
        api.call("POST", f"/api/sandboxes/{sid}/commands/{cid}/kill", {"signal": "KILL"})

    summary = {
        "first_byte_ms_from_start": {"p50": pct(on_open, 50), "p99": pct(on_open, 99), "n": len(on_open)},
        "first_byte_ms_from_connect": {"p50": pct(on_connect, 50), "p99": pct(on_connect, 99), "n": len(on_connect)},
        "attached": {"commands": len(ids), "seconds": elapsed, "rss_before_mib": rss_before / 1024,
                     "rss_peak_mib": peak / 1024, "threads_before": threads_before,
                     "threads_peak": threads_peak, "cpu_cores": cpu, "received_mib_s": total / elapsed / 2**20,
                     "replay_dropped_bytes": sum(dropped)},
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "commands.json"), "w") as f:
        json.dump(summary, f, indent=2)
    a = summary["attached"]
    md = f"""# Streaming exec and attached background commands (REST WebSocket -> control plane -> gRPC -> worker -> sandbox)

Measured by `python3 bench/commands_bench.py --osb BUILD/osb --out bench/results` (part of `make bench`), root, `osb dev` (API server and worker in one process), {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}.

| measure | p50 | p99 |
|---|---|---|
| streamed `echo hi`: start message -> first stdout frame (n={len(on_open)}) | {pct(on_open, 50):.1f} ms | {pct(on_open, 99):.1f} ms |
| streamed `echo hi`: connect + upgrade -> first stdout frame | {pct(on_connect, 50):.1f} ms | {pct(on_connect, 99):.1f} ms |

| {a['commands']} background commands attached at once, each printing 1 KiB / 10 ms, {a['seconds']:.0f} s | value |
|---|---|
| osb dev RSS before attaching | {a['rss_before_mib']:.0f} MiB |
| osb dev RSS peak while attached | {a['rss_peak_mib']:.0f} MiB |
| osb dev threads before / peak while attached | {a['threads_before']} / {a['threads_peak']} |
| osb dev CPU while attached | {a['cpu_cores']:.2f} cores |
| output received by the clients | {a['received_mib_s']:.1f} MiB/s |
"""
    with open(os.path.join(args.out, "commands.md"), "w") as f:
        f.write(md)
    record_in_readme(os.path.join(args.out, "README.md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
