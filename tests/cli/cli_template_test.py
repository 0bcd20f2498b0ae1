#!/usr/bin/env python3
"""`oc template import|list|get|delete` against a small fake API that
records raw bodies: the tarball is sent as-is with its size, the name is
percent-encoded, output is `NAME DIGEST` (or the API's JSON with --json),
nothing else is printed when piped, a progress bar appears on a terminal
only, and server refusals exit non-zero with the server's reason. The same
progress bar serves `oc files put|get` (checked here against the same API).
"""
import json
import os
import pty
import shutil
import subprocess
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OC = os.environ.get("OC_BIN", "oc")
KEY = "test-key-0123456789"
DIGEST = "sha256:" + "ab" * 32
TEMPLATE = {"name": "bb", "digest": DIGEST, "size": 5, "createdAt": "2026-01-01T00:00:00.000Z"}


class Api:
    def __init__(self):
        self.requests, self.reply = [], (201, TEMPLATE)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                api.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw))
                status, payload = api.reply
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class TemplateCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.api = Api()

    def setUp(self):
        self.api.requests.clear()
        self.api.reply = (201, TEMPLATE)
        self.home = tempfile.mkdtemp(prefix="oc-tpl-")
        self.tarball = os.path.join(self.home, "image.tar")
        self.content = os.urandom(3 << 20)
        with open(self.tarball, "wb") as f:
            f.write(self.content)

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self):
        env = {"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "OPENSANDBOX_API_URL": self.api.url, "OPENSANDBOX_API_KEY": KEY}
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def oc(self, *args):
        return subprocess.run([OC, *args], capture_output=True, env=self.env(), timeout=60)

    def test_import_sends_the_file_and_prints_name_and_digest_only(self):
        r = self.oc("template", "import", self.tarball, "--name", "my image")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), f"bb {DIGEST}\n")
        self.assertEqual(r.stderr, b"")  # piped: no progress
        method, path, headers, raw = self.api.requests[-1]
        self.assertEqual((method, path), ("POST", "/api/templates?name=my%20image"))
        self.assertEqual(raw, self.content)
        self.assertEqual(headers["content-length"], str(len(self.content)))
        self.assertEqual(headers["content-type"], "application/octet-stream")
        self.assertEqual(headers["x-api-key"], KEY)

    def test_json_output_is_the_api_json(self):
        r = self.oc("--json", "template", "import", self.tarball, "--name", "bb")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), TEMPLATE)
        self.assertEqual(r.stderr, b"")

    def test_progress_bar_on_a_terminal_only(self):
        # stderr on a pseudo-terminal: the bar is drawn there; stdout stays clean.
        code, out, seen = self.run_on_terminal("template", "import", self.tarball, "--name", "bb")
        self.assertEqual(code, 0)
        self.assertEqual(out.decode(), f"bb {DIGEST}\n")
        self.assertIn(b"importing bb", seen)
        self.assertIn(b"100%", seen)

    def run_on_terminal(self, *args):
        """Runs oc with stderr on a pseudo-terminal: (exit code, stdout, what the terminal saw)."""
        master, slave = pty.openpty()
        p = subprocess.Popen([OC, *args], stdout=subprocess.PIPE, stderr=slave, env=self.env())
        os.close(slave)
        out = p.stdout.read()
        p.wait(timeout=60)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        return p.returncode, out, seen

    def test_file_transfers_draw_progress_on_a_terminal_only(self):
        self.api.reply = (200, {"path": "/tmp/x", "size": 5})
        code, out, seen = self.run_on_terminal("files", "put", "sb-1", self.tarball, "/tmp/x")
        self.assertEqual(code, 0, seen)
        self.assertIn(b"uploading", seen)
        self.assertIn(b"100%", seen)
        self.assertEqual(self.api.requests[-1][3], self.content)
        local = os.path.join(self.home, "got")
        code, out, seen = self.run_on_terminal("files", "get", "sb-1", "/tmp/x", local)
        self.assertEqual(code, 0, seen)
        self.assertIn(b"downloading /tmp/x", seen)
        self.assertIn(b"100%", seen)
        with open(local, "rb") as f:
            self.assertEqual(json.loads(f.read()), {"path": "/tmp/x", "size": 5})
        # Piped: no progress line anywhere.
        r = self.oc("files", "put", "sb-1", self.tarball, "/tmp/x")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))
        r = self.oc("files", "get", "sb-1", "/tmp/x", local)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))

    def test_refusals_exit_non_zero_with_the_reason(self):
        self.api.reply = (400, {"error": "image: layer 0 (sha256:00): digest mismatch"})
        r = self.oc("template", "import", self.tarball, "--name", "bb")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("digest mismatch", r.stderr.decode())
        self.assertEqual(r.stdout, b"")
        self.api.reply = (413, {"error": "template: over the server's limit"})
        r = self.oc("template", "import", self.tarball, "--name", "bb")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("limit", r.stderr.decode())
        r = self.oc("template", "import", os.path.join(self.home, "missing.tar"), "--name", "bb")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("missing.tar", r.stderr.decode())

    def test_list_get_delete(self):
        self.api.reply = (200, [TEMPLATE])
        r = self.oc("template", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("NAME", r.stdout.decode())
        self.assertIn(DIGEST, r.stdout.decode())
        self.assertEqual(self.api.requests[-1][:2], ("GET", "/api/templates"))
        self.api.reply = (200, TEMPLATE)
        r = self.oc("template", "get", "bb")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(DIGEST, r.stdout.decode())
        self.assertEqual(self.api.requests[-1][:2], ("GET", "/api/templates/bb"))
        self.api.reply = (204, None)
        r = self.oc("template", "delete", "bb")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.api.requests[-1][:2], ("DELETE", "/api/templates/bb"))
        self.api.reply = (409, {"error": "template bb is in use by sandbox sb-1"})
        r = self.oc("template", "delete", "bb")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("in use", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
