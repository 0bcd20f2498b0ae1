"""aws-sigv4 end to end: Debian's awscli (/usr/bin/aws) as the sandbox-side
client, configured with the sealed token as AWS_SECRET_ACCESS_KEY (and a
sealed AWS_SESSION_TOKEN), through the real `osb proxy`, against a local TLS
S3/STS-like upstream (tests/support/aws_upstream.py) that verifies every
signature with botocore's signer and the REAL key, and records whether it
would also verify with the token (it must never).

Covered: PutObject (small, and a multi-MiB body awscli sends with
UNSIGNED-PAYLOAD), GetObject, HeadObject, ListObjectsV2, STS
GetCallerIdentity (a query API: POST form, payload hash over the body the
proxy buffers), `aws s3 presign` fetched with curl, and an aws-chunked
STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload (every chunk re-signed).
Attacker side: the real key and session token are not in anything the
client receives (an upstream that echoes every header it got), the upstream
never sees a token signature, a token-signed request replayed with another
method or path, or 20 minutes later, is refused and never forwarded.

Environment: OSB_BIN, OSB_SOURCE_DIR (as proxy_integration_test.py).
"""
import datetime
import glob
import hashlib
import hmac
import http.client
import json
import os
import ssl
import subprocess
import sys
import unittest
from unittest import mock

