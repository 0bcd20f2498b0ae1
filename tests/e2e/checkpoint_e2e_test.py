#!/usr/bin/env python3
"""Checkpoints, forks, hibernate/wake and timeouts end to end (issue 14),
against the real binaries started by harness.py (its own osb dev, prefix
and address pool) and a real TLS upstream.

What is proved, through the real proxy:
  * create, restore and fork each substitute the project's CURRENT value
    for the sandbox's own (fresh) token;
  * a forked sandbox cannot use its parent's token (it reaches the upstream
    still sealed), nor can a woken sandbox use its own pre-hibernation token
    found in its restored files;
  * a secret changed between checkpoint and restore: the restored sandbox
    gets the new value;
  * hibernate frees the sandbox's host objects; wake brings it back under
    the same id; timeouts extend up to the server's maximum lifetime;
  * a sandbox on an imported image: its written and deleted files come back
    in forks and after hibernate/wake, over the image it was saved on (not
    the one its template name points at later), with the same diskMB.
No real value ever shows up in what a sandbox sees, API responses or logs.
"""
import calendar
import json
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

from e2e_env import api_client, assert_logs_hold_none, load_env, record_finder

TOKEN_RE = re.compile(r"osb_sealed_[0-9a-f]{32}")


ENV = load_env("checkpoint")
E2E_DIR = ENV["OSB_E2E_DIR"]
PREFIX = os.environ.get("OSB_E2E_PREFIX", "osbq")
OSB = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ""  # for `osb image import`
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


api = api_client(ENV, timeout=300)
records_with = record_finder(ENV)


