#!/usr/bin/env python3
"""A small S3- and STS-like TLS server that verifies AWS SigV4 with
botocore's signer and the REAL secret access key, for the aws-sigv4 tests.

Every request is checked twice: with the real key (it must verify, else
403 SignatureDoesNotMatch) and with the sandbox's sealed token (it must NOT
verify: a token signature never reaches the upstream). Both verdicts, the
signature and the x-amz-security-token seen are recorded (one JSON file per
request in --record-dir), so a test can assert what the upstream saw.

Payloads: a hex x-amz-content-sha256 is checked against the body;
STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies (aws-chunked) are decoded and
every chunk signature in the chain is verified with the real key;
STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies are decoded; UNSIGNED-PAYLOAD is
taken as is.

API (path-style S3): PUT /bucket/key, GET|HEAD /bucket/key,
GET /bucket?list-type=2[&prefix=..], POST / Action=GetCallerIdentity (STS).
Every response carries x-echo-authorization and x-echo-security-token (the
values the upstream received), and GET /bucket/echo returns all request
headers as JSON: an upstream that reflects what it got, for the attacker
tests.
"""
import argparse
import hashlib
import hmac
import json
import os
import socket
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream import Recorder, ensure_certs  # noqa: E402


class Verifier(botocore.auth.SigV4Auth):
    """botocore's canonicalisation over exactly the signed headers."""

    def __init__(self, creds, service, region, signed):
        super().__init__(creds, service, region)
        self._signed = signed

    def _normalize_url_path(self, path):
        return path if self._service_name == "s3" else super()._normalize_url_path(path)

    def headers_to_sign(self, request):
        m = botocore.awsrequest.HTTPHeaders()
        for name in self._signed:
            for k, v in request.headers.items():
                if k.lower() == name:
                    m[name] = v
        return m


def parse_auth(method, target, headers):
    """-> dict(form, akid, date, region, service, signed, signature, amz_date, url_target) or None."""
    auth = headers.get("authorization", "")
    path, _, query = target.partition("?")
    if auth.startswith("AWS4-HMAC-SHA256 "):
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, date, region, service, _ = parts["Credential"].split("/")
        return {"form": "header", "akid": akid, "region": region, "service": service,
                "signed": parts["SignedHeaders"].split(";"), "signature": parts["Signature"],
                "amz_date": headers.get("x-amz-date", ""), "target": target}
    if "X-Amz-Signature=" in query:
        pairs = [p for p in query.split("&") if p]
        q = {k: urllib.parse.unquote(v) for k, _, v in (p.partition("=") for p in pairs)}
        akid, date, region, service, _ = q["X-Amz-Credential"].split("/")
        rest = "&".join(p for p in pairs if not p.startswith("X-Amz-Signature="))
        return {"form": "query", "akid": akid, "region": region, "service": service,
                "signed": q["X-Amz-SignedHeaders"].split(";"), "signature": q["X-Amz-Signature"],
                "amz_date": q["X-Amz-Date"], "target": path + "?" + rest}
    return None


