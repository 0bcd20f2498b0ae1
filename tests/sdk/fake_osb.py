#!/usr/bin/env python3
"""A contract double of OpenSandbox for checking the SDK integration tests themselves.

It implements the REST routes the 8-step test uses (projects, project secrets,
sandboxes, exec) in memory, and simulates what a sandbox + secrets proxy do for
two commands only: ``env`` (sealed tokens) and ``curl ... https://host/echo``
(token -> current real value on the way out, recorded in --record-dir like the
real TLS upstream does; real value -> token in the echoed response).

It is NOT the product and proves nothing about isolation or TLS: it only keeps
the integration tests and the SDKs honest against the documented contract when
no real ``osb dev`` is available. Loopback only.

Usage: fake_osb.py --record-dir DIR --ready-file FILE
Writes ``{"apiUrl", "apiKey", "upstreamUrl"}`` to FILE once listening.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
UPSTREAM_HOST = "upstream.osb.test"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def secret_may_go(allowed_hosts: List[str], allowlist: List[str], host: str) -> bool:
    """The proxy's rule: "*" = any reachable host; no allowedHosts = only the
    egress allowlist's hosts, and nowhere when that list is empty."""
    if allowed_hosts == ["*"]:
        return True
    if allowed_hosts:
        return host_matches(host, allowed_hosts)
    return bool(allowlist) and host_matches(host, allowlist)


def host_matches(host: str, patterns: List[str]) -> bool:
    host = host.lower().rstrip(".")
    for p in patterns:
        p = p.lower().rstrip(".")
        if p == host or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


class State:
    def __init__(self, record_dir: str) -> None:
        self.lock = threading.Lock()
        self.record_dir = record_dir
        self.projects: Dict[str, Dict[str, Any]] = {}
        self.secrets: Dict[str, Dict[str, Dict[str, Any]]] = {}  # project id -> name -> {value, allowedHosts, ...}
        self.sandboxes: Dict[str, Dict[str, Any]] = {}
        self.record_seq = 0

    def project(self, ref: str) -> Dict[str, Any]:
        for p in self.projects.values():
            if p["id"] == ref or p["name"] == ref:
                return p
        raise ApiError(404, f"project not found: {ref}")

    # --- the simulated sandbox ------------------------------------------------
    def exec(self, sb: Dict[str, Any], body: Dict[str, Any]) -> Dict[str, Any]:
        cmd, args = body.get("cmd"), body.get("args") or []
        if cmd != "sh" or len(args) != 2 or args[0] != "-c":
            return {"exitCode": 127, "stdout": "", "stderr": "fake: only sh -c is simulated\n"}
        env = dict(sb["env"])
        script = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: env.get(m.group(1), ""), args[1])
        if script.strip() == "env":
            return {"exitCode": 0, "stdout": "".join(f"{k}={v}\n" for k, v in env.items()), "stderr": ""}
        argv = shlex.split(script)
        if argv and argv[0] == "curl":
            return self.curl(sb, argv)
        return {"exitCode": 127, "stdout": "", "stderr": f"fake: unsupported command {argv[:1]}\n"}

    def curl(self, sb: Dict[str, Any], argv: List[str]) -> Dict[str, Any]:
        headers: List[Tuple[str, str]] = []
        url = ""
        i = 1
        while i < len(argv):
            if argv[i] == "-H":
                name, _, value = argv[i + 1].partition(":")
                headers.append((name.strip(), value.strip()))
                i += 2
            elif argv[i] == "--max-time":
                i += 2
            elif argv[i].startswith("-"):
                i += 1
            else:
                url = argv[i]
                i += 1
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or host != UPSTREAM_HOST:
            return {"exitCode": 6, "stdout": "", "stderr": f"curl: (6) Could not resolve host: {host}\n"}
        if sb["egressAllowlist"] and not host_matches(host, sb["egressAllowlist"]):
            return {"exitCode": 6, "stdout": "", "stderr": f"curl: (6) Could not resolve host: {host}\n"}
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # Proxy: token -> current value of a secret that still exists and allows this host.
        live = self.secrets.get(sb["projectId"], {})
        swaps = {}
        for name, token in sb["tokens"].items():
            s = live.get(name)
            if s is not None and secret_may_go(s["allowedHosts"], sb["egressAllowlist"], host):
                swaps[token] = s["value"]

        def out(text: str) -> str:
            for token, value in swaps.items():
                text = text.replace(token, value)
            return text

        sent = {"method": "GET", "path": out(path), "headers": {n.lower(): out(v) for n, v in headers}}
        self.record(sent)
        echo = json.dumps(sent)
        for token, value in swaps.items():  # the proxy scrubs values out of responses
            echo = echo.replace(value, token)
        return {"exitCode": 0, "stdout": echo + "\n", "stderr": ""}

    def record(self, rec: Dict[str, Any]) -> None:
        self.record_seq += 1
        final = os.path.join(self.record_dir, f"{self.record_seq:06d}.json")
        tmp = final + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rec, f)
        os.rename(tmp, final)


