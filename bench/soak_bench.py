#!/usr/bin/env python3
"""Issue 13 benchmark: what one attacking sandbox costs another one.

    soak_bench.py --osb BUILD/osb --out bench/results [--seconds 5]

Root (real `osb dev`, real sandboxes; it starts its own with
tests/e2e/harness.py, prefix osbq). In one run:
  * baseline: the victim sandbox makes HTTPS requests through the explicit
    proxy for --seconds (token swapped at the upstream), once with a fresh
    connection per request (CONNECT + two TLS handshakes: the path admission
    guards) and once on one kept-alive tunnel; request rate and p50/p99;
  * the same, while the attacker sandbox runs each attack of
    tests/e2e/soak_attack.py (head, handshake, dns, slow-up, slow-down,
    refused); reported as ratios to the baseline of the same run;
  * the osb dev process's descriptors and RSS before, at peak and after
    each attack (attacker killed, descriptors drained).
Writes OUT/soak.json and OUT/soak.md.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "tests/e2e/harness.py")
ATTACK_SRC = open(os.path.join(ROOT, "tests/e2e/soak_attack.py")).read()
ATTACKS = [("head", 300), ("handshake", 300), ("dns", 100), ("slow-up", 64), ("slow-down", 64), ("refused", 0)]

VICTIM = r'''
import http.client, json, os, ssl, sys, time
dur, mode = float(sys.argv[1]), sys.argv[2]
host, port = os.environ["HTTPS_PROXY"].split("://", 1)[1].rstrip("/").rsplit(":", 1)
ctx = ssl.create_default_context()
lat, errors, conn = [], 0, None
end = time.monotonic() + dur
while time.monotonic() < end:
    t0 = time.perf_counter()
    try:
        if conn is None:
            conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
            conn.set_tunnel("api.test", 443)
        conn.request("GET", "/echo", headers={"X-Key": os.environ["API_KEY"]})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise OSError(r.status)
        lat.append((time.perf_counter() - t0) * 1000)
    except Exception:
        errors += 1
        conn = None
    if mode == "fresh" and conn is not None:
        conn.close()
        conn = None
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] if lat else None
print(json.dumps({"n": len(lat), "errors": errors, "rate": len(lat) / dur, "p50_ms": pct(50), "p99_ms": pct(99)}))
'''


class Api:
    def __init__(self, env):
        self.url, self.key = env["OPENSANDBOX_API_URL"], env["OPENSANDBOX_API_KEY"]

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-API-Key": self.key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}")
        return json.loads(text) if text else None

    def run(self, sid, cmd, args, timeout=120):
        return self.call("POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": cmd, "args": args, "timeout": timeout})


def poll(what, predicate, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        v = predicate()
        if v:
            return v
        time.sleep(0.1)  # polling interval for a condition
    raise SystemExit(f"timed out waiting for {what}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--osb", required=True)
    p.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--dir", default="/tmp/osb-soak-bench")
    a = p.parse_args()
    if os.geteuid() != 0:
        print("soak_bench: needs root", file=sys.stderr)
        return 77
    subprocess.run([sys.executable, HARNESS, "start", a.dir, "--osb", a.osb, "--name-prefix", "osbq",
                    "--address-pool", "10.205.0.0/16"], check=True)
    try:
        return bench(a)
    finally:
        subprocess.run([sys.executable, HARNESS, "stop", a.dir])


def bench(a):
    env = dict(line.split("=", 1) for line in open(os.path.join(a.dir, "env")).read().splitlines() if "=" in line)
    api = Api(env)
    pid = json.load(open(os.path.join(a.dir, "state.json")))["dev_pid"]
    fds = lambda: len(os.listdir(f"/proc/{pid}/fd"))

    def rss_mib():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)

    project = "soakbench"
    api.call("POST", "/api/projects", {"name": project, "egressAllowlist": ["api.test"]})
    api.call("PUT", f"/api/projects/{project}/secrets/API_KEY", {"value": "sk-bench-0123456789abcdef"})
    attacker = api.call("POST", "/api/sandboxes", {"project": project})["sandboxID"]
    victim = api.call("POST", "/api/sandboxes", {"project": project})["sandboxID"]

    def load(mode):
        out = api.run(victim, "python3", ["-c", VICTIM, str(a.seconds), mode])
        return json.loads(out["stdout"])

    load("fresh")  # warm-up: leaf certificate, upstream
    base_fds = fds()
    results = {"seconds": a.seconds, "baseline": {"fresh": load("fresh"), "reuse": load("reuse"),
                                                   "fds": base_fds, "rss_mib": rss_mib()}}
    for mode, n in ATTACKS:
        poll("a quiet worker", lambda: fds() <= base_fds + 8)
        before = {"fds": fds(), "rss_mib": rss_mib()}
        done = {}
        t = threading.Thread(target=lambda: done.update(out=api.run(
            attacker, "python3", ["-c", ATTACK_SRC, mode, "--n", str(n), "--max-s", "100"], timeout=110)))
        t.start()
        state = poll(f"{mode} in place", lambda: (lambda s: s if s.startswith("ready") else None)(
            api.run(attacker, "sh", ["-c", "cat /tmp/soak-state 2>/dev/null; true"])["stdout"]))
        peak = {"fds": fds(), "rss_mib": rss_mib()}
        sample_stop = threading.Event()

        def sample():
            while not sample_stop.is_set():
                peak["fds"], peak["rss_mib"] = max(peak["fds"], fds()), max(peak["rss_mib"], rss_mib())
                sample_stop.wait(0.2)
        s = threading.Thread(target=sample)
        s.start()
        fresh, reuse = load("fresh"), load("reuse")
        sample_stop.set()
        s.join()
        attack_pid = int(re.search(r"pid=(\d+)", state).group(1))
        api.run(attacker, "sh", ["-c", f"kill -9 {attack_pid}; true"])
        t.join()
        poll("descriptors drained", lambda: fds() <= base_fds + 8)
        after = {"fds": fds(), "rss_mib": rss_mib()}
        b = results["baseline"]
        ratio = lambda x, y, k: round(x[k] / y[k], 3) if x.get(k) and y.get(k) else None
        results[mode] = {"n": n, "fresh": fresh, "reuse": reuse, "before": before, "peak": peak, "after": after,
                         "rate_ratio_fresh": ratio(fresh, b["fresh"], "rate"),
                         "p99_ratio_fresh": ratio(fresh, b["fresh"], "p99_ms"),
                         "rate_ratio_reuse": ratio(reuse, b["reuse"], "rate"),
                         "p99_ratio_reuse": ratio(reuse, b["reuse"], "p99_ms")}
        print(f"soak_bench {mode}: {json.dumps(results[mode])}", flush=True)
    for sid in (attacker, victim):
        api.call("DELETE", f"/api/sandboxes/{sid}")
    api.call("DELETE", f"/api/projects/{project}")

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump(results, f, indent=1)
    b = results["baseline"]
    lines = ["# Victim sandbox under attack from another sandbox (issue 13)", "",
             f"`bench/soak_bench.py`, {a.seconds:g} s per figure, one `osb dev`, one run. Ratios are to the "
             "no-attack baseline of the same run (1.0 = unaffected). *fresh*: a new CONNECT tunnel and TLS "
             "handshakes per request; *reuse*: one kept-alive tunnel.", "",
             f"Baseline: fresh {b['fresh']['rate']:.1f} req/s, p99 {b['fresh']['p99_ms']:.1f} ms; "
             f"reuse {b['reuse']['rate']:.1f} req/s, p99 {b['reuse']['p99_ms']:.1f} ms; "
             f"worker {b['fds']} fds, {b['rss_mib']} MiB RSS.", "",
             "| attack | n | rate fresh | p99 fresh | rate reuse | p99 reuse | victim errors | fds before/peak/after "
             "| RSS MiB before/peak/after |", "|---|---|---|---|---|---|---|---|---|"]
    for mode, n in ATTACKS:
        r = results[mode]
        lines.append(f"| {mode} | {n} | {r['rate_ratio_fresh']} | {r['p99_ratio_fresh']} | {r['rate_ratio_reuse']} | "
                     f"{r['p99_ratio_reuse']} | {r['fresh']['errors'] + r['reuse']['errors']} | "
                     f"{r['before']['fds']}/{r['peak']['fds']}/{r['after']['fds']} | "
                     f"{r['before']['rss_mib']}/{r['peak']['rss_mib']}/{r['after']['rss_mib']} |")
    with open(os.path.join(a.out, "soak.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
