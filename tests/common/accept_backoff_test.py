"""The REST acceptor backs off when the process is out of descriptors
(issue 13): the real `osb server`, started with RLIMIT_NOFILE = 96, is
driven to EMFILE by idle connections. Before the fix its accept loop retried
at once and logged every failure (millions of lines, a core spinning); now it
waits 10 ms .. 1 s between attempts and logs rate-limited. CPU time and log
growth during the exhaustion are compared with a baseline measured in the
same test; once the connections close, /healthz answers again.

Environment: OSB_BIN (the osb binary).
"""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

OSB = os.environ.get("OSB_BIN", "build/osb")
KEY = "ab" * 32


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthz(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b"\r\n", 1)[0]


class RestAcceptBackoff(unittest.TestCase):
    def test_out_of_descriptors_does_not_spin_or_flood_the_log(self):
        tmp = tempfile.mkdtemp(prefix="osb_accept_backoff_")
        err_path = os.path.join(tmp, "server.err")
        out_path = os.path.join(tmp, "server.out")
        env = dict(os.environ, OPENSANDBOX_SECRET_ENCRYPTION_KEY=KEY)

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

        with open(err_path, "w") as err, open(out_path, "w") as out:
            proc = subprocess.Popen([OSB, "server", "--insecure-grpc", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                                     "--db", "sqlite://" + tmp + "/osb.db"], stdout=out, stderr=err, env=env,
                                    preexec_fn=limit)
        socks = []
        try:
            port = None
            end = time.monotonic() + 60
            while port is None:
                with open(out_path) as f:
                    m = re.search(r"listening on port (\d+)", f.read())
                if m:
                    port = int(m.group(1))
                    break
                self.assertIsNone(proc.poll(), "osb server exited early")
                self.assertLess(time.monotonic(), end, "osb server did not start")
                time.sleep(0.05)  # polling a readiness condition, bounded
            self.assertEqual(healthz(port), b"HTTP/1.1 200 OK")
            window = 2.0
            c0, l0 = cpu_seconds(proc.pid), os.path.getsize(err_path)
            time.sleep(window)  # measuring over a wall-clock window (not synchronisation)
            base_cpu, base_log = cpu_seconds(proc.pid) - c0, os.path.getsize(err_path) - l0
            # More idle connections than the process has descriptors.
            for _ in range(150):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            c1, l1 = cpu_seconds(proc.pid), os.path.getsize(err_path)
            time.sleep(window)  # measuring over a wall-clock window (not synchronisation)
            cpu, log = cpu_seconds(proc.pid) - c1, os.path.getsize(err_path) - l1
            print("\n  over %.1fs: idle cpu %.3fs log %dB; at EMFILE cpu %.3fs log %dB" %
                  (window, base_cpu, base_log, cpu, log))
            self.assertLessEqual(cpu, base_cpu + 0.1 * window, "the accept loop spins at EMFILE")
            self.assertLessEqual(log, base_log + 4096, "the accept loop floods the log at EMFILE")
            # Descriptors come back: the server answers again.
            for s in socks:
                s.close()
            socks = []
            end = time.monotonic() + 30
            while True:
                try:
                    if healthz(port) == b"HTTP/1.1 200 OK":
                        break
                except OSError:
                    pass
                self.assertLess(time.monotonic(), end, "/healthz did not come back")
                time.sleep(0.05)  # polling a condition, bounded
        finally:
            for s in socks:
                s.close()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with open(err_path) as f:
                tail = f.read()[-3000:]
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertNotIn("ERROR: AddressSanitizer", tail)


if __name__ == "__main__":
    unittest.main()
