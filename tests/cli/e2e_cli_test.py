#!/usr/bin/env python3
"""End to end: every `oc` verb against a real `osb dev`.

Starts `osb dev --data-dir <tmp> --listen 127.0.0.1:<free port>` with HOME and
XDG_CONFIG_HOME in a temporary directory, waits for /healthz, reads the
client config `osb dev` writes, then drives every verb of docs/cli.md and
checks table and --json output, partial updates, stdin values, exit codes,
one-line errors, and that no secret value appears in any output. Finally
every path of docs/openapi.yaml must answer on the server.

Exit 77 (ctest SKIP_RETURN_CODE) when the osb binary has no `dev` verb yet,
or — after everything else passed — when the server has no sandbox API yet
(GET /api/sandboxes is 404) or answers 503 (no worker can run sandboxes on
this machine). Everything else is a hard failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
SECRET_A = "sk-e2e-ALPHA-value-5f1c2d9e"
SECRET_B = "gh-e2e-BRAVO value with spaces"
GROUP_SECRET = "grp-e2e-CHARLIE-value-77aa"
ALL_SECRETS = (SECRET_A, SECRET_B, GROUP_SECRET)


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class E2E:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="oc-e2e-")
        self.home = os.path.join(self.tmp, "home")
        self.xdg = os.path.join(self.tmp, "xdg")
        os.makedirs(self.home)
        os.makedirs(self.xdg)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None
        self.outputs = []  # every byte oc printed, checked for secret values at the end
        self.env = {"HOME": self.home, "XDG_CONFIG_HOME": self.xdg,
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if name in os.environ:
                self.env[name] = os.environ[name]

    # ---- helpers ---------------------------------------------------------
    def oc(self, *args, stdin=b"", expect=0, env=None):
        r = subprocess.run([self.args.oc, *args], input=stdin, capture_output=True,
                           env=env or self.env, timeout=300)
        self.outputs.append(r.stdout + r.stderr)
        if expect is not None and r.returncode != expect:
            raise Failure(f"oc {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
                          f"stdout: {r.stdout.decode(errors='replace')}\n"
                          f"stderr: {r.stderr.decode(errors='replace')}")
        return r

    def oc_json(self, *args, **kw):
        # --json is an oc flag: it must come before a `--` that starts the
        # sandbox command's own arguments.
        args = list(args)
        at = args.index("--") if "--" in args else len(args)
        return json.loads(self.oc(*args[:at], "--json", *args[at:], **kw).stdout)

    def expect_error(self, code, *args, stdin=b""):
        r = self.oc(*args, stdin=stdin, expect=code)
        lines = r.stderr.decode().splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        if len(errors) != 1 or r.stdout:
            raise Failure(f"oc {' '.join(args)}: want one `error:` line and no stdout, got "
                          f"stderr={r.stderr!r} stdout={r.stdout!r}")
        return errors[0]

    def check(self, cond, what):
        if not cond:
            raise Failure(what)

    def http(self, method, path, body=None, key=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if key:
            req.add_header("X-API-Key", key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    # ---- server ----------------------------------------------------------
    def start_server(self):
        log = open(os.path.join(self.tmp, "osb-dev.log"), "wb")
        self.server = subprocess.Popen(
            [self.args.osb, "dev", "--data-dir", os.path.join(self.tmp, "data"),
             "--listen", f"127.0.0.1:{self.port}",
             # Its own ports and sandbox address pool, so it can run beside
             # the e2e harness's osb dev and the sandbox tests.
             "--grpc-listen", "127.0.0.1:0", "--worker-listen", "127.0.0.1:0",
             "--proxy-listen", "127.0.0.1:0", "--transparent-listen", "127.0.0.1:0",
             "--transparent-http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
             "--address-pool", "10.202.0.0/16", "--name-prefix", "osbc", "--run-dir", "/run/osbc"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 90
        config = os.path.join(self.xdg, "opensandbox", "config")
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise Failure(f"osb dev exited with {self.server.returncode}:\n{self.server_log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200 and os.path.exists(config):
                        return config
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)  # polling interval, not synchronisation
        raise Failure(f"osb dev not healthy (with {config}) within 90 s:\n{self.server_log()}")

    def server_log(self):
        try:
            with open(os.path.join(self.tmp, "osb-dev.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop_server(self):
        if self.server and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()

    # ---- scenarios -------------------------------------------------------
    def run(self):
        config_path = self.start_server()
        with open(config_path) as f:
            config = json.load(f)
        self.check(oct(os.stat(config_path).st_mode & 0o777) == "0o600", "config file mode is not 0600")
        self.key = config["apiKey"]
        self.check(config.get("apiUrl", "").rstrip("/") == self.url,
                   f"osb dev wrote apiUrl {config.get('apiUrl')!r}, expected {self.url}")

        self.basics()
        self.projects()
        self.secrets()
        self.secret_groups()
        self.api_keys()
        self.openapi_routes()
        self.no_secret_anywhere()
        sandboxes_ran = self.sandboxes()
        self.no_secret_anywhere()
        return sandboxes_ran

    def basics(self):
        self.check(self.oc("version").stdout.startswith(b"oc "), "oc version")
        # login rewrites the config after checking the key; a bad key is refused.
        self.oc("login", "--api-url", self.url, "--api-key-stdin", stdin=self.key.encode() + b"\n")
        self.expect_error(5, "login", "--api-url", self.url, "--api-key", "wrong-key")
        self.expect_error(5, "project", "list", "--api-key", "wrong-key")
        self.expect_error(1, "project", "list", "--api-url", f"http://127.0.0.1:{free_port()}")
        self.expect_error(2, "project", "create")

    def projects(self):
        p = self.oc_json("project", "create", "--name", "e2e-demo", "--cpu", "2", "--memory", "256",
                         "--timeout", "120", "--egress-allow", "example.com",
                         "--egress-allow", "*.example.org")
        self.check(p["name"] == "e2e-demo" and p["cpuCount"] == 2 and p["memoryMB"] == 256
                   and p["timeoutSec"] == 120, f"created project {p}")
        self.check(p["egressAllowlist"] == ["example.com", "*.example.org"], f"allowlist {p}")
        self.project_id = p["id"]

        table = self.oc("project", "list").stdout.decode().splitlines()
        self.check(table[0].startswith("NAME") and any(l.startswith("e2e-demo ") for l in table[1:]),
                   f"project list table: {table}")
        names = [x["name"] for x in self.oc_json("project", "list")]
        self.check("e2e-demo" in names, f"project list --json: {names}")
        self.check(re.search(r"(?m)^cpuCount: +2$", self.oc("project", "get", "e2e-demo").stdout.decode()),
                   "project get table")
        self.check(self.oc_json("project", "get", self.project_id)["name"] == "e2e-demo", "get by id")

        # Partial update: only --cpu changes.
        u = self.oc_json("project", "update", "e2e-demo", "--cpu", "3")
        self.check(u["cpuCount"] == 3 and u["memoryMB"] == 256 and u["timeoutSec"] == 120
                   and u["egressAllowlist"] == ["example.com", "*.example.org"], f"partial update {u}")
        u = self.oc_json("project", "get", "e2e-demo")
        self.check(u["cpuCount"] == 3 and u["memoryMB"] == 256, f"after update {u}")
        u = self.oc_json("project", "update", "e2e-demo", "--clear-egress-allow")
        self.check(u["egressAllowlist"] == [] and u["cpuCount"] == 3, f"clear egress {u}")
        self.oc("project", "update", "e2e-demo", "--egress-allow", "example.com")

        self.expect_error(6, "project", "create", "--name", "e2e-demo")
        self.expect_error(4, "project", "get", "no-such-project")
        self.expect_error(3, "project", "create", "--name", "bad-cpu", "--cpu", "0")
        self.expect_error(3, "project", "create", "--name", "-bad name")
        self.expect_error(2, "project", "update", "e2e-demo")

        self.oc("project", "create", "--name", "e2e-doomed")
        self.check(self.oc("project", "delete", "e2e-doomed").stdout == b"deleted project e2e-doomed\n",
                   "project delete output")
        self.expect_error(4, "project", "get", "e2e-doomed")

    def secrets(self):
        self.oc("secret", "set", "e2e-demo", "ALPHA", "--from-stdin", "--allowed-hosts", "example.com",
                stdin=SECRET_A.encode() + b"\n")
        self.oc("secret", "set", "e2e-demo", "BRAVO", "--from-stdin", stdin=SECRET_B.encode())
        r = self.oc("secret", "set", "e2e-demo", "CMDLINE", SECRET_A)
        self.check(b"warning:" in r.stderr, "no shell-history warning for VALUE on the command line")
        listed = {s["name"]: s for s in self.oc_json("secret", "list", "e2e-demo")}
        self.check(set(listed) == {"ALPHA", "BRAVO", "CMDLINE"}, f"secret list {listed}")
        self.check(listed["ALPHA"]["allowedHosts"] == ["example.com"], f"allowedHosts {listed}")
        self.check(all("value" not in s for s in listed.values()), "secret list shows values")
        table = self.oc("secret", "list", "e2e-demo", "--verbose").stdout.decode().splitlines()
        self.check(table[0].startswith("NAME") and len(table) == 4, f"secret list table {table}")
        self.expect_error(2, "secret", "set", "e2e-demo", "EMPTY", "--from-stdin", stdin=b"\n")
        self.expect_error(4, "secret", "set", "no-such-project", "X", "--from-stdin", stdin=b"v")
        self.expect_error(2, "secret", "set", "e2e-demo", "TOO_BIG", "--from-stdin",
                          stdin=b"x" * (64 * 1024 + 1))
        self.oc("secret", "delete", "e2e-demo", "CMDLINE")
        self.expect_error(4, "secret", "delete", "e2e-demo", "CMDLINE")

    def secret_groups(self):
        g = self.oc_json("secret-group", "create", "e2e-shared")
        self.check(g["name"] == "e2e-shared", f"group create {g}")
        self.expect_error(6, "secret-group", "create", "e2e-shared")
        self.check(any(x["name"] == "e2e-shared" for x in self.oc_json("secret-group", "list")),
                   "group list")
        self.check(self.oc("secret-group", "list").stdout.decode().splitlines()[0].startswith("NAME"),
                   "group list table")
        self.check(self.oc_json("secret-group", "get", "e2e-shared")["name"] == "e2e-shared", "group get")
        self.oc("secret-group", "secret", "set", "e2e-shared", "CHARLIE", "--from-stdin",
                "--allowed-hosts", "*.example.org", stdin=GROUP_SECRET.encode() + b"\n")
        names = [s["name"] for s in self.oc_json("secret-group", "secret", "list", "e2e-shared")]
        self.check(names == ["CHARLIE"], f"group secrets {names}")
        u = self.oc_json("project", "update", "e2e-demo", "--secret-group", "e2e-shared")
        self.check(u["secretGroups"] == ["e2e-shared"] and u["cpuCount"] == 3, f"attach group {u}")

        self.expect_error(6, "secret-group", "delete", "e2e-shared")   # attached: 409
        self.oc("secret-group", "create", "e2e-rename-me")
        self.check(self.oc_json("secret-group", "update", "e2e-rename-me", "--name", "e2e-renamed")["name"]
                   == "e2e-renamed", "group rename")
        self.oc("secret-group", "delete", "e2e-renamed")
        self.oc("secret-group", "create", "e2e-doomed")
        self.oc("secret-group", "secret", "set", "e2e-doomed", "X", "--from-stdin", stdin=b"x")
        self.oc("secret-group", "secret", "delete", "e2e-doomed", "X")
        self.oc("secret-group", "delete", "e2e-doomed")
        self.expect_error(4, "secret-group", "get", "e2e-doomed")

    def api_keys(self):
        # A sandbox-scope key with an expiry: listed with both; it reads
        # projects but cannot write secrets or make keys.
        r = self.oc("api-key", "create", "e2e agent", "--scope", "sandbox", "--expires-in", "30d")
        fields = dict(line.split(":", 1) for line in r.stdout.decode().splitlines() if ":" in line)
        agent_key, agent_id = fields["key"].strip(), fields["id"].strip()
        self.check(fields["scope"].strip() == "sandbox", f"api-key create --scope sandbox printed {fields!r}")
        self.check(re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", fields["expiresAt"].strip()) is not None,
                   f"api-key create --expires-in printed {fields!r}")
        listed = self.oc("api-key", "list").stdout.decode()
        self.check("SCOPE" in listed and "EXPIRES" in listed and "sandbox" in listed and "never" in listed,
                   f"api-key list shows scope and expiry: {listed!r}")
        as_agent = ["--api-url", self.url, "--api-key", agent_key]
        self.oc(*as_agent, "project", "list")
        self.expect_error(5, *as_agent, "api-key", "create", "escalate", "--scope", "admin")
        self.oc("api-key", "delete", agent_id)
        r = self.oc("api-key", "create", "e2e ci", "--scope", "admin")
        text = r.stdout.decode()
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        new_key, key_id = fields["key"].strip(), fields["id"].strip()
        self.check(re.fullmatch(r"osb_[0-9a-f]{64}", new_key) is not None, f"api-key create printed {text!r}")
        self.check(b"shown only now" in r.stderr, "api-key create warns that the key is shown once")
        listed = self.oc("api-key", "list").stdout.decode()
        self.check(key_id in listed and "e2e ci" in listed and new_key not in listed, f"api-key list {listed!r}")
        self.check(all("key" not in k for k in self.oc_json("api-key", "list")), "api-key list --json has no keys")
        # The new key works for oc at once, and stops working once deleted.
        as_new = ["--api-url", self.url, "--api-key", new_key]
        self.oc(*as_new, "project", "list")
        self.oc("api-key", "delete", key_id)
        self.expect_error(5, *as_new, "project", "list")
        self.expect_error(4, "api-key", "delete", key_id)
        # The org's last key cannot go: delete every other key, then try.
        keys = self.oc_json("api-key", "list")
        self.check(len(keys) == 1, f"one key left: {keys}")
        self.expect_error(6, "api-key", "delete", keys[0]["id"])

    def sandboxes(self):
        status, body = self.http("GET", "/api/sandboxes", key=self.key)
        if status == 404:
            print(f"note: sandbox verbs skipped: this server has no sandbox API yet ({body[:200]!r})")
            return False
        status, body = self.http("POST", "/api/sandboxes", {"project": "e2e-demo"}, key=self.key)
        if status == 503:
            print(f"note: sandbox verbs skipped: server answered 503 ({body[:200]!r})")
            return False
        self.check(status in (200, 201), f"POST /api/sandboxes: {status} {body[:300]!r}")
        probe = json.loads(body)["sandboxID"]
        self.oc("kill", probe)

        sid = self.oc("create", "--project", "e2e-demo", "--env", "PLAIN=visible").stdout.decode().strip()
        self.check(re.fullmatch(r"[A-Za-z0-9_.-]+", sid) is not None, f"oc create printed {sid!r}")
        self.check(any(l.startswith(sid) for l in self.oc("list").stdout.decode().splitlines()[1:]),
                   "oc list table")
        self.check(any(s["sandboxID"] == sid for s in self.oc_json("list")), "oc list --json")
        self.check(self.oc_json("get", sid)["sandboxID"] == sid, "oc get --json")

        r = self.oc("exec", sid, "--", "sh", "-c", "echo out; echo err >&2; exit 3", expect=3)
        self.check(r.stdout == b"out\n" and r.stderr == b"err\n", f"exec streams {r!r}")
        r = self.oc("exec", sid, "--env", "E2E=yes", "--cwd", "/tmp", "--", "sh", "-c", "echo $E2E; pwd")
        self.check(r.stdout == b"yes\n/tmp\n", f"exec env/cwd {r.stdout!r}")
        r = self.oc("exec", sid, "--", "sh", "-c", "echo $PLAIN; echo $ALPHA; echo $CHARLIE")
        lines = r.stdout.decode().splitlines()
        self.check(lines[0] == "visible", f"plain env {lines}")
        for token in lines[1:]:
            self.check(re.fullmatch(r"osb_sealed_[0-9a-f]{32}", token) is not None,
                       f"secret env is not a sealed token: {token!r}")
        self.check(self.oc_json("exec", sid, "--buffered", "--", "true")["exitCode"] == 0, "exec --json")
        self.files(sid)
        self.seed_shapes()

        self.oc("kill", sid)
        self.expect_error(4, "exec", sid, "--", "true")
        sid2 = self.oc("create", "--project", "e2e-demo").stdout.decode().strip()
        self.oc("sandbox", "delete", sid2)
        return True

    def files(self, sid):
        """oc files ls|cat|put|get|rm|mkdir and oc cp (issue 15)."""
        local = os.path.join(self.tmp, "local.bin")
        payload = os.urandom(3 << 20) + b"end"
        with open(local, "wb") as f:
            f.write(payload)
        self.oc("files", "mkdir", sid, "/home/sandbox/d/e", "-p")
        self.oc("files", "put", sid, local, "/home/sandbox/d/e/blob", "--mode", "600")
        table = self.oc("files", "ls", sid, "/home/sandbox/d/e").stdout.decode()
        self.check("blob" in table and "0600" in table and str(len(payload)) in table, f"oc files ls: {table}")
        listing = self.oc_json("files", "ls", sid, "/home/sandbox/d/e")
        self.check([e["name"] for e in listing["entries"]] == ["blob"], f"oc files ls --json {listing}")
        self.check(self.oc("files", "cat", sid, "/home/sandbox/d/e/blob").stdout == payload, "oc files cat")
        back = os.path.join(self.tmp, "back.bin")
        self.oc("files", "get", sid, "/home/sandbox/d/e/blob", back)
        with open(back, "rb") as f:
            self.check(f.read() == payload, "oc files get")
        err = self.expect_error(4, "files", "cat", sid, "/home/sandbox/nope")
        self.check("does not exist" in err, err)
        self.expect_error(3, "files", "cat", sid, "/proc/self/root/etc/passwd")
        self.oc("files", "rm", sid, "/home/sandbox/d/e/blob")
        self.oc("files", "rm", sid, "/home/sandbox/d", "-r")
        self.expect_error(4, "files", "ls", sid, "/home/sandbox/d")
        # A directory tree there and back (tar on both sides).
        tree = os.path.join(self.tmp, "tree")
        os.makedirs(os.path.join(tree, "sub", "deeper"))
        for rel, data in (("a.txt", b"alpha"), ("sub/b.bin", os.urandom(70000)), ("sub/deeper/c", b"")):
            with open(os.path.join(tree, rel), "wb") as f:
                f.write(data)
        self.oc("cp", tree, f"{sid}:/home/sandbox/tree")
        self.check(self.oc("files", "cat", sid, "/home/sandbox/tree/a.txt").stdout == b"alpha", "oc cp up")
        out = os.path.join(self.tmp, "tree-back")
        self.oc("cp", f"{sid}:/home/sandbox/tree", out)
        for rel in ("a.txt", "sub/b.bin", "sub/deeper/c"):
            with open(os.path.join(tree, rel), "rb") as a, open(os.path.join(out, rel), "rb") as b:
                self.check(a.read() == b.read(), f"oc cp round trip: {rel}")
        self.oc("cp", local, f"{sid}:/tmp/one.bin")
        self.oc("cp", f"{sid}:/tmp/one.bin", os.path.join(self.tmp, "one.bin"))
        with open(os.path.join(self.tmp, "one.bin"), "rb") as f:
            self.check(f.read() == payload, "oc cp of one file")

    def seed_shapes(self):
        """--metadata, oc ls, --egress-allowlist (issue 15 item 6)."""
        sid = self.oc("create", "--metadata", "team=ml", "--metadata", "run=42").stdout.decode().strip()
        self.check(self.oc_json("get", sid)["metadata"] == {"team": "ml", "run": "42"}, "oc get metadata")
        listed = [s for s in self.oc_json("ls") if s["sandboxID"] == sid]
        self.check(listed and listed[0]["metadata"] == {"team": "ml", "run": "42"}, "oc ls --json metadata")
        err = self.expect_error(3, "create", "--metadata", "bad key=v")
        self.check("metadata" in err, err)
        self.oc("kill", sid)
        self.oc("project", "create", "--name", "e2e-alias", "--egress-allowlist", "api.example.com")
        got = self.oc_json("project", "get", "e2e-alias")
        self.check(got["egressAllowlist"] == ["api.example.com"], f"--egress-allowlist: {got}")
        self.oc("project", "update", "e2e-alias", "--egress-allowlist", "a.example.com,b.example.com")
        got = self.oc_json("project", "get", "e2e-alias")
        self.check(got["egressAllowlist"] == ["a.example.com", "b.example.com"], f"update --egress-allowlist: {got}")
        self.oc("project", "delete", "e2e-alias")

    def openapi_routes(self):
        """Every path in docs/openapi.yaml answers on the server (not 404-for-route, not 405)."""
        paths = load_openapi_paths(self.args.openapi)
        if paths is None:
            print(f"note: {self.args.openapi} not present; route check skipped")
            return
        # Throwaway resources so DELETE routes have something to delete.
        self.oc("project", "create", "--name", "e2e-routes")
        self.oc("secret", "set", "e2e-routes", "ROUTE_SECRET", "--from-stdin", stdin=b"v")
        self.oc("secret-group", "create", "e2e-route-group")
        self.oc("secret-group", "secret", "set", "e2e-route-group", "ROUTE_SECRET", "--from-stdin",
                stdin=b"v")
        route_key_id = self.oc_json("api-key", "create", "e2e-route-key")["id"]

        def fill(path):
            def value(match):
                name = match.group(1).lower()
                if path.startswith("/api/sandboxes"):
                    return "sbx-e2e-none"
                if "name" in name and "/secrets/" in path and match.start() > path.index("/secrets/"):
                    return "ROUTE_SECRET"
                if path.startswith("/api/secret-groups"):
                    return "e2e-route-group"
                if path.startswith("/api/api-keys"):
                    return route_key_id
                return "e2e-routes"
            return re.sub(r"\{([^}]+)\}", value, path)

        status, _ = self.http("GET", "/api/sandboxes", key=self.key)
        sandbox_api = status != 404
        if not sandbox_api:
            print("note: the server has no sandbox API yet; /api/sandboxes paths not checked")
            paths = {p: m for p, m in paths.items() if not p.startswith("/api/sandboxes")}
        order = {"get": 0, "post": 1, "put": 1, "patch": 1, "delete": 2}
        checks = sorted(((m, p) for p, methods in paths.items() for m in methods if m in order),
                        key=lambda mp: (order[mp[0]], -mp[1].count("/")))
        failures = []
        for method, path in checks:
            url_path = fill(path)
            body = None if method in ("get", "delete") else {}
            if method == "put" and "/secrets/" in path:
                body = {"value": "v"}
            status, text = self.http(method.upper(), url_path, body, key=self.key)
            # A made-up sandbox id or template name is legitimately "not found"
            # (no sandbox runs here and no image is imported): the handler's
            # own 404 names it, which a missing route would not.
            sandbox = path.startswith("/api/sandboxes/")
            made_up = sandbox or (path.startswith("/api/templates/") and b"not found" in text)
            ok = status not in (405, 501) and not (status == 404 and not made_up) and status < 500 \
                or (status == 503 and sandbox)
            if not ok:
                failures.append(f"{method.upper()} {url_path} -> {status} {text[:120]!r}")
        self.check(not failures, "OpenAPI paths that do not answer:\n  " + "\n  ".join(failures))
        print(f"openapi: {len(checks)} operations answered")

    def no_secret_anywhere(self):
        for out in self.outputs:
            for secret in ALL_SECRETS:
                self.check(secret.encode() not in out, "a secret value appeared in oc output")
        log = self.server_log()
        for secret in ALL_SECRETS:
            self.check(secret not in log, "a secret value appeared in the osb dev log")


def load_openapi_paths(path):
    """{path: [methods]} from an OpenAPI 3 YAML file; None when the file is missing."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    try:
        import yaml  # noqa: PLC0415
        doc = yaml.safe_load(text)
        return {p: [m.lower() for m in ops] for p, ops in (doc.get("paths") or {}).items()}
    except ImportError:
        pass
    # Fallback for conventional formatting: "  /path:" then "    method:".
    paths, current, in_paths = {}, None, False
    for line in text.splitlines():
        if re.match(r"^paths:\s*$", line):
            in_paths = True
            continue
        if in_paths and re.match(r"^\S", line):
            break
        if not in_paths:
            continue
        m = re.match(r"^  (/[^:]*):\s*$", line) or re.match(r"^  ['\"](/[^'\"]*)['\"]:\s*$", line)
        if m:
            current = m.group(1)
            paths[current] = []
            continue
        m = re.match(r"^    (get|put|post|patch|delete|head|options):", line)
        if m and current:
            paths[current].append(m.group(1))
    return paths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--oc", required=True)
    parser.add_argument("--osb", required=True)
    parser.add_argument("--openapi", required=True)
    args = parser.parse_args()

    # CLI11 prints the root help (exit 0) for an unknown verb's --help, so
    # look for the verb's own usage line too.
    probe = subprocess.run([args.osb, "dev", "--help"], capture_output=True)
    if probe.returncode != 0 or b"osb dev" not in probe.stdout:
        print("SKIP: this osb has no `dev` verb yet (osb dev --help failed)")
        return SKIP

    test = E2E(args)
    try:
        sandboxes_ran = test.run()
    except Failure as e:
        print(f"FAIL: {e}")
        print("--- osb dev log (tail) ---")
        print(test.server_log())
        return 1
    finally:
        test.stop_server()
        shutil.rmtree(test.tmp, ignore_errors=True)
    if not sandboxes_ran:
        if os.geteuid() == 0:
            print("FAIL: sandbox verbs did not run, but as root osb dev runs a worker")
            return 1
        print("SKIP: everything passed except sandbox verbs, which need a worker (root)")
        return SKIP
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
