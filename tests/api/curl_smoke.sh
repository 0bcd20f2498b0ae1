#!/usr/bin/env bash
# Smoke test with a real curl against `osb dev`: first start generates the
# keys and the client config, the API works, a restart reuses the same keys,
# SIGTERM shuts it down cleanly, and no value or key ever reaches the output.
# usage: curl_smoke.sh OSB_BINARY
set -euo pipefail
OSB=$(realpath "$1")
work=$(mktemp -d /tmp/osb-smoke.XXXXXX)
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
unset OPENSANDBOX_SECRET_ENCRYPTION_KEY OPENSANDBOX_SECRET_ENCRYPTION_KEY_FILE OPENSANDBOX_API_KEY
export XDG_CONFIG_HOME=$work/config
VALUE="smoke-secret-value-$RANDOM$RANDOM"
fail() { echo "FAIL: $*" >&2; echo "--- server output" >&2; cat "$work"/out* >&2 || true; exit 1; }

start() {  # $1 = log suffix
  (cd "$work" && exec "$OSB" dev --data-dir data --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --no-worker >"out$1" 2>&1) &
  pid=$!
  for _ in $(seq 1 300); do  # bounded wait for readiness (30 s)
    URL=$(grep -o 'API at http://[0-9.:]*' "$work/out$1" 2>/dev/null | sed 's/API at //' || true)
    [[ -n $URL ]] && return 0
    kill -0 "$pid" 2>/dev/null || fail "osb dev exited"
    sleep 0.1
  done
  fail "osb dev did not start"
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || fail "osb dev did not exit cleanly on SIGTERM"
  pid=""
}
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }

start 1
[[ -f $work/data/secret.key && -f $work/data/api-key ]] || fail "keys not generated"
[[ $(stat -c %a "$work/data/secret.key") == 600 && $(stat -c %a "$work/data/api-key") == 600 ]] || fail "key files not 0600"
CONFIG=$XDG_CONFIG_HOME/opensandbox/config
[[ $(stat -c %a "$CONFIG") == 600 ]] || fail "client config not 0600"
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiKey"])' "$CONFIG")
CFG_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiUrl"])' "$CONFIG")
[[ $CFG_URL == "$URL" ]] || fail "config apiUrl $CFG_URL != $URL"
[[ $KEY == "$(cat "$work/data/api-key")" ]] || fail "config apiKey is not the generated key"
grep -q "generated a new secret encryption key" "$work/out1" || fail "key generation not announced"

[[ $(code "$URL/healthz") == 200 ]] || fail "healthz"
[[ $(code "$URL/api/projects") == 401 ]] || fail "no key should be 401"
H=(-H "X-API-Key: $KEY" -H "Content-Type: application/json")
[[ $(code "${H[@]}" -X POST "$URL/api/projects" -d '{"name":"smoke","egressAllowlist":["api.example.com"]}') == 201 ]] || fail "create project"
[[ $(code "${H[@]}" -X PUT "$URL/api/projects/smoke/secrets/TOKEN" -d "{\"value\":\"$VALUE\",\"allowedHosts\":[\"api.example.com\"]}") == 200 ]] || fail "put secret"
[[ $(code "${H[@]}" "$URL/api/projects/smoke/secrets") == 200 ]] || fail "list secrets"
grep -q '"TOKEN"' "$work/body" || fail "secret not listed"
! grep -q "$VALUE" "$work/body" || fail "value in list response"
[[ $(code "${H[@]}" -X PATCH "$URL/api/projects/smoke" -d '{"cpuCount":2}') == 200 ]] || fail "patch"
grep -q '"egressAllowlist":\["api.example.com"\]' "$work/body" || fail "patch lost allowlist"
[[ $(code "${H[@]}" -X POST "$URL/api/projects" -d '{"name":') == 400 ]] || fail "malformed json"
[[ $(code "${H[@]}" -X DELETE "$URL/api/projects") == 405 ]] || fail "405"
head -c 1100000 /dev/zero | tr '\0' a >"$work/big"
[[ $(code "${H[@]}" -X POST "$URL/api/projects" --data-binary @"$work/big") == 413 ]] || fail "413"
stop

# Restart: the same keys are reused and the stored secret still decrypts.
KEYFILE_BEFORE=$(sha256sum "$work/data/secret.key")
start 2
[[ $(sha256sum "$work/data/secret.key") == "$KEYFILE_BEFORE" ]] || fail "secret.key changed on restart"
grep -q "generated" "$work/out2" && fail "keys regenerated on restart"
[[ $(code "${H[@]}" "$URL/api/projects/smoke/secrets") == 200 ]] || fail "old key rejected after restart"
stop

! grep -q "$VALUE" "$work"/out* || fail "value in server output"
! grep -q "$KEY" "$work"/out* || fail "API key in server output"
! grep -q "$(cat "$work/data/secret.key")" "$work"/out* || fail "encryption key in server output"
echo "curl smoke: OK"
