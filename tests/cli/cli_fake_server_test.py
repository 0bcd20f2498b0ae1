#!/usr/bin/env python3
"""`oc` against a fake REST API: arguments, request bodies, output, exit codes.

Runs the real `oc` binary (OC_BIN) as a subprocess against fake_api.FakeApi,
which records requests and returns canned responses. Covers what a user and
a script rely on: partial updates send only the given fields, --from-stdin
reads bytes as-is, tables and --json, one-line errors with distinct exit
codes, secret values never printed, `oc exec` streams and exit code.
"""
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_api import FakeApi  # noqa: E402

OC = os.environ.get("OC_BIN", "oc")
KEY = "test-key-0123456789"
SECRET = "sk-live-THIS-IS-THE-SECRET-VALUE-42"

PROJECT = {
    "id": "prj_1", "orgId": "org_1", "name": "demo", "template": "base",
    "cpuCount": 2, "memoryMB": 512, "timeoutSec": 300,
    "egressAllowlist": ["api.openai.com", "*.github.com"], "secretGroups": ["shared"],
    "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
}
SANDBOX = {
    "sandboxID": "sbx_abc", "status": "running", "projectId": "prj_1", "templateID": "base",
    "cpuCount": 2, "memoryMB": 512, "startedAt": "2026-01-01T00:00:00Z",
    "endAt": "2026-01-01T00:05:00Z",
}


class OcTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.api = FakeApi()

    @classmethod
    def tearDownClass(cls):
        cls.api.close()

    def setUp(self):
        self.api.reset()
        self.home = tempfile.mkdtemp(prefix="oc-test-home-")

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self, **extra):
        env = {"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "OPENSANDBOX_API_URL": self.api.url, "OPENSANDBOX_API_KEY": KEY}
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if name in os.environ:
                env[name] = os.environ[name]
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def oc(self, *args, stdin=b"", env=None):
        return subprocess.run([OC, *args], input=stdin, capture_output=True,
                              env=env if env is not None else self.env(), timeout=60)

    def assert_error(self, result, code, contains=""):
        err = result.stderr.decode()
        self.assertEqual(result.returncode, code, f"stderr: {err!r} stdout: {result.stdout!r}")
        lines = err.splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        self.assertEqual(len(errors), 1, f"expected one error line, got {err!r}")
        self.assertIn(contains, errors[0])
        self.assertEqual(result.stdout, b"")

    def last(self):
        self.assertTrue(self.api.requests, "no request was made")
        return self.api.requests[-1]


class ProjectTest(OcTestCase):
    def test_create_sends_given_fields_and_key(self):
        self.api.route("POST", "/api/projects", 201, PROJECT)
        r = self.oc("project", "create", "--name", "demo", "--cpu", "2", "--memory", "512",
                    "--timeout", "300", "--template", "base", "--egress-allow", "api.openai.com",
                    "--egress-allow", "*.github.com", "--secret-group", "shared")
        self.assertEqual(r.returncode, 0, r.stderr)
        req = self.last()
        self.assertEqual(req["headers"]["x-api-key"], KEY)
        self.assertEqual(req["headers"]["content-type"], "application/json")
        self.assertEqual(req["body"], {
            "name": "demo", "cpuCount": 2, "memoryMB": 512, "timeoutSec": 300, "template": "base",
            "egressAllowlist": ["api.openai.com", "*.github.com"], "secretGroups": ["shared"]})
        out = r.stdout.decode()
        self.assertRegex(out, r"(?m)^id: +prj_1$")
        self.assertRegex(out, r"(?m)^egressAllowlist: +api.openai.com,\*.github.com$")

    def test_create_minimal_sends_only_name(self):
        self.api.route("POST", "/api/projects", 201, PROJECT)
        r = self.oc("project", "create", "--name", "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"name": "demo"})

    def test_create_json_is_the_api_json(self):
        self.api.route("POST", "/api/projects", 201, PROJECT)
        r = self.oc("project", "create", "--name", "demo", "--json")
        self.assertEqual(json.loads(r.stdout), PROJECT)

    def test_update_is_partial(self):
        self.api.route("PATCH", "/api/projects/demo", 200, PROJECT)
        r = self.oc("project", "update", "demo", "--cpu", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["method"], "PATCH")
        self.assertEqual(self.last()["body"], {"cpuCount": 4})

    def test_update_clear_egress_sends_empty_list(self):
        self.api.route("PATCH", "/api/projects/demo", 200, dict(PROJECT, egressAllowlist=[]))
        r = self.oc("project", "update", "demo", "--clear-egress-allow")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"egressAllowlist": []})
        self.assertRegex(r.stdout.decode(), r"(?m)^egressAllowlist: +\(any host\)$")

    def test_update_lists_repeat_and_split_on_commas(self):
        self.api.route("PATCH", "/api/projects/demo", 200, PROJECT)
        r = self.oc("project", "update", "demo", "--egress-allow", "a.com,b.com",
                    "--egress-allow", "*.c.com", "--secret-group", "g1", "--secret-group", "g2",
                    "--name", "demo2", "--template", "t", "--memory", "1024", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {
            "egressAllowlist": ["a.com", "b.com", "*.c.com"], "secretGroups": ["g1", "g2"],
            "name": "demo2", "template": "t", "memoryMB": 1024, "timeoutSec": 60})

    def test_disk_mb_on_create_and_update(self):
        self.api.route("POST", "/api/projects", 201, dict(PROJECT, diskMB=4096))
        r = self.oc("project", "create", "--name", "demo", "--disk-mb", "4096")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"name": "demo", "diskMB": 4096})
        self.assertRegex(r.stdout.decode(), r"(?m)^diskMB: +4096$")
        self.api.route("PATCH", "/api/projects/demo", 200, PROJECT)
        r = self.oc("project", "update", "demo", "--disk-mb", "256")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"diskMB": 256})

    def test_update_clear_secret_groups(self):
        self.api.route("PATCH", "/api/projects/demo", 200, PROJECT)
        r = self.oc("project", "update", "demo", "--clear-secret-groups")
        self.assertEqual(self.last()["body"], {"secretGroups": []}, r.stderr)

    def test_update_without_flags_is_a_usage_error(self):
        r = self.oc("project", "update", "demo")
        self.assert_error(r, 2, "nothing to update")
        self.assertEqual(self.api.requests, [])

    def test_clear_and_set_egress_conflict(self):
        r = self.oc("project", "update", "demo", "--clear-egress-allow", "--egress-allow", "a.com")
        self.assert_error(r, 2)
        self.assertEqual(self.api.requests, [])

    def test_non_integer_cpu_is_a_usage_error(self):
        r = self.oc("project", "create", "--name", "x", "--cpu", "two")
        self.assert_error(r, 2, "--cpu")
        self.assertEqual(self.api.requests, [])

    def test_list_table_and_json(self):
        other = dict(PROJECT, id="prj_2", name="a-much-longer-name", egressAllowlist=[],
                     secretGroups=[])
        self.api.route("GET", "/api/projects", 200, [PROJECT, other])
        r = self.oc("project", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[0].startswith("NAME"))
        # Columns are aligned: ID starts at the same offset on every line.
        col = lines[0].index("ID")
        self.assertEqual(lines[1][col:col + 5], "prj_1")
        self.assertEqual(lines[2][col:col + 5], "prj_2")
        self.assertIn("(any host)", lines[2])
        r = self.oc("project", "list", "--json")
        self.assertEqual(json.loads(r.stdout), [PROJECT, other])

    def test_get_and_delete_encode_the_name(self):
        self.api.route("GET", "/api/projects/my%20proj", 200, PROJECT)
        r = self.oc("project", "get", "my proj")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.api.route("DELETE", "/api/projects/demo", 204, None)
        r = self.oc("project", "delete", "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), "deleted project demo\n")
        r = self.oc("project", "delete", "demo", "--json")
        self.assertEqual(json.loads(r.stdout), {})

    def test_empty_reference_is_refused(self):
        r = self.oc("project", "get", "")
        self.assert_error(r, 2)
        self.assertEqual(self.api.requests, [])


class ErrorTest(OcTestCase):
    def check(self, status, code):
        self.api.route("GET", "/api/projects/x", status, {"error": f"server says {status}"})
        r = self.oc("project", "get", "x")
        self.assert_error(r, code, f"server says {status}")

    def test_not_found_is_4(self):
        self.check(404, 4)

    def test_unauthorized_is_5(self):
        self.check(401, 5)

    def test_forbidden_is_5(self):
        self.check(403, 5)

    def test_conflict_is_6(self):
        self.check(409, 6)

    def test_bad_request_is_3(self):
        self.check(400, 3)

    def test_too_large_is_3(self):
        self.check(413, 3)

    def test_server_error_is_1(self):
        self.check(500, 1)

    def test_no_worker_is_1(self):
        self.check(503, 1)

    def test_non_json_error_body_gives_status(self):
        self.api.route("GET", "/api/projects/x", 502, b"<html>bad gateway</html>")
        r = self.oc("project", "get", "x")
        self.assert_error(r, 1, "HTTP 502")
        self.assertNotIn(b"html", r.stderr)

    def test_multiline_server_message_stays_one_line(self):
        self.api.route("GET", "/api/projects/x", 400, {"error": "line one\nline two"})
        r = self.oc("project", "get", "x")
        self.assert_error(r, 3, "line one line two")

    def test_connection_refused_is_1(self):
        env = self.env(OPENSANDBOX_API_URL="http://127.0.0.1:1")
        r = self.oc("project", "list", env=env)
        self.assert_error(r, 1, "cannot reach http://127.0.0.1:1")

    def test_bad_url_is_usage(self):
        r = self.oc("project", "list", "--api-url", "ftp://x")
        self.assert_error(r, 2, "http:// or https://")

    def test_no_key_is_auth(self):
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_KEY=None))
        self.assert_error(r, 5, "oc login")
        self.assertEqual(self.api.requests, [])

    def test_unknown_verb_is_usage(self):
        r = self.oc("projcet", "list")
        self.assert_error(r, 2, "unknown command 'projcet'")

    def test_missing_required_flag_is_usage(self):
        r = self.oc("project", "create")
        self.assert_error(r, 2, "--name")


