#!/usr/bin/env bash
# Runs one SDK test suite for ctest (see tests/sdk/README.md).
#   run.sh ts-unit         WORKDIR   copy sdks/typescript to WORKDIR, npm ci, build, node --test unit tests
#   run.sh ts-integration  WORKDIR   same copy + build, then the 8-step integration test (exit 77 without env)
#   run.sh py-unit                   python3 -m unittest discover (integration test excluded)
#   run.sh py-integration            the 8-step integration test in Python (exit 77 without env)
# The TypeScript suites build in a copy so the source tree stays clean and a
# fresh clone works; npm's own cache makes repeated installs cheap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: run.sh ts-unit|ts-integration|py-unit|py-integration [WORKDIR]}"
workdir="${2:-}"

readonly SKIP=77
integration_vars=(OPENSANDBOX_API_URL OPENSANDBOX_API_KEY OSB_TEST_UPSTREAM_URL OSB_TEST_UPSTREAM_RECORD_DIR)

require_integration_env() {
  local missing=()
  for v in "${integration_vars[@]}"; do
    [[ -n "${!v:-}" ]] || missing+=("$v")
  done
  if ((${#missing[@]})); then
    echo "SKIP: integration environment not set (missing ${missing[*]}); see tests/sdk/README.md"
    exit "$SKIP"
  fi
}

prepare_typescript() {
  [[ -n "$workdir" ]] || { echo "run.sh: WORKDIR required for $mode" >&2; exit 2; }
  rm -rf "$workdir"
  mkdir -p "$workdir"
  tar -C "$root/sdks/typescript" --exclude=./node_modules --exclude=./dist --exclude=./build-test -cf - . \
    | tar -C "$workdir" -xf -
  cd "$workdir"
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
  npm run --silent build:test
}

case "$mode" in
  ts-unit)
    prepare_typescript
    node --test build-test/test/unit/
    ;;
  ts-integration)
    require_integration_env
    prepare_typescript
    node --test build-test/test/integration.test.js
    ;;
  py-unit)
    cd "$root/sdks/python"
    env -u OSB_TEST_UPSTREAM_URL -u OSB_TEST_UPSTREAM_RECORD_DIR PYTHONDONTWRITEBYTECODE=1 \
      python3 -m unittest discover -s tests -t . -v
    ;;
  py-integration)
    require_integration_env
    cd "$root/sdks/python"
    PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v tests.test_integration
    ;;
  *)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
