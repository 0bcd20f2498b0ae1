"""Request shapes: every SDK call sends the method, path, headers and body the REST API expects."""

from __future__ import annotations

import unittest

from opensandbox import (
    ApiKey,
    ApiKeyInfo,
    ConflictError,
    ExecResult,
    OpenSandboxError,
    Project,
    ProjectInfo,
    Sandbox,
    SecretGroup,
    build_exec_body,
    ConfigurationError,
)

from .base import API_KEY, ServerTestCase
from .mock_server import Reply

PROJECT = {
    "id": "p_1", "orgId": "o_1", "name": "demo", "template": "base", "cpuCount": 2, "memoryMB": 512,
    "timeoutSec": 300, "egressAllowlist": ["api.example.com"], "secretGroups": ["shared"],
    "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z",
}
SANDBOX = {
    "sandboxID": "sb_1", "status": "running", "projectId": "p_1", "templateID": "base",
    "cpuCount": 2, "memoryMB": 512, "startedAt": "t0", "endAt": "t1",
}


class HeaderTests(ServerTestCase):
    def test_every_request_carries_the_api_key_and_json_headers(self) -> None:
        self.server.reply(Reply(201, PROJECT))
        Project.create("demo", **self.conn())
        r = self.server.last()
        self.assertEqual(r.headers["x-api-key"], API_KEY)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["accept"], "application/json")
        self.assertTrue(r.headers["user-agent"].startswith("opensandbox-python/"))

    def test_get_has_no_body_and_no_content_type(self) -> None:
        self.server.reply(Reply(200, []))
        Project.list(**self.conn())
        self.assertEqual(self.server.last().body, b"")
        self.assertNotIn("content-type", self.server.last().headers)


class ProjectTests(ServerTestCase):
    def test_create_sends_camel_case_fields_only_when_given(self) -> None:
        self.server.reply(Reply(201, PROJECT))
        p = Project.create("demo", cpu_count=2, memory_mb=512, timeout_sec=300,
                           egress_allowlist=["api.example.com"], **self.conn())
        r = self.server.last()
        self.assertEqual((r.method, r.path), ("POST", "/api/projects"))
        self.assertEqual(r.json(), {"name": "demo", "cpuCount": 2, "memoryMB": 512, "timeoutSec": 300,
                                    "egressAllowlist": ["api.example.com"]})
        self.assertIsInstance(p, ProjectInfo)
        self.assertEqual((p.id, p.org_id, p.name, p.cpu_count, p.memory_mb, p.timeout_sec),
                         ("p_1", "o_1", "demo", 2, 512, 300))
        self.assertEqual(p.egress_allowlist, ["api.example.com"])
        self.assertEqual(p.secret_groups, ["shared"])
        self.assertEqual(p.raw, PROJECT)

    def test_list_get_delete(self) -> None:
        self.server.reply(Reply(200, [PROJECT]), Reply(200, PROJECT), Reply(204))
        self.assertEqual([p.name for p in Project.list(**self.conn())], ["demo"])
        self.assertEqual(Project.get("demo", **self.conn()).id, "p_1")
        self.assertIsNone(Project.delete("demo", **self.conn()))
        self.assertEqual(self.server.calls(), ["GET /api/projects", "GET /api/projects/demo", "DELETE /api/projects/demo"])

    def test_update_is_a_patch_with_only_the_given_fields(self) -> None:
        self.server.reply(Reply(200, PROJECT))
        Project.update("demo", egress_allowlist=[], **self.conn())
        r = self.server.last()
        self.assertEqual((r.method, r.path), ("PATCH", "/api/projects/demo"))
        self.assertEqual(r.json(), {"egressAllowlist": []})

    def test_identifiers_are_url_encoded(self) -> None:
        self.server.reply(Reply(200, PROJECT))
        Project.get("a b/../c", **self.conn())
        self.assertEqual(self.server.last().path, "/api/projects/a%20b%2F..%2Fc")

    def test_an_empty_identifier_is_refused_before_any_request(self) -> None:
        with self.assertRaises(ConfigurationError):
            Project.get("", **self.conn())
        self.assertEqual(self.server.requests, [])

    def test_missing_fields_in_a_response_get_neutral_defaults(self) -> None:
        self.server.reply(Reply(200, {"id": "p_2", "name": "x"}))
        p = Project.get("x", **self.conn())
        self.assertEqual((p.id, p.cpu_count, p.egress_allowlist), ("p_2", 0, []))


