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
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdks", "python"))
from opensandbox import ConnectionConfig, NotFoundError, Sandbox, _websocket  # noqa: E402

from e2e_env import api_client, load_env

TOKEN_RE = re.compile(r"osb_sealed_[0-9a-f]{32}")


ENV = load_env("commands")
API = ENV["OPENSANDBOX_API_URL"]
KEY = ENV["OPENSANDBOX_API_KEY"]
E2E_DIR = ENV["OSB_E2E_DIR"]
OC = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "oc"


api = api_client(ENV)


def dev_status(field):
    """A field of /proc/<osb dev>/status (Threads, VmRSS in KiB)."""
    with open(os.path.join(E2E_DIR, "state.json")) as f:
        pid = json.load(f)["dev_pid"]
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for osb dev")


def attach(command_id, sandbox):
    """An attached WebSocket that has seen the command's started message."""
    ws = _websocket.connect(API, f"/api/sandboxes/{sandbox}/commands/{command_id}/attach",
                            {"X-API-Key": KEY}, timeout=60)
    m = ws.recv()
    assert m is not None and not m[0] and json.loads(m[1])["type"] == "started", m
    return ws


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

    def test_streamed_output_comes_as_fast_as_a_buffered_exec(self):
        # Timing is the property: a streamed command's first output must not
        # wait behind the "started" frame for the client's delayed ACK (Nagle
        # on the API's socket held it ~40 ms). Compared with exec/run of the
        # same command, measured in this test: that answer is one write.
        def streamed_ms():
            ws = _websocket.connect(API, f"/api/sandboxes/{self.sandbox}/exec/stream", {"X-API-Key": KEY}, timeout=60)
            try:
                t0 = time.perf_counter()
                ws.send_json({"type": "start", "cmd": "echo", "args": ["hi"]})
                while True:
                    m = ws.recv()
                    self.assertIsNotNone(m, "the stream ended before any output")
                    if m[0] and m[1][:1] == b"\x01":
                        return (time.perf_counter() - t0) * 1000
            finally:
                ws.shutdown()

        def buffered_ms():
            t0 = time.perf_counter()
            api("POST", f"/api/sandboxes/{self.sandbox}/exec/run", {"cmd": "echo", "args": ["hi"]}, 200)
            return (time.perf_counter() - t0) * 1000

        streamed_ms(), buffered_ms()  # warm both paths
        streamed = sorted(streamed_ms() for _ in range(9))[4]
        buffered = sorted(buffered_ms() for _ in range(9))[4]
        self.assertLess(streamed, 2 * buffered + 1,
                        f"streamed echo: first output after {streamed:.1f} ms (median); exec/run: {buffered:.1f} ms")

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


class ManyStreams(unittest.TestCase):
    """Attached streams hold no thread each (issue 15: sessions run on the
    io_context, the control plane's gRPC stream is a callback reactor, and
    so is the worker's Stream). osb dev is API server and worker in one
    process, so its thread count covers all three."""
    SESSIONS = 64
    COMMANDS = 16  # the worker runs at most 32 per sandbox; 4 sessions each

    @classmethod
    def setUpClass(cls):
        cls.project = "many-" + uuid.uuid4().hex[:8]
        api("POST", "/api/projects", {"name": cls.project}, 201)
        _, sb, _ = api("POST", "/api/sandboxes", {"project": cls.project}, 201)
        cls.sandbox = sb["sandboxID"]
        cls.commands = []
        for _ in range(cls.COMMANDS):
            _, c, _ = api("POST", f"/api/sandboxes/{cls.sandbox}/commands",
                          {"cmd": "sh", "args": ["-c", "while :; do echo tick; sleep 0.05; done"]}, 201)
            cls.commands.append(c["id"])

    @classmethod
    def tearDownClass(cls):
        api("DELETE", f"/api/sandboxes/{cls.sandbox}")
        api("DELETE", f"/api/projects/{cls.project}")

    def test_threads_do_not_grow_with_attached_sessions_and_a_leaving_client_frees_its_session(self):
        # A few sessions first, so pools that grow once (gRPC's callback
        # threads) are part of the baseline.
        warm = [attach(c, self.sandbox) for c in self.commands[:4]]
        for ws in warm:
            ws.shutdown()
        before = dev_status("Threads")
        sessions = [attach(self.commands[i % self.COMMANDS], self.sandbox) for i in range(self.SESSIONS)]
        for ws in sessions:  # every one is live: output arrives on each
            m = ws.recv()
            self.assertTrue(m is not None and m[0] and m[1][:1] == b"\x01", m)
        during = dev_status("Threads")
        # Before issue 15's change: four threads per session (256 here).
        self.assertLess(during - before, 16, f"threads {before} -> {during} with {self.SESSIONS} sessions")
        # Clients that vanish mid-stream (no close frame): their commands
        # keep running (they are background ones) and their sessions go.
        for ws in sessions:
            ws.shutdown()
        _, listed, _ = api("GET", f"/api/sandboxes/{self.sandbox}/commands", None, 200)
        running = {c["id"] for c in listed if c["status"] == "running"}
        self.assertTrue(set(self.commands) <= running, listed)
        # (gRPC's own pools may add a thread or two for the burst of
        # cancellations: a constant, not one per session.)
        wait_until("the sessions to be freed", lambda: dev_status("Threads") - before < 16)
        # And the sandbox still serves as many sessions again.
        again = [attach(self.commands[i % self.COMMANDS], self.sandbox) for i in range(self.SESSIONS)]
        for ws in again:
            ws.close()

    def test_a_client_that_never_reads_pauses_the_stream_instead_of_buffering(self):
        _, c, _ = api("POST", f"/api/sandboxes/{self.sandbox}/commands",
                      {"cmd": "sh", "args": ["-c", "yes streaming-without-a-reader"]}, 201)
        try:
            ws = attach(c["id"], self.sandbox)
            ws._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            rss_before = dev_status("VmRSS")
            # `yes` writes far more than 100 MiB in this time if nothing
            # pauses it; the chain (WebSocket write -> gRPC read -> worker ring
            # -> the command's pipe) keeps osb dev's memory flat instead.
            end = time.monotonic() + 5
            peak = rss_before
            while time.monotonic() < end:
                peak = max(peak, dev_status("VmRSS"))
                time.sleep(0.2)  # sampling memory, not synchronisation
            self.assertLess(peak - rss_before, 48 * 1024, f"RSS {rss_before} -> {peak} KiB with a stalled reader")
            # The stream was paused, not broken: reading resumes it.
            got = 0
            while got < 1 << 20:
                m = ws.recv()
                self.assertIsNotNone(m)
                got += len(m[1])
            ws.shutdown()
        finally:
            api("POST", f"/api/sandboxes/{self.sandbox}/commands/{c['id']}/kill", {})


if __name__ == "__main__":
    unittest.main()