def signature(a, method, headers, body, secret):
    hdrs = {k: v for k, v in headers.items() if k.lower() in a["signed"]}
    req = AWSRequest(method=method, url="https://" + headers.get("host", "x") + a["target"], headers=hdrs,
                     data=body)
    req.context["timestamp"] = a["amz_date"]
    v = Verifier(Credentials(a["akid"], secret), a["service"], a["region"], a["signed"])
    if a["form"] == "query" and a["service"] == "s3":
        v.payload = lambda request: botocore.auth.UNSIGNED_PAYLOAD
    if a["form"] == "query":
        # The canonical query is over the X-Amz-* parameters too (already in the URL).
        pass
    cr = v.canonical_request(req)
    return v.signature(v.string_to_sign(req, cr), req)


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def decode_chunked(a, body, secret, signed):
    """aws-chunked -> (data, ok). With signed, each chunk's signature is checked."""
    out = b""
    prev = a["signature"]
    date = a["amz_date"]
    scope = "/".join([date[:8], a["region"], a["service"], "aws4_request"])
    key = signing_key(secret, date[:8], a["region"], a["service"])
    pos = 0
    while True:
        nl = body.index(b"\r\n", pos)
        line = body[pos:nl].decode()
        size_s, _, ext = line.partition(";")
        size = int(size_s, 16)
        data = body[nl + 2:nl + 2 + size]
        pos = nl + 2 + size
        if signed:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, prev, hashlib.sha256(b"").hexdigest(),
                             hashlib.sha256(data).hexdigest()])
            want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            if ext != "chunk-signature=" + want:
                return out, False
            prev = want
        out += data
        if size == 0:
            return out, True
        if body[pos:pos + 2] != b"\r\n":
            return out, False
        pos += 2


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", ctype="application/xml", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-echo-authorization", self.headers.get("authorization", ""))
        self.send_header("x-echo-security-token", self.headers.get("x-amz-security-token", ""))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        srv = self.server
        headers = {k.lower(): v for k, v in self.headers.items()}
        n = int(headers.get("content-length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        a = parse_auth(self.command, self.path, headers)
        rec = {"method": self.command, "target": self.path, "headers": list(self.headers.items()),
               "bodyLength": len(body), "bodySha256": hashlib.sha256(body).hexdigest()}
        real_ok = token_ok = False
        if a:
            real_ok = signature(a, self.command, headers, body, srv.real) == a["signature"]
            token_ok = signature(a, self.command, headers, body, srv.token) == a["signature"]
            rec.update({"form": a["form"], "signature": a["signature"], "service": a["service"]})
        payload = headers.get("x-amz-content-sha256", "")
        data, payload_ok = body, True
        if payload == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
            data, payload_ok = decode_chunked(a, body, srv.real, True) if a else (b"", False)
            rec["chunked"] = True
        elif payload == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
            data, payload_ok = decode_chunked(a, body, srv.real, False) if a else (b"", False)
        elif len(payload) == 64:
            payload_ok = hashlib.sha256(body).hexdigest() == payload
        rec.update({"realOk": real_ok, "tokenOk": token_ok, "payloadOk": payload_ok,
                    "securityToken": headers.get("x-amz-security-token",
                                                 urllib.parse.parse_qs(self.path.partition("?")[2]).get(
                                                     "X-Amz-Security-Token", [""])[0]),
                    "dataLength": len(data), "dataSha256": hashlib.sha256(data).hexdigest()})
        srv.recorder.write(rec)
        if not a:
            return self.reply(403, b"<Error><Code>AccessDenied</Code></Error>")
        if not real_ok or not payload_ok:
            return self.reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        if srv.session and rec["securityToken"] != srv.session:
            return self.reply(403, b"<Error><Code>InvalidToken</Code></Error>")
        path, _, query = self.path.partition("?")
        if a["service"] == "sts":
            form = urllib.parse.parse_qs(body.decode()) if self.command == "POST" else urllib.parse.parse_qs(query)
            if form.get("Action") == ["GetCallerIdentity"]:
                xml = ("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                       "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/osb-test</Arn>"
                       "<UserId>%s</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
                       "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
                       "</GetCallerIdentityResponse>" % a["akid"])
                return self.reply(200, xml.encode(), "text/xml")
            return self.reply(400, b"<Error><Code>InvalidAction</Code></Error>")
        parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
        bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
        if self.command == "PUT" and key:
            with srv.lock:
                srv.objects[(bucket, key)] = data
            return self.reply(200, b"", extra={"ETag": '"%s"' % hashlib.md5(data).hexdigest()})
        if self.command in ("GET", "HEAD") and key == "echo":
            return self.reply(200, json.dumps(dict(self.headers.items())).encode(), "application/json")
        if self.command in ("GET", "HEAD") and key:
            with srv.lock:
                obj = srv.objects.get((bucket, key))
            if obj is None:
                return self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return self.reply(200, obj, "application/octet-stream",
                              {"ETag": '"%s"' % hashlib.md5(obj).hexdigest()})
        if self.command == "GET" and not key:
            q = urllib.parse.parse_qs(query)
            prefix = q.get("prefix", [""])[0]
            with srv.lock:
                keys = sorted(k for (b, k) in srv.objects if b == bucket and k.startswith(prefix))
            items = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>\"x\"</ETag>"
                            "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
                            "<StorageClass>STANDARD</StorageClass></Contents>"
                            % (k, len(srv.objects[(bucket, k)])) for k in keys)
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
                   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name><Prefix>%s</Prefix>"
                   "<KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>%s"
                   "</ListBucketResult>" % (bucket, prefix, len(keys), items))
            return self.reply(200, xml.encode())
        return self.reply(405, b"<Error><Code>MethodNotAllowed</Code></Error>")

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx, recorder, real, token, session):
        self.ctx = ctx
        self.recorder = recorder
        self.real, self.token, self.session = real, token, session
        self.objects = {}
        self.lock = threading.Lock()
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = super().get_request()
        return self.ctx.wrap_socket(sock, server_side=True), addr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert-dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record-dir", required=True)
    ap.add_argument("--host", default="127.0.0.3")
    ap.add_argument("--names", default="s3.test,sts.test,127.0.0.3")
    ap.add_argument("--secret-file", required=True,
                    help='JSON {"secretAccessKey", "token", "sessionToken"?}: the REAL key to verify with')
    args = ap.parse_args()
    with open(args.secret_file) as f:
        s = json.load(f)
    ca, crt, key = ensure_certs(args.cert_dir, args.names.split(","))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv = Server((args.host, 0), ctx, Recorder(args.record_dir), s["secretAccessKey"], s["token"],
                 s.get("sessionToken"))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    info = {"port": srv.server_address[1], "ca": os.path.abspath(ca), "pid": os.getpid()}
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.rename(tmp, args.port_file)
    threading.Event().wait()


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    main()