class SecretTests(ServerTestCase):
    def test_set_secret_puts_value_and_allowed_hosts(self) -> None:
        self.server.reply(Reply(200, {"name": "API_KEY", "allowedHosts": ["api.example.com"], "createdAt": "t", "updatedAt": "t"}))
        info = Project.set_secret("demo", "API_KEY", "sk-live-1", allowed_hosts=["api.example.com"], **self.conn())
        r = self.server.last()
        self.assertEqual((r.method, r.path), ("PUT", "/api/projects/demo/secrets/API_KEY"))
        self.assertEqual(r.json(), {"value": "sk-live-1", "allowedHosts": ["api.example.com"]})
        assert info is not None
        self.assertEqual((info.name, info.allowed_hosts), ("API_KEY", ["api.example.com"]))

    def test_set_secret_without_allowed_hosts_sends_only_the_value(self) -> None:
        Project.set_secret("demo", "API_KEY", "v", **self.conn())
        self.assertEqual(self.server.last().json(), {"value": "v"})

    def test_set_secret_returns_the_servers_warnings(self) -> None:
        warning = "no allowedHosts and project 'demo' has an empty egress allowlist: not sent to any host"
        self.server.reply(Reply(200, {"name": "K", "allowedHosts": [], "createdAt": "t", "updatedAt": "t",
                                      "warnings": [warning]}))
        info = Project.set_secret("demo", "K", "v", **self.conn())
        assert info is not None
        self.assertEqual(info.warnings, [warning])
        self.server.reply(Reply(200, {"name": "K", "allowedHosts": ["*"], "createdAt": "t", "updatedAt": "t"}))
        info = Project.set_secret("demo", "K", "v", allowed_hosts=["*"], **self.conn())
        assert info is not None
        self.assertEqual((info.allowed_hosts, info.warnings), (["*"], []))
        self.assertEqual(self.server.last().json(), {"value": "v", "allowedHosts": ["*"]})

    def test_non_ascii_values_are_sent_intact(self) -> None:
        Project.set_secret("demo", "K", "päss\u2603\"\\", **self.conn())
        self.assertEqual(self.server.last().json(), {"value": "päss\u2603\"\\"})

    def test_list_and_delete_secrets(self) -> None:
        self.server.reply(Reply(200, [{"name": "API_KEY", "allowedHosts": [], "createdAt": "t", "updatedAt": "t"}]), Reply(204))
        self.assertEqual([s.name for s in Project.list_secrets("demo", **self.conn())], ["API_KEY"])
        Project.delete_secret("demo", "API_KEY", **self.conn())
        self.assertEqual(self.server.calls(), ["GET /api/projects/demo/secrets", "DELETE /api/projects/demo/secrets/API_KEY"])

    def test_secret_groups_use_their_routes(self) -> None:
        self.server.reply(Reply(201, {"id": "g_1", "name": "shared"}), Reply(200, []), Reply(200, {"id": "g_1", "name": "shared"}),
                          Reply(200, {"id": "g_1", "name": "shared2"}), Reply(200, {}), Reply(200, []), Reply(204), Reply(204))
        g = SecretGroup.create("shared", **self.conn())
        self.assertEqual((g.id, g.name), ("g_1", "shared"))
        SecretGroup.list(**self.conn())
        SecretGroup.get("shared", **self.conn())
        self.assertEqual(SecretGroup.update("shared", name="shared2", **self.conn()).name, "shared2")
        SecretGroup.set_secret("shared", "TOKEN", "t0k", allowed_hosts=["*.example.com"], **self.conn())
        SecretGroup.list_secrets("shared", **self.conn())
        SecretGroup.delete_secret("shared", "TOKEN", **self.conn())
        SecretGroup.delete("shared", **self.conn())
        self.assertEqual(self.server.calls(), [
            "POST /api/secret-groups",
            "GET /api/secret-groups",
            "GET /api/secret-groups/shared",
            "PATCH /api/secret-groups/shared",
            "PUT /api/secret-groups/shared/secrets/TOKEN",
            "GET /api/secret-groups/shared/secrets",
            "DELETE /api/secret-groups/shared/secrets/TOKEN",
            "DELETE /api/secret-groups/shared",
        ])
        self.assertEqual(self.server.requests[0].json(), {"name": "shared"})
        self.assertEqual(self.server.requests[3].json(), {"name": "shared2"})
        self.assertEqual(self.server.requests[4].json(), {"value": "t0k", "allowedHosts": ["*.example.com"]})


