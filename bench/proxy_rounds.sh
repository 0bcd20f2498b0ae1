#!/usr/bin/env bash
# Proxy vs minimal relay vs direct, same run, alternating rounds (issue 11's
# rate and CPU targets). Optional: a second osb binary (e.g. the previous
# commit's) measured in the same rounds, and system calls per request of
# each middle box (perf stat on the syscall tracepoints; needs root).
# Usage: bash bench/proxy_rounds.sh BUILD_DIR OUT.jsonl [ROUNDS] [SECS] [OLD_OSB]
#   (the proxy run is BUILD_DIR/bench/osb_proxy_only if built, else BUILD_DIR/osb)
#   env OSB_BENCH_CONN_LEVELS="1 4 16", OSB_SYSCALL_SECS=3 (0 = skip),
#   OSB_SYSCALL_CONNS="4" (connection counts of the system-call runs),
#   OSB_PERF_RECORD=FILE (also a perf CPU profile of the new box, 4 conns),
#   OSB_RSS_IDLE=N (RSS per idle keep-alive connection of each box, N conns),
#   OSB_NEW_BIN=BIN (the new box's binary), OSB_NEW_ENV="VAR=value" (its environment)
# Each line of OUT.jsonl: one timed run {round, mode, conns, rps,
# client/upstream/mid cpu_us_per_req, load}; syscall lines have mode
# "syscalls:<box>" and per-request counts. Summarise with
# bench/proxy_rounds_summary.py OUT.jsonl.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
OUTF=$2
ROUNDS=${3:-5}
SECS=${4:-3}
OLD_OSB=${5:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LEVELS=${OSB_BENCH_CONN_LEVELS:-"1 4 16"}
SYS_SECS=${OSB_SYSCALL_SECS:-3}
WORK=$(mktemp -d /tmp/osb_rounds_XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 1 600); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "timed out: $1" >&2; return 1; }

python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/support'); import upstream; \
upstream.ensure_certs('$WORK/up', upstream.DEFAULT_NAMES)"
"$BUILD/bench/bench_upstream" 127.0.0.3 "$WORK/up/server.crt" "$WORK/up/server.key" "$WORK/up.port" &
UP_PID=$!; PIDS+=($UP_PID)
wait_file "$WORK/up.port"; UP=$(cat "$WORK/up.port")
TOKEN=osb_sealed_0123456789abcdef0123456789abcdef
# The same session as bench/run.sh's (a substituted token, a value scrubbed).
cat > "$WORK/sessions.json" <<JSON
[{"source":"127.0.0.1","sandboxId":"bench","allowlist":["api.test"],
  "secrets":[{"name":"API_KEY","token":"$TOKEN","value":"sk-live-bench-0123456789abcdefghij","allowedHosts":["api.test"]}]}]
JSON
start_proxy() {  # BIN NAME [VAR=value] -> sets PID_<NAME>, PORT_<NAME>
  mkdir -p "$WORK/$2"
  env OSB_BENCH_BOX=$2 ${3:-} "$1" proxy --listen 127.0.0.1:0 --state-dir "$WORK/$2" --sessions "$WORK/sessions.json" \
    --upstream-ca "$WORK/up/ca.crt" --allow-private 127.0.0.3/32 --resolve api.test=127.0.0.3 \
    --audit-log "$WORK/$2/audit.log" --ready-file "$WORK/$2/proxy.json" --max-connections-per-session 4096 >/dev/null &
  PIDS+=($!)
  eval "PID_$2=$!"
  wait_file "$WORK/$2/proxy.json"
  eval "PORT_$2=$(python3 -c "import json; print(json.load(open('$WORK/$2/proxy.json'))['listen'][0])")"
}
NEW_OSB=$BUILD/osb
[ -x "$BUILD/bench/osb_proxy_only" ] && NEW_OSB=$BUILD/bench/osb_proxy_only
NEW_OSB=${OSB_NEW_BIN:-$NEW_OSB}
start_proxy "$NEW_OSB" new "${OSB_NEW_ENV:-}"
BOXES="new"
if [ -n "$OLD_OSB" ]; then start_proxy "$OLD_OSB" old; BOXES="new old"; fi
"$BUILD/bench/min_relay" 127.0.0.1 "$WORK/up/server.crt" "$WORK/up/server.key" "127.0.0.3:$UP" "$WORK/up/ca.crt" \
  "$WORK/relay.port" &
PID_relay=$!; PIDS+=($PID_relay)
wait_file "$WORK/relay.port"; PORT_relay=$(cat "$WORK/relay.port")