def make_handler(state: State, api_key: str) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if self.headers.get("X-API-Key") != api_key:
                    raise ApiError(401, "missing or invalid API key")
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise ApiError(400, "body must be a JSON object")
                parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
                with state.lock:
                    status, out = self.route(self.command, parts, body)
                self._send(status, out)
            except ApiError as e:
                self._send(e.status, {"error": str(e)})
            except ValueError:
                self._send(400, {"error": "malformed JSON"})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def route(self, m: str, p: List[str], body: Dict[str, Any]) -> Tuple[int, Any]:
            if p[:2] == ["api", "projects"]:
                return self.projects(m, p[2:], body)
            if p[:2] == ["api", "sandboxes"]:
                return self.sandboxes(m, p[2:], body)
            raise ApiError(404, "no such route")

        def projects(self, m: str, p: List[str], body: Dict[str, Any]) -> Tuple[int, Any]:
            if not p and m == "POST":
                name = body.get("name")
                if not isinstance(name, str) or not name:
                    raise ApiError(400, "name is required")
                if any(x["name"] == name for x in state.projects.values()):
                    raise ApiError(409, f"project name taken: {name}")
                pid = f"prj_{secrets.token_hex(6)}"
                proj = {"id": pid, "orgId": "org_default", "name": name, "template": body.get("template", "base"),
                        "cpuCount": body.get("cpuCount", 1), "memoryMB": body.get("memoryMB", 512),
                        "timeoutSec": body.get("timeoutSec", 300),
                        "egressAllowlist": [h.lower().rstrip(".") for h in body.get("egressAllowlist", [])],
                        "secretGroups": body.get("secretGroups", []), "createdAt": now(), "updatedAt": now()}
                state.projects[pid] = proj
                state.secrets[pid] = {}
                return 201, proj
            if not p and m == "GET":
                return 200, list(state.projects.values())
            proj = state.project(p[0])
            if len(p) == 1:
                if m == "GET":
                    return 200, proj
                if m in ("PATCH", "PUT"):
                    proj.update({k: v for k, v in body.items() if k in proj and k not in ("id", "orgId", "createdAt")})
                    proj["updatedAt"] = now()
                    return 200, proj
                if m == "DELETE":
                    del state.projects[proj["id"]]
                    del state.secrets[proj["id"]]
                    return 204, None
            if len(p) >= 2 and p[1] == "secrets":
                store = state.secrets[proj["id"]]
                if len(p) == 2 and m == "GET":
                    return 200, [{k: v for k, v in s.items() if k != "value"} for s in store.values()]
                if len(p) == 3:
                    name = p[2]
                    if not NAME_RE.match(name):
                        raise ApiError(400, f"invalid secret name: {name}")
                    if m == "PUT":
                        value = body.get("value")
                        if not isinstance(value, str) or not value:
                            raise ApiError(400, "value must be a non-empty string")
                        created = store.get(name, {}).get("createdAt", now())
                        store[name] = {"name": name, "value": value, "allowedHosts": body.get("allowedHosts", []),
                                       "createdAt": created, "updatedAt": now()}
                        out = {k: v for k, v in store[name].items() if k != "value"}
                        if not out["allowedHosts"] and not proj["egressAllowlist"]:
                            out["warnings"] = ["no allowedHosts and project '%s' has an empty egress allowlist: "
                                               "the secret will not be sent to any host" % proj["name"]]
                        return 200, out
                    if m == "DELETE":
                        if name not in store:
                            raise ApiError(404, f"secret not found: {name}")
                        del store[name]
                        return 204, None
            raise ApiError(405, "method not allowed")

        def sandboxes(self, m: str, p: List[str], body: Dict[str, Any]) -> Tuple[int, Any]:
            if not p and m == "POST":
                proj = state.project(body["project"]) if body.get("project") else None
                tokens = {n: f"osb_sealed_{secrets.token_hex(16)}" for n in (state.secrets[proj["id"]] if proj else {})}
                env = {"HOME": "/home/sandbox", "PATH": "/usr/bin:/bin", **tokens, **body.get("envs", {})}
                sid = f"sb_{secrets.token_hex(6)}"
                sb = {"sandboxID": sid, "status": "running", "projectId": proj["id"] if proj else "",
                      "templateID": body.get("templateID", "base"), "cpuCount": body.get("cpuCount", 1),
                      "memoryMB": body.get("memoryMB", 512), "startedAt": now(), "endAt": now(),
                      "env": env, "tokens": tokens,
                      "egressAllowlist": body.get("egressAllowlist", proj["egressAllowlist"] if proj else [])}
                state.sandboxes[sid] = sb
                return 201, self.public(sb)
            if not p and m == "GET":
                return 200, [self.public(s) for s in state.sandboxes.values()]
            sb = state.sandboxes.get(p[0])
            if sb is None:
                raise ApiError(404, f"sandbox not found: {p[0]}")
            if len(p) == 1 and m == "GET":
                return 200, self.public(sb)
            if len(p) == 1 and m == "DELETE":
                del state.sandboxes[p[0]]
                return 204, None
            if p[1:] == ["exec", "run"] and m == "POST":
                return 200, state.exec(sb, body)
            raise ApiError(405, "method not allowed")

        @staticmethod
        def public(sb: Dict[str, Any]) -> Dict[str, Any]:
            return {k: v for k, v in sb.items() if k not in ("env", "tokens", "egressAllowlist")}

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record-dir", required=True)
    ap.add_argument("--ready-file", required=True)
    args = ap.parse_args()
    api_key = f"osb_fake_{secrets.token_hex(16)}"
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(State(args.record_dir), api_key))
    ready = {"apiUrl": f"http://127.0.0.1:{server.server_address[1]}", "apiKey": api_key,
             "upstreamUrl": f"https://{UPSTREAM_HOST}"}
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ready, f)
    os.rename(tmp, args.ready_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