class ApiKeyTests(ServerTestCase):
    KEY = "osb_" + "ab" * 32

    def test_create_list_delete_use_their_routes_and_hide_the_key_from_repr(self) -> None:
        self.server.reply(Reply(201, {"id": "key_1", "name": "ci", "createdAt": "t", "key": self.KEY}),
                          Reply(200, [{"id": "key_0", "name": "bootstrap admin", "createdAt": "t0"},
                                      {"id": "key_1", "name": "ci", "createdAt": "t"}]),
                          Reply(204))
        created = ApiKey.create("ci", **self.conn())
        self.assertIsInstance(created, ApiKeyInfo)
        self.assertEqual((created.id, created.name, created.key), ("key_1", "ci", self.KEY))
        self.assertNotIn(self.KEY, repr(created))
        listed = ApiKey.list(**self.conn())
        self.assertEqual([(k.id, k.key) for k in listed], [("key_0", ""), ("key_1", "")])
        ApiKey.delete("key_1", **self.conn())
        self.assertEqual(self.server.calls(), ["POST /api/api-keys", "GET /api/api-keys", "DELETE /api/api-keys/key_1"])
        self.assertEqual(self.server.requests[0].json(), {"name": "ci"})

    def test_scope_and_expiry_are_sent_and_read_back(self) -> None:
        self.server.reply(Reply(201, {"id": "key_3", "name": "agent", "scope": "sandbox",
                                      "createdAt": "t", "expiresAt": "2027-01-01T00:00:00.000Z", "key": self.KEY}),
                          Reply(200, [{"id": "key_0", "name": "bootstrap admin", "scope": "admin", "expiresAt": None}]))
        created = ApiKey.create("agent", scope="sandbox", expires_in="30d", **self.conn())
        self.assertEqual((created.scope, created.expires_at), ("sandbox", "2027-01-01T00:00:00.000Z"))
        listed = ApiKey.list(**self.conn())
        self.assertEqual((listed[0].scope, listed[0].expires_at), ("admin", None))
        self.assertEqual(self.server.requests[0].json(), {"name": "agent", "scope": "sandbox", "expiresIn": "30d"})

    def test_deleting_the_last_key_is_a_conflict_error(self) -> None:
        self.server.reply(Reply(409, {"error": "this is the org's last API key: create another one before deleting it"}))
        with self.assertRaises(ConflictError) as e:
            ApiKey.delete("key_0", **self.conn())
        self.assertIn("last API key", str(e.exception))

    def test_create_is_never_retried(self) -> None:
        self.server.reply(Reply(503, {"error": "busy"}), Reply(201, {"id": "key_2", "name": "x", "key": self.KEY}))
        with self.assertRaises(OpenSandboxError):
            ApiKey.create("x", **self.conn())
        self.assertEqual(self.server.calls(), ["POST /api/api-keys"])


