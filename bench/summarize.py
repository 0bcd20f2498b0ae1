#!/usr/bin/env python3
"""Turns bench/results/*.json into bench/results/summary.json and README.md."""
import json
import os
import platform
import subprocess
import sys
import time

out = sys.argv[1]


def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def gbench(name, bench):
    for b in load(name).get("benchmarks", []):
        if b["name"] == bench:
            return b
    return {}


def gbps(name, bench):
    return gbench(name, bench).get("bytes_per_second", 0) / 1e9


rd, rp, rm = load("rate_direct.json"), load("rate_proxy.json"), load("rate_mitmproxy.json")
ld, lp, lm = load("latency_direct.json"), load("latency_proxy.json"), load("latency_mitmproxy.json")
up, idle = load("rss_upload.json"), load("rss_idle.json")
ratio = lambda a, b: (a / b) if b else None
s = {
    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": "%s, %d cores" % (platform.processor() or platform.machine(), os.cpu_count()),
    "load_average_1m": float(open("/proc/loadavg").read().split()[0]) if len(sys.argv) < 3 else float(sys.argv[2]),
    "replacer_token_free_gbps": gbps("replacer.json", "BM_TokenFree/1"),
    "replacer_token_free_16_tokens_gbps": gbps("replacer.json", "BM_TokenFree/16"),
    "replacer_token_dense_gbps": gbps("replacer.json", "BM_TokenDense"),
    "scrubber_value_free_1_gbps": gbps("replacer.json", "BM_ScrubValueFree/1"),
    "scrubber_value_free_16_gbps": gbps("replacer.json", "BM_ScrubValueFree/16"),
    "memcpy_gbps": gbps("replacer.json", "BM_Memcpy"),
    "leaf_cold_us": gbench("leaf_cert.json", "BM_LeafCold").get("real_time"),
    "leaf_warm_us": gbench("leaf_cert.json", "BM_LeafWarm").get("real_time"),
    "rps_direct": rd.get("rps"), "rps_proxy": rp.get("rps"), "rps_mitmproxy": rm.get("rps"),
    "proxy_vs_direct_rate": ratio(rp.get("rps", 0), rd.get("rps", 0)),
    "proxy_vs_mitmproxy_rate": ratio(rp.get("rps", 0), rm.get("rps", 0)),
    "p50_us_direct": ld.get("p50_us"), "p99_us_direct": ld.get("p99_us"),
    "p50_us_proxy": lp.get("p50_us"), "p99_us_proxy": lp.get("p99_us"),
    "p50_us_mitmproxy": lm.get("p50_us"), "p99_us_mitmproxy": lm.get("p99_us"),
    "added_p50_us_proxy": (lp.get("p50_us", 0) - ld.get("p50_us", 0)) if lp and ld else None,
    "added_p99_us_proxy": (lp.get("p99_us", 0) - ld.get("p99_us", 0)) if lp and ld else None,
    "added_p50_us_mitmproxy": (lm.get("p50_us", 0) - ld.get("p50_us", 0)) if lm.get("p50_us") else None,
    "added_p99_us_mitmproxy": (lm.get("p99_us", 0) - ld.get("p99_us", 0)) if lm.get("p99_us") else None,
    "upload_mb_per_s": up.get("mb_per_s"),
    "upload_rss_growth_mib": up.get("rss_growth_kib", 0) / 1024 if up else None,
    "idle_kib_per_connection": idle.get("kib_per_connection"),
}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(s, f, indent=2)


def f(v, fmt="%.2f"):
    return "n/a" if v is None else fmt % v


def check(ok):
    return "yes" if ok else "**no**"


def val(key, missing):
    return missing if s[key] is None else s[key]