class SecretTest(OcTestCase):
    META = {"name": "OPENAI_KEY", "allowedHosts": ["api.openai.com"],
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
    PATH = "/api/projects/demo/secrets/OPENAI_KEY"

    def set_from_stdin(self, data: bytes, *extra):
        self.api.route("PUT", self.PATH, 200, self.META)
        return self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", *extra, stdin=data)

    def assert_no_secret(self, result):
        for stream in (result.stdout, result.stderr):
            self.assertNotIn(SECRET.encode(), stream)

    def test_stdin_strips_exactly_one_newline(self):
        for data, expected in [(SECRET.encode() + b"\n", SECRET), (SECRET.encode(), SECRET),
                               (SECRET.encode() + b"\n\n", SECRET + "\n"),
                               (b"  spaced \r\n", "  spaced \r"),
                               ("ünïcødé\n".encode(), "ünïcødé")]:
            r = self.set_from_stdin(data)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.last()["body"]["value"], expected)
            self.assert_no_secret(r)

    def test_empty_stdin_is_refused(self):
        for data in (b"", b"\n"):
            r = self.set_from_stdin(data)
            self.assert_error(r, 2, "empty")
            self.assertEqual(self.api.requests, [])

    def test_oversized_stdin_is_refused(self):
        r = self.set_from_stdin(b"x" * (64 * 1024 + 1))
        self.assert_error(r, 2, "larger than 65536")
        self.assertEqual(self.api.requests, [])

    def test_exactly_64k_is_sent(self):
        r = self.set_from_stdin(b"x" * (64 * 1024) + b"\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.last()["body"]["value"]), 64 * 1024)

    def test_invalid_utf8_is_refused_without_echo(self):
        r = self.set_from_stdin(b"\xff\xfe" + SECRET.encode())
        self.assertNotEqual(r.returncode, 0)
        self.assert_no_secret(r)
        self.assertEqual(self.api.requests, [])

    def test_allowed_hosts_sent_and_default_empty(self):
        r = self.set_from_stdin(SECRET.encode(), "--allowed-hosts", "api.openai.com,*.example.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"]["allowedHosts"], ["api.openai.com", "*.example.com"])
        r = self.set_from_stdin(SECRET.encode())
        self.assertEqual(self.last()["body"]["allowedHosts"], [])
        self.assertEqual(self.last()["method"], "PUT")

    def test_server_warnings_go_to_stderr(self):
        # A secret without allowedHosts on a project with an empty allowlist
        # goes nowhere; the server says so and oc passes it on (stderr).
        warning = ("no allowedHosts and project 'demo' has an empty egress allowlist: "
                   "the secret will not be sent to any host")
        meta = dict(self.META, allowedHosts=[], warnings=[warning])
        for extra in ((), ("--json",)):
            self.api.route("PUT", self.PATH, 200, meta)
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", *extra, stdin=SECRET.encode())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(("warning: " + warning).encode(), r.stderr)
            self.assertNotIn(b"not be sent", r.stdout if not extra else b"")
            self.assert_no_secret(r)
        self.assertIn(b"(egress allowlist only)", self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin",
                                                         stdin=SECRET.encode()).stdout)
        # "*" is sent as given and shown as any reachable host; no warning.
        self.api.route("PUT", self.PATH, 200, dict(self.META, allowedHosts=["*"]))
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", "--allowed-hosts", "*",
                    stdin=SECRET.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"]["allowedHosts"], ["*"])
        self.assertIn(b"any reachable host", r.stdout)
        self.assertNotIn(b"warning", r.stderr)

    def test_signing_kind_sends_material_from_file_and_request_rules(self):
        # Issue 16: --kind + --from-file sends the material object; no
        # material string shows in anything oc prints, even when the server
        # answers with an error quoting it.
        import tempfile
        material = {"key": SECRET, "header": "X-Signature", "hash": "sha256"}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(material, f)
        try:
            self.api.route("PUT", self.PATH, 200, dict(self.META, kind="hmac", material={"header": "X-Signature"}))
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--kind", "hmac", "--from-file", f.name,
                        "--allow-request", "POST api.openai.com/v1/chat", "--allow-request", "get,head api.openai.com",
                        "--on-disallowed-request", "refuse")
            self.assertEqual(r.returncode, 0, r.stderr)
            body = self.last()["body"]
            self.assertEqual(body["kind"], "hmac")
            self.assertEqual(body["material"], material)
            self.assertNotIn("value", body)
            self.assertEqual(body["allowedRequests"], [
                {"host": "api.openai.com", "methods": ["POST"], "pathPrefix": "/v1/chat"},
                {"host": "api.openai.com", "methods": ["GET", "HEAD"], "pathPrefix": ""}])
            self.assertEqual(body["onDisallowedRequest"], "refuse")
            self.assertIn(b"(hmac)", r.stdout)
            self.assert_no_secret(r)
            self.api.route("PUT", self.PATH, 400, {"error": "material.hash: bad near " + SECRET})
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--kind", "hmac", "--from-file", f.name)
            self.assertNotEqual(r.returncode, 0)
            self.assert_no_secret(r)
            # A value with --kind hmac, a bad rule, a bad kind: usage errors, nothing sent.
            self.api.requests.clear()
            for args in (("--kind", "hmac", SECRET), ("--from-stdin", "--allow-request", "POST api.openai.com/v1 extra"),
                         ("--kind", "rsa", "--from-file", f.name)):
                r = self.oc("secret", "set", "demo", "OPENAI_KEY", *args, stdin=SECRET.encode())
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assert_no_secret(r)
            self.assertEqual(self.api.requests, [])
        finally:
            os.unlink(f.name)

    def test_value_on_command_line_warns_without_echo(self):
        self.api.route("PUT", self.PATH, 200, self.META)
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", SECRET, "--verbose")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"]["value"], SECRET)
        self.assertIn(b"warning: ", r.stderr)
        self.assertIn(b"shell history", r.stderr)
        self.assert_no_secret(r)
        self.assertNotIn(KEY.encode(), r.stderr)

    def test_verbose_and_json_never_show_the_value(self):
        # Even if a buggy server echoed the value back, oc does not print it.
        self.api.route("PUT", self.PATH, 200, dict(self.META, value=SECRET))
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", "--verbose", "--json",
                    stdin=SECRET.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_no_secret(r)
        self.assertNotIn("value", json.loads(r.stdout))
        self.assertIn(b"oc: > PUT", r.stderr)

    def test_error_echoing_the_value_is_redacted(self):
        self.api.route("PUT", self.PATH, 400, {"error": f"bad value {SECRET}"})
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", stdin=SECRET.encode())
        self.assert_error(r, 3, "bad value [redacted]")
        self.assert_no_secret(r)

    def test_value_and_stdin_together_is_usage(self):
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", SECRET, "--from-stdin", stdin=b"x")
        self.assert_error(r, 2, "not both")
        self.assert_no_secret(r)

    def test_parse_errors_never_quote_the_value(self):
        for args in (["-" + SECRET], ["--" + SECRET], [SECRET, SECRET], ["--", "-" + SECRET, SECRET]):
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", *args)
            self.assert_error(r, 2, "not shown")
            self.assert_no_secret(r)
            r = self.oc("secret-group", "secret", "set", "g", "OPENAI_KEY", *args)
            self.assert_error(r, 2, "not shown")
            self.assert_no_secret(r)
        self.assertEqual(self.api.requests, [])

    def test_value_starting_with_dash_after_double_dash(self):
        self.api.route("PUT", self.PATH, 200, self.META)
        r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--", "-" + SECRET)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"]["value"], "-" + SECRET)
        self.assert_no_secret(r)

    def test_no_value_is_usage(self):
        r = self.oc("secret", "set", "demo", "OPENAI_KEY")
        self.assert_error(r, 2, "--from-stdin")

    def test_bad_name_is_usage(self):
        r = self.oc("secret", "set", "demo", "1BAD-NAME", "--from-stdin", stdin=b"v")
        self.assert_error(r, 2, "environment variable name")
        self.assertEqual(self.api.requests, [])

    def test_list_and_delete(self):
        other = dict(self.META, name="GITHUB_TOKEN", allowedHosts=[])
        self.api.route("GET", "/api/projects/demo/secrets", 200, [self.META, other])
        r = self.oc("secret", "list", "demo")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertTrue(lines[0].startswith("NAME"))
        self.assertTrue(lines[1].startswith("OPENAI_KEY"))
        self.assertIn("(egress allowlist only)", lines[2])
        r = self.oc("secret", "list", "demo", "--json")
        self.assertEqual(json.loads(r.stdout), [self.META, other])
        self.api.route("DELETE", self.PATH, 204, None)
        r = self.oc("secret", "delete", "demo", "OPENAI_KEY")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["method"], "DELETE")


