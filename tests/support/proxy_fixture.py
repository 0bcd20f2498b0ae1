"""What the proxy integration tests set up, in one place: a temp dir, a real
TLS upstream with its own CA (upstream.py or aws_upstream.py here, on
127.0.0.3, recording what it receives) and the real `osb proxy` in front of
it, each ready when its ready file appears (readiness.wait_for_file); and
the teardown that stops both and checks that no real value reached the
proxy's audit log or stderr, that no sanitizer spoke, and (unless told
otherwise) that the proxy exited 0.

    fx = ProxyFixture("osb_proxy_it_")
    up = fx.start_upstream(args=["--plain"])       # port, plainPort, ca, ...
    ready = fx.start_proxy(OSB, sessions, ["--listen", "127.0.0.1:0", ...])
    ...
    fx.stop(secrets=[V1, V2])                      # in tearDownClass
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from readiness import wait_for_file

SUPPORT = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_HOST = "127.0.0.3"


def send_connect(proxy_port, host, port, source="127.0.0.1", timeout=60):
    """Sends CONNECT host:port to the explicit proxy on 127.0.0.1:proxy_port
    from `source` and reads its answer head; returns (status, the socket,
    the bytes read: the head and whatever came with it). The caller closes."""
    raw = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout, source_address=(source, 0))
    raw.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = raw.recv(4096)
        if not chunk:
            break
        resp += chunk
    return (int(resp.split(b" ")[1]) if resp else 0), raw, resp


def connect_tunnel(proxy_port, host, port, source="127.0.0.1", timeout=60):
    """send_connect, for a tunnel: (200, the raw socket ready for TLS), else
    (status, None) with the socket closed."""
    status, raw, _ = send_connect(proxy_port, host, port, source=source, timeout=timeout)
    if status != 200:
        raw.close()
        return status, None
    return status, raw


class ProxyFixture:
    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.records = self.path("records")     # the upstream's request records
        self.audit = self.path("audit.log")     # the proxy's --audit-log
        self.sessions_file = self.path("sessions.json")
        self.upstream = None
        self.proxy = None
        self.up = None                           # the upstream's port file
        self._files = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def _log(self, name):
        f = open(self.path(name), "w")
        self._files.append(f)
        return f

    def start_upstream(self, script="upstream.py", args=(), env=None, keep_stderr=False):
        """Starts tests/support/`script` on 127.0.0.3 with its CA in <tmp>/up;
        returns its port file ({"port", "ca", "plainPort" with --plain, ...}).
        keep_stderr: its stderr goes to <tmp>/up.err (else nowhere)."""
        stderr = self._log("up.err") if keep_stderr else subprocess.DEVNULL
        self.upstream = subprocess.Popen(
            [sys.executable, os.path.join(SUPPORT, script), "--cert-dir", self.path("up"),
             "--port-file", self.path("up.json"), "--record-dir", self.records, "--host", UPSTREAM_HOST,
             *args], stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        self.up = wait_for_file(self.path("up.json"), self.upstream)
        return self.up

    def write_sessions(self, sessions):
        with open(self.sessions_file, "w") as f:
            json.dump(sessions, f)
        return self.sessions_file

    def start_proxy(self, osb, sessions, args, env=None):
        """Starts `osb proxy` with `sessions` (written to sessions_file), the
        upstream's CA, its own state dir, audit log and ready file, and
        `args` (listeners, --resolve, ...). Returns the ready file, caCert
        made absolute; its stderr goes to <tmp>/proxy.err."""
        cmd = [osb, "proxy", "--state-dir", self.path("state"), "--sessions", self.write_sessions(sessions),
               "--upstream-ca", self.up["ca"], "--audit-log", self.audit,
               "--ready-file", self.path("proxy.json"), *args]
        self.proxy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log("proxy.err"), env=env)
        ready = wait_for_file(self.path("proxy.json"), self.proxy)
        if not os.path.isabs(ready["caCert"]):
            ready["caCert"] = os.path.join(os.getcwd(), ready["caCert"])
        return ready

    def stop(self, secrets=(), patterns=(), check_exit=True):
        """Stops the proxy and the upstream (SIGTERM, then SIGKILL after 10 s),
        then asserts: no value of `secrets` and no match of a compiled regex
        in `patterns` is in the audit log or the proxy's stderr; no sanitizer
        report; exit code 0 when check_exit. Removes the temp dir unless
        OSB_KEEP_TMP is set."""
        for p in (self.proxy, self.upstream):
            if p is None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self._files:
            f.close()
        try:
            if self.proxy is None:
                return
            audit = ""
            if os.path.exists(self.audit):
                with open(self.audit) as f:
                    audit = f.read()
            with open(self.path("proxy.err")) as f:
                err = f.read()
            for v in secrets:
                assert v not in audit, "a real value reached the audit log"
                assert v not in err, "a real value reached the proxy's stderr"
            for p in patterns:
                assert not p.search(audit) and not p.search(err), "a secret (%s) reached a log" % p.pattern
            assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err[-3000:]
            if check_exit:
                assert self.proxy.returncode == 0, "proxy exit code %s: %s" % (self.proxy.returncode, err[-3000:])
        finally:
            if not os.environ.get("OSB_KEEP_TMP"):
                shutil.rmtree(self.tmp, ignore_errors=True)
