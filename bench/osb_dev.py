"""One `osb dev` (API server, secrets proxy and worker in one process) for a
benchmark, and the small probes the benchmarks share: a REST client, RSS and
CPU of a process, percentiles.

    with OsbDev(osb, "files", prefix="osbf", pool="10.205.0.0/16") as dev:
        sid = dev.ready  # what `ready(api)` returned once the API answered
        dev.api.call("GET", f"/api/sandboxes/{sid}")

Each benchmark passes its own address pool and name prefix so two benchmarks
(or a benchmark and a test run) never share interfaces or a run directory.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdks", "python"))
from opensandbox import _websocket  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """CPU seconds (user + system) of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ApiError(Exception):
    """A REST call answered with an HTTP error: says which call and why."""


class Api:
    def __init__(self, url, key):
        self.url, self.key = url, key

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-API-Key": self.key})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                text = r.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:  # say why, not just the code
            raise ApiError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    def ws(self, path):
        return _websocket.connect(self.url, path, {"X-API-Key": self.key}, timeout=60)


def _create_sandbox(api):
    return api.call("POST", "/api/sandboxes", {"timeout": 900})["sandboxID"]


class OsbDev:
    """Starts `osb dev` in a fresh data dir; ready once `ready(api)` succeeds
    (by default: a sandbox was created, i.e. a worker has registered)."""

    def __init__(self, osb, name, prefix, pool, ready=_create_sandbox, timeout_s=120):
        self.osb, self.name, self.prefix, self.pool = osb, name, prefix, pool
        self._ready, self.timeout_s = ready, timeout_s
        self.work = self.api = self.ready = self._proc = None

    @property
    def pid(self):
        return self._proc.pid

    def __enter__(self):
        self.work = tempfile.mkdtemp(prefix=f"osb-{self.name}-bench-")
        port = free_port()
        env = dict(os.environ, HOME=self.work, XDG_CONFIG_HOME=os.path.join(self.work, "cfg"))
        log = open(os.path.join(self.work, "dev.log"), "w")
        prefix = self.prefix
        self._proc = subprocess.Popen(
            [self.osb, "--log-level", "warn", "dev", "--data-dir", os.path.join(self.work, "data"),
             "--listen", f"127.0.0.1:{port}", "--grpc-listen", "127.0.0.1:0", "--worker-listen", "127.0.0.1:0",
             "--proxy-listen", "127.0.0.1:0", "--transparent-listen", "127.0.0.1:0",
             "--transparent-http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
             "--address-pool", self.pool, "--name-prefix", prefix, "--run-dir", f"/run/{prefix}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + self.timeout_s
            key_file = os.path.join(self.work, "data", "api-key")
            while time.monotonic() < deadline:
                if os.path.exists(key_file):
                    try:
                        api = Api(f"http://127.0.0.1:{port}", open(key_file).read().strip())
                        self.ready = self._ready(api)
                        self.api = api
                        return self
                    except Exception:  # noqa: BLE001 - not up yet
                        pass
                time.sleep(0.2)  # polling for readiness
            raise SystemExit(f"{self.name} bench: osb dev did not come up:\n" +
                             open(os.path.join(self.work, "dev.log")).read())
        except BaseException as e:
            self.__exit__(type(e))
            raise

    def __exit__(self, exc_type=None, *exc):
        if exc_type is not None and self.work and os.path.exists(os.path.join(self.work, "dev.log")):
            kept = os.path.join(tempfile.gettempdir(), f"{self.name}_bench_dev.log")
            shutil.copy(os.path.join(self.work, "dev.log"), kept)
            print(f"{self.name} bench: osb dev's log kept in {kept}", file=sys.stderr)
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)
