"""Endpoints of tests/support/upstream.py for the signing kinds (issue 16):
a receiver that verifies HMAC signatures with Python's own `hmac`, and an
OAuth 2 token endpoint that counts refreshes and rotates refresh tokens.

Configured by the upstream's environment:
  OSB_UPSTREAM_HMAC_KEY          the HMAC key /hmac/* verifies with
  OSB_UPSTREAM_OAUTH_CLIENT_ID, OSB_UPSTREAM_OAUTH_CLIENT_SECRET,
  OSB_UPSTREAM_OAUTH_REFRESH     the first valid refresh token
  OSB_UPSTREAM_OAUTH_TTL         expires_in of the access tokens (3600)

  /hmac/...        verifies X-Signature == "sha256=" + hex(HMAC-SHA256(key,
                   METHOD "\n" PATH "\n" X-Timestamp "\n" BODY)); 200 or 401,
                   JSON {"verified", "signature": the header as received}
  /oauth/token     POST form grant_type=refresh_token: checks client id,
                   secret and the CURRENT refresh token (each refresh rotates
                   it: the old one is then invalid), answers a new access
                   token; anything else 400 {"error": "invalid_grant", ...}
                   echoing the form (a careless endpoint)
  /oauth/api/...   200 when "Authorization: Bearer <a live access token>",
                   else 401; echoes the Authorization header (body and
                   X-Echo-Authorization)
  /oauth/stats     {"refreshes": N, "lastForm": {...}}
"""
import hashlib
import hmac
import json
import os
import secrets
import threading
import urllib.parse

PREFIXES = ("/hmac/", "/oauth/")
_lock = threading.Lock()
_state = {"refreshes": 0, "refresh": None, "access": set(), "last_form": {}}


def _json(response, status, doc, conn_hdr, extra=()):
    return response(status, "X", [("Content-Type", "application/json")] + list(extra) + conn_hdr,
                    json.dumps(doc).encode())


def serve(conn, method, path, headers, body, conn_hdr, response):
    h = {k.lower(): v for k, v in headers}
    body = body or b""
    if path.startswith("/hmac/"):
        key = os.environ.get("OSB_UPSTREAM_HMAC_KEY", "").encode()
        msg = b"\n".join([method.encode(), path.encode(), h.get("x-timestamp", "").encode(), body])
        want = "sha256=" + hmac.new(key, msg, hashlib.sha256).hexdigest()
        got = h.get("x-signature", "")
        ok = bool(key) and hmac.compare_digest(want, got)
        conn.send(_json(response, 200 if ok else 401, {"verified": ok, "signature": got}, conn_hdr))
        return
    if path == "/oauth/token":
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("latin-1")).items()}
        with _lock:
            if _state["refresh"] is None:
                _state["refresh"] = os.environ.get("OSB_UPSTREAM_OAUTH_REFRESH", "")
            _state["last_form"] = form
            good = (method == "POST" and form.get("grant_type") == "refresh_token"
                    and form.get("client_id") == os.environ.get("OSB_UPSTREAM_OAUTH_CLIENT_ID")
                    and form.get("client_secret") == os.environ.get("OSB_UPSTREAM_OAUTH_CLIENT_SECRET")
                    and form.get("refresh_token") == _state["refresh"] and _state["refresh"])
            if not good:
                conn.send(_json(response, 400, {"error": "invalid_grant", "received": form}, conn_hdr))
                return
            _state["refreshes"] += 1
            n = _state["refreshes"]
            access = "at-%d-%s" % (n, secrets.token_hex(8))
            _state["refresh"] = "rt-%d-%s" % (n, secrets.token_hex(8))
            _state["access"].add(access)
            doc = {"access_token": access, "token_type": "Bearer",
                   "expires_in": int(os.environ.get("OSB_UPSTREAM_OAUTH_TTL", "3600")),
                   "refresh_token": _state["refresh"], "scope": form.get("scope", "")}
        conn.send(_json(response, 200, doc, conn_hdr))
        return
    if path == "/oauth/stats":
        with _lock:
            doc = {"refreshes": _state["refreshes"], "lastForm": _state["last_form"]}
        conn.send(_json(response, 200, doc, conn_hdr))
        return
    auth = h.get("authorization", "")
    with _lock:
        live = auth.startswith("Bearer ") and auth[7:] in _state["access"]
    conn.send(_json(response, 200 if live else 401, {"ok": live, "authorization": auth}, conn_hdr,
                    [("X-Echo-Authorization", auth)]))
