#!/usr/bin/env python3
"""Worker restart: `kill -9` of osb dev (control plane and worker in one
process) while a sandbox runs. After it comes back on the same data and
ports, the sandbox keeps working with the same tokens, and its HTTPS calls
still reach the upstream with the real value: the worker re-adopted the
sandbox and fetched the values again from the control plane (they were
never on the worker's disk)."""
import json
import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_e2e_test as sys_e2e  # noqa: E402  (loads the harness env, or exits 77)

api = sys_e2e.api
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")


class WorkerRestart(unittest.TestCase):
    def test_sandbox_survives_with_the_same_tokens(self):
        value = "sk-restart-" + uuid.uuid4().hex
        project = "e2e-restart-" + uuid.uuid4().hex[:6]
        api("POST", "/api/projects", {"name": project, "egressAllowlist": ["api.test"]}, 201)
        api("PUT", f"/api/projects/{project}/secrets/API_KEY", {"value": value}, 200)
        _, sb, _ = api("POST", "/api/sandboxes", {"project": project}, 201)
        sid = sb["sandboxID"]

        def run(script):
            _, out, text = api("POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": "sh", "args": ["-c", script]}, 200)
            self.assertNotIn(value, text)
            return out

        token = run("printf %s \"$API_KEY\"")["stdout"]
        self.assertRegex(token, sys_e2e.TOKEN_RE)
        run("echo before > /tmp/marker")

        subprocess.run([sys.executable, HARNESS, "crash-restart", sys_e2e.E2E_DIR], check=True)

        self.assertEqual(run("printf %s \"$API_KEY\"")["stdout"], token)
        self.assertEqual(run("cat /tmp/marker")["stdout"], "before\n")
        nonce = uuid.uuid4().hex
        out = run(f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-Key: $API_KEY"')
        self.assertEqual(out["exitCode"], 0, out["stderr"])
        self.assertIn(token, out["stdout"])
        self.assertIn(value, json.dumps(sys_e2e.records_with(nonce)))
        # No value on the worker's disk.
        state = os.path.join(sys_e2e.E2E_DIR, "data", "worker")
        for root, _, files in os.walk(state):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(value.encode(), f.read(), os.path.join(root, name))
        api("DELETE", f"/api/sandboxes/{sid}", None, 204)
        api("DELETE", f"/api/projects/{project}", None, 204)


if __name__ == "__main__":
    unittest.main(verbosity=2)