class Checkpoints(unittest.TestCase):
    values = {}

    @classmethod
    def setUpClass(cls):
        suffix = uuid.uuid4().hex[:8]
        cls.project = "ckpt-" + suffix
        cls.values = {"v1": "sk-one-" + uuid.uuid4().hex, "v2": "sk-two-" + uuid.uuid4().hex,
                      "v3": "sk-three-" + uuid.uuid4().hex}
        api("POST", "/api/projects", {"name": cls.project, "egressAllowlist": ["api.test"]}, 201)
        cls.set_value(cls.values["v1"])
        cls.sandboxes = []

    @classmethod
    def tearDownClass(cls):
        for sb in cls.sandboxes:
            api("DELETE", f"/api/sandboxes/{sb}")
        api("DELETE", f"/api/projects/{cls.project}")
        assert_logs_hold_none(ENV, cls.values)

    @classmethod
    def set_value(cls, value):
        api("PUT", f"/api/projects/{cls.project}/secrets/API_KEY", {"value": value}, 200)

    @classmethod
    def assert_no_values(cls, text):
        for name, value in cls.values.items():
            if value in text:
                raise AssertionError(f"the real value {name} leaked")

    def create(self, body):
        _, sb, text = api("POST", "/api/sandboxes", body, 201)
        self.assert_no_values(text)
        self.sandboxes.append(sb["sandboxID"])
        return sb

    def run_in(self, sandbox, script, expect_exit=0):
        _, out, text = api("POST", f"/api/sandboxes/{sandbox}/exec/run",
                           {"cmd": "sh", "args": ["-c", script], "timeout": 60}, 200)
        self.assert_no_values(text)
        if expect_exit is not None:
            self.assertEqual(out["exitCode"], expect_exit, f"{script}\nstdout={out['stdout']}\nstderr={out['stderr']}")
        return out

    def token(self, sandbox):
        tok = self.run_in(sandbox, 'printf %s "$API_KEY"')["stdout"]
        self.assertRegex(tok, TOKEN_RE)
        return tok

    def upstream_sees(self, sandbox, token):
        """Sends `token` from `sandbox` to the upstream; returns the header
        value the upstream received."""
        nonce = uuid.uuid4().hex
        self.run_in(sandbox, f'curl -sS --fail "https://api.test/echo?nonce={nonce}" -H "X-Key: {token}" >/dev/null')
        recs = records_with(nonce)
        self.assertEqual(len(recs), 1)
        return dict((k.lower(), v) for k, v in recs[0]["headers"])["x-key"]

    def test_01_create_restore_fork_and_dead_tokens(self):
        parent = self.create({"project": self.project, "envs": {"MODE": "ckpt"}})["sandboxID"]
        ptok = self.token(parent)
        self.assertEqual(self.upstream_sees(parent, ptok), self.values["v1"])  # the create path
        self.run_in(parent, f'mkdir -p /home/sandbox/work && echo state-42 > /home/sandbox/work/data && '
                            f'printf %s "$API_KEY" > /home/sandbox/work/token && echo tmp > /tmp/t')
        _, ck, text = api("POST", f"/api/sandboxes/{parent}/checkpoints", {}, 201)
        self.assert_no_values(text)
        self.assertNotIn(ptok, text)
        self.assertEqual(ck["sandboxID"], parent)
        self.assertEqual(ck["envNames"], ["MODE"])
        self.assertGreater(ck["sizeBytes"], 0)
        # The value changes between checkpoint and restore.
        self.set_value(self.values["v2"])
        # Restore once, fork once more: each a new sandbox with fresh tokens.
        children = [self.create({"fromCheckpoint": ck["checkpointID"]})["sandboxID"] for _ in range(2)]
        tokens = set()
        for child in children:
            self.assertEqual(self.run_in(child, "cat /home/sandbox/work/data /tmp/t")["stdout"], "state-42\ntmp\n")
            self.assertEqual(self.run_in(child, 'printf %s "$MODE"')["stdout"], "ckpt")  # config came back
            ctok = self.token(child)
            self.assertNotEqual(ctok, ptok)
            tokens.add(ctok)
            self.assertEqual(self.upstream_sees(child, ctok), self.values["v2"])  # the CURRENT value
            # The parent's token, found in the restored file, is dead here.
            old = self.run_in(child, "cat /home/sandbox/work/token")["stdout"]
            self.assertEqual(old, ptok)
            self.assertEqual(self.upstream_sees(child, old), ptok)
        self.assertEqual(len(tokens), 2)
        _, listed, _ = api("GET", f"/api/sandboxes/{parent}/checkpoints", expect=200)
        self.assertEqual([c["checkpointID"] for c in listed], [ck["checkpointID"]])
        _, all_ck, _ = api("GET", "/api/checkpoints", expect=200)
        self.assertIn(ck["checkpointID"], [c["checkpointID"] for c in all_ck])
        api("DELETE", f"/api/sandboxes/{parent}/checkpoints/{ck['checkpointID']}", expect=204)
        api("DELETE", f"/api/sandboxes/{parent}/checkpoints/{ck['checkpointID']}", expect=404)
        status, err, _ = api("POST", "/api/sandboxes", {"fromCheckpoint": ck["checkpointID"]})
        self.assertEqual(status, 404)
        self.assertIn("fromCheckpoint", err["error"])

    def test_02_hibernate_frees_everything_and_wake_gets_fresh_tokens(self):
        self.set_value(self.values["v2"])
        sb = self.create({"project": self.project})["sandboxID"]
        old = self.token(sb)
        self.run_in(sb, f'printf %s "$API_KEY" > /home/sandbox/token; echo kept > /tmp/kept')
        _, h, text = api("POST", f"/api/sandboxes/{sb}/hibernate", {}, 200)
        self.assertEqual(h["status"], "hibernated")
        self.assertEqual(api("GET", f"/api/sandboxes/{sb}", expect=200)[1]["status"], "hibernated")
        # Nothing of it is left on the host: no netns, no cgroup, no run dir.
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn(f"{PREFIX}-{sb}", netns)
        for cg in (f"/sys/fs/cgroup/{PREFIX}-{sb}", f"/sys/fs/cgroup/memory/{PREFIX}-{sb}",
                   f"/sys/fs/cgroup/pids/{PREFIX}-{sb}"):  # cgroup v2, v1
            self.assertFalse(os.path.exists(cg), cg)
        self.assertFalse(os.path.exists(f"/run/{PREFIX}/{sb}"))
        status, _, _ = api("POST", f"/api/sandboxes/{sb}/exec/run", {"cmd": "true"})
        self.assertEqual(status, 409)
        self.assertEqual(api("GET", f"/api/sandboxes/{sb}/checkpoints", expect=200)[1], [])  # internal one not listed
        self.set_value(self.values["v3"])
        _, w, text = api("POST", f"/api/sandboxes/{sb}/wake", {}, 200)
        self.assert_no_values(text)
        self.assertEqual((w["sandboxID"], w["status"]), (sb, "running"))
        self.assertEqual(self.run_in(sb, "cat /tmp/kept")["stdout"], "kept\n")
        new = self.token(sb)
        self.assertNotEqual(new, old)
        self.assertEqual(self.upstream_sees(sb, new), self.values["v3"])
        stale = self.run_in(sb, "cat /home/sandbox/token")["stdout"]
        self.assertEqual(stale, old)
        self.assertEqual(self.upstream_sees(sb, stale), old)  # dead: stays sealed
        self.assertEqual(api("POST", f"/api/sandboxes/{sb}/wake", {})[0], 409)

    def test_03_timeout_extends_up_to_the_maximum_lifetime(self):
        sb = self.create({"project": self.project, "timeout": 60})
        _, moved, _ = api("POST", f"/api/sandboxes/{sb['sandboxID']}/timeout", {"timeoutSec": 3600}, 200)
        self.assertGreater(moved["endAt"], sb["endAt"])
        status, err, _ = api("POST", f"/api/sandboxes/{sb['sandboxID']}/timeout", {"timeoutSec": 2 * 86400})
        self.assertEqual(status, 400)
        self.assertIn("timeoutSec", err["error"])
        status, err, _ = api("POST", f"/api/sandboxes/{sb['sandboxID']}/timeout", {"timeoutSec": "x"})
        self.assertEqual(status, 400)
        status, err, _ = api("POST", "/api/sandboxes", {"project": self.project, "timeout": 2 * 86400})
        self.assertEqual(status, 400)
        self.assertIn("max-sandbox-lifetime", err["error"])
        # The runtime's deadline moved too (what a restarted worker re-reads).
        with open(f"/run/{PREFIX}/{sb['sandboxID']}/meta") as f:
            ends = calendar.timegm(time.strptime(moved["endAt"], "%Y-%m-%dT%H:%M:%SZ"))
            self.assertIn(f"endsAt={ends}\n", f.read())


    # ---- image sandboxes (issue 14): the overlay upper dir is the state ----

    @classmethod
    def import_image(cls, name, layer):
        """Builds a busybox image with `layer` (tests/support/make_image.py)
        and imports it under `name` into the worker's store; returns its
        config digest."""
        if not OSB:
            raise unittest.SkipTest("no osb binary given")
        spec = os.path.join(E2E_DIR, name + ".json")
        tar = os.path.join(E2E_DIR, name + ".tar")
        with open(spec, "w") as f:
            json.dump({"busybox": True, "layers": [layer], "config": {"Env": ["PATH=/bin"]}}, f)
        subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tests/support/make_image.py"), spec, tar],
                       check=True, capture_output=True)
        out = subprocess.run([OSB, "image", "import", tar, "--name", name, "--state-dir",
                              os.path.join(E2E_DIR, "data", "worker")], check=True, capture_output=True, text=True)
        return out.stdout.split()[1]

    def disk_kb(self, sandbox):
        return int(self.run_in(sandbox, "df -k / | tail -1")["stdout"].split()[1])

    def test_04_image_sandbox_checkpoint_fork_and_hibernate(self):
        name = "ckimg-" + uuid.uuid4().hex[:8]
        layer = [{"path": "data", "type": "dir"}, {"path": "data/seed", "data": "seed"},
                 {"path": "data/image-file", "data": "from-image"}]
        digest = self.import_image(name, layer)
        parent = self.create({"project": self.project, "templateID": name, "diskMB": 96})["sandboxID"]
        ptok = self.token(parent)
        disk = self.disk_kb(parent)
        self.assertTrue(80 * 1024 < disk <= 96 * 1024, disk)
        self.run_in(parent, 'echo written > /data/f && rm /data/seed && printf %s "$API_KEY" > /data/token')
        _, ck, text = api("POST", f"/api/sandboxes/{parent}/checkpoints", {}, 201)
        self.assertNotIn(ptok, text)
        self.assertEqual((ck["templateDigest"], ck["diskMB"]), (digest, 96))
        # The template name now points at another image: the checkpoint keeps
        # its own (its files are a diff over that one).
        self.import_image(name, [{"path": "data", "type": "dir"}, {"path": "data/other", "data": "x"}])
        tokens = set()
        for _ in range(2):
            child = self.create({"fromCheckpoint": ck["checkpointID"]})["sandboxID"]
            self.assertEqual(self.run_in(child, "cat /data/f /data/image-file")["stdout"], "written\nfrom-image")
            self.run_in(child, "test ! -e /data/seed && test ! -e /data/other")
            self.assertEqual(self.disk_kb(child), disk)  # diskMB preserved
            self.assertEqual(api("GET", f"/api/sandboxes/{child}", expect=200)[1]["diskMB"], 96)
            ctok = self.token(child)
            self.assertNotEqual(ctok, ptok)
            tokens.add(ctok)
            self.assertEqual(self.run_in(child, "cat /data/token")["stdout"], ptok)  # a file, dead as a token
        self.assertEqual(len(tokens), 2)
        # Hibernate + wake of the image sandbox: same id, files, image, disk.
        _, h, _ = api("POST", f"/api/sandboxes/{parent}/hibernate", {}, 200)
        self.assertEqual(h["status"], "hibernated")
        self.assertFalse(os.path.exists(f"/run/{PREFIX}/{parent}"))
        _, w, text = api("POST", f"/api/sandboxes/{parent}/wake", {}, 200)
        self.assert_no_values(text)
        self.assertEqual(w["status"], "running")
        self.assertEqual(self.run_in(parent, "cat /data/f /data/image-file")["stdout"], "written\nfrom-image")
        self.run_in(parent, "test ! -e /data/seed && test ! -e /data/other")
        self.assertEqual(self.disk_kb(parent), disk)
        self.assertNotEqual(self.token(parent), ptok)


if __name__ == "__main__":
    unittest.main(verbosity=2)
