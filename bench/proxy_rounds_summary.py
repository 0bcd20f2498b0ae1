#!/usr/bin/env python3
"""Summarises bench/proxy_rounds.sh output: per connection level, the
median and spread over rounds of each ratio, computed within each round
(the machine is shared: only same-round ratios mean anything)."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [r for r in rows if ":" not in r["mode"]]
boxes = sorted({r["mode"] for r in runs} - {"direct", "relay"})
levels = sorted({r["conns"] for r in runs})
rounds = sorted({r["round"] for r in runs})


def get(rnd, mode, conns):
    for r in runs:
        if r["round"] == rnd and r["mode"] == mode and r["conns"] == conns:
            return r
    return None


def med(xs):
    return "%.2f [%.2f..%.2f]" % (statistics.median(xs), min(xs), max(xs)) if xs else "-"


print("loads: %s" % ", ".join("%.1f" % r["load"] for r in runs[:: max(1, len(runs) // 8)]))
for c in levels:
    print("\n== %d connection(s), %d rounds (median [min..max] of per-round figures)" % (c, len(rounds)))
    for name, f in (("rps", lambda r: r["rps"]), ("mid cpu us/req", lambda r: r["mid_cpu_us_per_req"]),
                    ("client cpu us/req", lambda r: r["client_cpu_us_per_req"]),
                    ("upstream cpu us/req", lambda r: r["upstream_cpu_us_per_req"])):
        parts = []
        for m in ["direct"] + boxes + ["relay"]:
            xs = [f(get(k, m, c)) for k in rounds if get(k, m, c)]
            parts.append("%s %s" % (m, "%.1f" % statistics.median(xs) if xs else "-"))
        print("  %-20s %s" % (name, "   ".join(parts)))
    for b in boxes:
        rate_relay, rate_direct, cpu_cu, cpu_relay = [], [], [], []
        for k in rounds:
            p, d, y = get(k, b, c), get(k, "direct", c), get(k, "relay", c)
            if not (p and d and y):
                continue
            rate_relay.append(p["rps"] / y["rps"])
            rate_direct.append(p["rps"] / d["rps"])
            cpu_cu.append(p["mid_cpu_us_per_req"] / (d["client_cpu_us_per_req"] + d["upstream_cpu_us_per_req"]))
            cpu_relay.append(p["mid_cpu_us_per_req"] / y["mid_cpu_us_per_req"])
        print("  %s: rate/relay %s  rate/direct %s  cpu/(direct client+upstream) %s  cpu/relay cpu %s" % (
            b, med(rate_relay), med(rate_direct), med(cpu_cu), med(cpu_relay)))
    y = [get(k, "relay", c) for k in rounds if get(k, "relay", c)]
    d = [get(k, "direct", c) for k in rounds if get(k, "direct", c)]
    if y and d:
        print("  relay: cpu/(direct client+upstream) %s" % med(
            [a["mid_cpu_us_per_req"] / (b["client_cpu_us_per_req"] + b["upstream_cpu_us_per_req"]) for a, b in zip(y, d)]))
for r in rows:
    if r["mode"].startswith("rss_idle:"):
        print("\n%s: %s" % (r["mode"], json.dumps({k: v for k, v in r.items() if k != "mode"})))
    elif r["mode"].startswith("syscalls:"):
        print("\n%s (%d conns, %d requests): %.2f syscalls/request: %s" % (
            r["mode"], r["conns"], r["requests"], r["total_per_request"],
            ", ".join("%s %.2f" % kv for kv in sorted(r["per_request"].items(), key=lambda kv: -kv[1]))))
