#!/usr/bin/env bash
# Creates the certificates for mutual TLS between the control plane and the
# workers (ECDSA P-256, SHA-256):
#   DIR/ca.crt, DIR/ca.key            the CA (keep ca.key offline)
#   DIR/<name>.crt, DIR/<name>.key    one certificate per node, usable as both
#                                     TLS server and TLS client
# Usage: gen-grpc-certs.sh DIR [NAME [SAN ...]]
#   NAME defaults to "node"; SANs default to DNS:localhost,IP:127.0.0.1 and
#   should list every name/address peers use to reach that node, e.g.
#   gen-grpc-certs.sh /etc/osb/tls worker1 DNS:worker1.internal IP:10.0.0.5
# Run it once per node with the same DIR; the CA is made on the first run.
# Then on every node: OPENSANDBOX_GRPC_TLS_CA=DIR/ca.crt
#   OPENSANDBOX_GRPC_TLS_CERT=DIR/<name>.crt OPENSANDBOX_GRPC_TLS_KEY=DIR/<name>.key
set -euo pipefail
dir=${1:?usage: gen-grpc-certs.sh DIR [NAME [SAN ...]]}
name=${2:-node}
shift $(( $# >= 2 ? 2 : 1 ))
sans=("$@")
if ((${#sans[@]} == 0)); then sans=(DNS:localhost IP:127.0.0.1); fi
san_list=$(IFS=,; echo "${sans[*]}")

mkdir -p "$dir"
umask 077
if [[ ! -f $dir/ca.key ]]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=OpenSandbox gRPC CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt" 2>/dev/null
fi
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key"
openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr" 2>/dev/null
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
chmod 0644 "$dir/ca.crt" "$dir/$name.crt"
echo "gen-grpc-certs: $dir/$name.crt ($san_list), CA $dir/ca.crt"
