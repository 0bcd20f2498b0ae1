#!/usr/bin/env bash
# `make bench`: secrets proxy benchmarks, side by side in one run on the same
# local upstream. Usage: bash bench/run.sh <build dir>. Results:
# bench/results/*.json and bench/results/README.md.
set -euo pipefail
BUILD=$(cd "${1:-build-bench}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/results
SECS=${OSB_BENCH_SECONDS:-4}
CONNS=${OSB_BENCH_CONNS:-4}                 # mitmproxy's rate run
CONN_LEVELS=${OSB_BENCH_CONN_LEVELS:-"1 4 16"}
REPS=${OSB_BENCH_REPS:-3}
IDLE_CONNS=${OSB_BENCH_IDLE_CONNS:-1000}
UPLOAD_GIB=${OSB_BENCH_UPLOAD_GIB:-1}
SLOW_CONNS=${OSB_BENCH_SLOW_CONNS:-120}   # slow-body attack: request bodies (+ half as many responses)
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/osb_bench_XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_file() {  # poll a readiness file with a deadline
  for _ in $(seq 1 600); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "timed out waiting for $1" >&2; return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== replacer (Google Benchmark)"
"$BUILD/bench/replacer_bench" --benchmark_min_time=0.5 --benchmark_min_warmup_time=0.3 --benchmark_out="$OUT/replacer.json" \
  --benchmark_out_format=json
echo "== response decode + scrub (Google Benchmark)"
"$BUILD/bench/content_coding_bench" --benchmark_min_time=0.5 --benchmark_out="$OUT/content_coding.json" \
  --benchmark_out_format=json
echo "== SigV4 re-signing vs plain substitution (Google Benchmark)"
"$BUILD/bench/sigv4_bench" --benchmark_min_time=0.5 --benchmark_out="$OUT/sigv4.json" --benchmark_out_format=json
echo "== leaf certificates"
"$BUILD/bench/leaf_cert_bench" --benchmark_min_time=0.5 --benchmark_out="$OUT/leaf_cert.json" \
  --benchmark_out_format=json

echo "== upstream + proxy"
python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/support'); import upstream; \
upstream.ensure_certs('$WORK/up', upstream.DEFAULT_NAMES)"
"$BUILD/bench/bench_upstream" 127.0.0.3 "$WORK/up/server.crt" "$WORK/up/server.key" "$WORK/up.port" &
UP_PID=$!
PIDS+=($UP_PID)
wait_file "$WORK/up.port"
UP=$(cat "$WORK/up.port")
# A second upstream with /slow-large (an upstream that never finishes a
# large response), for the slow-body RSS row; reached as other.test.
python3 "$ROOT/tests/support/upstream.py" --cert-dir "$WORK/up" --port-file "$WORK/slow.json" \
  --record-dir "$WORK/records" --host 127.0.0.3 >/dev/null 2>&1 &
PIDS+=($!)
wait_file "$WORK/slow.json"
SLOWP=$(python3 -c "import json; print(json.load(open('$WORK/slow.json'))['port'])")
TOKEN=osb_sealed_0123456789abcdef0123456789abcdef
VALUE=sk-live-bench-0123456789abcdefghij
AWS_TOKEN=osb_sealed_a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1  # aws-sigv4: the sandbox's AWS_SECRET_ACCESS_KEY
AWS_AKID=AKIAOSBBENCH00000001
cat > "$WORK/sessions.json" <<JSON
[{"source":"127.0.0.1","sandboxId":"bench","allowlist":["api.test","other.test"],
  "secrets":[{"name":"API_KEY","token":"$TOKEN","value":"$VALUE","allowedHosts":["api.test"]},
             {"name":"AWS","kind":"aws-sigv4","token":"$AWS_TOKEN","allowedHosts":["api.test"],
              "material":{"accessKeyId":"$AWS_AKID","secretAccessKey":"benchREALsecretKEY/0123456789abcdef"}}]}]
JSON
"$BUILD/osb" proxy --listen 127.0.0.1:0 --state-dir "$WORK/state" --sessions "$WORK/sessions.json" \
  --upstream-ca "$WORK/up/ca.crt" --allow-private 127.0.0.3/32 --resolve api.test=127.0.0.3 \
  --resolve "other.test=127.0.0.3:$SLOWP" \
  --audit-log "$WORK/audit.log" --ready-file "$WORK/proxy.json" --max-connections-per-session 4096 >/dev/null &
PROXY_PID=$!
PIDS+=($PROXY_PID)
wait_file "$WORK/proxy.json"
PP=$(python3 -c "import json; print(json.load(open('$WORK/proxy.json'))['listen'][0])")

# The yardstick: the cheapest TLS-terminating relay (bench/min_relay.cpp).
"$BUILD/bench/min_relay" 127.0.0.1 "$WORK/up/server.crt" "$WORK/up/server.key" "127.0.0.3:$UP" "$WORK/up/ca.crt" \
  "$WORK/relay.port" &
RELAY_PID=$!
PIDS+=($RELAY_PID)
wait_file "$WORK/relay.port"
RP=$(cat "$WORK/relay.port")

client() { "$BUILD/bench/bench_client" --sni api.test --port "$UP" --connect "127.0.0.3:$UP" "$@"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system CPU, in clock ticks
# rate MODE CONNS (MODE: direct, proxy or relay): one timed run; prints the
# client's JSON plus the middle box's and the upstream's CPU per request over
# the same interval.
rate() {
  local mode=$1 conns=$2 p0 u0 out mid=$PROXY_PID
  [ "$mode" = relay ] && mid=$RELAY_PID
  p0=$(ticks "$mid"); u0=$(ticks "$UP_PID")
  if [ "$mode" = direct ]; then
    out=$(client --ca "$WORK/up/ca.crt" --conns "$conns" --seconds "$SECS")
  elif [ "$mode" = relay ]; then
    out=$(client --connect "127.0.0.1:$RP" --ca "$WORK/up/ca.crt" --conns "$conns" --seconds "$SECS")
  else
    out=$(client --proxy "127.0.0.1:$PP" --ca "$WORK/state/ca.crt" --conns "$conns" --seconds "$SECS")
  fi
  python3 -c 'import json, os, sys
j = json.loads(sys.argv[1]); hz = os.sysconf("SC_CLK_TCK"); n = max(1, j["requests"])
j["mode"] = sys.argv[2]
j["proxy_cpu_us_per_req"] = (int(sys.argv[4]) - int(sys.argv[3])) * 1e6 / hz / n if sys.argv[2] != "direct" else 0.0
j["upstream_cpu_us_per_req"] = (int(sys.argv[6]) - int(sys.argv[5])) * 1e6 / hz / n
print(json.dumps(j))' "$out" "$mode" "$p0" "$(ticks "$mid")" "$u0" "$(ticks "$UP_PID")"
}
# Rates at each concurrency, direct and proxied runs alternating (the
# machine is shared and noisy: summarize.py takes medians).
for conns in $CONN_LEVELS; do
  echo "== keep-alive small requests, $conns connection(s): direct vs osb proxy vs minimal relay, $REPS rounds"
  : > "$OUT/rate_c$conns.jsonl"
  for _ in $(seq 1 "$REPS"); do
    rate direct "$conns" >> "$OUT/rate_c$conns.jsonl"
    rate proxy "$conns" >> "$OUT/rate_c$conns.jsonl"
    rate relay "$conns" >> "$OUT/rate_c$conns.jsonl"
  done
done
echo "== latency, 1 connection"
client --ca "$WORK/up/ca.crt" --conns 1 --seconds "$SECS" > "$OUT/latency_direct.json"
client --proxy "127.0.0.1:$PP" --ca "$WORK/state/ca.crt" --conns 1 --seconds "$SECS" > "$OUT/latency_proxy.json"
grep -q '"secrets":\["API_KEY"\]' "$WORK/audit.log" || { echo "proxy did not substitute" >&2; exit 1; }

echo "== SigV4 re-signing end to end (small GET and a 100 MiB aws-chunked upload) vs plain substitution"
python3 "$ROOT/bench/sigv4_e2e.py" "$PROXY_PID" "$PP" api.test "$UP" "$WORK/state/ca.crt" "$BUILD/bench/bench_client" \
  "$TOKEN" "$AWS_AKID" "$AWS_TOKEN" "$SECS" "$REPS" > "$OUT/sigv4_e2e.json" || echo '{}' > "$OUT/sigv4_e2e.json"

echo "== mitmproxy"
if ! command -v mitmdump >/dev/null; then
  (apt-get install -y mitmproxy >/dev/null 2>&1 || sudo apt-get install -y mitmproxy >/dev/null 2>&1) || true
fi
if command -v mitmdump >/dev/null; then
  MP=$(free_port)
  OSB_BENCH_SECRETS="{\"$TOKEN\": \"$VALUE\"}" mitmdump -q --listen-host 127.0.0.1 --listen-port "$MP" \
    --set confdir="$WORK/mitm" --set ssl_verify_upstream_trusted_ca="$WORK/up/ca.crt" \
    -s "$ROOT/bench/mitm_addon.py" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_file "$WORK/mitm/mitmproxy-ca-cert.pem"
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$MP) 2>/dev/null && break; sleep 0.05; done
  # mitmproxy has no --resolve: tunnel to the upstream's address, SNI api.test.
  client --proxy "127.0.0.1:$MP" --tunnel-host 127.0.0.3 --ca "$WORK/mitm/mitmproxy-ca-cert.pem" \
    --conns "$CONNS" --seconds "$SECS" > "$OUT/rate_mitmproxy.json" || echo '{"rps":0}' > "$OUT/rate_mitmproxy.json"
  client --proxy "127.0.0.1:$MP" --tunnel-host 127.0.0.3 --ca "$WORK/mitm/mitmproxy-ca-cert.pem" \
    --conns 1 --seconds "$SECS" > "$OUT/latency_mitmproxy.json" || echo '{"rps":0}' > "$OUT/latency_mitmproxy.json"
else
  echo '{"skipped":"mitmproxy not installable"}' > "$OUT/rate_mitmproxy.json"
  echo '{"skipped":"mitmproxy not installable"}' > "$OUT/latency_mitmproxy.json"
fi

echo "== proxy RSS during a ${UPLOAD_GIB} GiB upload"
python3 "$ROOT/bench/rss_probe.py" upload "$PROXY_PID" "$PP" api.test "$UP" "$WORK/state/ca.crt" "$UPLOAD_GIB" \
  > "$OUT/rss_upload.json"
echo "== proxy RSS per idle connection ($IDLE_CONNS)"
python3 "$ROOT/bench/rss_probe.py" idle "$PROXY_PID" "$PP" api.test "$UP" "$WORK/state/ca.crt" "$IDLE_CONNS" \
  > "$OUT/rss_idle.json"

echo "== proxy RSS under slow-body attacks ($SLOW_CONNS request bodies + $((SLOW_CONNS / 2)) responses, 1 MiB each)"
python3 "$ROOT/bench/rss_probe.py" slowbody "$PROXY_PID" "$PP" api.test "$UP" "$WORK/state/ca.crt" "$SLOW_CONNS" \
  other.test 443 > "$OUT/rss_slowbody.json"

python3 "$ROOT/bench/summarize.py" "$OUT"
cat "$OUT/README.md"

echo "== sandbox create -> first exec (whole product, root)"
python3 "$ROOT/bench/sandbox_bench.py" --osb "$BUILD/osb" --out "$OUT"

echo "== files: ${UPLOAD_GIB} GiB upload/download through the API vs host cat, RSS (issue 15; whole product, root)"
python3 "$ROOT/bench/files_bench.py" --osb "$BUILD/osb" --out "$OUT" --gib "$UPLOAD_GIB"
echo "== create -> first exec: base vs an imported image (runtime level, root)"
python3 "$ROOT/bench/image_bench.py" --probe "$BUILD/bench/sandbox_latency_bench" --out "$OUT" || echo "image bench failed"

echo "== one sandbox attacking, another measured (issue 13; whole product, root)"
python3 "$ROOT/bench/soak_bench.py" --osb "$BUILD/osb" --out "$OUT"

echo "== control plane: REST req/s (SQLite, PostgreSQL; 1 and 2 replicas), refresh fan-out, p99 under 200 execs"
bash "$ROOT/bench/controlplane.sh" "$BUILD"
cat "$ROOT/bench/results/controlplane.jsonl"
echo "== streamed exec first byte; 100 attached background commands (issue 15; whole product, root)"
python3 "$ROOT/bench/commands_bench.py" --osb "$BUILD/osb" --out "$OUT"
