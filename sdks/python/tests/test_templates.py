"""Template.import_/list/get/delete: request shapes against a real local HTTP
server (MockServer); the tarball is streamed from a path or a file object."""

from __future__ import annotations

import asyncio
import io
import os
import tempfile

from opensandbox import (AsyncTemplate, BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError,
                         Template, TemplateInfo)

from .base import ServerTestCase
from .mock_server import Reply

DIGEST = "sha256:" + "ab" * 32
TEMPLATE = {"name": "busy box", "digest": DIGEST, "size": 3, "createdAt": "2026-01-01T00:00:00.000Z"}


class TemplateTests(ServerTestCase):
    def test_import_streams_a_path_or_a_file_object(self) -> None:
        tarball = os.urandom(3 * 256 * 1024 + 5)
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(tarball)
            tmp.flush()
            self.server.reply(Reply(201, TEMPLATE))
            info = Template.import_("busy box", tmp.name, **self.conn())
        self.assertEqual(info, TemplateInfo("busy box", DIGEST, 3, "2026-01-01T00:00:00.000Z"))
        r = self.server.last()
        self.assertEqual(r.method, "POST")
        self.assertEqual(r.path, "/api/templates?name=busy%20box")
        self.assertEqual(r.body, tarball)
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        f = io.BytesIO(b"skip" + tarball)
        f.read(4)
        self.server.reply(Reply(201, TEMPLATE))
        getattr(Template, "import")("busy box", f, **self.conn())  # the other SDKs' name
        self.assertEqual(self.server.last().body, tarball)

    def test_errors_map_to_exceptions_naming_the_problem(self) -> None:
        for status, error in ((400, BadRequestError), (413, PayloadTooLargeError), (409, ConflictError)):
            self.server.reply(Reply(status, {"error": "image: layer 0 (sha256:00): digest mismatch"}))
            with self.assertRaises(error) as ctx:
                Template.import_("x", io.BytesIO(b"abc"), **self.conn())
            if status == 400:
                self.assertIn("digest mismatch", str(ctx.exception))
        self.assertEqual(len(self.server.requests), 3)  # never retried

    def test_list_get_delete(self) -> None:
        self.server.reply(Reply(200, [TEMPLATE]))
        self.assertEqual([t.digest for t in Template.list(**self.conn())], [DIGEST])
        self.assertEqual(self.server.last().path, "/api/templates")
        self.server.reply(Reply(200, TEMPLATE))
        self.assertEqual(Template.get("busy box", **self.conn()).name, "busy box")
        self.assertEqual(self.server.last().path, "/api/templates/busy%20box")
        self.server.reply(Reply(204))
        Template.delete("busybox", **self.conn())
        self.assertEqual((self.server.last().method, self.server.last().path), ("DELETE", "/api/templates/busybox"))
        self.server.reply(Reply(404, {"error": "template nope not found"}))
        with self.assertRaises(NotFoundError):
            Template.get("nope", **self.conn())

    def test_async(self) -> None:
        self.server.reply(Reply(200, [TEMPLATE]))
        self.assertEqual(len(asyncio.run(AsyncTemplate.list(**self.conn()))), 1)