client() { "$BUILD/bench/bench_client" --sni api.test --port "$UP" --connect "127.0.0.3:$UP" "$@"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
args_for() {  # mode conns secs
  case $1 in
    direct) echo "--ca $WORK/up/ca.crt --conns $2 --seconds $3" ;;
    relay) echo "--connect 127.0.0.1:$PORT_relay --ca $WORK/up/ca.crt --conns $2 --seconds $3" ;;
    *) local p; eval "p=\$PORT_$1"; echo "--proxy 127.0.0.1:$p --ca $WORK/$1/ca.crt --conns $2 --seconds $3" ;;
  esac
}
pid_for() { case $1 in direct) echo 0 ;; *) eval "echo \$PID_$1" ;; esac; }
rate() {  # round mode conns
  local mid p0=0 p1=0 u0 u1 out
  mid=$(pid_for "$2")
  [ "$mid" != 0 ] && p0=$(ticks "$mid")
  u0=$(ticks "$UP_PID")
  # shellcheck disable=SC2046
  out=$(client $(args_for "$2" "$3" "$SECS"))
  u1=$(ticks "$UP_PID")
  [ "$mid" != 0 ] && p1=$(ticks "$mid")
  python3 -c 'import json, os, sys
j = json.loads(sys.argv[1]); hz = os.sysconf("SC_CLK_TCK"); n = max(1, j["requests"])
j.update(round=int(sys.argv[2]), mode=sys.argv[3], load=os.getloadavg()[0])
j["mid_cpu_us_per_req"] = (int(sys.argv[5]) - int(sys.argv[4])) * 1e6 / hz / n
j["upstream_cpu_us_per_req"] = (int(sys.argv[7]) - int(sys.argv[6])) * 1e6 / hz / n
print(json.dumps(j))' "$out" "$1" "$2" "$p0" "$p1" "$u0" "$u1" >> "$OUTF"
}
: > "$OUTF"
# Warm-up (handshakes, allocator) once per box.
for m in direct $BOXES relay; do client $(args_for $m 4 1) >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
  for c in $LEVELS; do
    for m in direct $BOXES relay; do rate "$r" "$m" "$c"; done
  done
  echo "round $r done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
if [ "$SYS_SECS" != 0 ] && command -v perf >/dev/null; then
  for sc in ${OSB_SYSCALL_CONNS:-4}; do
  for m in $BOXES relay; do
    pid=$(pid_for $m)
    # Counted exactly while the client runs (perf stat -p PID -- COMMAND).
    out=$(perf stat -x, -e 'syscalls:sys_enter_*' -e context-switches -p "$pid" -o "$WORK/perf_$m.csv" -- \
      "$BUILD/bench/bench_client" --sni api.test --port "$UP" --connect "127.0.0.3:$UP" \
      $(args_for $m "$sc" "$SYS_SECS"))
    if [ -n "${OSB_PERF_RECORD:-}" ] && [ "$m" = new ]; then  # a CPU profile of the new box too
      perf record -F 1999 -g -p "$pid" -o "$OSB_PERF_RECORD" -- "$BUILD/bench/bench_client" --sni api.test \
        --port "$UP" --connect "127.0.0.3:$UP" $(args_for $m 4 "$SYS_SECS") >/dev/null 2>&1 || true
    fi
    python3 -c 'import json, sys
j = json.loads(sys.argv[1]); n = max(1, j["requests"]); counts = {}
for line in open(sys.argv[2]):
    f = line.strip().split(",")
    if len(f) < 3 or not f[0].replace(".", "").isdigit(): continue
    v = float(f[0]); name = f[2].replace("syscalls:sys_enter_", "")
    if v > 0: counts[name] = round(v / n, 3)
total = sum(v for k, v in counts.items() if k != "context-switches")
print(json.dumps({"mode": "syscalls:" + sys.argv[3], "conns": j["conns"], "requests": n, "per_request": counts,
                  "total_per_request": round(total, 2)}))' "$out" "$WORK/perf_$m.csv" "$m" >> "$OUTF"
  done
  done
fi
if [ -n "${OSB_RSS_IDLE:-}" ]; then  # RSS per idle keep-alive connection of each box (bench/rss_probe.py)
  for m in $BOXES; do
    pid=$(pid_for $m); eval "p=\$PORT_$m"
    python3 "$ROOT/bench/rss_probe.py" idle "$pid" "$p" api.test "$UP" "$WORK/$m/ca.crt" "$OSB_RSS_IDLE" |
      python3 -c 'import json, sys; j = json.load(sys.stdin); j["mode"] = "rss_idle:" + sys.argv[1]; print(json.dumps(j))' "$m" >> "$OUTF"
  done
fi
