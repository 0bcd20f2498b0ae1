"""Shared fixture: one MockServer per test class, reset before each test."""

from __future__ import annotations

import os
import sys
import unittest
from typing import Any, Dict

# Tests import the package from the source tree (no install needed).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opensandbox import ConnectionConfig  # noqa: E402

from .mock_server import MockServer  # noqa: E402

API_KEY = "test-api-key-123"


class ServerTestCase(unittest.TestCase):
    server: MockServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = MockServer().start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.server.reset()

    def conn(self, **overrides: Any) -> Dict[str, Any]:
        """Connection kwargs for SDK calls: this server, a key, fast retries."""
        cfg = {"retry_delay": 0.001, "max_retries": 3}
        cfg.update({k: v for k, v in overrides.items() if k in ("retry_delay", "max_retries", "request_timeout")})
        return {
            "api_url": overrides.get("api_url", self.server.url),
            "api_key": overrides.get("api_key", API_KEY),
            "config": ConnectionConfig(**cfg),
        }
