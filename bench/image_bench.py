#!/usr/bin/env python3
"""Create -> first exec for `base` and for an imported image, at the
runtime level (SandboxRuntime::Create + the first Exec of `true`, no REST):

    image_bench.py --probe BUILD/bench/sandbox_latency_bench --out bench/results [--n 30]

The image is a busybox-static rootfs written by tests/support/make_image.py
(OCI archive, gzip); it is imported once before timing. Each image sandbox
gets its own 1 GiB ext4 disk on a loop device and an overlay over the
idmapped image (docs/templates.md). Writes OUT/image.json and OUT/image.md.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_probe(probe, n, image=None):
    argv = [probe, str(n), "0"] + ([image] if image else [])
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600).stdout
    m = re.search(r"p50 ([0-9.]+) ms  p99 ([0-9.]+) ms", out)
    if not m:
        raise SystemExit("image_bench: probe failed:\n" + out)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("image_bench: needs root; skipped")
        return 0
    work = tempfile.mkdtemp(prefix="osb-image-bench-")
    spec = os.path.join(work, "spec.json")
    with open(spec, "w") as f:
        json.dump({"busybox": True, "config": {"Env": ["PATH=/bin"], "WorkingDir": "/home/app", "User": "app"}}, f)
    image = os.path.join(work, "busybox.tar")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests/support/make_image.py"), spec, image],
                   check=True, stdout=subprocess.DEVNULL)
    base = run_probe(args.probe, args.n)
    img = run_probe(args.probe, args.n, image)
    summary = {"base_create_to_first_exec_ms": {"p50": base[0], "p99": base[1], "n": args.n},
               "image_create_to_first_exec_ms": {"p50": img[0], "p99": img[1], "n": args.n},
               "base_target_p50_ms": 50, "base_met": base[0] <= 50}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "image.json"), "w") as f:
        json.dump(summary, f, indent=2)
    md = f"""# Create -> first exec: `base` vs an imported image (runtime level)

Measured by `bench/image_bench.py` (part of `make bench`), {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}:
SandboxRuntime::Create then the first Exec of `true`, n={args.n} sequential, no REST.

| template | p50 | p99 |
|---|---|---|
| base (host dirs, zero setup) | {base[0]:.1f} ms | {base[1]:.1f} ms |
| imported busybox image (overlay + 1 GiB ext4 disk) | {img[0]:.1f} ms | {img[1]:.1f} ms |

`base` p50 <= 50 ms: {'met' if summary['base_met'] else '**not met**'}.
"""
    with open(os.path.join(args.out, "image.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