class SandboxTests(ServerTestCase):
    def test_create_posts_the_given_fields_and_returns_a_handle(self) -> None:
        self.server.reply(Reply(201, SANDBOX))
        sb = Sandbox.create(project="demo", template_id="base", cpu_count=2, memory_mb=512, timeout=60,
                            envs={"A": "1"}, egress_allowlist=["x.example"], **self.conn())
        r = self.server.last()
        self.assertEqual((r.method, r.path), ("POST", "/api/sandboxes"))
        self.assertEqual(r.json(), {"project": "demo", "templateID": "base", "cpuCount": 2, "memoryMB": 512,
                                    "timeout": 60, "envs": {"A": "1"}, "egressAllowlist": ["x.example"]})
        self.assertEqual(sb.sandbox_id, "sb_1")
        self.assertEqual((sb.info.status, sb.info.project_id, sb.info.template_id, sb.info.end_at),
                         ("running", "p_1", "base", "t1"))

    def test_disk_mb_is_sent_and_read(self) -> None:
        self.server.reply(Reply(201, dict(SANDBOX, diskMB=2048)))
        sb = Sandbox.create(template_id="busybox", disk_mb=2048, **self.conn())
        self.assertEqual(self.server.last().json(), {"templateID": "busybox", "diskMB": 2048})
        self.assertEqual(sb.info.disk_mb, 2048)
        self.server.reply(Reply(201, dict(PROJECT, diskMB=4096)))
        p = Project.create("demo", disk_mb=4096, **self.conn())
        self.assertEqual(self.server.last().json(), {"name": "demo", "diskMB": 4096})
        self.assertEqual(p.disk_mb, 4096)
        self.server.reply(Reply(200, PROJECT))
        Project.update("demo", disk_mb=256, **self.conn())
        self.assertEqual(self.server.last().json(), {"diskMB": 256})

    def test_create_fails_clearly_without_a_sandbox_id(self) -> None:
        self.server.reply(Reply(201, {"status": "running"}))
        with self.assertRaisesRegex(OpenSandboxError, "no sandboxID"):
            Sandbox.create(**self.conn())

    def test_exec_run_of_a_string_runs_through_sh_c(self) -> None:
        self.server.reply(Reply(200, SANDBOX), Reply(200, {"exitCode": 0, "stdout": "hi\n", "stderr": ""}))
        sb = Sandbox.connect("sb_1", **self.conn())
        res = sb.exec.run("echo hi | cat", envs={"X": "1"}, cwd="/tmp", timeout=5)
        self.assertEqual(res, ExecResult(0, "hi\n", ""))
        self.assertFalse(res.timed_out or res.stdout_truncated or res.stderr_truncated)
        r = self.server.last()
        self.assertEqual((r.method, r.path), ("POST", "/api/sandboxes/sb_1/exec/run"))
        self.assertEqual(r.json(), {"cmd": "sh", "args": ["-c", "echo hi | cat"], "envs": {"X": "1"}, "cwd": "/tmp", "timeout": 5})

    def test_exec_with_args_or_argv_runs_the_program_directly(self) -> None:
        self.assertEqual(build_exec_body("ls", args=["-l", "/"]), {"cmd": "ls", "args": ["-l", "/"]})
        self.assertEqual(build_exec_body(["ls", "-l", "/"]), {"cmd": "ls", "args": ["-l", "/"]})
        self.assertEqual(build_exec_body(("true",)), {"cmd": "true", "args": []})
        self.assertEqual(build_exec_body("true", timeout=2.5)["timeout"], 3)
        for bad in (lambda: build_exec_body(["ls"], args=["-l"]), lambda: build_exec_body([]),
                    lambda: build_exec_body(""), lambda: build_exec_body("ls", args="-l"),
                    lambda: build_exec_body("true", timeout=0)):
            with self.assertRaises(ConfigurationError):
                bad()

    def test_exec_result_reads_truncation_and_timeout_flags(self) -> None:
        r = ExecResult.from_json({"exitCode": 137, "stdout": "x", "stderr": "", "stdoutTruncated": True, "timedOut": True})
        self.assertEqual((r.exit_code, r.stdout_truncated, r.stderr_truncated, r.timed_out), (137, True, False, True))
        self.assertEqual(ExecResult.from_json({}).exit_code, -1)

    def test_a_non_zero_exit_code_is_a_result(self) -> None:
        self.server.reply(Reply(200, SANDBOX), Reply(200, {"exitCode": 3, "stdout": "", "stderr": "boom"}))
        self.assertEqual(Sandbox.connect("sb_1", **self.conn()).exec.run("exit 3").exit_code, 3)

    def test_connect_get_list_kill_and_context_manager(self) -> None:
        self.server.reply(Reply(200, SANDBOX), Reply(200, SANDBOX), Reply(200, [SANDBOX]), Reply(200, SANDBOX),
                          Reply(204), Reply(204), Reply(201, SANDBOX), Reply(204))
        sb = Sandbox.connect("sb_1", **self.conn())
        self.assertEqual(sb.get_info().status, "running")
        self.assertEqual([s.sandbox_id for s in Sandbox.list(**self.conn())], ["sb_1"])
        self.assertEqual(Sandbox.get("sb_1", **self.conn()).sandbox_id, "sb_1")
        sb.kill()
        Sandbox.kill_by_id("sb_2", **self.conn())
        with Sandbox.create(project="demo", **self.conn()) as inner:
            self.assertEqual(inner.sandbox_id, "sb_1")
        self.assertEqual(self.server.calls(), [
            "GET /api/sandboxes/sb_1",
            "GET /api/sandboxes/sb_1",
            "GET /api/sandboxes",
            "GET /api/sandboxes/sb_1",
            "DELETE /api/sandboxes/sb_1",
            "DELETE /api/sandboxes/sb_2",
            "POST /api/sandboxes",
            "DELETE /api/sandboxes/sb_1",
        ])


