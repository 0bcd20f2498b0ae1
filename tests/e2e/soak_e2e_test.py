#!/usr/bin/env python3
"""Soak (issue 13, item 6): one sandbox cannot take the worker down.

Against a real `osb dev` of its own (harness.py with its own prefix, so the
attacks cannot disturb the shared e2e fixture), with real sandboxes: while
the attacker sandbox runs each attack of tests/e2e/soak_attack.py, the
victim sandbox's HTTPS request through the proxy (token swapped for the real
value at the upstream) and its DNS query over TCP succeed, and `/healthz`
answers; the osb dev process's descriptors, RSS and log/audit growth stay
inside the budgets below; and once the attacker is killed the descriptor
count comes back to its baseline.

Everything asserted is a count or a size. Waiting is polling a condition
with a deadline (the attack's own state file, the descriptor count).
"""
import json
import os
import re
import sys
import threading
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_e2e_test as sys_e2e  # noqa: E402  (loads OSB_E2E_ENV_FILE, or exits 77)

api = sys_e2e.api
HERE = os.path.dirname(os.path.abspath(__file__))
ATTACK_SRC = open(os.path.join(HERE, "soak_attack.py")).read()

# The caps (docs/proxy.md "Resource limits", docs/operations.md "Worker
# resource budget").
LIVE_CAP = 512      # proxy connections per sandbox, counted from accept
PENDING_CAP = 64    # of those, still in their TLS handshake or first head
DNS_TCP_CAP = 16    # DNS TCP connections per sandbox
FDS_PER_PROXY_CONN = 2  # client + upstream
AUDIT_BLOCKED_PER_WINDOW = 50  # blocked-request audit lines per sandbox and reason per 10 s
LOG_LINES_PER_WINDOW = 5       # refusal log lines per sandbox and kind per 10 s
WINDOW_S = 10

# Attack sizes: each well beyond the cap it tests.
N_HEAD = 300
N_HANDSHAKE = 300
N_DNS = 100
N_REFUSED = 4 * AUDIT_BLOCKED_PER_WINDOW  # made before the victim is checked
N_SLOW = 64         # per direction; the live cap itself is proven by proxy_limits_test

# Each attack is held for this many of its rounds (one a second; the refused
# flood's are 0.2 s), the victim checked again and again meanwhile. Head and
# handshake floods outlast the 10 s head/handshake deadline, so the worker
# closes the held connections and the attacker opens them again.
ROUNDS = {"head": 12, "handshake": 12, "dns": 3, "slow-up": 3, "slow-down": 3, "refused": 10}

# Budgets, derived from the caps. MARGIN covers what the victim's own
# requests, the API and gRPC hold at one instant. Head and handshake floods
# get twice the pending cap: when the 10 s deadline closes the held
# connections, each is closed with a bounded linger (<= 500 ms) after its
# slot is given back, so its replacement may be accepted while it still
# holds a descriptor (seen: +99 under a loaded CI run; the old code: +305).
FD_MARGIN = 24
FD_BUDGET = {
    "head": 2 * PENDING_CAP,
    "handshake": 2 * PENDING_CAP,
    "dns": DNS_TCP_CAP,
    "slow-up": FDS_PER_PROXY_CONN * min(N_SLOW, LIVE_CAP),
    "slow-down": FDS_PER_PROXY_CONN * min(N_SLOW, LIVE_CAP),
    "refused": 8,  # the flood's 8 threads, each one connection at a time
}
# RSS: what one proxy connection may buffer (a TLS record each way, the head,
# the exchange's buffers) is well under 256 KiB; the pending ones hold at
# most a head or a 16 KiB hello. ASan's shadow and quarantine come on top,
# so the figure is generous, but a per-connection leak or an unbounded
# buffer (64 MiB bodies here) breaks it. Under ASan the fixture runs osb dev
# with a 16 MiB quarantine and allocator_release_to_os_interval_ms (see
# CMakeLists.txt), so freed memory goes back as glibc's trim makes it.
RSS_PER_CONN = 256 << 10
RSS_BUDGET = 64 << 20
# osb-dev.log: refusal lines are limited to LOG_LINES_PER_WINDOW per kind
# per sandbox per window; a few kinds, lines under 512 bytes. On top, the
# REST access lines of the test's own calls (a victim check and a state read
# are three calls, each line under 200 bytes).
LOG_BYTES_PER_WINDOW = 4 * LOG_LINES_PER_WINDOW * 512
LOG_BYTES_PER_CHECK = 3 * 200
# Fully drained after the attack: within this many descriptors of baseline.
BASELINE_MARGIN = 8
DEADLINE_S = 60


