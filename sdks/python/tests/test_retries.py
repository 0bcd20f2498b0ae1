"""Retries: GET, PUT and DELETE retry on network errors and 502/503/504, a bounded
number of times; POST (create), PATCH and exec never do."""

from __future__ import annotations

import unittest

from opensandbox import ConnectionError, OpenSandboxError, Project, Sandbox, ServiceUnavailableError

from .base import ServerTestCase
from .mock_server import Reply


class RetryTests(ServerTestCase):
    def test_get_retries_503_502_504_then_succeeds(self) -> None:
        self.server.reply(Reply(503, {"error": "busy"}), Reply(502), Reply(504), Reply(200, []))
        self.assertEqual(Project.list(**self.conn()), [])
        self.assertEqual(len(self.server.requests), 4)

    def test_put_retries_a_dropped_connection_with_the_same_body(self) -> None:
        self.server.reply(Reply(drop=True), Reply(200, {}))
        Project.set_secret("demo", "K", "value-1", **self.conn())
        self.assertEqual(len(self.server.requests), 2)
        self.assertEqual(self.server.requests[0].body, self.server.requests[1].body)

    def test_delete_retries_503(self) -> None:
        self.server.reply(Reply(503), Reply(204))
        Project.delete("demo", **self.conn())
        self.assertEqual(len(self.server.requests), 2)

    def test_retries_are_bounded_and_the_last_error_is_raised(self) -> None:
        self.server.fallback(Reply(503, {"error": "no worker"}))
        with self.assertRaises(ServiceUnavailableError) as ctx:
            Project.get("demo", **self.conn(max_retries=2))
        self.assertEqual(str(ctx.exception), "no worker")
        self.assertEqual(len(self.server.requests), 3)

    def test_max_retries_0_disables_retries(self) -> None:
        self.server.fallback(Reply(503))
        with self.assertRaises(ServiceUnavailableError):
            Project.list(**self.conn(max_retries=0))
        self.assertEqual(len(self.server.requests), 1)

    def test_post_is_never_retried(self) -> None:
        self.server.reply(Reply(503, {"error": "no worker"}))
        with self.assertRaises(ServiceUnavailableError):
            Sandbox.create(project="demo", **self.conn())
        self.assertEqual(len(self.server.requests), 1)
        self.server.reset()
        self.server.reply(Reply(drop=True))
        with self.assertRaises(ConnectionError):
            Project.create("demo", **self.conn())
        self.assertEqual(len(self.server.requests), 1)

    def test_exec_is_never_retried(self) -> None:
        self.server.reply(Reply(200, {"sandboxID": "sb_1", "status": "running"}), Reply(503))
        sb = Sandbox.connect("sb_1", **self.conn())
        with self.assertRaises(ServiceUnavailableError):
            sb.exec.run("echo once")
        self.assertEqual(sum(r.path.endswith("/exec/run") for r in self.server.requests), 1)

    def test_patch_is_never_retried(self) -> None:
        self.server.reply(Reply(502))
        with self.assertRaises(OpenSandboxError):
            Project.update("demo", cpu_count=2, **self.conn())
        self.assertEqual(len(self.server.requests), 1)

    def test_4xx_and_500_are_not_retried(self) -> None:
        self.server.reply(Reply(404, {"error": "not found"}), Reply(500, {"error": "bug"}))
        with self.assertRaisesRegex(OpenSandboxError, "not found"):
            Project.get("x", **self.conn())
        with self.assertRaisesRegex(OpenSandboxError, "bug"):
            Project.get("x", **self.conn())
        self.assertEqual(len(self.server.requests), 2)


if __name__ == "__main__":
    unittest.main()
