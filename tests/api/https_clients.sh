#!/usr/bin/env bash
# Real clients against `osb server --tls-cert/--tls-key` (issue 12 item 7):
# a certificate made here with the openssl CLI; curl --cacert, `oc --ca-file`
# and the Python SDK (ca_file) succeed; oc without the CA file, curl without
# it, a TLS 1.1-only curl and plain HTTP to the port get no API answer; a
# bad key stops the server at start. No secret value reaches any output or log.
# usage: https_clients.sh OSB_BINARY OC_BINARY
set -euo pipefail
OSB=$(realpath "$1")
OC=$(realpath "$2")
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work=$(mktemp -d /tmp/osb-https.XXXXXX)
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- server output" >&2; cat "$work"/out* >&2 || true; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=osb-https-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/api.key" -out "$work/api.crt" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$work/other.key" 2>/dev/null
chmod 600 "$work"/*.key

export OPENSANDBOX_SECRET_ENCRYPTION_KEY
OPENSANDBOX_SECRET_ENCRYPTION_KEY=$(openssl rand -hex 32)
KEY="osb_https_test_$(openssl rand -hex 24)"
VALUE="https-secret-value-$(openssl rand -hex 8)"
export OPENSANDBOX_API_KEY=$KEY
unset OSB_CA_FILE OPENSANDBOX_API_URL
export XDG_CONFIG_HOME=$work/config
extra=()
# Once the server requires gRPC mTLS by default, this test does not need it.
if "$OSB" server --help 2>&1 | grep -q -- --insecure-grpc; then extra+=(--insecure-grpc); fi

# A key that does not match the certificate: refused at start, naming the flag.
if (cd "$work" && "$OSB" server --data-dir bad --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 "${extra[@]}" \
      --tls-cert api.crt --tls-key other.key >out-bad 2>&1); then
  fail "server started with a mismatched key"
fi
grep -q -- "--tls-key" "$work/out-bad" || fail "mismatched key error does not name --tls-key"
# One flag without the other is a usage error.
if "$OSB" server --tls-cert "$work/api.crt" >"$work/out-half" 2>&1; then fail "--tls-cert alone accepted"; fi

(cd "$work" && exec "$OSB" server --data-dir data --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 "${extra[@]}" \
   --tls-cert api.crt --tls-key api.key >out 2>&1) &
pid=$!
PORT=""
for _ in $(seq 1 300); do  # bounded wait for the listening line (30 s)
  PORT=$(grep -o 'listening on port [0-9]* (HTTPS)' "$work/out" 2>/dev/null | grep -o '[0-9]\+' || true)
  [[ -n $PORT ]] && break
  kill -0 "$pid" 2>/dev/null || fail "osb server exited"
  sleep 0.1
done
[[ -n $PORT ]] || fail "osb server did not start"
URL=https://127.0.0.1:$PORT

# curl: verified with --cacert; refused without it; TLS 1.1 refused; plain HTTP gets no HTTP answer.
[[ $(curl -sS --cacert "$work/api.crt" -o /dev/null -w '%{http_code}' "$URL/healthz") == 200 ]] || fail "curl --cacert healthz"
rc=0; curl -sS -o /dev/null "$URL/healthz" 2>/dev/null || rc=$?
[[ $rc == 60 ]] || fail "curl without --cacert: expected exit 60 (certificate), got $rc"
rc=0; curl -sS -o /dev/null --cacert "$work/api.crt" --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0' "$URL/healthz" 2>/dev/null || rc=$?
[[ $rc != 0 ]] || fail "a TLS 1.1 client was served"
plain=$(curl -s --max-time 10 -i "http://127.0.0.1:$PORT/healthz" || true)
[[ $plain != *HTTP/* ]] || fail "plain HTTP to the HTTPS port got an HTTP response: $plain"

# oc: with --ca-file (flag, env) it works end to end, including a secret value; without, verification fails.
"$OC" --api-url "$URL" --api-key "$KEY" --ca-file "$work/api.crt" project create --name web --egress-allow api.example.com >"$work/oc1" 2>&1 \
  || fail "oc --ca-file project create: $(cat "$work/oc1")"
printf '%s' "$VALUE" | OSB_CA_FILE=$work/api.crt "$OC" --api-url "$URL" --api-key "$KEY" \
  secret set web TOKEN --from-stdin --allowed-hosts api.example.com >"$work/oc2" 2>&1 \
  || fail "oc secret set over HTTPS: $(cat "$work/oc2")"
rc=0; "$OC" --api-url "$URL" --api-key "$KEY" project list >"$work/oc3" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "oc without a CA file: expected exit 1, got $rc"
grep -q "certificate verification failed" "$work/oc3" || fail "oc without CA: $(cat "$work/oc3")"

# Python SDK (stdlib only) with ca_file.
PYTHONPATH=$root/sdks/python PYTHONDONTWRITEBYTECODE=1 python3 - "$URL" "$KEY" "$work/api.crt" <<'PY' >"$work/py" 2>&1 \
  || fail "python SDK: $(cat "$work/py")"
import sys
from opensandbox import ConnectionConfig, Project
from opensandbox.errors import ConnectionError
url, key, ca = sys.argv[1:]
names = [s.name for s in Project.list_secrets("web", api_url=url, api_key=key, config=ConnectionConfig(ca_file=ca))]
assert names == ["TOKEN"], names
try:
    Project.list(api_url=url, api_key=key, config=ConnectionConfig(max_retries=0))
    raise SystemExit("an unverified server was accepted")
except ConnectionError as e:
    assert "CERTIFICATE_VERIFY_FAILED" in str(e), e
print("python sdk ok")
PY

kill -TERM "$pid"
wait "$pid" || fail "osb server did not exit cleanly on SIGTERM"
pid=""
grep -q "TLS handshake failed" "$work/out" || fail "handshake failures not logged"
! grep -rq -- "$VALUE" "$work"/out* "$work"/oc* "$work"/py || fail "the secret value reached an output or log"
echo "https_clients: ok"
