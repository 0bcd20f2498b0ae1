#!/usr/bin/env bash
# Creates the certificates for mutual TLS between the control plane and the
# workers (ECDSA P-256, SHA-256):
#   DIR/ca.crt, DIR/ca.key            the CA (keep ca.key offline)
#   DIR/<name>.crt, DIR/<name>.key    one certificate per node, usable as both
#                                     TLS server and TLS client, carrying its
#                                     ROLE as OU=osb-control-plane or
#                                     OU=osb-worker
# Usage: gen-grpc-certs.sh DIR ROLE [NAME [SAN ...]]
#   ROLE is control-plane or worker. The control plane serves and dials only
#   worker certificates; a worker serves and dials only control-plane ones,
#   so one worker's certificate cannot drive another worker.
#   NAME (the subject CN; a worker's id) defaults to ROLE. SANs default to
#   DNS:localhost,IP:127.0.0.1 and should list every name/address peers use
#   to reach that node, e.g.
#   gen-grpc-certs.sh /etc/osb/tls worker worker1 DNS:worker1.internal IP:10.0.0.5
# Run it once per node with the same DIR; the CA is made on the first run.
# Keys are written 0600 in a 0700 DIR.
# Then on every node: OPENSANDBOX_GRPC_TLS_CA=DIR/ca.crt
#   OPENSANDBOX_GRPC_TLS_CERT=DIR/<name>.crt OPENSANDBOX_GRPC_TLS_KEY=DIR/<name>.key
set -euo pipefail
usage="usage: gen-grpc-certs.sh DIR control-plane|worker [NAME [SAN ...]]"
dir=${1:?$usage}
role=${2:-}
case $role in
  control-plane|worker) ;;
  *) echo "gen-grpc-certs: ROLE must be control-plane or worker, got '$role'" >&2; echo "$usage" >&2; exit 2 ;;
esac
name=${3:-$role}
shift $(( $# >= 3 ? 3 : 2 ))
sans=("$@")
if ((${#sans[@]} == 0)); then sans=(DNS:localhost IP:127.0.0.1); fi
san_list=$(IFS=,; echo "${sans[*]}")
if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]]; then
  echo "gen-grpc-certs: NAME must be 1-128 of [A-Za-z0-9._-], got '$name'" >&2; exit 2
fi

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
if [[ ! -f $dir/ca.key ]]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/O=OpenSandbox/CN=OpenSandbox gRPC CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt" 2>/dev/null
fi
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key"
openssl req -new -key "$dir/$name.key" -subj "/O=OpenSandbox/OU=osb-$role/CN=$name" -out "$dir/$name.csr" 2>/dev/null
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san_list
EXT
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -sha256 -days 825 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
chmod 0600 "$dir/ca.key" "$dir/$name.key"
chmod 0644 "$dir/ca.crt" "$dir/$name.crt"
echo "gen-grpc-certs: $dir/$name.crt (OU=osb-$role; $san_list), CA $dir/ca.crt"
