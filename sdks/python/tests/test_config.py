"""Config precedence: explicit argument > environment variable > default."""

from __future__ import annotations

import os
import unittest
from unittest import mock

from opensandbox import DEFAULT_API_URL, ConfigurationError, ConnectionConfig, Project, resolve_config

from .mock_server import MockServer, Reply


class ResolveTests(unittest.TestCase):
    def test_defaults(self) -> None:
        c = resolve_config(env={})
        self.assertEqual(DEFAULT_API_URL, "http://127.0.0.1:8080")
        self.assertEqual((c.api_url, c.api_key, c.max_retries), (DEFAULT_API_URL, None, 3))

    def test_environment_beats_default_and_empty_counts_as_unset(self) -> None:
        c = resolve_config(env={"OPENSANDBOX_API_URL": "http://env:1/", "OPENSANDBOX_API_KEY": "envkey"})
        self.assertEqual((c.api_url, c.api_key), ("http://env:1", "envkey"))
        self.assertEqual(resolve_config(env={"OPENSANDBOX_API_URL": ""}).api_url, DEFAULT_API_URL)

    def test_explicit_beats_config_beats_environment(self) -> None:
        env = {"OPENSANDBOX_API_URL": "http://env:1", "OPENSANDBOX_API_KEY": "envkey"}
        cfg = ConnectionConfig(api_url="http://config:2", api_key="cfgkey")
        self.assertEqual(resolve_config(cfg, env=env).api_url, "http://config:2")
        c = resolve_config(cfg, api_url="http://explicit:3", api_key="explicitkey", env=env)
        self.assertEqual((c.api_url, c.api_key), ("http://explicit:3", "explicitkey"))

    def test_the_api_key_is_hidden_from_repr(self) -> None:
        self.assertNotIn("sekrit", repr(ConnectionConfig(api_key="sekrit")))
        self.assertNotIn("sekrit", repr(resolve_config(env={"OPENSANDBOX_API_KEY": "sekrit"})))

    def test_negative_numbers_are_refused(self) -> None:
        with self.assertRaisesRegex(ConfigurationError, "max_retries"):
            resolve_config(ConnectionConfig(max_retries=-1), env={})


class CallTimeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.env_server = MockServer().start()
        cls.explicit_server = MockServer().start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.env_server.stop()
        cls.explicit_server.stop()

    def setUp(self) -> None:
        self.env_server.reset()
        self.explicit_server.reset()

    def test_calls_read_the_environment_at_call_time(self) -> None:
        self.env_server.reply(Reply(200, []))
        with mock.patch.dict(os.environ, {"OPENSANDBOX_API_URL": self.env_server.url, "OPENSANDBOX_API_KEY": "from-env"}):
            Project.list()
        self.assertEqual(len(self.env_server.requests), 1)
        self.assertEqual(self.env_server.last().headers["x-api-key"], "from-env")

    def test_explicit_arguments_win_over_the_environment(self) -> None:
        self.explicit_server.reply(Reply(200, []))
        with mock.patch.dict(os.environ, {"OPENSANDBOX_API_URL": self.env_server.url, "OPENSANDBOX_API_KEY": "from-env"}):
            Project.list(api_url=self.explicit_server.url, api_key="explicit")
        self.assertEqual(self.env_server.requests, [])
        self.assertEqual(self.explicit_server.last().headers["x-api-key"], "explicit")

    def test_api_url_may_carry_a_path_prefix(self) -> None:
        self.explicit_server.reply(Reply(200, []))
        Project.list(api_url=self.explicit_server.url + "/prefix/", api_key="k")
        self.assertEqual(self.explicit_server.last().path, "/prefix/api/projects")


if __name__ == "__main__":
    unittest.main()
