#!/usr/bin/env bash
# Installs every Debian package OpenSandbox needs to build, test and run.
# Idempotent: only missing packages are installed, and apt-get update runs
# only when something is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang lld
  # libraries
  libboost-dev libboost-system-dev libssl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev libpqxx-dev libpq-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libseccomp-dev
  zlib1g-dev libbrotli-dev libzstd-dev
  libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # services and tools used by tests and the runtime
  postgresql sqlite3 nftables iproute2 curl ca-certificates openssl
  python3 python3-yaml procps util-linux
  # benchmarks: the namespace-sandbox floor (bench/sandbox_bench.py)
  bubblewrap
  # benchmarks: the file chain rebuilt from stock relays (bench/same_chain_floor.py)
  socat
  tmux  # oc shell is tested in a real terminal (tests/e2e/commands_e2e_test.py)
  # real AWS clients for the aws-sigv4 tests (/usr/bin/aws)
  awscli
  # image tests: a static busybox rootfs, zstd-compressed layers, ext4 disks
  busybox-static zstd e2fsprogs
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js >= 20 with npm: the SDK tests need it. Debian's nodejs is 18, so
# keep an existing newer node (e.g. nodesource) and only fall back to Debian's.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