class SecretGroupTest(OcTestCase):
    GROUP = {"id": "grp_1", "name": "shared", "createdAt": "2026-01-01T00:00:00Z",
             "updatedAt": "2026-01-01T00:00:00Z"}

    def test_group_crud(self):
        self.api.route("POST", "/api/secret-groups", 201, self.GROUP)
        r = self.oc("secret-group", "create", "shared")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"name": "shared"})
        self.assertRegex(r.stdout.decode(), r"(?m)^name: +shared$")
        self.api.route("GET", "/api/secret-groups", 200, [self.GROUP])
        r = self.oc("secret-group", "list")
        self.assertTrue(r.stdout.decode().splitlines()[1].startswith("shared"))
        self.api.route("GET", "/api/secret-groups/shared", 200, self.GROUP)
        r = self.oc("secret-group", "get", "shared", "--json")
        self.assertEqual(json.loads(r.stdout), self.GROUP)
        self.api.route("PATCH", "/api/secret-groups/shared", 200, dict(self.GROUP, name="team"))
        r = self.oc("secret-group", "update", "shared", "--name", "team")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((self.last()["method"], self.last()["body"]), ("PATCH", {"name": "team"}))
        self.assertRegex(r.stdout.decode(), r"(?m)^name: +team$")
        self.api.route("DELETE", "/api/secret-groups/shared", 409,
                       {"error": "secret group 'shared' is attached to a project"})
        self.assert_error(self.oc("secret-group", "delete", "shared"), 6, "attached")
        self.api.route("DELETE", "/api/secret-groups/shared", 204, None)
        r = self.oc("secret-group", "delete", "shared")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_group_secrets(self):
        path = "/api/secret-groups/shared/secrets/GITHUB_TOKEN"
        self.api.route("PUT", path, 200, {"name": "GITHUB_TOKEN", "allowedHosts": ["api.github.com"]})
        r = self.oc("secret-group", "secret", "set", "shared", "GITHUB_TOKEN", "--from-stdin",
                    "--allowed-hosts", "api.github.com", stdin=SECRET.encode() + b"\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"value": SECRET, "allowedHosts": ["api.github.com"]})
        self.assertNotIn(SECRET.encode(), r.stdout + r.stderr)
        self.api.route("GET", "/api/secret-groups/shared/secrets", 200, [])
        r = self.oc("secret-group", "secret", "list", "shared")
        self.assertEqual(r.stdout.decode(), "NAME  KIND  ALLOWED_HOSTS  UPDATED\n")
        self.api.route("DELETE", path, 204, None)
        r = self.oc("secret-group", "secret", "delete", "shared", "GITHUB_TOKEN")
        self.assertEqual(r.returncode, 0, r.stderr)


class SandboxTest(OcTestCase):
    def test_create_prints_only_the_id(self):
        self.api.route("POST", "/api/sandboxes", 201, SANDBOX)
        r = self.oc("create", "--project", "demo", "--cpu", "1", "--memory", "256", "--timeout", "60",
                    "--template", "base", "--env", "A=1", "--env", "B=x=y", "--egress-allow", "a.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"sbx_abc\n")
        self.assertEqual(self.last()["body"], {
            "project": "demo", "cpuCount": 1, "memoryMB": 256, "timeout": 60, "templateID": "base",
            "envs": {"A": "1", "B": "x=y"}, "egressAllowlist": ["a.com"]})
        r = self.oc("create", "--json")
        self.assertEqual(json.loads(r.stdout), SANDBOX)
        self.assertEqual(self.last()["body"], {})

    def test_create_disk_mb(self):
        self.api.route("POST", "/api/sandboxes", 201, SANDBOX)
        r = self.oc("create", "--template", "busybox", "--disk-mb", "2048")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["body"], {"templateID": "busybox", "diskMB": 2048})

    def test_bad_env_is_usage_without_value(self):
        r = self.oc("create", "--env", "NOEQUALS")
        self.assert_error(r, 2, "--env")
        r = self.oc("create", "--env", f"1X={SECRET}")
        self.assert_error(r, 2, "--env")
        self.assertNotIn(SECRET.encode(), r.stderr)
        self.assertEqual(self.api.requests, [])

    def test_list_get(self):
        self.api.route("GET", "/api/sandboxes", 200, [SANDBOX])
        r = self.oc("list")
        lines = r.stdout.decode().splitlines()
        self.assertTrue(lines[0].startswith("ID"))
        self.assertTrue(lines[1].startswith("sbx_abc"))
        self.api.route("GET", "/api/sandboxes/sbx_abc", 200, SANDBOX)
        r = self.oc("get", "sbx_abc")
        self.assertRegex(r.stdout.decode(), r"(?m)^status: +running$")
        r = self.oc("get", "sbx_abc", "--json")
        self.assertEqual(json.loads(r.stdout), SANDBOX)

    def test_exec_streams_and_exit_code(self):
        self.api.route("POST", "/api/sandboxes/sbx_abc/exec/run", 200,
                       {"exitCode": 3, "stdout": "out line\n", "stderr": "err line\n"})
        r = self.oc("exec", "--buffered", "sbx_abc", "--env", "K=V", "--cwd", "/tmp", "--timeout", "9", "--",
                    "ls", "-la", "--color", "x y")
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stdout, b"out line\n")
        self.assertEqual(r.stderr, b"err line\n")
        self.assertEqual(self.last()["body"], {"cmd": "ls", "args": ["-la", "--color", "x y"],
                                               "envs": {"K": "V"}, "cwd": "/tmp", "timeout": 9})

    def test_exec_zero_and_json(self):
        self.api.route("POST", "/api/sandboxes/sbx_abc/exec/run", 200,
                       {"exitCode": 0, "stdout": "hi", "stderr": ""})
        r = self.oc("exec", "--buffered", "sbx_abc", "--", "echo", "hi")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"hi", b""))
        self.assertEqual(self.last()["body"], {"cmd": "echo", "args": ["hi"]})
        self.api.route("POST", "/api/sandboxes/sbx_abc/exec/run", 200,
                       {"exitCode": 7, "stdout": "a", "stderr": "b"})
        r = self.oc("exec", "--buffered", "sbx_abc", "--json", "--", "false")
        self.assertEqual(r.returncode, 7)
        self.assertEqual(json.loads(r.stdout), {"exitCode": 7, "stdout": "a", "stderr": "b"})

    def test_exec_truncation_warns(self):
        self.api.route("POST", "/api/sandboxes/sbx_abc/exec/run", 200,
                       {"exitCode": 0, "stdout": "x", "stderr": "", "stdoutTruncated": True})
        r = self.oc("exec", "--buffered", "sbx_abc", "--", "yes")
        self.assertIn(b"warning: the command's stdout was truncated", r.stderr)

    def test_exec_signal_exit_code(self):
        self.api.route("POST", "/api/sandboxes/sbx_abc/exec/run", 200,
                       {"exitCode": -9, "stdout": "", "stderr": ""})
        self.assertEqual(self.oc("exec", "--buffered", "sbx_abc", "--", "sleep", "9").returncode, 137)

    def test_exec_without_command_is_usage(self):
        r = self.oc("exec", "sbx_abc")
        self.assert_error(r, 2)

    def test_exec_on_missing_sandbox_is_4(self):
        self.api.route("POST", "/api/sandboxes/nope/exec/run", 404, {"error": "sandbox not found: nope"})
        r = self.oc("exec", "--buffered", "nope", "--", "true")
        self.assert_error(r, 4, "sandbox not found")

    def test_exec_streams_by_default_and_maps_a_refused_upgrade(self):
        # The fake speaks no WebSocket: a refused upgrade is an HTTP error
        # with the usual exit code; nothing falls back to exec/run.
        self.api.route("GET", "/api/sandboxes/nope/exec/stream", 404, {"error": "sandbox not found: nope"})
        r = self.oc("exec", "nope", "--", "true")
        self.assert_error(r, 4, "sandbox not found")
        self.assertEqual(self.last()["method"], "GET")

    def test_kill_and_alias(self):
        self.api.route("DELETE", "/api/sandboxes/sbx_abc", 204, None)
        for verb in (["kill"], ["sandbox", "delete"]):
            r = self.oc(*verb, "sbx_abc")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.last()["method"], "DELETE")
            self.assertEqual(self.last()["path"], "/api/sandboxes/sbx_abc")


