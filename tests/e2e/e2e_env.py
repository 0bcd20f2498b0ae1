"""The environment an end-to-end test gets from harness.py (one home for
reading it): the file named by OSB_E2E_ENV_FILE holds KEY=VALUE lines (API
URL and key, upstream record dir, ...). Without it the test is skipped with
ctest's skip code 77."""
import json
import os
import sys
import urllib.error
import urllib.request


def load_env(suite):
    path = os.environ.get("OSB_E2E_ENV_FILE")
    if not path or not os.path.exists(path):
        print(f"{suite} e2e: no harness environment; skipping", file=sys.stderr)
        sys.exit(77)
    env = {}
    with open(path) as f:
        for line in f.read().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def api_client(env, timeout=120):
    """The harness's REST API with its key: returns api(method, path,
    body=None, expect=None) -> (status, parsed JSON or None, body text);
    with `expect`, any other status raises AssertionError with the body.
    `timeout` bounds one call in seconds (creates on an image take longer)."""
    url, key = env["OPENSANDBOX_API_URL"], env["OPENSANDBOX_API_KEY"]

    def api(method, path, body=None, expect=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if expect is not None and status != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {status}: {text}")
        return status, (json.loads(text) if text else None), text

    return api


def record_finder(env):
    """records_with(marker): the harness upstream's request records
    (tests/support/upstream.py writes one JSON file each into
    OSB_TEST_UPSTREAM_RECORD_DIR) whose text contains `marker`, in order."""
    records_dir = env["OSB_TEST_UPSTREAM_RECORD_DIR"]

    def records_with(marker):
        out = []
        for name in sorted(os.listdir(records_dir)):
            if name.endswith(".json"):
                with open(os.path.join(records_dir, name)) as f:
                    text = f.read()
                if marker in text:
                    out.append(json.loads(text))
        return out

    return records_with


def assert_logs_hold_none(env, values):
    """Fails naming the secret if any value of `values` ({name: value}) is in
    the harness's server log (osb-dev.log) or the proxy's audit log."""
    text = ""
    for name in ("osb-dev.log", "audit.log"):
        with open(os.path.join(env["OSB_E2E_DIR"], name)) as f:
            text += f.read()
    for name, value in values.items():
        if value in text:
            raise AssertionError(f"the real value of {name} leaked into the logs")