if __name__ == "__main__":
    unittest.main()


class CheckpointTests(ServerTestCase):
    CHECKPOINT = {"checkpointID": "ck-1", "sandboxID": "sb_1", "sizeBytes": 4096, "envNames": ["A"]}

    def test_checkpoint_fork_timeout_hibernate_wake_use_their_routes(self) -> None:
        hib = dict(SANDBOX, status="hibernated")
        self.server.reply(Reply(200, SANDBOX), Reply(201, self.CHECKPOINT), Reply(200, [self.CHECKPOINT]),
                          Reply(201, SANDBOX), Reply(200, SANDBOX), Reply(200, hib), Reply(200, SANDBOX),
                          Reply(204), Reply(200, [self.CHECKPOINT]))
        sb = Sandbox.connect("sb_1", **self.conn())
        ck = sb.create_checkpoint()
        self.assertEqual(ck["checkpointID"], "ck-1")
        self.assertEqual(sb.list_checkpoints(), [self.CHECKPOINT])
        Sandbox.create(from_checkpoint="ck-1", **self.conn())
        self.assertEqual(self.server.last().json(), {"fromCheckpoint": "ck-1"})
        sb.set_timeout(3600)
        self.assertEqual(self.server.last().json(), {"timeoutSec": 3600})
        self.assertEqual(sb.hibernate().status, "hibernated")
        self.assertEqual(sb.wake().status, "running")
        sb.delete_checkpoint("ck-1")
        self.assertEqual(len(Sandbox.list_all_checkpoints(**self.conn())), 1)
        self.assertEqual(self.server.calls(), [
            "GET /api/sandboxes/sb_1",
            "POST /api/sandboxes/sb_1/checkpoints",
            "GET /api/sandboxes/sb_1/checkpoints",
            "POST /api/sandboxes",
            "POST /api/sandboxes/sb_1/timeout",
            "POST /api/sandboxes/sb_1/hibernate",
            "POST /api/sandboxes/sb_1/wake",
            "DELETE /api/sandboxes/sb_1/checkpoints/ck-1",
            "GET /api/checkpoints",
        ])

    def test_set_timeout_refuses_a_bad_value_before_any_request(self) -> None:
        self.server.reply(Reply(200, SANDBOX))
        sb = Sandbox.connect("sb_1", **self.conn())
        for bad in (0, -1, 1.5, True, "60"):
            with self.assertRaises(ConfigurationError):
                sb.set_timeout(bad)  # type: ignore[arg-type]
        self.assertEqual(self.server.calls(), ["GET /api/sandboxes/sb_1"])