class ConfigTest(OcTestCase):
    def write_config(self, doc, base=None):
        base = base or os.path.join(self.home, ".config")
        path = os.path.join(base, "opensandbox", "config")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(doc, f)
        os.chmod(path, 0o600)
        return path

    def test_file_is_used_when_no_flag_or_env(self):
        self.write_config({"apiUrl": self.api.url, "apiKey": "file-key"})
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["headers"]["x-api-key"], "file-key")

    def test_xdg_config_home_wins_over_home(self):
        xdg = os.path.join(self.home, "xdg")
        self.write_config({"apiUrl": self.api.url, "apiKey": "xdg-key"}, base=xdg)
        self.write_config({"apiUrl": "http://127.0.0.1:1", "apiKey": "home-key"})
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None,
                                                     XDG_CONFIG_HOME=xdg))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["headers"]["x-api-key"], "xdg-key")

    def test_env_beats_file_and_flag_beats_env(self):
        self.write_config({"apiUrl": "http://127.0.0.1:1", "apiKey": "file-key"})
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_KEY="env-key"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["headers"]["x-api-key"], "env-key")
        r = self.oc("project", "list", "--api-key", "flag-key", "--api-url", self.api.url,
                    env=self.env(OPENSANDBOX_API_KEY="env-key", OPENSANDBOX_API_URL="http://127.0.0.1:1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["headers"]["x-api-key"], "flag-key")

    def test_url_path_prefix_is_kept(self):
        self.api.route("GET", "/gateway/osb/api/projects", 200, [])
        r = self.oc("project", "list", "--api-url", self.api.url + "/gateway/osb/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["path"], "/gateway/osb/api/projects")

    def test_login_warning_printed_once(self):
        path = self.write_config({"apiUrl": self.api.url, "apiKey": "file-key"})
        os.chmod(path, 0o644)
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("login", "--api-key", "k", env=self.env(OPENSANDBOX_API_URL=None))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count(b"warning: config file"), 1)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_global_flags_before_the_verb(self):
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("--json", "--api-key", "flag-key", "project", "list")
        self.assertEqual(json.loads(r.stdout), [])
        self.assertEqual(self.last()["headers"]["x-api-key"], "flag-key")

    def test_default_url_and_sources_in_verbose(self):
        r = self.oc("project", "list", "--verbose",
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY="k"))
        self.assertIn(b"oc: api url http://127.0.0.1:8080 (from default)", r.stderr)
        self.assertIn(b"oc: api key set (from env OPENSANDBOX_API_KEY)", r.stderr)
        self.assertNotIn(b"oc: api key set (from env OPENSANDBOX_API_KEY)k", r.stderr)

    def test_broken_config_file_is_reported_without_content(self):
        path = os.path.join(self.home, ".config", "opensandbox", "config")
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write('{"apiKey": "leaky-key-value", oops')
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_KEY=None))
        self.assert_error(r, 2, "is not a JSON object")
        self.assertNotIn(b"leaky-key-value", r.stderr)

    def test_world_readable_config_warns(self):
        path = self.write_config({"apiUrl": self.api.url, "apiKey": "file-key"})
        os.chmod(path, 0o644)
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"warning: config file", r.stderr)


