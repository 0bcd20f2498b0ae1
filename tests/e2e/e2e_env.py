"""The environment an end-to-end test gets from harness.py (one home for
reading it): the file named by OSB_E2E_ENV_FILE holds KEY=VALUE lines (API
URL and key, upstream record dir, ...). Without it the test is skipped with
ctest's skip code 77."""
import os
import sys


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
