"""No secret value in any error, repr, traceback or log record."""

from __future__ import annotations

import json
import logging
import traceback
import unittest

from opensandbox import ApiRequest, ConfigurationError, ConnectionConfig, OpenSandboxError, Project, SecretGroup

from .base import ServerTestCase
from .mock_server import Reply, dead_url

VALUE = "sk-live-TOPSECRET-9f8e7d6c"


def every_rendering(err: BaseException) -> str:
    return "\n".join([
        str(err), repr(err), repr(err.args), repr(vars(err)),
        "".join(traceback.format_exception(type(err), err, err.__traceback__)),
    ])


class SecretsNeverLeakTests(ServerTestCase):
    def _failure(self, fn, *args, **kwargs) -> OpenSandboxError:  # type: ignore[no-untyped-def]
        with self.assertRaises(OpenSandboxError) as ctx:
            fn(*args, **kwargs)
        return ctx.exception

    def test_set_secret_error_hides_a_value_the_server_echoes(self) -> None:
        self.server.reply(Reply(400, {"error": f'bad value "{VALUE}" for API_KEY'}))
        err = self._failure(Project.set_secret, "demo", "API_KEY", VALUE, **self.conn())
        self.assertEqual(err.status, 400)
        self.assertNotIn(VALUE, every_rendering(err))
        self.assertIn("[REDACTED]", str(err))
        self.assertIn("API_KEY", str(err))

    def test_a_json_escaped_echo_is_redacted_too(self) -> None:
        tricky = 'quote"and\\back\nslash\u2603'
        self.server.reply(Reply(413, text=json.dumps({"error": "too large: " + json.dumps(tricky)})))
        err = self._failure(SecretGroup.set_secret, "g", "X", tricky, **self.conn())
        rendered = every_rendering(err)
        self.assertNotIn(tricky, rendered)
        self.assertNotIn(json.dumps(tricky)[1:-1], rendered)

    def test_every_status_keeps_the_value_out(self) -> None:
        for status in (400, 401, 404, 409, 413, 500, 503):
            with self.subTest(status=status):
                self.server.reset()
                self.server.fallback(Reply(status, {"error": f"echo {VALUE}"}))
                err = self._failure(Project.set_secret, "demo", "API_KEY", VALUE, **self.conn())
                self.assertNotIn(VALUE, every_rendering(err))

    def test_a_network_error_from_set_secret_hides_the_value(self) -> None:
        err = self._failure(Project.set_secret, "demo", "API_KEY", VALUE, api_url=dead_url(), api_key="k",
                            config=ConnectionConfig(max_retries=0))
        self.assertEqual(err.status, 0)
        self.assertNotIn(VALUE, every_rendering(err))

    def test_a_non_str_value_is_refused_without_echoing_it(self) -> None:
        with self.assertRaises(ConfigurationError) as ctx:
            Project.set_secret("demo", "API_KEY", {"v": VALUE}, **self.conn())  # type: ignore[arg-type]
        self.assertNotIn(VALUE, every_rendering(ctx.exception))
        self.assertEqual(self.server.requests, [])

    def test_swapped_name_and_value_is_refused_before_any_request(self) -> None:
        with self.assertRaises(ConfigurationError) as ctx:
            Project.set_secret("demo", VALUE, "API_KEY", **self.conn())
        self.assertNotIn(VALUE, every_rendering(ctx.exception))
        self.assertIn("environment variable name", str(ctx.exception))
        with self.assertRaises(ConfigurationError):
            Project.delete_secret("demo", "bad name!", **self.conn())
        with self.assertRaises(ConfigurationError):
            Project.get(None, **self.conn())  # type: ignore[arg-type]
        self.assertEqual(self.server.requests, [])

    def test_api_request_repr_and_str_never_show_the_body(self) -> None:
        req = ApiRequest("PUT", "/api/projects/demo/secrets/API_KEY", {"value": VALUE}, sensitive=[VALUE])
        for text in (repr(req), str(req), f"{req}", repr([req])):
            self.assertNotIn(VALUE, text)
        self.assertEqual(repr(req), "ApiRequest(PUT /api/projects/demo/secrets/API_KEY (body redacted))")
        self.assertFalse(hasattr(req, "__dict__"))
        self.assertEqual(req.redact(f"x {VALUE} y"), "x [REDACTED] y")

    def test_debug_logs_show_method_path_status_never_value_or_key(self) -> None:
        self.server.reply(Reply(200, {}))
        with self.assertLogs("opensandbox", level=logging.DEBUG) as logs:
            Project.set_secret("demo", "API_KEY", VALUE, **self.conn(api_key="the-api-key"))
        text = "\n".join(logs.output)
        self.assertRegex(text, r"PUT /api/projects/demo/secrets/API_KEY -> 200 \(\d+ ms\)")
        self.assertNotIn(VALUE, text)
        self.assertNotIn("the-api-key", text)

    def test_secret_info_drops_a_value_a_server_should_never_send(self) -> None:
        self.server.reply(Reply(200, [{"name": "K", "value": VALUE, "allowedHosts": []}]))
        secrets = Project.list_secrets("demo", **self.conn())
        self.assertNotIn(VALUE, repr(secrets) + repr(secrets[0].raw))


if __name__ == "__main__":
    unittest.main()
