"""HTTPS with a certificate made by the openssl CLI: ``ca_file`` / ``OSB_CA_FILE`` trust it."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import unittest
from unittest import mock

from opensandbox import ConnectionConfig, Project
from opensandbox.errors import ConfigurationError, ConnectionError

from .base import API_KEY
from .mock_server import MockServer, Reply


@unittest.skipIf(shutil.which("openssl") is None, "needs the openssl CLI")
class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.mkdtemp(prefix="osb-py-tls-")
        cls.cert = os.path.join(cls.dir, "cert.pem")
        key = os.path.join(cls.dir, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-subj", "/CN=osb-py-test", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", key, "-out", cls.cert],
            check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.cert, key)
        cls.server = MockServer(tls_context=context).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self) -> None:
        self.server.reset()
        self.server.fallback(Reply(200, []))
        # Whatever the machine trusts, it does not trust this test's certificate.
        patcher = mock.patch.dict(os.environ, {"SSL_CERT_FILE": "/nonexistent", "SSL_CERT_DIR": "/nonexistent"})
        patcher.start()
        self.addCleanup(patcher.stop)
        os.environ.pop("OSB_CA_FILE", None)

    def config(self, **kw: object) -> ConnectionConfig:
        return ConnectionConfig(api_url=self.server.url, api_key=API_KEY, max_retries=0, **kw)  # type: ignore[arg-type]

    def test_ca_file_option_verifies_the_server(self) -> None:
        self.assertEqual(Project.list(config=self.config(ca_file=self.cert)), [])
        self.assertEqual(self.server.calls(), ["GET /api/projects"])

    def test_osb_ca_file_env_is_the_default(self) -> None:
        with mock.patch.dict(os.environ, {"OSB_CA_FILE": self.cert}):
            self.assertEqual(Project.list(config=self.config()), [])

    def test_without_a_ca_file_verification_fails_and_nothing_is_sent(self) -> None:
        with self.assertRaises(ConnectionError) as ctx:
            Project.list(config=self.config())
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(ctx.exception))
        self.assertEqual(self.server.requests, [])

    def test_unreadable_ca_file_is_a_configuration_error(self) -> None:
        missing = os.path.join(self.dir, "missing.pem")
        with self.assertRaises(ConfigurationError) as ctx:
            Project.list(config=self.config(ca_file=missing))
        self.assertIn("ca_file", str(ctx.exception))
        self.assertIn(missing, str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
