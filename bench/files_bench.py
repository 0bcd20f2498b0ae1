#!/usr/bin/env python3
"""Files through the whole product (issue 15): upload and download of one
big file (default 1 GiB) via REST -> control plane -> the worker's file
data port (docs/files.md) -> helper in the sandbox, against a real `osb dev` (root), with curl as the
client.

    files_bench.py --osb BUILD/osb --out bench/results [--gib 1]

Reports, in one run:
  * the yardstick: `cat FILE > /dev/null` of the same file on the host
    (page cache warm), as bytes/s;
  * upload (curl PUT --data-binary @FILE) and download (curl GET -o
    /dev/null) as bytes/s and as a ratio to the yardstick (target >= 0.5);
  * RSS growth of the `osb dev` process during each transfer (the API and
    the worker share that process in dev mode; target < 32 MiB), sampled
    every 20 ms against the value just before the transfer.
  * the floor of each hop on this machine, in the same run
    (bench/hop_floors.py: a pipe, a tmpfs write, AES-GCM on one core, curl
    to an HTTP sink that drops the body / serves it with sendfile), and the
    product's rate as a ratio to the first hop alone (curl to a null sink
    over the same loopback HTTP): the target that measures the product and
    not the machine (bench/results/files.md explains why 0.5 of `cat` is
    out of reach).
Writes OUT/files.json and OUT/files.md.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hop_floors  # noqa: E402
import same_chain_floor  # noqa: E402
from osb_dev import OsbDev, cpu_s, rss_kib  # noqa: E402


class RssPeak:
    """Samples a process's RSS in a thread; peak - start, in KiB."""

    def __init__(self, pid):
        self.pid, self.start, self.peak = pid, rss_kib(pid), 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self._stop.wait(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_mib(self):
        return max(0, self.peak - self.start) / 1024


def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"files_bench: {cmd[0]} failed: {r.stderr or r.stdout}")
    return dt, r.stdout


BEGIN, END = "<!-- files-bench -->", "<!-- /files-bench -->"


def add_to_readme(path, md):
    """Puts the files section into bench/results/README.md (replacing an older one)."""
    text = open(path).read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + text[text.index(END) + len(END):]
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n\n" + BEGIN + "\n" + md.replace("# Files", "## Files", 1) + END + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osb", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gib", type=float, default=1.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("files_bench: needs root; skipped")
        return 0
    size = int(args.gib * (1 << 30))
    # The sandbox's scratch tmpfs is half its memory: room for the file.
    memory_mb = int(size / (1 << 20) * 2 + 512)
    create = lambda api: api.call("POST", "/api/sandboxes", {"timeout": 3600, "memoryMB": memory_mb})["sandboxID"]  # noqa: E731
    with OsbDev(args.osb, "files", prefix="osbf", pool="10.205.0.0/16", ready=create) as dev:
        run(args, size, dev)
    return 0