class LoginTest(OcTestCase):
    def config_path(self):
        return os.path.join(self.home, ".config", "opensandbox", "config")

    def test_login_verifies_and_writes_0600(self):
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("login", "--api-url", self.api.url, "--api-key", "new-key",
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last()["headers"]["x-api-key"], "new-key")
        st = os.stat(self.config_path())
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(self.config_path()) as f:
            self.assertEqual(json.load(f), {"apiUrl": self.api.url, "apiKey": "new-key"})
        self.assertNotIn(b"new-key", r.stdout + r.stderr)
        # The saved config now works on its own.
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_login_key_from_stdin(self):
        self.api.route("GET", "/api/projects", 200, [])
        r = self.oc("login", "--api-url", self.api.url, "--api-key-stdin", stdin=b"stdin-key\n",
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.config_path()) as f:
            self.assertEqual(json.load(f)["apiKey"], "stdin-key")

    def test_rejected_key_writes_nothing(self):
        self.api.route("GET", "/api/projects", 401, {"error": "invalid API key"})
        r = self.oc("login", "--api-url", self.api.url, "--api-key", "bad",
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assert_error(r, 5, "rejected the API key")
        self.assertFalse(os.path.exists(self.config_path()))

    def test_login_without_key_is_usage(self):
        r = self.oc("login", "--api-url", self.api.url,
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assert_error(r, 2, "--api-key")

    def test_no_verify_saves_offline(self):
        r = self.oc("login", "--api-url", "http://127.0.0.1:1", "--api-key", "k", "--no-verify",
                    env=self.env(OPENSANDBOX_API_URL=None, OPENSANDBOX_API_KEY=None))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.api.requests, [])
        self.assertTrue(os.path.exists(self.config_path()))

    def test_version(self):
        r = self.oc("version")
        self.assertRegex(r.stdout.decode(), r"^oc \d+\.\d+\.\d+\n$")
        self.assertIn("version", json.loads(self.oc("version", "--json").stdout))


class TlsTest(OcTestCase):
    """Real TLS: a self-signed server certificate made with the openssl CLI."""

    def setUp(self):
        super().setUp()
        self.certdir = tempfile.mkdtemp(prefix="oc-tls-")
        cert = os.path.join(self.certdir, "cert.pem")
        key = os.path.join(self.certdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=oc-test",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.tls_api = FakeApi(tls_context=context)
        self.cert = cert

    def tearDown(self):
        self.tls_api.close()
        shutil.rmtree(self.certdir, ignore_errors=True)
        super().tearDown()

    def test_trusted_certificate_works(self):
        self.tls_api.route("GET", "/api/projects", 200, [PROJECT])
        r = self.oc("project", "list", "--json",
                    env=self.env(OPENSANDBOX_API_URL=self.tls_api.url, SSL_CERT_FILE=self.cert))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [PROJECT])
        self.assertEqual(self.tls_api.requests[-1]["headers"]["x-api-key"], KEY)

    def test_untrusted_certificate_is_refused(self):
        self.tls_api.route("GET", "/api/projects", 200, [PROJECT])
        r = self.oc("project", "list",
                    env=self.env(OPENSANDBOX_API_URL=self.tls_api.url, SSL_CERT_FILE="/nonexistent"))
        self.assert_error(r, 1, "certificate verification failed")
        self.assertEqual(self.tls_api.requests, [])

    def test_name_mismatch_is_refused(self):
        # The certificate is for 127.0.0.1, not "localhost".
        url = self.tls_api.url.replace("127.0.0.1", "localhost")
        r = self.oc("project", "list", env=self.env(OPENSANDBOX_API_URL=url, SSL_CERT_FILE=self.cert))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.tls_api.requests, [])

    def test_ca_file_from_flag_env_or_config_is_trusted(self):
        self.tls_api.route("GET", "/api/projects", 200, [PROJECT])
        # SSL_CERT_FILE points nowhere: only the CA file can make it work.
        base = dict(OPENSANDBOX_API_URL=self.tls_api.url, SSL_CERT_FILE="/nonexistent")
        r = self.oc("project", "list", "--json", "--ca-file", self.cert, env=self.env(**base))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [PROJECT])
        r = self.oc("project", "list", "--json", env=self.env(OSB_CA_FILE=self.cert, **base))
        self.assertEqual(r.returncode, 0, r.stderr)
        config = os.path.join(self.home, ".config", "opensandbox", "config")
        os.makedirs(os.path.dirname(config))
        with open(config, "w") as f:
            json.dump({"caFile": self.cert}, f)
        os.chmod(config, 0o600)
        r = self.oc("project", "list", "--json", env=self.env(**base))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.tls_api.requests), 3)

    def test_ca_file_that_does_not_sign_the_server_is_refused(self):
        other_dir = tempfile.mkdtemp(prefix="oc-tls-other-")
        try:
            other = os.path.join(other_dir, "ca.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=other",
                            "-keyout", os.path.join(other_dir, "key.pem"), "-out", other],
                           check=True, capture_output=True)
            # The system store (here: the server's cert) is not consulted when
            # a CA file is given.
            r = self.oc("project", "list", "--ca-file", other,
                        env=self.env(OPENSANDBOX_API_URL=self.tls_api.url, SSL_CERT_FILE=self.cert))
            self.assert_error(r, 1, "certificate verification failed")
            r = self.oc("project", "list", "--ca-file", os.path.join(other_dir, "missing.pem"),
                        env=self.env(OPENSANDBOX_API_URL=self.tls_api.url))
            self.assert_error(r, 2, "--ca-file")
            self.assertEqual(self.tls_api.requests, [])
        finally:
            shutil.rmtree(other_dir, ignore_errors=True)


