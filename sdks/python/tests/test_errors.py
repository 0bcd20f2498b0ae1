"""Error mapping: HTTP status -> typed error carrying the server's message; no response -> status 0."""

from __future__ import annotations

import os
import pickle
import socket
import threading
import unittest
from unittest import mock

from opensandbox import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ConnectionError,
    ConnectionConfig,
    NotFoundError,
    OpenSandboxError,
    PayloadTooLargeError,
    Project,
    Sandbox,
    ServiceUnavailableError,
)

from .base import ServerTestCase
from .mock_server import Reply, dead_url


class StatusMappingTests(ServerTestCase):
    def test_each_status_maps_to_its_class_with_the_server_message(self) -> None:
        cases = [(400, BadRequestError), (401, AuthenticationError), (404, NotFoundError), (409, ConflictError),
                 (413, PayloadTooLargeError), (503, ServiceUnavailableError), (500, OpenSandboxError)]
        for status, cls in cases:
            with self.subTest(status=status):
                self.server.reply(Reply(status, {"error": f"server says {status}"}))
                with self.assertRaises(cls) as ctx:
                    Project.get("demo", **self.conn(max_retries=0))
                err = ctx.exception
                self.assertIsInstance(err, OpenSandboxError)
                self.assertIs(type(err), cls)
                self.assertEqual(err.status, status)
                self.assertEqual(str(err), f"server says {status}")
                self.assertEqual((err.method, err.path), ("GET", "/api/projects/demo"))
                self.assertIn(f"status={status}", repr(err))

    def test_errors_survive_pickling(self) -> None:
        self.server.reply(Reply(404, {"error": "project not found"}))
        with self.assertRaises(NotFoundError) as ctx:
            Project.get("x", **self.conn())
        clone = pickle.loads(pickle.dumps(ctx.exception))
        self.assertEqual((type(clone), clone.status, str(clone)), (NotFoundError, 404, "project not found"))

    def test_non_json_and_empty_error_bodies_still_give_a_message(self) -> None:
        self.server.reply(Reply(502, text="Bad Gateway from nginx"))
        with self.assertRaisesRegex(OpenSandboxError, "HTTP 502: Bad Gateway from nginx"):
            Project.list(**self.conn(max_retries=0))
        self.server.reply(Reply(418))
        with self.assertRaisesRegex(OpenSandboxError, "HTTP 418"):
            Project.list(**self.conn(max_retries=0))

    def test_invalid_json_in_a_success_is_an_error_not_a_crash(self) -> None:
        self.server.reply(Reply(200, text="{not json"))
        with self.assertRaisesRegex(OpenSandboxError, "invalid JSON"):
            Sandbox.list(**self.conn())

    def test_redirects_are_not_followed(self) -> None:
        self.server.reply(Reply(307, headers={"Location": self.server.url + "/elsewhere"}))
        with self.assertRaisesRegex(OpenSandboxError, "redirect") as ctx:
            Project.set_secret("demo", "K", "v", **self.conn())
        self.assertEqual(ctx.exception.status, 307)
        self.assertEqual(self.server.calls(), ["PUT /api/projects/demo/secrets/K"])


class NoResponseTests(unittest.TestCase):
    def test_no_server_is_a_connection_error_with_status_0(self) -> None:
        with self.assertRaises(ConnectionError) as ctx:
            Project.list(api_url=dead_url(), api_key="k", config=ConnectionConfig(max_retries=0))
        self.assertEqual(ctx.exception.status, 0)
        self.assertIn("connection failed", str(ctx.exception))
        self.assertIsInstance(ctx.exception, OpenSandboxError)

    def test_a_timeout_is_a_connection_error_naming_the_timeout(self) -> None:
        # A listener that accepts but never answers.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        try:
            with self.assertRaisesRegex(ConnectionError, "timed out after 0.2 s"):
                Project.list(api_url=url, api_key="k", config=ConnectionConfig(max_retries=0, request_timeout=0.2))
        finally:
            listener.close()

    def test_a_missing_api_key_is_a_configuration_error_before_any_request(self) -> None:
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaisesRegex(ConfigurationError, "OPENSANDBOX_API_KEY"):
                Project.list(api_url=dead_url())

    def test_bad_api_urls_are_configuration_errors(self) -> None:
        for url in ("not a url", "ftp://x", "http://"):
            with self.subTest(url=url), self.assertRaises(ConfigurationError):
                Project.list(api_url=url, api_key="k")
        with self.assertRaises(ConfigurationError) as ctx:
            Project.list(api_url="ftp://user:hunter2@x", api_key="k")
        self.assertNotIn("hunter2", str(ctx.exception))

    def test_errors_are_raised_without_a_chained_cause(self) -> None:
        with self.assertRaises(ConnectionError) as ctx:
            Project.list(api_url=dead_url(), api_key="k", config=ConnectionConfig(max_retries=0))
        self.assertIsNone(ctx.exception.__cause__)
        self.assertIsNone(ctx.exception.__context__)


if __name__ == "__main__":
    unittest.main()
