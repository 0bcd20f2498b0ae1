"""sandbox.files and the item-6 shapes (template alias, metadata): request
shapes against a real local HTTP server (MockServer), streamed bodies."""

from __future__ import annotations

import io
import os
import tempfile

from opensandbox import ConfigurationError, FileEntry, NotFoundError, PayloadTooLargeError, Sandbox

from .base import ServerTestCase
from .mock_server import Reply

SANDBOX = {"sandboxID": "sb_1", "status": "running", "metadata": {"team": "ml"}}


class FilesTests(ServerTestCase):
    def sandbox(self) -> Sandbox:
        self.server.reply(Reply(200, SANDBOX))
        sb = Sandbox.connect("sb_1", **self.conn())
        self.server.reset()
        return sb

    def test_write_bytes_str_file_object_and_path(self) -> None:
        sb = self.sandbox()
        self.server.fallback(Reply(200, {"path": "/home/sandbox/a b", "size": 3}))
        self.assertEqual(sb.files.write("/home/sandbox/a b", b"abc", mode=0o600)["size"], 3)
        r = self.server.last()
        self.assertEqual(r.method, "PUT")
        self.assertEqual(r.path, "/api/sandboxes/sb_1/files?path=%2Fhome%2Fsandbox%2Fa%20b&mode=600")
        self.assertEqual(r.body, b"abc")
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        sb.files.write("t.txt", "h\u00e9")
        self.assertEqual(self.server.last().body, "h\u00e9".encode())
        big = os.urandom(3 * 256 * 1024 + 17)
        f = io.BytesIO(b"skip" + big)
        f.read(4)  # streamed from the current position
        sb.files.write("/tmp/big", f)
        self.assertEqual(self.server.last().body, big)
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(big)
            tmp.flush()
            import pathlib

            sb.files.write("/tmp/big2", pathlib.Path(tmp.name))
        self.assertEqual(self.server.last().body, big)

    def test_read_streams_and_read_to_is_atomic(self) -> None:
        sb = self.sandbox()
        self.server.reply(Reply(200, text="hello world"))
        self.assertEqual(sb.files.read("/home/sandbox/x"), b"hello world")
        self.assertEqual(self.server.last().path, "/api/sandboxes/sb_1/files?path=%2Fhome%2Fsandbox%2Fx")
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "out")
            self.server.reply(Reply(200, text="data"))
            self.assertEqual(sb.files.read_to("x", target), 4)
            with open(target, "rb") as f:
                self.assertEqual(f.read(), b"data")
            self.server.reply(Reply(404, {"error": "path: /x does not exist"}))
            with self.assertRaises(NotFoundError) as e:
                sb.files.read_to("/x", os.path.join(d, "missing"))
            self.assertIn("does not exist", str(e.exception))
            self.assertEqual(sorted(os.listdir(d)), ["out"])  # no partial file left

    def test_quota_error_is_413(self) -> None:
        sb = self.sandbox()
        self.server.reply(Reply(413, {"error": "no space left in the sandbox's disk quota writing /tmp/x"}))
        with self.assertRaises(PayloadTooLargeError):
            sb.files.write("/tmp/x", b"x" * 1000)

    def test_list_mkdir_remove(self) -> None:
        sb = self.sandbox()
        self.server.reply(Reply(200, {"path": "/tmp", "truncated": False, "entries": [
            {"name": "a", "type": "file", "size": 5, "mode": "0644", "mtime": "2026-01-01T00:00:00.000Z"}]}))
        self.assertEqual(sb.files.list("/tmp"),
                         [FileEntry("a", "file", 5, "0644", "2026-01-01T00:00:00.000Z")])
        self.assertEqual(self.server.last().path, "/api/sandboxes/sb_1/files/list?path=%2Ftmp")
        self.server.reply(Reply(201, {"path": "/tmp/d"}))
        sb.files.mkdir("/tmp/d", parents=True, mode="750")
        self.assertEqual(self.server.last().json(), {"path": "/tmp/d", "parents": True, "mode": "750"})
        self.server.reply(Reply(204))
        sb.files.remove("/tmp/d", recursive=True)
        self.assertEqual(self.server.last().method, "DELETE")
        self.assertEqual(self.server.last().path, "/api/sandboxes/sb_1/files?path=%2Ftmp%2Fd&recursive=true")

    def test_bad_arguments(self) -> None:
        sb = self.sandbox()
        for bad in ("", None):
            with self.assertRaises(ConfigurationError):
                sb.files.read(bad)  # type: ignore[arg-type]
        with self.assertRaises(ConfigurationError):
            sb.files.write("/x", b"", mode=0o17777)
        with self.assertRaises(ConfigurationError):
            sb.files.write("/x", 12)  # type: ignore[arg-type]
        self.assertEqual(self.server.requests, [])


class SeedShapeTests(ServerTestCase):
    def test_template_alias_and_metadata(self) -> None:
        self.server.reply(Reply(201, SANDBOX))
        sb = Sandbox.create(template="python", metadata={"team": "ml"}, **self.conn())
        self.assertEqual(self.server.last().json(), {"templateID": "python", "metadata": {"team": "ml"}})
        self.assertEqual(sb.info.metadata, {"team": "ml"})
        with self.assertRaises(ConfigurationError):
            Sandbox.create(template="a", template_id="b", **self.conn())
        with self.assertRaises(ConfigurationError):
            Sandbox.create(metadata={"k": 1}, **self.conn())  # type: ignore[dict-item]
