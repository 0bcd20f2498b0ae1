#!/usr/bin/env python3
"""Streaming exec, background commands and `oc shell` against the real
binaries (harness.py's `osb dev`, a real worker and sandbox), driven the way
people use them: `oc exec` with a pipe on stdin, the Python SDK's
commands/pty, and `oc shell` in a real terminal (tmux send-keys /
capture-pane): type, see output, resize and check `stty size`, `exit 3` ->
oc exits 3. Secrets: the sandbox only holds tokens, and a response carrying
the real value comes back through the stream as the token; the value is in
no stream, response or log. Run as root (the harness skips otherwise).

    commands_e2e_test.py OC_BINARY
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdks", "python"))
from opensandbox import ConnectionConfig, NotFoundError, Sandbox  # noqa: E402

from e2e_env import api_client, load_env

TOKEN_RE = re.compile(r"osb_sealed_[0-9a-f]{32}")


ENV = load_env("commands")
API = ENV["OPENSANDBOX_API_URL"]
KEY = ENV["OPENSANDBOX_API_KEY"]
E2E_DIR = ENV["OSB_E2E_DIR"]
OC = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "oc"


api = api_client(ENV)


def wait_until(what, predicate, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)  # polling a terminal's screen, not synchronisation
    raise AssertionError(f"timed out waiting for {what}")


class Commands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        suffix = uuid.uuid4().hex[:8]
        cls.value = "sk-stream-" + uuid.uuid4().hex
        cls.project = "cmd-" + suffix
        api("POST", "/api/projects", {"name": cls.project, "egressAllowlist": ["api.test"]}, 201)
        api("PUT", f"/api/projects/{cls.project}/secrets/API_KEY", {"value": cls.value}, 200)
        _, sb, _ = api("POST", "/api/sandboxes", {"project": cls.project}, 201)
        cls.sandbox = sb["sandboxID"]
        cls.home = tempfile.mkdtemp(prefix="oc-e2e-")
        cls.env = dict(os.environ, OPENSANDBOX_API_URL=API, OPENSANDBOX_API_KEY=KEY, XDG_CONFIG_HOME=cls.home,
                       HOME=cls.home)
        cls.sb = Sandbox.connect(cls.sandbox, config=ConnectionConfig(api_url=API, api_key=KEY))
        cls.seen = []

    @classmethod
    def tearDownClass(cls):
        api("DELETE", f"/api/sandboxes/{cls.sandbox}")
        api("DELETE", f"/api/projects/{cls.project}")
        shutil.rmtree(cls.home, ignore_errors=True)
        with open(os.path.join(E2E_DIR, "osb-dev.log")) as f:
            log = f.read()
        for text in cls.seen + [log]:
            if cls.value in text:
                raise AssertionError("the real secret value leaked into a stream, a response or the log")

    def oc(self, *args, stdin=None, timeout=120):
        p = subprocess.run([OC, *args], input=stdin, capture_output=True, env=self.env, timeout=timeout)
        self.seen.append(p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace"))
        return p

    def test_oc_exec_streams_forwards_stdin_and_exit_code(self):
        p = self.oc("exec", self.sandbox, "--", "sh", "-c", "cat; echo err >&2; exit 5", stdin=b"from stdin\n")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(p.stdout, b"from stdin\n")
        self.assertEqual(p.stderr, b"err\n")
        # Larger than exec/run's 1 MiB cap: all of it, nothing truncated.
        p = self.oc("exec", self.sandbox, "--no-stdin", "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout), 3000000)

    def test_the_token_stays_a_token_in_the_stream(self):
        out = []
        r = self.sb.commands.run("sh", ["-c", 'echo "$API_KEY"; curl -sS https://api.test/echo -H "Authorization: Bearer $API_KEY"'],
                                 on_stdout=out.append)
        text = "".join(out)
        self.seen.append(text)
        self.assertEqual(r.exit_code, 0, text)
        token = text.splitlines()[0]
        self.assertRegex(token, TOKEN_RE)
        # The upstream saw (and echoed) the real value; the proxy put the token back.
        self.assertIn(token, text.split("\n", 1)[1])
        self.assertNotIn(self.value, text)

    def test_background_command_attach_kill_and_ids_per_sandbox(self):
        c = self.sb.commands.start("sh", ["-c", "echo started; sleep 300"])
        self.assertEqual(c.status, "running")
        self.assertIn(c.id, [x.id for x in self.sb.commands.list()])
        p = self.oc("ps", self.sandbox)
        self.assertIn(c.id, p.stdout.decode())
        self.oc("kill-cmd", self.sandbox, c.id, "--signal", "TERM")
        info = self.sb.commands.wait(c.id, timeout=20)
        self.assertEqual(info.exit_code, 143)
        got = []
        r = self.sb.commands.attach(c.id, on_stdout=got.append)
        self.assertEqual("".join(got), "started\n")
        self.assertEqual(r.exit_code, 143)
        # Another sandbox of the same org cannot see or attach to it.
        _, other, _ = api("POST", "/api/sandboxes", {"project": self.project}, 201)
        try:
            osb = Sandbox.connect(other["sandboxID"], config=ConnectionConfig(api_url=API, api_key=KEY))
            with self.assertRaises(NotFoundError):
                osb.commands.attach(c.id)
            self.assertEqual(osb.commands.list(), [])
        finally:
            api("DELETE", f"/api/sandboxes/{other['sandboxID']}")

    def test_sdk_pty(self):
        out = []
        term = self.sb.pty.create(cols=90, rows=20, on_data=out.append)
        term.send_input("stty size\n")
        wait_until("stty size", lambda: b"20 90" in b"".join(out))
        term.resize(100, 33)
        term.send_input("stty size; exit 4\n")
        self.assertEqual(term.wait(30).exit_code, 4)
        self.assertIn(b"33 100", b"".join(out))

    @unittest.skipUnless(shutil.which("tmux"), "tmux is not installed")
    def test_oc_shell_in_a_real_terminal(self):
        session = "osbshell" + uuid.uuid4().hex[:6]
        done = os.path.join(self.home, "shell-exit")
        env_args = []
        for k in ("OPENSANDBOX_API_URL", "OPENSANDBOX_API_KEY", "XDG_CONFIG_HOME", "HOME"):
            env_args += ["-e", f"{k}={self.env[k]}"]
        cmd = f"{OC} shell {self.sandbox}; echo $? > {done}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", *env_args, cmd],
                       check=True, env=self.env)
        try:
            def screen():
                return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                      text=True).stdout

            def keys(*k):
                subprocess.run(["tmux", "send-keys", "-t", session, *k], check=True)

            keys("echo hello-from-$((6*7))", "Enter")
            wait_until("the command's output", lambda: "hello-from-42" in screen())
            keys("stty size", "Enter")
            wait_until("the first size", lambda: "30 100" in screen())
            subprocess.run(["tmux", "resize-window", "-t", session, "-x", "120", "-y", "40"], check=True)
            keys("clear; stty size", "Enter")
            wait_until("the new size", lambda: "40 120" in screen())
            keys("exit 3", "Enter")
            code = wait_until("oc to exit", lambda: open(done).read().strip() if os.path.exists(done) else "")
            self.assertEqual(code, "3")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


if __name__ == "__main__":
    unittest.main()
