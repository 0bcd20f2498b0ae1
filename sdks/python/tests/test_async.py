"""The async API gives the same results and does not block the event loop."""

from __future__ import annotations

import asyncio
import threading
import unittest

from opensandbox import AsyncApiKey, AsyncProject, AsyncSandbox, AsyncSecretGroup, ExecResult, NotFoundError

from .base import ServerTestCase
from .mock_server import Reply

SANDBOX = {"sandboxID": "sb_1", "status": "running"}


class AsyncTests(ServerTestCase):
    def test_async_project_and_group_calls_send_the_same_requests(self) -> None:
        self.server.reply(Reply(201, {"id": "p_1", "name": "demo"}), Reply(200, {}), Reply(200, []), Reply(201, {"id": "g", "name": "g"}))

        async def main() -> None:
            p = await AsyncProject.create("demo", egress_allowlist=["a.example"], **self.conn())
            self.assertEqual(p.id, "p_1")
            await AsyncProject.set_secret("demo", "K", "v", allowed_hosts=["a.example"], **self.conn())
            await AsyncProject.list_secrets("demo", **self.conn())
            await AsyncSecretGroup.create("g", **self.conn())

        asyncio.run(main())
        self.assertEqual(self.server.calls(), ["POST /api/projects", "PUT /api/projects/demo/secrets/K",
                                               "GET /api/projects/demo/secrets", "POST /api/secret-groups"])
        self.assertEqual(self.server.requests[1].json(), {"value": "v", "allowedHosts": ["a.example"]})

    def test_async_api_keys(self) -> None:
        self.server.reply(Reply(201, {"id": "key_1", "name": "ci", "key": "osb_x"}), Reply(200, []), Reply(204))

        async def main() -> None:
            created = await AsyncApiKey.create("ci", **self.conn())
            self.assertEqual((created.id, created.key), ("key_1", "osb_x"))
            self.assertEqual(await AsyncApiKey.list(**self.conn()), [])
            await AsyncApiKey.delete("key_1", **self.conn())

        asyncio.run(main())
        self.assertEqual(self.server.calls(), ["POST /api/api-keys", "GET /api/api-keys", "DELETE /api/api-keys/key_1"])

    def test_async_sandbox_lifecycle_with_async_with(self) -> None:
        self.server.reply(Reply(201, SANDBOX), Reply(200, {"exitCode": 0, "stdout": "hi\n", "stderr": ""}), Reply(204))

        async def main() -> ExecResult:
            async with await AsyncSandbox.create(project="demo", **self.conn()) as sb:
                self.assertEqual(sb.sandbox_id, "sb_1")
                return await sb.exec.run("echo hi")

        self.assertEqual(asyncio.run(main()).stdout, "hi\n")
        self.assertEqual(self.server.calls(), ["POST /api/sandboxes", "POST /api/sandboxes/sb_1/exec/run", "DELETE /api/sandboxes/sb_1"])

    def test_async_errors_are_the_same_typed_errors(self) -> None:
        self.server.reply(Reply(404, {"error": "sandbox not found"}))
        with self.assertRaisesRegex(NotFoundError, "sandbox not found"):
            asyncio.run(AsyncSandbox.connect("gone", **self.conn()))

    def test_the_event_loop_keeps_running_while_a_request_waits(self) -> None:
        # The server holds the reply until the loop proves it is still running.
        release = threading.Event()
        released_by_loop = []
        original = self.server.requests

        class Gate(list):  # type: ignore[type-arg]
            def append(self, item) -> None:  # type: ignore[no-untyped-def]
                super().append(item)
                released_by_loop.append(release.wait(timeout=10))

        self.server.requests = Gate()
        self.server.reply(Reply(200, []))

        async def main() -> bool:
            call = asyncio.ensure_future(AsyncProject.list(**self.conn()))
            # This coroutine only runs if the loop is not blocked by the request.
            await asyncio.sleep(0)
            while not self.server.requests:
                await asyncio.sleep(0.01)
            release.set()
            await call
            return True

        try:
            self.assertTrue(asyncio.run(main()))
            self.assertEqual(released_by_loop, [True], "the loop was blocked while the request waited")
        finally:
            release.set()
            self.server.requests = original


if __name__ == "__main__":
    unittest.main()