def non_loopback_ipv4():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


class PlainHttpSecretTest(OcTestCase):
    """A secret value never travels over plain HTTP to another host unless --insecure."""

    def test_secret_set_to_a_remote_http_url_is_refused_before_connecting(self):
        addr = non_loopback_ipv4()
        if addr is None:
            self.skipTest("no non-loopback IPv4 address")
        remote = FakeApi(host=addr)
        try:
            remote.route("PUT", "/api/projects/demo/secrets/OPENAI_KEY", 200,
                         {"name": "OPENAI_KEY", "allowedHosts": []})
            env = self.env(OPENSANDBOX_API_URL=remote.url)
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", stdin=SECRET.encode(), env=env)
            self.assert_error(r, 2, "refusing to send a secret value over plain HTTP")
            self.assertIn("--insecure", r.stderr.decode())
            self.assertNotIn(SECRET, r.stderr.decode())
            self.assertEqual(remote.requests, [])  # nothing was sent
            # Calls without a value still work over plain HTTP.
            remote.route("GET", "/api/projects", 200, [PROJECT])
            self.assertEqual(self.oc("project", "list", env=env).returncode, 0)
            # --insecure: the operator's explicit choice.
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", "--insecure",
                        stdin=SECRET.encode(), env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(remote.requests[-1]["body"]["value"], SECRET)
        finally:
            remote.close()

    def test_refusal_needs_no_server(self):
        # TEST-NET-1 and a documentation IPv6 address: nothing listens, and
        # the refusal comes before any connection attempt (no timeout).
        for url in ("http://192.0.2.77:9", "http://[2001:db8::1]:9", "http://osb.example.com"):
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", stdin=SECRET.encode(),
                        env=self.env(OPENSANDBOX_API_URL=url))
            self.assert_error(r, 2, "refusing to send a secret value over plain HTTP")

    def test_loopback_http_is_allowed(self):
        self.api.route("PUT", "/api/projects/demo/secrets/OPENAI_KEY", 200,
                       {"name": "OPENAI_KEY", "allowedHosts": []})
        for host in ("127.0.0.1", "localhost"):
            url = self.api.url.replace("127.0.0.1", host)
            r = self.oc("secret", "set", "demo", "OPENAI_KEY", "--from-stdin", stdin=SECRET.encode(),
                        env=self.env(OPENSANDBOX_API_URL=url))
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
