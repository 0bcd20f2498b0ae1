#!/usr/bin/env bash
# Control-plane benchmark on SQLite and PostgreSQL, with 1 and 2 replicas.
# Usage: bash bench/controlplane.sh <build dir with -DOSB_BENCH=ON>
# Writes bench/results/controlplane.jsonl (one JSON line per configuration).
set -euo pipefail
BUILD=$(cd "${1:-build-bench}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/results/controlplane.jsonl
SECS=${OSB_BENCH_SECONDS:-3}
CLIENTS=${OSB_BENCH_CLIENTS:-4}
WORK=$(mktemp -d /tmp/osb_cpbench_XXXXXX)
chmod 755 "$WORK"
cleanup() { bash "$ROOT/scripts/test-postgres.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
bash "$ROOT/scripts/test-postgres.sh" start "$WORK/pg" >/dev/null
PGURL=$(cat "$WORK/pg/url")
: > "$OUT"
n=0
for db in sqlite postgres; do
  for replicas in 1 2; do
    n=$((n + 1))
    if [[ $db == sqlite ]]; then
      url="sqlite://$WORK/bench$n.db"
    else
      name=bench$n
      psql "$PGURL" -qc "CREATE DATABASE $name" >/dev/null
      url=${PGURL%/*}/$name
    fi
    "$BUILD/bench/controlplane_bench" --db "$url" --replicas "$replicas" --seconds "$SECS" \
      --clients "$CLIENTS" | grep '^{' | tee -a "$OUT"
  done
done