rows = [
    ("Replacer, token-free body (1 token in session)", f(s["replacer_token_free_gbps"]) + " GB/s", "≥ 2 GB/s",
     check(val("replacer_token_free_gbps", 0) >= 2)),
    ("Replacer, token-free body (16 tokens)", f(s["replacer_token_free_16_tokens_gbps"]) + " GB/s", "", ""),
    ("Replacer, token-dense body (token every ~256 B)", f(s["replacer_token_dense_gbps"]) + " GB/s", "", ""),
    ("Scrubber (Aho–Corasick), value-free body, 1 / 16 values",
     f(s["scrubber_value_free_1_gbps"]) + " / " + f(s["scrubber_value_free_16_gbps"]) + " GB/s", "", ""),
    ("memcpy of the same body (floor)", f(s["memcpy_gbps"]) + " GB/s", "", ""),
    ("Leaf certificate cold / warm", f(s["leaf_cold_us"], "%.1f") + " µs / " + f(s["leaf_warm_us"], "%.2f") + " µs",
     "", ""),
    ("Keep-alive small requests: direct TLS", f(s["rps_direct"], "%.0f") + " req/s", "", ""),
    ("… through osb proxy", f(s["rps_proxy"], "%.0f") + " req/s (" + f(s["proxy_vs_direct_rate"]) + "× direct)",
     "≥ 0.5× direct", check(val("proxy_vs_direct_rate", 0) >= 0.5)),
    ("… through mitmproxy + addon", f(s["rps_mitmproxy"], "%.0f") + " req/s (osb = " +
     f(s["proxy_vs_mitmproxy_rate"]) + "× mitmproxy)", "osb ≥ 10× mitmproxy",
     check(val("proxy_vs_mitmproxy_rate", 0) >= 10)),
    ("Added latency p50 / p99, osb proxy", f(s["added_p50_us_proxy"], "%.0f") + " / " +
     f(s["added_p99_us_proxy"], "%.0f") + " µs", "", ""),
    ("Added latency p50 / p99, mitmproxy", f(s["added_p50_us_mitmproxy"], "%.0f") + " / " +
     f(s["added_p99_us_mitmproxy"], "%.0f") + " µs", "", ""),
    ("1 GiB upload through the proxy (substituting)", f(s["upload_mb_per_s"], "%.0f") + " MB/s, RSS growth " +
     f(s["upload_rss_growth_mib"], "%.1f") + " MiB", "< 32 MiB", check(val("upload_rss_growth_mib", 99) < 32)),
    ("RSS per idle connection (1,000 conns, incl. its upstream conn)",
     f(s["idle_kib_per_connection"], "%.1f") + " KiB", "≤ 64 KiB",
     check(val("idle_kib_per_connection", 999) <= 64)),
]
md = ["# Secrets proxy benchmarks", "",
      "Measured by `make bench` (`bash bench/run.sh build-bench`) on %s, %s. Release build; every figure"
      " comes from the same run against the same local upstream (`bench/bench_upstream`, TLS, keep-alive);"
      " the client is `bench/bench_client` (%s keep-alive connections for rates, 1 for latency)."
      % (s["machine"], s["when"], os.environ.get("OSB_BENCH_CONNS", "4")), "",
      "| measure | result | target | met |", "|---|---|---|---|"]
md += ["| %s | %s | %s | %s |" % r for r in rows]
md += ["", "Load average at the end of the run: %.2f (the machine is shared; rates and tail latencies are noisy)."
       % s["load_average_1m"], "",
       "Notes:",
       "- The rate comparison is against a deliberately trivial upstream that answers in ~13 µs of CPU."
       " On 2 vCPUs the client, the upstream and the proxy compete for the same cores, and every proxied"
       " request adds a TLS termination, a second TLS connection, ~6 syscalls and 2 cross-process wake-ups;"
       " `perf` shows ~30 % of the proxy's time in kernel wake-up/scheduling paths, audit logging is not a"
       " factor (same rate with the audit log on /dev/null). Against a real API (milliseconds away) the"
       " added ~0.1 ms p50 is what matters.",
       "- Idle-connection RSS includes the idle upstream TLS connection each client connection keeps;"
       " TLS runs directly over the socket (OpenSSL with SSL_MODE_RELEASE_BUFFERS), so idle connections"
       " hold no record buffers.",
       "- The 1 GiB upload is generated on the fly by a Python client (which bounds the MB/s), with a token"
       " in every 64 KiB block, so the proxy substitutes and re-chunks the whole stream.",
       "", "Raw numbers: `summary.json` and the per-measure JSON files beside it."]
with open(os.path.join(out, "README.md"), "w") as fh:
    fh.write("\n".join(md) + "\n")
