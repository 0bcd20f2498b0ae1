#!/usr/bin/env bash
# Runs one SDK test suite for ctest (see tests/sdk/README.md).
#   run.sh ts-unit         WORKDIR   copy sdks/typescript to WORKDIR, npm ci, build, node --test unit tests
#   run.sh ts-integration  WORKDIR   same copy + build, then the 8-step integration test (exit 77 without env)
#   run.sh py-unit                   python3 -m unittest discover (integration test excluded)
#   run.sh py-integration            the 8-step integration test in Python (exit 77 without env)
#   run.sh fake-integration WORKDIR  both integration tests against fake_osb.py, a contract double
#                                    (checks the tests and SDKs, not the product)
# The TypeScript suites build in a copy so the source tree stays clean and a
# fresh clone works; npm's own cache makes repeated installs cheap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: run.sh ts-unit|ts-integration|py-unit|py-integration [WORKDIR]}"
workdir="${2:-}"

readonly SKIP=77
integration_vars=(OPENSANDBOX_API_URL OPENSANDBOX_API_KEY OSB_TEST_UPSTREAM_URL OSB_TEST_UPSTREAM_RECORD_DIR)

# The harness that starts `osb dev` + the upstream may write the variables to
# a file instead (ctest cannot pass a fixture's results through the
# environment): OSB_TEST_ENV_FILE names it; lines are NAME=VALUE, only the
# names above are read, nothing is evaluated, and variables already set win.
load_env_file() {
  local file="${OSB_TEST_ENV_FILE:-}" name value
  [[ -n "$file" && -f "$file" ]] || return 0
  while IFS='=' read -r name value; do
    for v in "${integration_vars[@]}"; do
      if [[ "$name" == "$v" && -z "${!v:-}" ]]; then
        export "$v=$value"
      fi
    done
  done <"$file"
}

require_integration_env() {
  load_env_file
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

# Packs the SDK, installs the tarball into an empty consumer package and
# checks that `import "opensandbox"` works from JavaScript and type-checks
# from TypeScript (exports map, .d.ts): what a user of the npm package gets.
consumer_smoke_test() {
  local sdk="$PWD" consumer="$workdir/consumer" tarball
  tarball="$(npm pack --silent --ignore-scripts | tail -1)"
  mkdir -p "$consumer"
  cd "$consumer"
  printf '{"name":"consumer","private":true,"type":"module"}\n' >package.json
  npm install --no-audit --no-fund --loglevel=error "$sdk/$tarball"
  node --input-type=module -e '
    import { Project, SecretGroup, Sandbox, OpenSandboxError, NotFoundError } from "opensandbox";
    for (const [n, v] of Object.entries({ Project, SecretGroup, Sandbox, OpenSandboxError, NotFoundError }))
      if (typeof v !== "function") throw new Error(n + " missing");
    if (!(new NotFoundError("x", 404) instanceof OpenSandboxError)) throw new Error("error hierarchy");
    console.log("consumer import: ok");'
  cat >consumer.ts <<'TS'
import { Project, Sandbox, type ExecResult, type ProjectInfo } from "opensandbox";
export async function demo(): Promise<[ProjectInfo, ExecResult]> {
  const p = await Project.create({ name: "demo", egressAllowlist: ["api.example.com"], apiKey: "k" });
  const sb = await Sandbox.create({ project: p.name });
  return [p, await sb.exec.run(["echo", "hi"], { timeout: 5 })];
}
TS
  "$sdk/node_modules/.bin/tsc" --strict --noEmit --module NodeNext --moduleResolution NodeNext \
    --target ES2022 --types node --typeRoots "$sdk/node_modules/@types" consumer.ts
  echo "consumer type-check: ok"
  cd "$sdk"
}

case "$mode" in
  ts-unit)
    prepare_typescript
    node --test build-test/test/unit/
    consumer_smoke_test
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
  fake-integration)
    [[ -n "$workdir" ]] || { echo "run.sh: WORKDIR required" >&2; exit 2; }
    rm -rf "$workdir/fake" && mkdir -p "$workdir/fake/records"
    python3 "$here/fake_osb.py" --record-dir "$workdir/fake/records" --ready-file "$workdir/fake/ready.json" &
    fake_pid=$!
    trap 'kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true' EXIT
    deadline=$((SECONDS + 30))
    until [[ -s "$workdir/fake/ready.json" ]]; do
      kill -0 "$fake_pid" 2>/dev/null || { echo "fake_osb.py exited early" >&2; exit 1; }
      ((SECONDS < deadline)) || { echo "fake_osb.py not ready after 30 s" >&2; exit 1; }
      sleep 0.1
    done
    ready="$workdir/fake/ready.json"
    field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$ready" "$1"; }
    export OPENSANDBOX_API_URL="$(field apiUrl)" OPENSANDBOX_API_KEY="$(field apiKey)"
    export OSB_TEST_UPSTREAM_URL="$(field upstreamUrl)" OSB_TEST_UPSTREAM_RECORD_DIR="$workdir/fake/records"
    (cd "$root/sdks/python" && PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v tests.test_integration)
    workdir="$workdir/ts" prepare_typescript
    node --test build-test/test/integration.test.js
    ;;
  *)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