def run(args, size, dev):
    work, sid, url, key = dev.work, dev.ready, dev.api.url, dev.api.key
    src = os.path.join(work, "big.bin")
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    timed(["sh", "-c", f"cat {src} > /dev/null"])  # warm the page cache
    cat_s = min(timed(["sh", "-c", f"cat {src} > /dev/null"])[0] for _ in range(3))
    floors = hop_floors.measure(src)
    min_chain = os.path.join(os.path.dirname(os.path.abspath(args.osb)), "bench", "min_file_chain")
    chain = same_chain_floor.measure(src, min_chain if os.access(min_chain, os.X_OK) else None)
    if "min" not in chain:
        raise SystemExit(f"files_bench: {min_chain} missing (build the bench targets: make bench)")

    files_url = f"{url}/api/sandboxes/{sid}/files?path=%2Fhome%2Fsandbox%2Fbig.bin"
    curl = ["curl", "-sS", "--fail", "-H", f"X-API-Key: {key}"]
    # Best of three, like the floors; CPU per GiB and RSS growth over all three.
    up_s, down_s, up_cpu, down_cpu = [], [], 0.0, 0.0
    with RssPeak(dev.pid) as up_rss:
        for i in range(3):
            if i:  # room on the sandbox's tmpfs for the next upload's temporary file
                dev.api.call("DELETE", f"/api/sandboxes/{sid}/files?path=%2Fhome%2Fsandbox%2Fbig.bin")
            c0 = cpu_s(dev.pid)
            # -T streams the file (--data-binary @FILE loads it whole, and
            # curl refuses files above 1 GiB that way).
            dt, out = timed(curl + ["-T", src, files_url])
            up_cpu += cpu_s(dev.pid) - c0
            up_s.append(dt)
            stored = json.loads(out)["size"]
            if stored != size:
                raise SystemExit(f"files_bench: stored {stored} bytes, sent {size}")
    with RssPeak(dev.pid) as down_rss:
        for _ in range(3):
            c0 = cpu_s(dev.pid)
            down_s.append(timed(curl + ["-o", "/dev/null", files_url])[0])
            down_cpu += cpu_s(dev.pid) - c0
    up_s, down_s = min(up_s), min(down_s)
    load = os.getloadavg()[0]

    rate = lambda s: size / s  # noqa: E731
    summary = {
        "bytes": size,
        "cat_host_MBps": rate(cat_s) / 1e6,
        "upload_MBps": rate(up_s) / 1e6,
        "download_MBps": rate(down_s) / 1e6,
        "upload_ratio_to_cat": cat_s / up_s,
        "download_ratio_to_cat": cat_s / down_s,
        "rss_growth_mib": {"upload": up_rss.growth_mib, "download": down_rss.growth_mib},
        "osb_cpu_s_per_gib": {"upload": up_cpu / 3 / (size / 2**30), "download": down_cpu / 3 / (size / 2**30)},
        "load_average_1m": load,
        "rss_note": "osb dev: API, secrets proxy and worker in one process",
        "hop_floors_MBps": floors,
        "upload_ratio_to_curl_null": (rate(up_s) / 1e6) / floors["curl_put_null"],
        "download_ratio_to_curl_null": (rate(down_s) / 1e6) / floors["curl_get_null"],
        "same_chain_MBps": chain,
        "upload_ratio_to_same_chain": (rate(up_s) / 1e6) / chain["min"]["upload"],
        "download_ratio_to_same_chain": (rate(down_s) / 1e6) / chain["min"]["download"],
        "targets": {"ratio": 0.5, "ratio_to_same_chain": 0.5, "rss_growth_mib": 32},
    }
    up_floor = min(floors["curl_put_null"], floors["tmpfs_write"])
    down_floor = min(floors["curl_get_null"], floors["host_cat"])
    summary["upload_ratio_to_min_hop"] = (rate(up_s) / 1e6) / up_floor
    summary["download_ratio_to_min_hop"] = (rate(down_s) / 1e6) / down_floor
    summary["met"] = {
        "upload_ratio": summary["upload_ratio_to_cat"] >= 0.5,
        "download_ratio": summary["download_ratio_to_cat"] >= 0.5,
        "upload_ratio_to_curl_null": summary["upload_ratio_to_curl_null"] >= 0.5,
        "download_ratio_to_curl_null": summary["download_ratio_to_curl_null"] >= 0.5,
        "upload_ratio_to_min_hop": summary["upload_ratio_to_min_hop"] >= 0.5,
        "download_ratio_to_min_hop": summary["download_ratio_to_min_hop"] >= 0.5,
        "upload_ratio_to_same_chain": summary["upload_ratio_to_same_chain"] >= 0.5,
        "download_ratio_to_same_chain": summary["download_ratio_to_same_chain"] >= 0.5,
        "rss": max(up_rss.growth_mib, down_rss.growth_mib) < 32,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "files.json"), "w") as f:
        json.dump(summary, f, indent=2)
    md = f"""# Files: {size >> 20} MiB through the API (REST -> control plane -> worker's file data port -> sandbox helper)

Measured by `python3 bench/files_bench.py --osb BUILD/osb --out bench/results --gib {args.gib:g}` (part of
`make bench`; root; Release build), `osb dev` (API server, secrets proxy and worker in one process; each
transfer authorised over gRPC, its bytes on the worker's file data port, both loopback mutual TLS 1.3), {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}. The
client is curl: `curl -T FILE URL` (upload) and `curl -o /dev/null URL` (download), best of three each. RSS
is sampled every 20 ms against its value just before the three transfers.

| | MB/s | ratio to host `cat` (target >= 0.5) | RSS growth of osb dev (API + worker, target < 32 MiB) |
| --- | ---: | ---: | ---: |
| host `cat FILE > /dev/null` | {summary['cat_host_MBps']:.0f} | 1.00 | |
| upload (`curl -T`, PUT) | {summary['upload_MBps']:.0f} | {summary['upload_ratio_to_cat']:.2f} | {up_rss.growth_mib:.1f} MiB |
| download (curl GET) | {summary['download_MBps']:.0f} | {summary['download_ratio_to_cat']:.2f} | {down_rss.growth_mib:.1f} MiB |

Floors of each hop, same run (`bench/hop_floors.py`), MB/s:

| hop | MB/s |
| --- | ---: |
| `cat FILE \\| cat > /dev/null` (one pipe) | {floors['pipe']:.0f} |
| `cat FILE > /dev/shm/x` (a tmpfs write: the sandbox's last hop) | {floors['tmpfs_write']:.0f} |
| AES-128-GCM, one core, 16 KiB records (`openssl speed`) | {floors['aes_gcm']:.0f} |
| `curl -T FILE` to an HTTP sink that drops the body (upload's first hop) | {floors['curl_put_null']:.0f} |
| `curl -o /dev/null` from an HTTP source using sendfile (download's last hop) | {floors['curl_get_null']:.0f} |

CPU of `osb dev` per GiB: upload {summary['osb_cpu_s_per_gib']['upload']:.2f} s, download {summary['osb_cpu_s_per_gib']['download']:.2f} s (2 cores; 1-minute load average at the end: {load:.1f}).

The same chain without the product, same run (`bench/same_chain_floor.py`): curl -> loopback HTTP ->
"API" -> mutual TLS 1.3 over loopback -> "worker" -> a UNIX socket -> "helper" -> the tmpfs file,
1 MiB buffers, best of three, MB/s:

| the same chain built as | upload | download |
| --- | ---: | ---: |
| the cheapest C++ we can write (`bench/min_file_chain.cpp`: blocking threads, OpenSSL, splice into the file) | {chain['min']['upload']:.0f} | {chain['min']['download']:.0f} |
| stock tools (`socat -b 1048576` relays: three for an upload, two for a download read by `curl --http0.9`) | {chain['socat']['upload']:.0f} | {chain['socat']['download']:.0f} |

**Proposed target (replaces "0.5 of host `cat`", see below): the product delivers at least half of
what the cheapest program moving the file along the same chain delivers on the same machine in the
same run.**

| product rate as a ratio to | upload | download |
| --- | ---: | ---: |
| the same chain, cheapest C++ (target >= 0.5) | **{summary['upload_ratio_to_same_chain']:.2f}** | **{summary['download_ratio_to_same_chain']:.2f}** |
| the same chain, socat | {summary['upload_MBps'] / chain['socat']['upload']:.2f} | {summary['download_MBps'] / chain['socat']['download']:.2f} |
| its first / last hop alone (curl to a null sink / from a sendfile source) | {summary['upload_ratio_to_curl_null']:.2f} | {summary['download_ratio_to_curl_null']:.2f} |
| its slowest hop alone | {summary['upload_ratio_to_min_hop']:.2f} | {summary['download_ratio_to_min_hop']:.2f} |

Why 0.5 of `cat` is out of reach here, and why the same chain is the target
that measures the same thing: `cat` from the page cache is one copy in one
process. A file moved through the product crosses four processes (curl,
`osb dev`, the sandbox's file helper, the kernel's tmpfs) and is copied
about eight times — curl -> loopback TCP -> a 1 MiB piece -> AES-GCM
encryption (TLS records) -> loopback TCP -> decryption into the worker's
buffer -> a UNIX socket -> a pipe (splice) -> the tmpfs page cache — with an
encryption and a decryption on the same two cores. Even the cheapest
program doing only that (first table) stays far below `cat`, so 0.5 of
`cat` would measure this machine's two cores, not the product. What the
issue's ratio asks — how much of the machine's capacity the product's own
work leaves — is the ratio to that program: everything the product adds
(HTTP parsing, API keys, the gRPC grant and its single-use ticket, the
sandbox's mount namespace and user, openat2, framing, size checks, bounded
channels) is in the numerator and nothing else. How the figures got here:
`files_history.md`.
"""
    with open(os.path.join(args.out, "files.md"), "w") as f:
        f.write(md)
    print(md)
    add_to_readme(os.path.join(args.out, "README.md"), md)
    dev.api.call("DELETE", f"/api/sandboxes/{sid}")


if __name__ == "__main__":
    raise SystemExit(main())
