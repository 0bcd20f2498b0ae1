#!/usr/bin/env python3
"""Two `osb server` replicas and two real `osb worker` processes on one real
PostgreSQL (issue 12, item 3), all as real processes with mutual TLS.

    replicas_e2e_test.py OSB WORKDIR PG_URL_FILE

Worker A registers and heartbeats with replica 1 only, worker B with
replica 2 only; liveness lives in the database, so:
  * creates through either replica land on both workers, and each replica
    can exec in a sandbox that runs on the worker registered with the other;
  * kill -9 worker A: within the stale window its sandboxes become `lost`
    in both replicas' API, the transition is logged exactly once across the
    two replicas (the store's conditional UPDATE), and ended_at is set once;
  * new creates through either replica go only to worker B;
  * both replicas list the same sandboxes with the same statuses;
  * worker A restarted destroys its lost sandboxes, which stay lost.
Root only (workers need namespaces): exit 77 otherwise. Everything it makes
has its own names (prefixes osbra/osbrb, its own address pools, a database of
its own, ports picked free), so it runs next to the other e2e fixtures.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STALE_AFTER_S = 5     # osb server --worker-stale-after (its minimum)
HEARTBEAT_MS = 500    # osb worker --heartbeat-ms: ten beats per stale window
DEADLINE_S = 60

OSB, WORK, PG_URL_FILE = (sys.argv[1:4] + [None] * 3)[:3]


def wait_for(what, predicate, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)  # polling interval for a condition, not synchronisation
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, name, db_url, env):
        self.name = name
        self.log_path = os.path.join(WORK, f"{name}.log")
        with open(self.log_path, "w") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [OSB, "server", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--db", db_url,
                 "--worker-stale-after", str(STALE_AFTER_S)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

        def started():
            if self.proc.poll() is not None:
                raise AssertionError(f"{name} exited:\n{self.log()}")
            return "osb server: listening on port " in self.log()
        wait_for(f"{name} to listen", started)
        line = self.log().split("osb server: listening on port ", 1)[1].split("\n", 1)[0]
        self.url = "http://127.0.0.1:" + line.split()[0]
        self.grpc = "127.0.0.1:" + line.split("gRPC port ", 1)[1].split()[0]

    def log(self):
        with open(self.log_path) as f:
            return f.read()


class Worker:
    def __init__(self, name, prefix, pool, replica, env):
        self.name, self.prefix = name, prefix
        self.log_path = os.path.join(WORK, f"{name}.log")
        ports = [free_port() for _ in range(5)]
        self.cmd = [OSB, "worker", "--listen", f"127.0.0.1:{ports[0]}", "--control-plane", replica.grpc,
                    "--state-dir", os.path.join(WORK, name), "--capacity", "20", "--cpus", "64",
                    "--memory-mb", "65536", "--heartbeat-ms", str(HEARTBEAT_MS),
                    "--proxy-listen", f"127.0.0.1:{ports[1]}", "--transparent-listen", f"127.0.0.1:{ports[2]}",
                    "--transparent-http-listen", f"127.0.0.1:{ports[3]}", "--dns-listen", f"127.0.0.1:{ports[4]}",
                    "--address-pool", pool, "--name-prefix", prefix, "--run-dir", "/run/" + prefix,
                    "--audit-log", os.path.join(WORK, f"{name}-audit.log")]
        self.env = env
        self.proc = None
        self.start()

    def start(self):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "a") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)

        def registered():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()[offset:]}")
            return "registered with the control plane" in self.log()[offset:]
        wait_for(f"{self.name} to register", registered)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # destroys every sandbox it runs
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def call(replica, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(replica.url + path, data=data, method=method,
                                 headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    return status, (json.loads(text) if text else None)


def psql(db_url, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", "-d", db_url, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


API_KEY = "osb_replicas_" + secrets.token_hex(20)


class ReplicasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = []
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        with open(PG_URL_FILE) as f:
            base_url = f.read().strip()
        cls.db_name = f"osb_replicas_{os.getpid()}"
        psql(base_url, f"DROP DATABASE IF EXISTS {cls.db_name}")
        psql(base_url, f"CREATE DATABASE {cls.db_name}")
        cls.base_url = base_url
        cls.db_url = base_url.rsplit("/", 1)[0] + "/" + cls.db_name

        certs = os.path.join(WORK, "certs")
        gen = os.path.join(SRC, "scripts", "gen-grpc-certs.sh")
        for role, name in (("control-plane", "cp"), ("worker", "rep-worker-a"), ("worker", "rep-worker-b")):
            subprocess.run(["bash", gen, certs, role, name], check=True, capture_output=True)

        def env_for(name):
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSANDBOX_")}
            env.update({"OPENSANDBOX_GRPC_TLS_CA": os.path.join(certs, "ca.crt"),
                        "OPENSANDBOX_GRPC_TLS_CERT": os.path.join(certs, name + ".crt"),
                        "OPENSANDBOX_GRPC_TLS_KEY": os.path.join(certs, name + ".key")})
            return env
        server_env = env_for("cp")
        server_env.update({"OPENSANDBOX_SECRET_ENCRYPTION_KEY": secrets.token_hex(32),
                           "OPENSANDBOX_API_KEY": API_KEY})
        # One after the other: the first applies the migrations.
        cls.r1 = Replica("replica1", cls.db_url, server_env)
        cls.procs.append(cls.r1)
        cls.r2 = Replica("replica2", cls.db_url, server_env)
        cls.procs.append(cls.r2)
        cls.wa = Worker("rep-worker-a", "osbra", "10.211.0.0/16", cls.r1, env_for("rep-worker-a"))
        cls.wb = Worker("rep-worker-b", "osbrb", "10.212.0.0/16", cls.r2, env_for("rep-worker-b"))

        def ready(r):
            try:
                with urllib.request.urlopen(r.url + "/readyz", timeout=10) as resp:
                    return resp.status == 200
            except (urllib.error.URLError, OSError):
                return False
        for r in (cls.r1, cls.r2):
            wait_for(f"{r.name} /readyz", lambda: ready(r))

    @classmethod
    def tearDownClass(cls):
        for w in (getattr(cls, "wa", None), getattr(cls, "wb", None)):
            if w is None:
                continue
            if w.proc.poll() is not None:
                # Killed: start it again so it adopts and then removes what
                # its predecessor left (netns, veths, nft tables, cgroups).
                try:
                    w.start()
                except AssertionError as e:
                    print(f"cleanup: {e}", file=sys.stderr)
            w.stop()
        for r in cls.procs:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
                try:
                    r.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
                    r.proc.wait()
        for prefix in ("osbra", "osbrb"):
            try:
                os.rmdir("/run/" + prefix)  # the workers' run dirs, empty once they stopped
            except OSError:
                pass
        try:
            psql(cls.base_url, f"DROP DATABASE IF EXISTS {cls.db_name}")
        except subprocess.CalledProcessError as e:
            print(f"cleanup: drop database: {e.stderr}", file=sys.stderr)

    def create(self, replica):
        status, sb = call(replica, "POST", "/api/sandboxes", {"timeout": 600})
        self.assertEqual(status, 201, sb)
        return sb["sandboxID"]

    def placement(self):
        return {sid: (worker, status) for sid, worker, status in
                psql(self.db_url, "SELECT id, worker_id, status FROM sandboxes")}

    def statuses(self, replica):
        status, body = call(replica, "GET", "/api/sandboxes")
        self.assertEqual(status, 200, body)
        items = body["sandboxes"] if isinstance(body, dict) else body
        return {sb["sandboxID"]: sb["status"] for sb in items}

    def test_replicas_share_workers_and_mark_lost_once(self):
        # 1. Creates through either replica land on both workers.
        ids = [self.create(r) for r in (self.r1, self.r2, self.r1, self.r2)]
        placed = self.placement()
        on = {sid: placed[sid][0] for sid in ids}
        self.assertEqual(set(on.values()), {"rep-worker-a", "rep-worker-b"}, on)
        for sid in ids:
            self.assertEqual(placed[sid][1], "running", placed)
        # Each replica reaches each worker, also the one registered elsewhere.
        for sid in ids:
            for r in (self.r1, self.r2):
                status, out = call(r, "POST", f"/api/sandboxes/{sid}/exec/run",
                                   {"cmd": "sh", "args": ["-c", "echo on-$0"], "timeout": 30})
                self.assertEqual(status, 200, out)
                self.assertEqual(out["stdout"].strip(), "on-sh", out)
        on_a = sorted(sid for sid in ids if on[sid] == "rep-worker-a")
        on_b = sorted(sid for sid in ids if on[sid] == "rep-worker-b")

        # 2. kill -9 worker A (only the process: its sandboxes keep running,
        #    as after a host crash they would simply be gone).
        killed_at = time.monotonic()
        self.wa.proc.send_signal(signal.SIGKILL)
        self.wa.proc.wait()

        def all_lost():
            s1, s2 = self.statuses(self.r1), self.statuses(self.r2)
            return all(s1[sid] == "lost" and s2[sid] == "lost" for sid in on_a)
        wait_for("worker A's sandboxes to become lost in both replicas", all_lost, STALE_AFTER_S * 6)
        took = time.monotonic() - killed_at
        print(f"replicas: worker A's {len(on_a)} sandboxes lost {took:.1f}s after kill -9 "
              f"(stale window {STALE_AFTER_S}s)")
        self.assertLess(took, STALE_AFTER_S * 3, "lost marking took far longer than the stale window")

        # Exactly once: across both replicas one "is lost" transition per
        # sandbox (the sweep's conditional UPDATE hands each row to one
        # replica once). The invariant must hold for a while, over several
        # sweeps of both replicas (every stale/4, at least 1 s), not just at
        # one instant.
        marks = lambda: {sid: self.r1.log().count(f"sandbox {sid} is lost") +
                         self.r2.log().count(f"sandbox {sid} is lost") for sid in ids}
        ended = {sid: psql(self.db_url, f"SELECT ended_at FROM sandboxes WHERE id = '{sid}'")[0][0] for sid in on_a}
        window_end = time.monotonic() + STALE_AFTER_S
        while True:
            counted = marks()
            for sid in on_a:
                self.assertEqual(counted[sid], 1, f"lost transitions per sandbox: {counted}")
            for sid in on_b:
                self.assertEqual(counted[sid], 0, counted)
            if time.monotonic() >= window_end:
                break
            time.sleep(0.25)  # sampling an invariant over a window, not waiting for an event
        for sid in on_a:
            self.assertTrue(ended[sid], "ended_at set when marked lost")
            again = psql(self.db_url, f"SELECT ended_at FROM sandboxes WHERE id = '{sid}'")[0][0]
            self.assertEqual(again, ended[sid], "a second sweep rewrote ended_at")
        for sid in on_b:
            self.assertEqual(self.statuses(self.r1)[sid], "running")

        # 3. New creates through either replica go only to worker B, and run.
        new = [self.create(r) for r in (self.r1, self.r2, self.r1, self.r2)]
        placed = self.placement()
        self.assertEqual({placed[sid][0] for sid in new}, {"rep-worker-b"}, placed)
        for sid, r in zip(new, (self.r2, self.r1, self.r2, self.r1)):
            status, out = call(r, "POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": "true", "timeout": 30})
            self.assertEqual(status, 200, out)
            self.assertEqual(out["exitCode"], 0, out)

        # 4. Both replicas agree on every sandbox and its status.
        s1, s2 = self.statuses(self.r1), self.statuses(self.r2)
        self.assertEqual(s1, s2)
        self.assertEqual({sid for sid, st in s1.items() if st == "lost"}, set(on_a))

        # 5. Worker A comes back (it was cut off, not dead): it destroys the
        #    sandboxes the control plane marked lost, and they stay lost.
        self.wa.start()
        for sid in on_a:
            wait_for(f"worker A to destroy lost sandbox {sid}",
                     lambda: f"sandbox {sid} ended (unknown to the control plane)" in self.wa.log())
        s1, s2 = self.statuses(self.r1), self.statuses(self.r2)
        self.assertEqual(s1, s2)
        for sid in on_a:
            self.assertEqual(s1[sid], "lost")
        counted = marks()
        self.assertEqual([counted[sid] for sid in on_a], [1] * len(on_a), counted)

        for sid in on_b + new:
            status, _ = call(self.r1 if sid in new[::2] else self.r2, "DELETE", f"/api/sandboxes/{sid}")
            self.assertEqual(status, 204)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("replicas e2e: workers need root; skipping", file=sys.stderr)
        sys.exit(77)
    if not OSB or not PG_URL_FILE or not os.path.exists(PG_URL_FILE):
        print("replicas e2e: usage: replicas_e2e_test.py OSB WORKDIR PG_URL_FILE (from the postgres fixture)",
              file=sys.stderr)
        sys.exit(2)
    unittest.main(argv=sys.argv[:1], verbosity=2)
