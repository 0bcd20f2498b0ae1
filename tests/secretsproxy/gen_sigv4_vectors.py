#!/usr/bin/env python3
"""Generates tests/secretsproxy/sigv4_vectors.json with botocore's signers.

Each vector is one request signed twice by botocore at the same instant:
with the sandbox's sealed token as the secret access key ("sandbox") and
with the real key ("real"). sigv4_test.cpp checks that
  - our canonicalisation + signing reproduces both signatures, and
  - the proxy stage turns the sandbox request into exactly the real one.
Run it again (python3 gen_sigv4_vectors.py > sigv4_vectors.json) after a
botocore upgrade; `--check` compares with the checked-in file (ctest
secretsproxy_sigv4_vectors, so a botocore behaviour change is noticed).
"""
import datetime
import hashlib
import hmac
import json
import os
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIAIOSFODNN7EXAMPLE"
REAL = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "osb_sealed_0123456789abcdef0123456789abcdef"
SESSION_REAL = "FwoGZXIvYXdzEXAMPLE//session+token/value=="
SESSION_TOKEN = "osb_sealed_fedcba9876543210fedcba9876543210"
NOW = datetime.datetime(2026, 11, 30, 12, 0, 0)


class S3Config:
    s3 = {"payload_signing_enabled": True}


def wire(req, with_host=True):
    p = req.prepare()
    parts = urlsplit(p.url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = [[k, v if isinstance(v, str) else v.decode()] for k, v in p.headers.items()]
    if with_host and not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ["Host", parts.netloc])
    body = p.body or b""
    if isinstance(body, str):
        body = body.encode()
    return {"method": p.method, "target": target, "headers": headers, "body_hex": body.hex()}


def sign(kind, method, url, headers, body, service, region, session, expires=None, context=None):
    out = {}
    for who, secret, tok in (("sandbox", TOKEN, SESSION_TOKEN), ("real", REAL, SESSION_REAL)):
        creds = Credentials(AKID, secret, tok if session else None)
        req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        if context:
            req.context.update(context)
        if kind == "s3":
            signer = botocore.auth.S3SigV4Auth(creds, service, region)
        elif kind == "v4":
            signer = botocore.auth.SigV4Auth(creds, service, region)
        elif kind == "s3-presign":
            signer = botocore.auth.S3SigV4QueryAuth(creds, service, region, expires=expires)
        else:
            signer = botocore.auth.SigV4QueryAuth(creds, service, region, expires=expires)
        with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
            signer.add_auth(req)
        out[who] = wire(req)
    return out


def vectors():
    v = []

    def add(name, **kw):
        r = sign(**kw)
        v.append({"name": name, "service": kw["service"], "sandbox": r["sandbox"], "real": r["real"]})

    s3 = "https://examplebucket.s3.us-east-1.amazonaws.com"
    add("s3_get_unsigned", kind="s3", method="GET", url=s3 + "/photos/2026/a%20b%2Bc%3D.jpg", headers={},
        body=b"", service="s3", region="us-east-1", session=False)
    add("s3_put_hashed", kind="s3", method="PUT", url=s3 + "/dir/object.txt",
        headers={"Content-Type": "text/plain", "X-Amz-Meta-Note": "  two   spaces  here "},
        body=b"hello world\n" * 10, service="s3", region="us-east-1", session=False,
        context={"client_config": S3Config()})
    add("s3_list_query", kind="s3", method="GET",
        url=s3 + "/?list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=10&encoding-type=url", headers={},
        body=b"", service="s3", region="us-east-1", session=False)
    add("s3_session_token", kind="s3", method="HEAD", url=s3 + "/k", headers={}, body=b"", service="s3",
        region="eu-west-3", session=True)
    add("sts_post_form", kind="v4", method="POST", url="https://sts.amazonaws.com/",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=b"Action=GetCallerIdentity&Version=2011-06-15", service="sts", region="us-east-1", session=False)
    add("sqs_path_normalised", kind="v4", method="GET",
        url="https://sqs.us-west-2.amazonaws.com/123456789012/q//x/../my%20queue?Action=ReceiveMessage&B=2&A=1",
        headers={"X-Amz-Target": "a", "x-amz-target2": "b"}, body=b"", service="sqs", region="us-west-2",
        session=True)
    add("s3_presign_get", kind="s3-presign", method="GET", url=s3 + "/a%20key/file.bin", headers={}, body=b"",
        service="s3", region="us-east-1", session=True, expires=3600)
    add("sts_presign", kind="presign", method="GET",
        url="https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", headers={}, body=b"",
        service="sts", region="us-east-1", session=False, expires=900)
    v.append(chunked_vector())
    return v


def chunk_sign(secret, date, scope, prev, data):
    k = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, prev, hashlib.sha256(b"").hexdigest(),
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def chunked_vector():
    """aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): botocore signs the
    seed (it does not stream-sign); the chunk chain is computed here with
    Python's hmac, independently of the C++ code."""
    chunks = [b"a" * 1000, bytes(range(256)) * 3, b"tail\r\n"]
    decoded = sum(len(c) for c in chunks)
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "X-Amz-Decoded-Content-Length": str(decoded)}
    out = {"name": "s3_streaming_chunked", "service": "s3"}
    date = NOW.strftime("%Y%m%dT%H%M%SZ")
    scope = date[:8] + "/us-east-1/s3/aws4_request"
    for who, secret in (("sandbox", TOKEN), ("real", REAL)):
        req = AWSRequest(method="PUT", url="https://examplebucket.s3.us-east-1.amazonaws.com/big.bin",
                         headers=dict(headers))
        signer = botocore.auth.SigV4Auth(Credentials(AKID, secret), "s3", "us-east-1")
        with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
            signer.add_auth(req)
        w = wire(req)
        prev = w["headers"][[k for k, _ in w["headers"]].index("Authorization")][1].split("Signature=")[1]
        body = b""
        for data in chunks + [b""]:
            prev = chunk_sign(secret, date, scope, prev, data)
            body += b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode()) + data + b"\r\n"
        w["body_hex"] = body.hex()
        w["headers"].append(["Content-Length", str(len(body))])
        out[who] = w
    return out


def main():
    out = json.dumps({"now": int(NOW.replace(tzinfo=datetime.timezone.utc).timestamp()), "akid": AKID,
                      "real": REAL, "token": TOKEN, "session_real": SESSION_REAL,
                      "session_token": SESSION_TOKEN, "vectors": vectors()}, indent=1, sort_keys=True) + "\n"
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigv4_vectors.json")
        with open(path) as f:
            if f.read() != out:
                print("sigv4_vectors.json differs from what botocore produces now", file=sys.stderr)
                return 1
        print("sigv4 vectors match botocore", botocore.__version__)
        return 0
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
