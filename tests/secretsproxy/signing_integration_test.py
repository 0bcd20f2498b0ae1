"""Signing kinds (issue 16) through the real `osb proxy` binary, real curl,
and a real TLS upstream (tests/support/upstream.py) whose receivers verify
with Python's own `hmac` and whose OAuth token endpoint counts refreshes
(tests/support/signing_endpoints.py).

Each test also plays the attacker: the HMAC key, the client secret, the
refresh tokens and the access tokens never reach what the sandbox receives
(responses echoing headers, the token endpoint's answers, errors), a
signature seen for one request does not verify for another method or path,
and an echoed access token comes back as the sandbox's token.

Environment: OSB_BIN (the osb binary), OSB_SOURCE_DIR (repository root).
"""
import json
import os
import re
import ssl
import subprocess
import sys
import time
import unittest
import urllib.request

OSB = os.environ.get("OSB_BIN", "build/osb")
SRC = os.environ.get("OSB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
from proxy_fixture import ProxyFixture  # noqa: E402

T_SIG = "osb_sealed_51515151515151515151515151515151"
T_GRAPH1 = "osb_sealed_6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a"
T_GRAPH2 = "osb_sealed_6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b"
T_BROKEN = "osb_sealed_6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c"
T_SEAL = "osb_sealed_7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a"
T_REFUSE = "osb_sealed_7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b"
HMAC_KEY = "whsec-REAL-hmac-key-0c5e9a"
CLIENT_SECRET = "client-REAL-secret-77d1"
REFRESH = "refresh-REAL-token-a3f0"
V_SEAL = "sealed-rule-REAL-value-1111"
V_REFUSE = "refused-rule-REAL-value-2222"
SECRETS = [HMAC_KEY, CLIENT_SECRET, REFRESH, V_SEAL, V_REFUSE]
# Issued by the token endpoint: "at-<n>-<hex>", "rt-<n>-<hex>".
ISSUED = re.compile(r"\b(at|rt)-\d+-[0-9a-f]{16}\b")
RULES = [{"host": "api.test", "methods": ["POST"], "pathPrefix": "/echo/allowed"}]


class SigningIntegration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = fx = ProxyFixture("osb_signing_it_")
        cls.tmp, cls.audit = fx.tmp, fx.audit
        env = dict(os.environ, OSB_UPSTREAM_HMAC_KEY=HMAC_KEY, OSB_UPSTREAM_OAUTH_CLIENT_ID="client-1",
                   OSB_UPSTREAM_OAUTH_CLIENT_SECRET=CLIENT_SECRET, OSB_UPSTREAM_OAUTH_REFRESH=REFRESH)
        up = fx.start_upstream(env=env)
        cls.up_port, cls.up_ca = up["port"], up["ca"]
        endpoint = "https://auth.api.test:%d/oauth/token" % cls.up_port
        oauth = {"tokenEndpoint": endpoint, "clientId": "client-1", "clientSecret": CLIENT_SECRET,
                 "refreshToken": REFRESH, "scopes": ["read", "write"]}
        hmac_material = {"key": HMAC_KEY, "header": "X-Signature", "prefix": "sha256=",
                         "message": "{method}\n{path}\n{timestamp}\n{body}", "timestampHeader": "X-Timestamp"}
        allow = ["api.test", "other.test"]
        sessions = [
            {"source": "127.0.0.1", "sandboxId": "sb1", "projectId": "p1", "allowlist": allow, "secrets": [
                {"name": "SIG", "token": T_SIG, "kind": "hmac", "material": hmac_material,
                 "allowedHosts": ["api.test"]},
                {"name": "GRAPH", "token": T_GRAPH1, "kind": "oauth2-refresh", "material": oauth,
                 "allowedHosts": ["api.test"]},
                {"name": "SEALED_RULE", "token": T_SEAL, "value": V_SEAL, "allowedHosts": ["api.test"],
                 "allowedRequests": RULES},
                {"name": "REFUSED_RULE", "token": T_REFUSE, "value": V_REFUSE, "allowedHosts": ["api.test"],
                 "allowedRequests": RULES, "onDisallowedRequest": "refuse"},
            ]},
            {"source": "127.0.0.2", "sandboxId": "sb2", "projectId": "p1", "allowlist": allow, "secrets": [
                {"name": "GRAPH", "token": T_GRAPH2, "kind": "oauth2-refresh", "material": oauth,
                 "allowedHosts": ["api.test"]}]},
            {"source": "127.0.0.4", "sandboxId": "sb3", "projectId": "p2", "allowlist": allow, "secrets": [
                {"name": "GRAPH", "token": T_BROKEN, "kind": "oauth2-refresh",
                 "material": dict(oauth, refreshToken="revoked-REAL-refresh"), "allowedHosts": ["api.test"]}]},
        ]
        args = ["--listen", "127.0.0.1:0", "--transparent-listen", "127.0.0.1:0",
                "--transparent-http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--allow-private", "127.0.0.3/32"]
        for name in ["api.test", "other.test", "auth.api.test"]:
            args += ["--resolve", name + "=127.0.0.3"]
        ready = fx.start_proxy(OSB, sessions, args)
        cls.pp = ready["listen"][0]
        cls.ca = ready["caCert"]

    @classmethod
    def tearDownClass(cls):
        # Issued access/refresh tokens are secrets too.
        cls.fx.stop(secrets=SECRETS, patterns=[ISSUED])

    # ---- helpers --------------------------------------------------------
    def assertNothingSecret(self, data):
        text = data.decode("latin-1") if isinstance(data, bytes) else data
        for v in SECRETS:
            self.assertNotIn(v, text, "a secret reached the sandbox side")
        self.assertIsNone(ISSUED.search(text), "an access or refresh token reached the sandbox side")

    def curl(self, path, *args, source="127.0.0.1", host="api.test"):
        """curl through the explicit proxy; returns (status, headers+body text)."""
        url = "https://%s:%d%s" % (host, self.up_port, path)
        cmd = ["curl", "-sS", "-i", "--suppress-connect-headers", "--max-time", "60", "--interface", source, "--cacert", self.ca,
               "-x", "http://127.0.0.1:%d" % self.pp, url] + list(args)
        r = subprocess.run(cmd, capture_output=True)
        out = (r.stdout + r.stderr).decode("latin-1")
        self.assertNothingSecret(out)
        self.assertEqual(r.returncode, 0, out)
        status = int(out.split(" ", 2)[1]) if out.startswith("HTTP/") else 0
        return status, out

    def received(self, target):
        """The upstream's records of requests for exactly this target."""
        records = os.path.join(self.tmp, "records")
        out = []
        for name in sorted(os.listdir(records)):
            if name.endswith(".json"):
                with open(os.path.join(records, name)) as f:
                    rec = json.load(f)
                if rec.get("target") == target:
                    out.append(rec)
        return out

    @staticmethod
    def body_json(out):
        return json.loads(out.split("\r\n\r\n", 1)[1])

    def upstream_stats(self):
        """Straight from the upstream (test side, not through the proxy)."""
        ctx = ssl.create_default_context(cafile=self.up_ca)
        req = urllib.request.Request("https://127.0.0.3:%d/oauth/stats" % self.up_port)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return json.loads(r.read())

    def audit_lines(self):
        with open(self.audit) as f:
            return [json.loads(l) for l in f if l.strip()]

    def audit_wait(self, pred, deadline=10.0):
        """The proxy writes a request's audit line just after answering: poll."""
        end = time.monotonic() + deadline
        while True:
            lines = self.audit_lines()
            if any(pred(l) for l in lines):
                return
            if time.monotonic() > end:
                self.fail("no matching audit line in %r" % lines[-5:])
            time.sleep(0.02)

    # ---- hmac -----------------------------------------------------------
    def test_hmac_request_verifies_with_python_hmac_and_the_key_never_shows(self):
        status, out = self.curl("/hmac/orders", "-X", "POST", "-H", "X-Timestamp: 1700000000",
                                "-H", "X-Signature: " + T_SIG, "--data-binary", '{"amount": 42}')
        self.assertEqual(status, 200, out)
        doc = self.body_json(out)
        self.assertTrue(doc["verified"])
        self.assertTrue(doc["signature"].startswith("sha256="))

    def test_hmac_signature_seen_for_one_request_does_not_verify_for_another(self):
        status, out = self.curl("/hmac/orders", "-X", "POST", "-H", "X-Timestamp: 1700000001",
                                "-H", "X-Signature: " + T_SIG, "--data-binary", "a=1")
        self.assertEqual(status, 200, out)
        seen = self.body_json(out)["signature"]  # the upstream echoed the real signature
        for method, path in (("DELETE", "/hmac/orders"), ("POST", "/hmac/refunds")):
            status, out = self.curl(path, "-X", method, "-H", "X-Timestamp: 1700000001",
                                    "-H", "X-Signature: " + seen, "--data-binary", "a=1")
            self.assertEqual(status, 401, out)
            self.assertFalse(self.body_json(out)["verified"])

    def test_hmac_token_toward_a_host_not_allowed_passes_sealed(self):
        status, out = self.curl("/hmac/orders", "-X", "POST", "-H", "X-Timestamp: 1", "-H", "X-Signature: " + T_SIG,
                                "--data-binary", "x", host="other.test")
        self.assertEqual(status, 401, out)
        self.assertEqual(self.body_json(out)["signature"], T_SIG)

    # ---- oauth2-refresh -------------------------------------------------
    def test_oauth_one_refresh_for_a_project_shared_by_two_sandboxes_and_echo_scrubbed(self):
        for _ in range(3):
            for source, token in (("127.0.0.1", T_GRAPH1), ("127.0.0.2", T_GRAPH2)):
                status, out = self.curl("/oauth/api/me", "-H", "Authorization: Bearer " + token, source=source)
                self.assertEqual(status, 200, out)
                # The upstream echoed the access token it got: the sandbox sees its own token.
                self.assertEqual(self.body_json(out)["authorization"], "Bearer " + token)
                self.assertIn("X-Echo-Authorization: Bearer " + token, out)
        stats = self.upstream_stats()
        self.assertEqual(stats["refreshes"], 1, "one refresh per expiry per project, not per request")
        self.assertEqual(stats["lastForm"].get("scope"), "read write")

    def test_oauth_refresh_error_is_502_audited_and_shows_nothing_of_the_endpoint(self):
        status, out = self.curl("/oauth/api/me", "-H", "Authorization: Bearer " + T_BROKEN, source="127.0.0.4")
        self.assertEqual(status, 502, out)
        self.assertNotIn("revoked-REAL-refresh", out)
        self.assertNotIn("invalid_grant", out)
        self.audit_wait(lambda l: l.get("sandbox") == "sb3" and "token endpoint answered 400" in json.dumps(l))
        with open(self.audit) as f:
            self.assertNotIn("revoked-REAL-refresh", f.read())

    # ---- allowedRequests ------------------------------------------------
    def test_allowed_requests_seal_outside_the_rules_and_audit_the_rule(self):
        status, out = self.curl("/echo/allowed", "-X", "POST", "-H", "X-Key: " + T_SEAL, "--data-binary", "{}")
        self.assertEqual(status, 200, out)
        self.assertIn(T_SEAL, out)  # the echo of the value came back as the token
        status, out = self.curl("/echo/other", "-X", "POST", "-H", "X-Key: " + T_SEAL, "--data-binary", "{}")
        self.assertEqual(status, 200, out)
        got = {k.lower(): v for k, v in self.body_json(out)["headers"]}
        self.assertEqual(got["x-key"], T_SEAL)
        self.assertNotIn(V_SEAL, json.dumps(self.received("/echo/other")))
        self.audit_wait(lambda l: "request_not_allowed (allowedRequests: POST api.test/echo/allowed)" in json.dumps(l))

    def test_allowed_requests_odd_spellings_of_the_path_stay_outside_the_rule(self):
        # An upstream that normalizes "/echo/allowed/../other" serves /echo/other:
        # the prefix must not be satisfied by the spelling alone.
        for path in ["/echo/allowed/../other", "/echo/allowed/%2e%2e/other", "/echo/allowed/..;/other",
                     "/echo/allowed%2f..%2fother"]:
            status, out = self.curl(path, "--path-as-is", "-X", "POST", "-H", "X-Key: " + T_SEAL,
                                    "--data-binary", "{}")
            self.assertEqual(status, 200, out)
            # What the upstream received (the echo itself would be scrubbed on the way back).
            received = self.received(path)
            self.assertTrue(received, path)
            self.assertNotIn(V_SEAL, json.dumps(received), path)
            self.assertIn(T_SEAL, json.dumps(received), path)
            status, out = self.curl(path, "--path-as-is", "-X", "POST", "-H", "X-Key: " + T_REFUSE)
            self.assertEqual(status, 403, path + "\n" + out)

    def test_allowed_requests_refuse_with_403_and_nothing_forwarded(self):
        records = os.path.join(self.tmp, "records")
        before = len(os.listdir(records))
        status, out = self.curl("/echo/other", "-H", "X-Key: " + T_REFUSE)
        self.assertEqual(status, 403, out)
        self.assertIn("REFUSED_RULE", out)
        self.assertEqual(len(os.listdir(records)), before, "a refused request reached the upstream")


if __name__ == "__main__":
    unittest.main()