def poll(what, predicate, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)  # polling interval for a condition, not synchronisation
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


class Soak(unittest.TestCase):
    figures = {}

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(sys_e2e.E2E_DIR, "state.json")) as f:
            cls.dev_pid = json.load(f)["dev_pid"]
        cls.log_path = os.path.join(sys_e2e.E2E_DIR, "osb-dev.log")
        cls.audit_path = os.path.join(sys_e2e.E2E_DIR, "audit.log")
        cls.value = "sk-soak-" + uuid.uuid4().hex
        cls.project = "soak-" + uuid.uuid4().hex[:6]
        api("POST", "/api/projects", {"name": cls.project, "egressAllowlist": ["api.test"]}, 201)
        api("PUT", f"/api/projects/{cls.project}/secrets/API_KEY", {"value": cls.value}, 200)
        cls.attacker = api("POST", "/api/sandboxes", {"project": cls.project}, 201)[1]["sandboxID"]
        cls.victim = api("POST", "/api/sandboxes", {"project": cls.project}, 201)[1]["sandboxID"]

    @classmethod
    def tearDownClass(cls):
        for sid in (cls.attacker, cls.victim):
            api("DELETE", f"/api/sandboxes/{sid}")
        api("DELETE", f"/api/projects/{cls.project}")
        text = sys_e2e.read(cls.log_path) + sys_e2e.read(cls.audit_path)
        if cls.value in text:
            raise AssertionError("the real value leaked into the logs")
        print("soak figures: " + json.dumps(cls.figures, sort_keys=True), file=sys.stderr)

    # -- the worker, seen from the host ------------------------------------
    def fds(self):
        return len(os.listdir(f"/proc/{self.dev_pid}/fd"))

    def rss(self):
        for line in sys_e2e.read(f"/proc/{self.dev_pid}/status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def metrics(self):
        text = urllib.request.urlopen(sys_e2e.ENV["OSB_E2E_METRICS_URL"], timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"^([a-z_]+)(?:\{[^}]*\})?\s+([0-9.e+-]+)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
        return out

    def healthz(self):
        with urllib.request.urlopen(sys_e2e.ENV["OPENSANDBOX_API_URL"] + "/healthz", timeout=10) as r:
            return r.status

    # -- sandboxes ---------------------------------------------------------
    def run_in(self, sid, cmd, args, timeout=60):
        _, out, text = api("POST", f"/api/sandboxes/{sid}/exec/run", {"cmd": cmd, "args": args, "timeout": timeout},
                           200)
        self.assertNotIn(self.value, text)
        return out

    def victim_checks(self):
        """The victim's HTTPS call (explicit proxy; token swapped at the
        upstream) and a DNS query over TCP, in one exec."""
        nonce = uuid.uuid4().hex
        script = (
            f'curl -sS --fail --max-time 30 -o /dev/null -w "https=%{{http_code}}\\n" '
            f'"https://api.test/echo?nonce={nonce}" -H "X-Key: $API_KEY"; '
            "python3 - <<'EOF'\n" + DNS_TCP_QUERY + "EOF\n")
        out = self.run_in(self.victim, "sh", ["-c", script])
        self.assertIn("https=200", out["stdout"], out)
        self.assertIn("dns=ok", out["stdout"], out)
        self.assertIn(self.value, json.dumps(sys_e2e.records_with(nonce)))
        self.assertEqual(self.healthz(), 200)

    def attack(self, mode, n):
        """Starts one attack in the attacker sandbox (an exec on its own
        thread) and returns once its first round is in place."""
        result = {}
        tag = uuid.uuid4().hex[:8]

        def run():
            result["out"] = self.run_in(self.attacker, "python3", ["-c", ATTACK_SRC, mode, "--n", str(n),
                                                                   "--max-s", "100", "--tag", tag], timeout=110)
        t = threading.Thread(target=run, daemon=True)
        t.start()

        seen = []

        def ready():
            if "out" in result:
                raise AssertionError(f"the {mode} attack ended early: {result['out']}")
            out = self.run_in(self.attacker, "sh", ["-c", "cat /tmp/soak-state 2>/dev/null; true"])["stdout"]
            seen[:] = [out]
            return out if out.startswith(f"ready tag={tag} ") else None
        try:
            state = poll(f"the {mode} attack to be in place", ready)
        except AssertionError as e:
            raise AssertionError(f"{e}: {seen}")
        pid = int(re.search(r"pid=(\d+)", state).group(1))
        return t, result, pid

    def kill_attack(self, thread, pid):
        self.run_in(self.attacker, "sh", ["-c", f"kill -9 {pid}; true"])
        thread.join(timeout=120)
        self.assertFalse(thread.is_alive())

    def phase(self, mode, n):
        base_fds = poll("a quiet worker", lambda: self.fds() if self.fds() <= self.baseline_fds + BASELINE_MARGIN
                        else None)
        base_rss = self.rss()
        log0, audit0 = os.path.getsize(self.log_path), os.path.getsize(self.audit_path)
        m0 = self.metrics()
        started = time.monotonic()
        thread, result, pid = self.attack(mode, n)
        peak_fds, peak_rss = self.fds(), self.rss()
        t_ready = time.monotonic() - started
        checks = 0
        while True:  # the victim, again and again, until the attack has run its rounds
            self.victim_checks()
            checks += 1
            peak_fds, peak_rss = max(peak_fds, self.fds()), max(peak_rss, self.rss())
            state = self.run_in(self.attacker, "sh", ["-c", "cat /tmp/soak-state"])["stdout"].strip()
            self.assertTrue(state.startswith("ready"), state)
            if int(re.search(r"round=(\d+)", state).group(1)) >= ROUNDS[mode]:
                break
        t_checked = time.monotonic() - started
        m1 = self.metrics()
        self.kill_attack(thread, pid)
        elapsed = time.monotonic() - started
        t_killed = elapsed
        after_fds = poll("descriptors back to baseline",
                         lambda: self.fds() if self.fds() <= self.baseline_fds + BASELINE_MARGIN else None)
        after_rss = self.rss()
        log_growth = os.path.getsize(self.log_path) - log0
        windows = int(elapsed // WINDOW_S) + 2
        fig = {"attack": state, "victim_checks": checks, "fds_base": base_fds, "fds_peak": peak_fds, "fds_after": after_fds,
               "rss_base_mib": round(base_rss / 2**20, 1), "rss_peak_mib": round(peak_rss / 2**20, 1),
               "rss_after_mib": round(after_rss / 2**20, 1), "log_bytes": log_growth,
               "audit_bytes": os.path.getsize(self.audit_path) - audit0,
               "s": [round(t_ready, 1), round(t_checked, 1), round(t_killed, 1),
                     round(time.monotonic() - started, 1)],
               "refused": {k: m1.get(k, 0) - m0.get(k, 0) for k in (
                   "osb_proxy_refused_pending_total", "osb_proxy_refused_connections_total",
                   "osb_proxy_refused_budget_total", "osb_proxy_log_lines_suppressed_total",
                   "osb_proxy_audit_lines_suppressed_total")}}
        self.figures[mode] = fig
        print(f"soak {mode}: {json.dumps(fig)}", file=sys.stderr)
        fd_budget = FD_BUDGET[mode] + FD_MARGIN
        self.assertLessEqual(peak_fds - base_fds, fd_budget, fig)
        rss_budget = RSS_BUDGET + RSS_PER_CONN * FD_BUDGET[mode]
        self.assertLessEqual(peak_rss - base_rss, rss_budget, fig)
        self.assertLessEqual(after_rss - base_rss, rss_budget, fig)
        self.assertLessEqual(log_growth, LOG_BYTES_PER_WINDOW * windows + LOG_BYTES_PER_CHECK * (checks + 2), fig)
        return fig, m0, m1, elapsed

    # -- the attacks, in one order (one test, so the baseline is shared) ---
    def test_soak(self):
        self.assertEqual(self.healthz(), 200)
        self.victim_checks()  # warm: the leaf certificate, the upstream connection path
        self.baseline_fds = self.fds()
        self.figures["baseline"] = {"fds": self.baseline_fds, "rss_mib": round(self.rss() / 2**20, 1)}

        only = set(filter(None, os.environ.get("OSB_SOAK_ONLY", "").split(",")))  # debugging: a subset
        run = lambda mode: not only or mode in only
        for mode, n in (("head", N_HEAD), ("handshake", N_HANDSHAKE)):
            if not run(mode):
                continue
            fig, _, _, _ = self.phase(mode, n)
            # Beyond the cap: refused at accept. Within it: closed at the
            # deadline and opened again, so more than the cap got through.
            refused = fig["refused"]["osb_proxy_refused_pending_total"]
            self.assertGreaterEqual(refused, n - PENDING_CAP, fig)
            opened = int(re.search(r"opened=(\d+)", fig["attack"]).group(1))
            self.assertGreaterEqual(opened - refused, 2 * PENDING_CAP, fig)
        for mode, n in (("dns", N_DNS), ("slow-up", N_SLOW), ("slow-down", N_SLOW)):
            if run(mode):
                self.phase(mode, n)
        if run("refused"):
            self.log_flood()

        # After everything: the worker is back to its baseline and still serves.
        self.victim_checks()
        self.assertLessEqual(self.fds(), self.baseline_fds + BASELINE_MARGIN)

    def log_flood(self):
        audit0 = os.path.getsize(self.audit_path)
        fig, _, _, elapsed = self.phase("refused", N_REFUSED)
        sent = int(re.search(r"sent=(\d+)", fig["attack"]).group(1))
        with open(self.audit_path) as f:
            f.seek(audit0)
            blocked = [json.loads(line) for line in f if self.attacker in line and '"blocked"' in line]
        windows = int(elapsed // WINDOW_S) + 2
        self.assertGreater(sent, AUDIT_BLOCKED_PER_WINDOW * windows, "the flood must outrun the audit rate")
        self.assertLessEqual(len(blocked), AUDIT_BLOCKED_PER_WINDOW * windows, fig)
        self.figures["refused"]["audit_blocked_lines"] = len(blocked)


# A DNS query for api.test over TCP to the sandbox's resolver; prints dns=ok
# when an A record comes back.
DNS_TCP_QUERY = r'''
import socket, struct
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in "api.test".split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.create_connection((ns, 53), timeout=20)
s.sendall(struct.pack(">H", len(q)) + q)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("dns=closed")
        b += c
    return b
(n,) = struct.unpack(">H", read(2))
r = read(n)
ident, flags, qd, an = struct.unpack(">HHHH", r[:8])
print("dns=ok" if ident == 0x1234 and flags & 0xF == 0 and an >= 1 else f"dns=bad rcode={flags & 0xF} an={an}")
'''


if __name__ == "__main__":
    unittest.main(verbosity=2)
