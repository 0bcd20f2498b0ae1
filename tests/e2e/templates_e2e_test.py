#!/usr/bin/env python3
"""Image templates end to end (issue 14 item 1, docs/templates.md), against
the real binaries started by harness.py (osb dev: control plane + worker,
mutual TLS between them): a busybox-static image built by
tests/support/make_image.py is imported with `oc template import`, a sandbox
of a project with a secret is created with `templateID`, a busybox command
runs in it, the worker fetched the image by digest from the control plane
(once, for two creates), the sandbox holds only the sealed token, and the
secret value appears in no log. Run as root (the harness skips otherwise).

    templates_e2e_test.py OC_BINARY
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_env import api_client, load_env  # noqa: E402

ENV = load_env("templates")
API = ENV["OPENSANDBOX_API_URL"]
KEY = ENV["OPENSANDBOX_API_KEY"]
LOG = os.path.join(ENV["OSB_E2E_DIR"], "osb-dev.log")
OC = sys.argv[1] if len(sys.argv) > 1 else "oc"
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN_RE = re.compile(r"osb_sealed_[0-9a-f]{32}")


api = api_client(ENV, timeout=180)


def oc(*args):
    env = dict(os.environ, OPENSANDBOX_API_URL=API, OPENSANDBOX_API_KEY=KEY)
    return subprocess.run([OC, *args], capture_output=True, text=True, timeout=300, env=env)


def log_text():
    with open(LOG, errors="replace") as f:
        return f.read()


class TemplatesE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="osb-tpl-e2e-")
        spec = os.path.join(cls.tmp, "spec.json")
        with open(spec, "w") as f:
            # A unique Env makes a unique image (digest) for this run.
            json.dump({"busybox": True, "config": {"Env": ["RUN=" + uuid.uuid4().hex], "WorkingDir": "/"}}, f)
        cls.tarball = os.path.join(cls.tmp, "busybox.tar")
        out = subprocess.run(["python3", os.path.join(SOURCE, "tests/support/make_image.py"), spec, cls.tarball],
                             capture_output=True, text=True, check=True)
        cls.digest = out.stdout.strip()
        cls.name = "bb-" + uuid.uuid4().hex[:8]
        cls.project = "tpl-" + uuid.uuid4().hex[:8]
        cls.secret = "sk-tpl-" + uuid.uuid4().hex
        api("POST", "/api/projects", {"name": cls.project}, 201)
        api("PUT", f"/api/projects/{cls.project}/secrets/API_KEY", {"value": cls.secret}, 200)

    def test_import_create_exec_fetch_and_delete(self):
        log_before = len(log_text())
        r = oc("template", "import", self.tarball, "--name", self.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), [self.name, self.digest])
        self.assertEqual(r.stderr, "")  # piped: no progress bar
        r = oc("--json", "template", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = {t["name"]: t for t in json.loads(r.stdout)}
        self.assertEqual(listed[self.name]["digest"], self.digest)
        self.assertEqual(listed[self.name]["size"], os.path.getsize(self.tarball))

        ids = []
        try:
            for _ in range(2):
                _, sb, _ = api("POST", "/api/sandboxes", {"project": self.project, "templateID": self.name}, 201)
                ids.append(sb["sandboxID"])
                self.assertEqual(sb["templateID"], self.name)
            _, out, _ = api("POST", f"/api/sandboxes/{ids[0]}/exec/run",
                            {"cmd": "/bin/busybox", "args": ["sh", "-c",
                                                             "busybox echo from-busybox; echo \"$RUN\"; echo \"$API_KEY\""]},
                            200)
            lines = out["stdout"].split("\n")
            self.assertEqual(lines[0], "from-busybox", out)
            self.assertTrue(lines[1], out)  # the image's Env applies
            self.assertRegex(lines[2], TOKEN_RE)  # the sealed token, never the value
            self.assertNotIn(self.secret, json.dumps(out))

            # The worker fetched the image by digest, once for both creates.
            new_log = log_text()[log_before:]
            self.assertEqual(new_log.count(f"image {self.digest} fetched from the control plane"), 1, new_log[-3000:])
            self.assertEqual(new_log.count(f"template {self.digest} sent to worker"), 1)

            # In use: the delete is refused.
            r = oc("template", "delete", self.name)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("in use", r.stderr)
        finally:
            for sid in ids:
                api("DELETE", f"/api/sandboxes/{sid}")
        r = oc("template", "delete", self.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(api("GET", f"/api/templates/{self.name}")[0], 404)
        self.assertNotIn(self.secret, log_text())

    def test_hostile_upload_is_refused_by_oc_with_the_reason(self):
        spec = os.path.join(self.tmp, "evil.json")
        with open(spec, "w") as f:
            json.dump({"layers": [[{"path": "../../etc/evil", "type": "file", "data": "x"}]]}, f)
        evil = os.path.join(self.tmp, "evil.tar")
        subprocess.run(["python3", os.path.join(SOURCE, "tests/support/make_image.py"), spec, evil], check=True,
                       capture_output=True)
        r = oc("template", "import", evil, "--name", "evil-" + uuid.uuid4().hex[:6])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'..'", r.stderr)
        self.assertFalse(os.path.exists("/etc/evil"))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
