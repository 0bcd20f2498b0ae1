"""The 8-step integration test against a real OpenSandbox (``osb dev``) and a
local TLS upstream that records what it receives. The environment contract is
in tests/sdk/README.md; without it this test is skipped.

    OPENSANDBOX_API_URL, OPENSANDBOX_API_KEY   the server
    OSB_TEST_UPSTREAM_URL                      https://<host>[:port] as the sandbox reaches it
    OSB_TEST_UPSTREAM_RECORD_DIR               where the upstream records each request it receives
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
import unittest
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, TypeVar
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opensandbox import NotFoundError, OpenSandboxError, Project, Sandbox  # noqa: E402

REQUIRED = ("OPENSANDBOX_API_URL", "OPENSANDBOX_API_KEY", "OSB_TEST_UPSTREAM_URL", "OSB_TEST_UPSTREAM_RECORD_DIR")
MISSING = [name for name in REQUIRED if not os.environ.get(name)]
SEALED = re.compile(r"^osb_sealed_[0-9a-f]{32}$")
POLL_DEADLINE = 60.0
T = TypeVar("T")


def records_containing(directory: str, needle: str) -> List[str]:
    """Every complete request record (one JSON object per file, or per line) whose text contains ``needle``."""
    found: List[str] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if needle not in text:
            continue
        lines = [line for line in text.split("\n") if needle in line]
        candidates = lines if len(lines) > 1 or name.endswith(".jsonl") else [text]
        for candidate in candidates:
            try:
                json.loads(candidate)  # a record still being written does not parse yet
            except ValueError:
                continue
            found.append(candidate)
    return found


def wait_for(what: str, probe: Callable[[], Optional[T]]) -> T:
    """Polls ``probe`` with backoff until it returns non-None, within a bounded deadline."""
    deadline = time.monotonic() + POLL_DEADLINE
    delay = 0.05
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {POLL_DEADLINE:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def parse_env(stdout: str) -> Dict[str, str]:
    env: Dict[str, str] = {}
    for line in stdout.split("\n"):
        name, eq, value = line.partition("=")
        if eq and name:
            env[name] = value
    return env


@unittest.skipIf(MISSING, f"integration environment not set (missing {', '.join(MISSING)}); see tests/sdk/README.md")
class EightStepIntegrationTest(unittest.TestCase):
    def setUp(self) -> None:
        upstream = urlsplit(os.environ["OSB_TEST_UPSTREAM_URL"])
        self.assertEqual(upstream.scheme, "https", "OSB_TEST_UPSTREAM_URL must be https://")
        self.upstream_host = (upstream.hostname or "").lower()
        self.upstream_base = f"https://{upstream.netloc}"
        self.record_dir = os.environ["OSB_TEST_UPSTREAM_RECORD_DIR"]
        self.project = f"sdk-it-py-{secrets.token_hex(4)}"
        self.token_v1 = f"sk-it-py-{secrets.token_hex(16)}"
        self.token_v2 = f"sk-it-py-v2-{secrets.token_hex(16)}"
        self.other = f"other-it-py-{secrets.token_hex(16)}"
        self.sandbox: Optional[Sandbox] = None
        self.project_created = False
        self.addCleanup(self._cleanup)

    def _cleanup(self) -> None:
        # Best effort after a failed step; never masks the failure.
        if self.sandbox is not None:
            try:
                self.sandbox.kill()
            except OpenSandboxError as e:
                print(f"cleanup: {e}", file=sys.stderr)
        if self.project_created:
            try:
                Project.delete(self.project)
            except OpenSandboxError as e:
                print(f"cleanup: {e}", file=sys.stderr)

    @contextmanager
    def step(self, n: int, name: str) -> Iterator[None]:
        print(f"step {n}: {name}", file=sys.stderr)
        try:
            yield
        except AssertionError as e:
            raise AssertionError(f"step {n} ({name}): {e}") from None

    def assert_no_real_value(self, text: str, where: str) -> None:
        for value in (self.token_v1, self.token_v2, self.other):
            self.assertFalse(value in text, f"a real secret value appeared in {where}")

    def curl_upstream(self, headers: List[str]) -> "tuple[str, str]":
        """Runs curl to the upstream /echo from inside the sandbox; returns (nonce, the sandbox's output)."""
        assert self.sandbox is not None
        nonce = f"osbtest-{secrets.token_hex(8)}"
        hdrs = " ".join(f'-H "{h}"' for h in headers)
        res = self.sandbox.exec.run(f'curl -sS --max-time 20 {hdrs} "{self.upstream_base}/echo?nonce={nonce}"', timeout=30)
        self.assert_no_real_value(res.stdout + res.stderr, "the sandbox's curl output")
        self.assertEqual(res.exit_code, 0, f"curl inside the sandbox failed: {res.stderr}")
        return nonce, res.stdout

    def record_of(self, nonce: str) -> str:
        def probe() -> Optional[str]:
            found = records_containing(self.record_dir, nonce)
            return found[0] if found else None

        return wait_for(f"the upstream to record request {nonce}", probe)

    def test_eight_steps(self) -> None:
        host = self.upstream_host

        # 1. Project whose allowlist includes the upstream (connection from the environment).
        with self.step(1, "create project"):
            p = Project.create(self.project, egress_allowlist=[host])
            self.project_created = True
            self.assertEqual(p.name, self.project)
            self.assertTrue(p.id)
            self.assertEqual(p.egress_allowlist, [host])
            self.assertEqual(Project.get(self.project).id, p.id)

        # 2. Two secrets; values never come back.
        with self.step(2, "set secrets"):
            Project.set_secret(self.project, "OSB_TEST_TOKEN", self.token_v1, allowed_hosts=[host])
            Project.set_secret(self.project, "OSB_TEST_OTHER", self.other)
            listed = Project.list_secrets(self.project)
            self.assertEqual(sorted(s.name for s in listed), ["OSB_TEST_OTHER", "OSB_TEST_TOKEN"])
            self.assertEqual([s.allowed_hosts for s in listed if s.name == "OSB_TEST_TOKEN"], [[host]])
            self.assert_no_real_value(repr(listed) + json.dumps([s.raw for s in listed]), "list_secrets")

        # 3. A sandbox with the project.
        with self.step(3, "create sandbox"):
            self.sandbox = Sandbox.create(project=self.project, timeout=600)
            self.assertTrue(self.sandbox.sandbox_id)
            self.assert_no_real_value(json.dumps(self.sandbox.info.raw), "the create response")

        # 4. Inside, env shows sealed tokens only.
        with self.step(4, "env inside the sandbox is sealed"):
            res = self.sandbox.exec.run("env")
            self.assertEqual(res.exit_code, 0, res.stderr)
            self.assert_no_real_value(res.stdout + res.stderr, "the sandbox's env")
            env = parse_env(res.stdout)
            token, other_token = env.get("OSB_TEST_TOKEN", ""), env.get("OSB_TEST_OTHER", "")
            self.assertRegex(token, SEALED, "OSB_TEST_TOKEN is not a sealed token")
            self.assertRegex(other_token, SEALED, "OSB_TEST_OTHER is not a sealed token")
            self.assertNotEqual(token, other_token)

        # 5. The upstream receives the real values; the sandbox sees only tokens.
        with self.step(5, "upstream receives real values, sandbox sees tokens"):
            nonce, stdout = self.curl_upstream(["Authorization: Bearer $OSB_TEST_TOKEN", "X-Osb-Other: $OSB_TEST_OTHER"])
            self.assertTrue(token in stdout, "the echoed request seen by the sandbox should carry the token")
            record = self.record_of(nonce)
            self.assertTrue(f"Bearer {self.token_v1}" in record, "the upstream did not receive the real OSB_TEST_TOKEN")
            self.assertTrue(self.other in record, "the upstream did not receive the real OSB_TEST_OTHER")
            self.assertFalse(token in record, "the upstream received a sealed token")
            self.assertFalse(other_token in record, "the upstream received a sealed token")

        # 6. A secret update reaches the SAME sandbox: same token, new value upstream.
        with self.step(6, "update a secret; the same sandbox sends the new value"):
            Project.set_secret(self.project, "OSB_TEST_TOKEN", self.token_v2, allowed_hosts=[host])

            def upstream_got_new_value() -> Optional[bool]:
                nonce, _ = self.curl_upstream(["Authorization: Bearer $OSB_TEST_TOKEN"])
                record = self.record_of(nonce)
                self.assertFalse(token in record, "the upstream received a sealed token")
                return True if f"Bearer {self.token_v2}" in record else None

            wait_for("the upstream to receive the updated value", upstream_got_new_value)
            env = parse_env(self.sandbox.exec.run("env").stdout)
            self.assertEqual(env.get("OSB_TEST_TOKEN"), token, "the sandbox's token changed; it must stay the same")

        # 7. Delete a secret: gone from the list; its token is no longer replaced.
        with self.step(7, "delete a secret"):
            Project.delete_secret(self.project, "OSB_TEST_OTHER")
            self.assertEqual([s.name for s in Project.list_secrets(self.project)], ["OSB_TEST_TOKEN"])

            def no_longer_substituted() -> Optional[bool]:
                nonce, _ = self.curl_upstream(["X-Osb-Other: $OSB_TEST_OTHER"])
                record = self.record_of(nonce)
                return True if other_token in record and self.other not in record else None

            wait_for("the deleted secret to stop being substituted", no_longer_substituted)

        # 8. Clean up: sandbox and project are gone.
        with self.step(8, "kill sandbox and delete project; both 404"):
            sandbox_id = self.sandbox.sandbox_id
            self.sandbox.kill()
            self.sandbox = None
            Project.delete(self.project)
            self.project_created = False
            with self.assertRaises(NotFoundError) as ctx:
                Sandbox.get(sandbox_id)
            self.assertEqual(ctx.exception.status, 404)
            with self.assertRaises(NotFoundError) as ctx:
                Project.get(self.project)
            self.assertEqual(ctx.exception.status, 404)
            with self.assertRaises(NotFoundError):
                Project.list_secrets(self.project)


if __name__ == "__main__":
    unittest.main()
