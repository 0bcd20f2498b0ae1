#!/usr/bin/env python3
"""Sandbox latency through the whole product: REST -> control plane ->
gRPC -> worker -> runtime, against a real `osb dev` (root).

    sandbox_bench.py --osb BUILD/osb --out bench/results [--n 30] [--concurrent 50]

Measures, in one run:
  * create -> first exec: POST /api/sandboxes, then the first
    POST .../exec/run (`true`) returning; p50/p99 over --n sequential sandboxes;
  * baseline: a warm exec (`true`) in an existing sandbox, same client, same
    server; the ratio create->first-exec / warm exec is reported;
  * --concurrent sandboxes created at once: wall time until all run, and the
    per-sandbox create->first-exec p50/p99 under that load.
Writes OUT/sandbox.json and OUT/sandbox.md. Target: create->first exec p50
<= 100 ms on this machine.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Api:
    def __init__(self, url, key):
        self.url, self.key = url, key

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-API-Key": self.key})
        with urllib.request.urlopen(req, timeout=300) as r:
            text = r.read()
            return json.loads(text) if text else None


def create_then_exec(api):
    t0 = time.perf_counter()
    sb = api.call("POST", "/api/sandboxes", {"timeout": 600})
    api.call("POST", f"/api/sandboxes/{sb['sandboxID']}/exec/run", {"cmd": "true"})
    return (time.perf_counter() - t0) * 1000, sb["sandboxID"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osb", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--concurrent", type=int, default=50)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("sandbox_bench: needs root; skipped")
        return 0
    work = tempfile.mkdtemp(prefix="osb-sandbox-bench-")
    port = free_port()
    env = dict(os.environ, HOME=work, XDG_CONFIG_HOME=os.path.join(work, "cfg"))
    log = open(os.path.join(work, "dev.log"), "w")
    dev = subprocess.Popen(
        [args.osb, "--log-level", "warn", "dev", "--data-dir", os.path.join(work, "data"), "--listen", f"127.0.0.1:{port}",
         "--grpc-listen", "127.0.0.1:0", "--worker-listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0",
         "--transparent-listen", "127.0.0.1:0", "--transparent-http-listen", "127.0.0.1:0",
         "--dns-listen", "127.0.0.1:0", "--address-pool", "10.203.0.0/16", "--name-prefix", "osbb",
         "--run-dir", "/run/osbb"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        api = None
        while time.monotonic() < deadline:
            key_file = os.path.join(work, "data", "api-key")
            if os.path.exists(key_file):
                try:
                    api = Api(f"http://127.0.0.1:{port}", open(key_file).read().strip())
                    api.call("GET", "/api/sandboxes")
                    # a worker has registered once a create succeeds
                    _, sid = create_then_exec(api)
                    api.call("DELETE", f"/api/sandboxes/{sid}")
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    api = None
            time.sleep(0.2)  # polling for readiness
        if api is None:
            raise SystemExit("sandbox_bench: osb dev did not come up:\n" + open(os.path.join(work, "dev.log")).read())

        # Baseline: warm exec in one running sandbox.
        warm = api.call("POST", "/api/sandboxes", {"timeout": 600})["sandboxID"]
        warm_ms = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            api.call("POST", f"/api/sandboxes/{warm}/exec/run", {"cmd": "true"})
            warm_ms.append((time.perf_counter() - t0) * 1000)
        api.call("DELETE", f"/api/sandboxes/{warm}")

        seq_ms = []
        for _ in range(args.n):
            ms, sid = create_then_exec(api)
            seq_ms.append(ms)
            api.call("DELETE", f"/api/sandboxes/{sid}")

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
            results = list(pool.map(lambda _: create_then_exec(api), range(args.concurrent)))
        wall_s = time.perf_counter() - t0
        conc_ms = [ms for ms, _ in results]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: api.call("DELETE", f"/api/sandboxes/{r[1]}"), results))

        summary = {
            "create_to_first_exec_ms": {"p50": pct(seq_ms, 50), "p99": pct(seq_ms, 99), "n": len(seq_ms)},
            "warm_exec_ms": {"p50": pct(warm_ms, 50), "p99": pct(warm_ms, 99), "n": len(warm_ms)},
            "ratio_create_to_warm_p50": pct(seq_ms, 50) / pct(warm_ms, 50),
            "concurrent": {"sandboxes": args.concurrent, "wall_s": wall_s,
                           "create_to_first_exec_ms_p50": pct(conc_ms, 50),
                           "create_to_first_exec_ms_p99": pct(conc_ms, 99)},
            "target_p50_ms": 100,
            "met": pct(seq_ms, 50) <= 100,
        }
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "sandbox.json"), "w") as f:
            json.dump(summary, f, indent=2)
        c = summary["concurrent"]
        md = f"""# Sandbox latency (REST -> control plane -> gRPC -> worker -> runtime)

Measured by `python3 bench/sandbox_bench.py --osb build-bench/osb --out bench/results` (part of `make bench`), Release build, root, one in-process worker, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}.

| measure | p50 | p99 |
|---|---|---|
| create -> first exec, sequential (n={len(seq_ms)}) | {pct(seq_ms, 50):.1f} ms | {pct(seq_ms, 99):.1f} ms |
| baseline: warm exec in a running sandbox | {pct(warm_ms, 50):.1f} ms | {pct(warm_ms, 99):.1f} ms |
| ratio create->first exec / warm exec (p50) | {summary['ratio_create_to_warm_p50']:.1f}x | |
| {c['sandboxes']} concurrent creates: per-sandbox create -> first exec | {c['create_to_first_exec_ms_p50']:.0f} ms | {c['create_to_first_exec_ms_p99']:.0f} ms |
| {c['sandboxes']} concurrent creates: all running after | {c['wall_s']:.2f} s | |

Target create -> first exec p50 <= 100 ms: {'met' if summary['met'] else '**not met**'}.
"""
        with open(os.path.join(args.out, "sandbox.md"), "w") as f:
            f.write(md)
        print(md)
        return 0
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
