#!/usr/bin/env bash
# Throwaway PostgreSQL server for the test suite (a ctest fixture).
#   scripts/test-postgres.sh start DIR   initdb + start; writes DIR/url
#   scripts/test-postgres.sh stop DIR    stop the server and delete its data
# The cluster runs as an unprivileged user (PostgreSQL refuses root): the
# system user `osbtest` (created if missing) when run as root, else the
# caller. It listens on 127.0.0.1 only (plus a unix socket in its own
# directory), on a free port, with trust auth: it holds nothing but test data
# and is removed by `stop`.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [[ ! -x $PGBIN/initdb ]]; then
  echo "test-postgres: PostgreSQL server binaries not found (install postgresql; scripts/install-deps.sh)" >&2
  exit 1
fi

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u osbtest -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
  if [[ -f $dir/pgdata ]]; then
    local data
    data=$(cat "$dir/pgdata")
    if [[ -f $data/postmaster.pid ]]; then
      as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$(dirname "$data")"
  fi
  rm -rf "$dir"
}

start() {
  stop  # a leftover from an interrupted run
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]] && ! id osbtest >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin osbtest
  fi
  # Data and socket live in a private temp dir owned by the server user, so
  # nothing depends on the permissions of the build tree.
  local base
  base=$(mktemp -d /tmp/osb-pg.XXXXXX)
  chmod 0700 "$base"
  [[ $(id -u) -eq 0 ]] && chown osbtest "$base"
  echo "$base/data" >"$dir/pgdata"
  as_pg "$PGBIN/initdb" -D "$base/data" -U osb --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_pg "$PGBIN/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $base -c fsync=off -c full_page_writes=off -c max_connections=200" \
         start >/dev/null; then
      echo "postgresql://osb@127.0.0.1:$port/postgres" >"$dir/url"
      echo "test-postgres: running on 127.0.0.1:$port (data $base/data)"
      return 0
    fi
    echo "test-postgres: start on port $port failed (attempt $attempt)" >&2
    cat "$base/server.log" >&2 || true
  done
  exit 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