OSB = os.environ.get("OSB_BIN", "build/osb")
SRC = os.environ.get("OSB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
from proxy_fixture import ProxyFixture, connect_tunnel  # noqa: E402

AWS = "/usr/bin/aws"  # Debian's awscli; /root/.pyenv/shims/aws may shadow it on PATH
AKID = "AKIAOSBTEST000000001"
REAL_KEY = "Rz9+REAL/secret/access/KEY/0123456789abcd"
REAL_SESSION = "IQoJb3JpZ2luX2VjEREAL-session-token/+=0123456789"
TOKEN = "osb_sealed_a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"        # AWS_SECRET_ACCESS_KEY
SESSION_TOKEN = "osb_sealed_b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"  # AWS_SESSION_TOKEN
SECRETS = [REAL_KEY, REAL_SESSION]


def aws_available():
    return os.path.exists(AWS) and os.path.exists(OSB)


@unittest.skipUnless(aws_available(), "needs /usr/bin/aws (apt-get install awscli) and the osb binary")
class SigV4Integration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = fx = ProxyFixture("osb_sigv4_it_")
        cls.tmp = t = fx.tmp
        cls.records, cls.audit = fx.records, fx.audit
        with open(os.path.join(t, "secret.json"), "w") as f:
            json.dump({"secretAccessKey": REAL_KEY, "token": TOKEN, "sessionToken": REAL_SESSION}, f)
        up = fx.start_upstream("aws_upstream.py", ["--secret-file", os.path.join(t, "secret.json")],
                               keep_stderr=True)
        cls.port = up["port"]
        sessions = [{"source": "127.0.0.1", "sandboxId": "sbaws", "projectId": "p1",
                     "allowlist": ["s3.test", "sts.test", "other.test"],
                     "secrets": [{"name": "AWS", "kind": "aws-sigv4", "token": TOKEN, "auxToken": SESSION_TOKEN,
                                  "allowedHosts": ["s3.test", "sts.test"],
                                  "material": {"accessKeyId": AKID, "secretAccessKey": REAL_KEY,
                                               "sessionToken": REAL_SESSION}}]}]
        args = ["--listen", "127.0.0.1:0", "--allow-private", "127.0.0.3/32"]
        for name in ["s3.test", "sts.test", "other.test"]:
            args += ["--resolve", name + "=127.0.0.3"]
        ready = fx.start_proxy(OSB, sessions, args)
        cls.pp = ready["listen"][0]
        cls.ca = ready["caCert"]
        with open(os.path.join(t, "config"), "w") as f:
            f.write("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n")
        # What the sandbox sees (the worker's per-kind env mapping for aws-sigv4).
        cls.env = {"PATH": "/usr/bin:/bin", "HOME": t, "LANG": "C.UTF-8",
                   "AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": TOKEN, "AWS_SESSION_TOKEN": SESSION_TOKEN,
                   "AWS_CONFIG_FILE": os.path.join(t, "config"),
                   "AWS_SHARED_CREDENTIALS_FILE": os.path.join(t, "no-credentials"),
                   "AWS_CA_BUNDLE": cls.ca, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
                   "HTTPS_PROXY": "http://127.0.0.1:%d" % cls.pp, "NO_PROXY": ""}
        cls.s3 = "https://s3.test:%d" % cls.port
        cls.sts = "https://sts.test:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.fx.stop(secrets=SECRETS, check_exit=False)

    # ---- helpers --------------------------------------------------------
    def assertNoSecret(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        for v in SECRETS:
            self.assertNotIn(v.encode(), data, "a real secret reached the sandbox side")

    def aws(self, *args, ok=True, debug=False):
        cmd = [AWS] + list(args) + (["--debug"] if debug else [])
        r = subprocess.run(cmd, env=self.env, capture_output=True, timeout=180)
        self.assertNoSecret(r.stdout)
        self.assertNoSecret(r.stderr)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace")[-3000:])
        return r

    def all_records(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.records, "*.json"))):
            with open(path) as f:
                out.append(json.load(f))
        return out

    def new_records(self, before):
        return self.all_records()[before:]

    def assertUpstreamSawOnlyRealSignatures(self, recs):
        self.assertTrue(recs, "nothing reached the upstream")
        for r in recs:
            self.assertTrue(r.get("realOk"), "upstream got a request not signed with the real key: %s" % r["target"])
            self.assertFalse(r.get("tokenOk"), "upstream got a token-signed request")
            self.assertTrue(r.get("payloadOk"), r["target"])
            self.assertEqual(r.get("securityToken"), REAL_SESSION)

    def tls_via_proxy(self, host):
        status, s = connect_tunnel(self.pp, host, self.port, timeout=30)
        self.assertEqual(status, 200)
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx.wrap_socket(s, server_hostname=host)

    def raw(self, host, method, target, headers, body=b""):
        """One request over CONNECT; returns (status, headers, body)."""
        conn = http.client.HTTPSConnection(host, self.port)
        conn.sock = self.tls_via_proxy(host)
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self.assertNoSecret(data)
        self.assertNoSecret(str(r.getheaders()))
        return r.status, r.getheaders(), data

    def botocore_signed(self, method, path, when=None, body=b"", akid=AKID, secret=TOKEN, headers=None):
        """A request signed by botocore as the sandbox would (token as key)."""
        import botocore.auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        req = AWSRequest(method=method, url="%s%s" % (self.s3, path), data=body, headers=headers or {})
        signer = botocore.auth.S3SigV4Auth(Credentials(akid, secret, SESSION_TOKEN), "s3", "us-east-1")
        now = when or datetime.datetime.utcnow()
        with mock.patch("botocore.auth.get_current_datetime", return_value=now):
            signer.add_auth(req)
        p = req.prepare()
        hdrs = [("Host", "s3.test:%d" % self.port)] + [(k, v if isinstance(v, str) else v.decode())
                                                       for k, v in p.headers.items()]
        return hdrs

    # ---- awscli ---------------------------------------------------------
    def test_01_put_get_list_with_awscli(self):
        before = len(self.all_records())
        small = os.path.join(self.tmp, "small.txt")
        with open(small, "wb") as f:
            f.write(b"hello from the sandbox\n")
        self.aws("s3api", "put-object", "--bucket", "b", "--key", "dir/small.txt", "--body", small,
                 "--endpoint-url", self.s3)
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(6 << 20))
        self.aws("s3api", "put-object", "--bucket", "b", "--key", "dir/big.bin", "--body", big,
                 "--endpoint-url", self.s3)
        # `aws s3 cp` from stdin: s3transfer's streaming upload path.
        with open(big, "rb") as f:
            r = subprocess.run([AWS, "s3", "cp", "-", "s3://b/dir/stdin.bin", "--endpoint-url", self.s3],
                               env=self.env, stdin=f, capture_output=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace")[-3000:])
        self.assertNoSecret(r.stdout + r.stderr)
        out = os.path.join(self.tmp, "out.bin")
        self.aws("s3api", "get-object", "--bucket", "b", "--key", "dir/big.bin", out, "--endpoint-url", self.s3)
        with open(out, "rb") as f, open(big, "rb") as g:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(g.read()).hexdigest())
        r = self.aws("s3api", "list-objects-v2", "--bucket", "b", "--prefix", "dir/", "--endpoint-url", self.s3)
        keys = sorted(o["Key"] for o in json.loads(r.stdout)["Contents"])
        self.assertEqual(keys, ["dir/big.bin", "dir/small.txt", "dir/stdin.bin"])
        self.aws("s3api", "head-object", "--bucket", "b", "--key", "dir/small.txt", "--endpoint-url", self.s3)
        recs = self.new_records(before)
        self.assertUpstreamSawOnlyRealSignatures(recs)
        puts = [r for r in recs if r["method"] == "PUT"]
        self.assertTrue(any(r["bodyLength"] >= 6 << 20 for r in puts))

    def test_02_sts_query_api_signs_the_body_hash(self):
        before = len(self.all_records())
        r = self.aws("sts", "get-caller-identity", "--endpoint-url", self.sts)
        self.assertEqual(json.loads(r.stdout)["Account"], "123456789012")
        recs = self.new_records(before)
        self.assertUpstreamSawOnlyRealSignatures(recs)
        self.assertEqual(recs[-1]["service"], "sts")
        self.assertEqual(recs[-1]["method"], "POST")

    def test_03_presigned_url_fetched_with_curl(self):
        small = os.path.join(self.tmp, "p.txt")
        with open(small, "wb") as f:
            f.write(b"presigned content\n")
        self.aws("s3api", "put-object", "--bucket", "b", "--key", "p.txt", "--body", small,
                 "--endpoint-url", self.s3)
        r = self.aws("s3", "presign", "s3://b/p.txt", "--expires-in", "600", "--endpoint-url", self.s3)
        url = r.stdout.decode().strip()
        self.assertIn("X-Amz-Signature=", url)
        self.assertIn("X-Amz-Security-Token=" + SESSION_TOKEN, url)
        before = len(self.all_records())
        c = subprocess.run(["curl", "-sS", "--fail", "--proxy", "http://127.0.0.1:%d" % self.pp, "--cacert",
                            self.ca, url], capture_output=True, timeout=60)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(c.stdout, b"presigned content\n")
        recs = self.new_records(before)
        self.assertUpstreamSawOnlyRealSignatures(recs)
        self.assertEqual(recs[-1]["form"], "query")

    def test_04_streaming_aws_chunked_upload(self):
        """STREAMING-AWS4-HMAC-SHA256-PAYLOAD (what the Java/Go SDKs send):
        the seed and every chunk signature are re-signed as the body streams."""
        chunk = 64 << 10
        data = os.urandom(3 * chunk + 12345)
        now = datetime.datetime.utcnow()
        amz = now.strftime("%Y%m%dT%H%M%SZ")
        # S3SigV4Auth would rewrite X-Amz-Content-SHA256 to a payload hash:
        # SigV4Auth keeps the header (botocore does not stream-sign; the
        # chunk chain below is computed here with hmac).
        import botocore.auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        req = AWSRequest(method="PUT", url=self.s3 + "/b/chunked.bin", headers={
            "Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
            "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
        # The Content-Length of the aws-chunked body is signed too.
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
        enc_len = sum(len(b"%x;chunk-signature=" % len(p)) + 64 + 2 + len(p) + 2 for p in pieces)
        req.headers["Content-Length"] = str(enc_len)
        with mock.patch("botocore.auth.get_current_datetime", return_value=now):
            botocore.auth.SigV4Auth(Credentials(AKID, TOKEN, SESSION_TOKEN), "s3", "us-east-1").add_auth(req)
        p = req.prepare()
        hdrs = [("Host", "s3.test:%d" % self.port)] + list(p.headers.items())
        seed = dict(hdrs)["Authorization"].split("Signature=")[1]
        key = ("AWS4" + TOKEN).encode()
        for part in (amz[:8], "us-east-1", "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        scope = amz[:8] + "/us-east-1/s3/aws4_request"
        body, prev = b"", seed
        for piece in pieces:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, hashlib.sha256(b"").hexdigest(),
                             hashlib.sha256(piece).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            body += b"%x;chunk-signature=%s\r\n" % (len(piece), prev.encode()) + piece + b"\r\n"
        self.assertEqual(len(body), enc_len)
        before = len(self.all_records())
        status, _, resp = self.raw("s3.test", "PUT", "/b/chunked.bin", hdrs, body)
        self.assertEqual(status, 200, resp)
        recs = self.new_records(before)
        self.assertUpstreamSawOnlyRealSignatures(recs)
        self.assertTrue(recs[-1].get("chunked"))
        self.assertEqual(recs[-1]["dataSha256"], hashlib.sha256(data).hexdigest())
        # A tampered chunk is never completed upstream.
        bad = bytearray(body)
        bad[len(body) // 2] ^= 1
        before = len(self.all_records())
        try:
            status, _, _ = self.raw("s3.test", "PUT", "/b/chunked2.bin", hdrs, bytes(bad))
        except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError):
            status = None
        self.assertNotEqual(status, 200)
        for r in self.new_records(before):
            self.assertFalse(r.get("tokenOk"))

    # ---- the attacker ---------------------------------------------------
    def test_10_echoing_upstream_reveals_no_key(self):
        out = os.path.join(self.tmp, "echo.json")
        r = self.aws("s3api", "get-object", "--bucket", "b", "--key", "echo", out, "--endpoint-url", self.s3,
                     debug=True)  # --debug prints every response header (x-echo-*) to stderr
        with open(out, "rb") as f:
            echoed = f.read()
        self.assertNoSecret(echoed)
        got = json.loads(echoed)
        # The upstream got the real session token; the sandbox reads it back as its token.
        self.assertEqual(got.get("X-Amz-Security-Token") or got.get("x-amz-security-token"), SESSION_TOKEN)
        self.assertIn(b"x-echo-security-token", r.stderr.lower())

    def test_11_replay_for_another_method_or_path_is_refused(self):
        small = os.path.join(self.tmp, "replay.txt")
        with open(small, "wb") as f:
            f.write(b"replay me\n")
        self.aws("s3api", "put-object", "--bucket", "b", "--key", "dir/small.txt", "--body", small,
                 "--endpoint-url", self.s3)
        hdrs = self.botocore_signed("GET", "/b/dir/small.txt")
        status, _, _ = self.raw("s3.test", "GET", "/b/dir/small.txt", hdrs)
        self.assertEqual(status, 200)
        before = len(self.all_records())
        for method, path in (("PUT", "/b/dir/small.txt"), ("DELETE", "/b/dir/small.txt"),
                             ("GET", "/b/dir/big.bin"), ("GET", "/b/dir/small.txt?versionId=1")):
            status, _, body = self.raw("s3.test", method, path, hdrs)
            self.assertEqual(status, 403, (method, path, body))
            self.assertIn(b"does not verify", body)
        self.assertEqual(self.new_records(before), [], "a replayed request reached the upstream")

    def test_12_stale_request_is_refused(self):
        then = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        hdrs = self.botocore_signed("GET", "/b/dir/small.txt", when=then)
        before = len(self.all_records())
        status, _, body = self.raw("s3.test", "GET", "/b/dir/small.txt", hdrs)
        self.assertEqual(status, 403)
        self.assertIn(b"15 minutes", body)
        self.assertEqual(self.new_records(before), [])

    def test_13_token_signature_never_leaves(self):
        before = len(self.all_records())
        # Under another access key id: still the token's signature -> refused.
        hdrs = self.botocore_signed("GET", "/b/dir/small.txt", akid="AKIAOTHER00000000000")
        status, _, _ = self.raw("s3.test", "GET", "/b/dir/small.txt", hdrs)
        self.assertEqual(status, 403)
        # Toward a host the secret may not reach: refused, not forwarded sealed-signed.
        hdrs = self.botocore_signed("GET", "/b/dir/small.txt")
        hdrs = [(k, "other.test:%d" % self.port) if k == "Host" else (k, v) for k, v in hdrs]
        status, _, _ = self.raw("other.test", "GET", "/b/dir/small.txt", hdrs)
        self.assertEqual(status, 403)
        self.assertEqual(self.new_records(before), [])
        for r in self.all_records():
            self.assertFalse(r.get("tokenOk"), "the upstream saw a token-signed request")

    def test_14_audit_names_the_secret(self):
        self.aws("s3api", "head-object", "--bucket", "b", "--key", "dir/small.txt", "--endpoint-url", self.s3)
        with open(self.audit) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertTrue(any("AWS" in (l.get("secrets") or []) for l in lines), lines[-3:])
        refused = [l for l in lines if l.get("status") == 403]
        self.assertTrue(any("does not verify" in l.get("reason", "") for l in refused) or not refused)


if __name__ == "__main__":
    unittest.main()
