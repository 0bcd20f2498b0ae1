#!/usr/bin/env python3
"""Files in a sandbox end to end (issue 15, docs/files.md), against the real
binaries started by harness.py, with curl as the client: streamed upload and
download, list, mkdir, delete, the disk quota, an interrupted upload, and
every escape attempt we know of. Each escape test puts a marker file on the
HOST outside any sandbox and proves it is never read, written or removed.
Run as root (the harness skips otherwise).
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

from e2e_env import api_client, load_env

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


ENV = load_env("files")
API = ENV["OPENSANDBOX_API_URL"]
KEY = ENV["OPENSANDBOX_API_KEY"]


api = api_client(ENV)


def q(path):
    return urllib.parse.quote(path, safe="")


def curl(*args, data_file=None, out_file=None):
    """Runs curl; returns (http status, body bytes or None)."""
    cmd = ["curl", "-sS", "-H", "X-API-Key: " + KEY, "-w", "\n%{http_code}"]
    if data_file is not None:
        cmd += ["-X", "PUT", "--data-binary", "@" + data_file, "-H", "Content-Type: application/octet-stream"]
    if out_file is not None:
        cmd += ["-o", out_file]
    cmd += list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=300)
    text = r.stdout
    body, _, code = text.rpartition(b"\n")
    return int(code or b"0"), body


def files_url(sid, path, **extra):
    query = "path=" + q(path) + "".join(f"&{k}={v}" for k, v in extra.items())
    return f"{API}/api/sandboxes/{sid}/files?{query}"


def exec_in(sid, script, timeout=30):
    _, out, _ = api("POST", f"/api/sandboxes/{sid}/exec/run",
                    {"cmd": "/bin/sh", "args": ["-c", script], "timeout": timeout}, expect=200)
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Files(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = f"/tmp/osb-files-e2e-{uuid.uuid4().hex[:8]}"
        os.makedirs(cls.tmp)
        # The host marker lives where no sandbox root has anything (/var is
        # not bound into sandboxes) — an escape would be the only way to it.
        cls.host_dir = f"/var/tmp/osb-host-{uuid.uuid4().hex[:8]}"
        os.makedirs(cls.host_dir)
        cls.marker = os.path.join(cls.host_dir, "shadow")
        with open(cls.marker, "w") as f:
            f.write("HOST-MARKER-" + uuid.uuid4().hex)
        with open(cls.marker) as f:
            cls.marker_text = f.read()
        _, a, _ = api("POST", "/api/sandboxes", {"memoryMB": 256, "timeout": 900}, expect=201)
        _, b, _ = api("POST", "/api/sandboxes", {"memoryMB": 128, "timeout": 900}, expect=201)
        cls.sid, cls.other = a["sandboxID"], b["sandboxID"]

    @classmethod
    def tearDownClass(cls):
        for sid in (cls.sid, cls.other):
            api("DELETE", f"/api/sandboxes/{sid}")
        subprocess.run(["rm", "-rf", cls.tmp, cls.host_dir])

    def assert_host_untouched(self):
        with open(self.marker) as f:
            self.assertEqual(f.read(), self.marker_text)
        self.assertEqual(sorted(os.listdir(self.host_dir)), ["shadow"])

    def test_the_file_data_port_is_an_own_door(self):
        """The worker's file data port (docs/files.md: file bytes between control
        plane and worker on their own mutual-TLS port) is one of the product's own
        doors: a sandbox's CONNECT to it through its proxy is refused with the
        own-door reason, not merely as a connection to the host."""
        d = ENV["OSB_E2E_DIR"]
        with open(os.path.join(d, "osb-dev.log")) as f:
            ports = re.findall(r"file data port (\d+)", f.read())
        self.assertTrue(ports, "the worker did not log its file data port")
        port = int(ports[-1])

        def own_door_lines():
            with open(os.path.join(d, "audit.log")) as f:
                lines = [json.loads(l) for l in f if l.strip()]
            return lines, [l for l in lines if l.get("sandbox") == self.other and l.get("method") == "CONNECT"
                           and l.get("host") == "127.0.0.1" and "own service ports" in l.get("reason", "")]
        before = len(own_door_lines()[1])
        # Through the sandbox's proxy (NO_PROXY covers loopback: force it).
        out = exec_in(self.other, f"curl -sS -o /dev/null -w '%{{http_connect}}' --max-time 20 -x \"$HTTPS_PROXY\" "
                                  f"--noproxy '' https://127.0.0.1:{port}/ 2>/dev/null; true")
        self.assertEqual(out["stdout"].strip(), "403", out)
        # Refused as an own door (without the registration the refusal would
        # name the host's own address instead).
        end = time.monotonic() + 10
        while True:
            lines, hits = own_door_lines()
            if len(hits) > before:
                break
            self.assertLess(time.monotonic(), end, f"no own-door audit line for port {port}: {lines[-3:]}")
            time.sleep(0.05)  # polling the audit file, bounded by the deadline

    def test_upload_download_roundtrip_streamed(self):
        src = os.path.join(self.tmp, "blob")
        with open(src, "wb") as f:
            f.write(os.urandom(24 << 20) + b"tail")
        code, body = curl(files_url(self.sid, "/home/sandbox/blob.bin", mode="600"), data_file=src)
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["size"], (24 << 20) + 4)
        out = os.path.join(self.tmp, "blob.out")
        code, _ = curl(files_url(self.sid, "/home/sandbox/blob.bin"), out_file=out)
        self.assertEqual(code, 200)
        self.assertEqual(sha256(out), sha256(src))
        # Owned by the sandbox user, with the mode asked for.
        ls = exec_in(self.sid, "stat -c '%U %a %s' /home/sandbox/blob.bin")
        self.assertEqual(ls["stdout"].strip(), f"sandbox 600 {(24 << 20) + 4}")
        # Relative paths are from /home/sandbox.
        code, body = curl(files_url(self.sid, "blob.bin"), "-o", "/dev/null")
        self.assertEqual(code, 200)
        # An empty file.
        empty = os.path.join(self.tmp, "empty")
        open(empty, "wb").close()
        code, _ = curl(files_url(self.sid, "/tmp/empty"), data_file=empty)
        self.assertEqual(code, 200)
        code, body = curl(files_url(self.sid, "/tmp/empty"))
        self.assertEqual((code, body), (200, b""))

    def test_list_mkdir_delete(self):
        _, made, _ = api("POST", f"/api/sandboxes/{self.sid}/files/mkdir",
                         {"path": "/home/sandbox/d1/d2/d3", "parents": True}, expect=201)
        self.assertEqual(made["path"], "/home/sandbox/d1/d2/d3")
        api("POST", f"/api/sandboxes/{self.sid}/files/mkdir", {"path": "/home/sandbox/d1"}, expect=409)
        api("POST", f"/api/sandboxes/{self.sid}/files/mkdir", {"path": "/home/sandbox/nope/x"}, expect=404)
        api("POST", f"/api/sandboxes/{self.sid}/files/mkdir", {"path": "/x", "parents": "yes"}, expect=400)
        exec_in(self.sid, "printf 12345 > /home/sandbox/d1/f; ln -s /etc/passwd /home/sandbox/d1/l")
        _, listing, _ = api("GET", f"/api/sandboxes/{self.sid}/files/list?path={q('/home/sandbox/d1')}", expect=200)
        by = {e["name"]: e for e in listing["entries"]}
        self.assertEqual(set(by), {"d2", "f", "l"})
        self.assertEqual(by["f"]["type"], "file")
        self.assertEqual(by["f"]["size"], 5)
        self.assertRegex(by["f"]["mode"], r"^0[0-7]{3}$")
        self.assertRegex(by["f"]["mtime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(by["d2"]["type"], "dir")
        self.assertEqual(by["l"]["type"], "symlink")
        self.assertFalse(listing["truncated"])
        api("DELETE", f"/api/sandboxes/{self.sid}/files?path={q('/home/sandbox/d1')}", expect=409)
        api("DELETE", f"/api/sandboxes/{self.sid}/files?path={q('/home/sandbox/d1/f')}", expect=204)
        api("DELETE", f"/api/sandboxes/{self.sid}/files?path={q('/home/sandbox/d1')}&recursive=true", expect=204)
        api("GET", f"/api/sandboxes/{self.sid}/files/list?path={q('/home/sandbox/d1')}", expect=404)
        api("DELETE", f"/api/sandboxes/{self.sid}/files?path=%2F&recursive=true", expect=400)

    def test_bad_requests_name_the_field(self):
        status, body, _ = api("GET", f"/api/sandboxes/{self.sid}/files/list")
        self.assertEqual(status, 400)
        self.assertIn("path", body["error"])
        status, body, _ = api("GET", f"/api/sandboxes/{self.sid}/files/list?path=/tmp&bogus=1")
        self.assertEqual(status, 400)
        self.assertIn("bogus", body["error"])
        code, body = curl(files_url(self.sid, "/tmp/x", mode="999"), "-X", "PUT", "--data-binary", "x")
        self.assertEqual(code, 400)
        self.assertIn(b"mode", body)
        code, _ = curl(f"{API}/api/sandboxes/{self.sid}/files?path=%ZZ")
        self.assertEqual(code, 400)
        code, _ = curl(files_url("no-such-sandbox", "/tmp/x"))
        self.assertEqual(code, 404)
        # No key: 401 before a byte of the body is stored.
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                            "--data-binary", "x" * 1000, files_url(self.sid, "/tmp/nokey")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout, "401")
        api("GET", f"/api/sandboxes/{self.sid}/files/list?path={q('/tmp/nokey')}", expect=404)

    def test_escape_dotdot_chains(self):
        rel = os.path.relpath(self.marker, "/")
        for path in ["/../../../../" + rel, "/home/sandbox/../../../" + rel, "../../../../../" + rel]:
            code, body = curl(files_url(self.sid, path))
            self.assertEqual(code, 404, (path, body))
            self.assertNotIn(self.marker_text.encode(), body)
        # Writing through the same chain stays inside the sandbox.
        src = os.path.join(self.tmp, "evil")
        with open(src, "w") as f:
            f.write("EVIL")
        code, _ = curl(files_url(self.sid, "/../../../../tmp/evil"), data_file=src)
        self.assertEqual(code, 200)
        self.assertFalse(os.path.exists("/tmp/evil") and open("/tmp/evil").read() == "EVIL")
        self.assertEqual(exec_in(self.sid, "cat /tmp/evil")["stdout"], "EVIL")
        self.assert_host_untouched()

    def test_escape_absolute_symlinks(self):
        exec_in(self.sid, f"ln -sfn {self.marker} /home/sandbox/abs; ln -sfn {self.host_dir} /home/sandbox/hostdir;"
                          f" ln -sfn /etc/shadow /home/sandbox/shadow")
        for path in ["/home/sandbox/abs", "/home/sandbox/hostdir/shadow", "/home/sandbox/shadow", "/etc/shadow"]:
            code, body = curl(files_url(self.sid, path))
            self.assertIn(code, (404, 403), (path, body))
            self.assertNotIn(self.marker_text.encode(), body)
            self.assertNotIn(b"root:", body)
        src = os.path.join(self.tmp, "plant")
        with open(src, "w") as f:
            f.write("PLANTED")
        code, _ = curl(files_url(self.sid, "/home/sandbox/hostdir/planted"), data_file=src)
        self.assertEqual(code, 404)
        code, _ = curl(files_url(self.sid, "/home/sandbox/abs"), data_file=src)  # replaces the link itself
        self.assertEqual(code, 200)
        api("DELETE", f"/api/sandboxes/{self.sid}/files?path={q('/home/sandbox/hostdir/shadow')}", expect=404)
        api("POST", f"/api/sandboxes/{self.sid}/files/mkdir", {"path": "/home/sandbox/hostdir/new"}, expect=404)
        self.assert_host_untouched()
        # The worker's own state never shows either.
        for path in ["/run/osb", "/var/lib/osb", "/proc/1/root/etc/hostname"]:
            status, _, _ = api("GET", f"/api/sandboxes/{self.sid}/files/list?path={q(path)}")
            self.assertIn(status, (400, 403, 404), path)

    def test_escape_proc_magic_links(self):
        for path in ["/proc/self/root/etc/passwd", "/proc/1/cwd", "/proc/self/cwd/x", "/proc/1/root/etc/hostname",
                     "/proc/self/fd/0"]:
            code, body = curl(files_url(self.sid, path))
            self.assertIn(code, (400, 403, 404), (path, body))
            self.assertNotIn(b"root:x:0:0", body)
        code, body = curl(files_url(self.sid, "/proc/self/root/etc/passwd"))
        self.assertEqual(code, 400, body)
        self.assertIn(b"magic link", body)

    def test_special_files_refused_and_never_block(self):
        exec_in(self.sid, "mkfifo /home/sandbox/fifo")
        start = time.monotonic()
        code, body = curl(files_url(self.sid, "/home/sandbox/fifo"))
        self.assertEqual(code, 400)
        self.assertIn(b"/home/sandbox/fifo", body)
        src = os.path.join(self.tmp, "f")
        with open(src, "w") as f:
            f.write("x")
        code, body = curl(files_url(self.sid, "/home/sandbox/fifo"), data_file=src)
        self.assertEqual(code, 400)
        for dev in ["/dev/zero", "/dev/urandom", "/dev/null"]:
            code, body = curl(files_url(self.sid, dev))
            self.assertEqual(code, 400, dev)
            self.assertLess(len(body), 1000)
        self.assertLess(time.monotonic() - start, 20)

    def test_other_sandbox_unreachable(self):
        secret = "OTHER-" + uuid.uuid4().hex
        exec_in(self.other, f"printf {secret} > /home/sandbox/mine; printf {secret} > /tmp/mine")
        for path in ["/home/sandbox/mine", "/tmp/mine", f"/run/osb/{self.other}/root/home/sandbox/mine"]:
            code, body = curl(files_url(self.sid, path))
            self.assertEqual(code, 404, path)
            self.assertNotIn(secret.encode(), body)
        # Through its own id the file is there: the 404s above were isolation, not a typo.
        code, body = curl(files_url(self.other, "/home/sandbox/mine"))
        self.assertEqual((code, body), (200, secret.encode()))

    def test_symlink_swapped_during_calls(self):
        """A process inside swaps names between real things and host paths in
        a loop while the API downloads and uploads through them."""
        exec_in(self.sid, "printf inside > /home/sandbox/real; mkdir -p /home/sandbox/realdir")
        script = (f"end=$(( $(date +%s) + 12 )); while [ $(date +%s) -lt $end ]; do "
                  f"ln -sfn {self.marker} /home/sandbox/link; ln -sfn {self.host_dir} /home/sandbox/dlink; "
                  f"ln -sfn /home/sandbox/real /home/sandbox/link; ln -sfn /home/sandbox/realdir /home/sandbox/dlink; "
                  f"done")
        swapper = threading.Thread(target=exec_in, args=(self.sid, script, 60))
        swapper.start()
        src = os.path.join(self.tmp, "race")
        with open(src, "w") as f:
            f.write("RACE")
        seen = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            code, body = curl(files_url(self.sid, "/home/sandbox/link"))
            seen[code] = seen.get(code, 0) + 1
            self.assertNotIn(self.marker_text.encode(), body)
            if code == 200:
                self.assertEqual(body, b"inside")
            curl(files_url(self.sid, "/home/sandbox/dlink/up"), data_file=src)
        swapper.join()
        self.assertGreater(seen.get(200, 0), 0, seen)
        self.assert_host_untouched()

    def test_disk_quota_full_is_413_and_leaves_nothing(self):
        # 128 MiB sandbox: /tmp + /home share a 64 MiB tmpfs.
        src = os.path.join(self.tmp, "huge")
        with open(src, "wb") as f:
            f.truncate(96 << 20)
        code, body = curl(files_url(self.other, "/home/sandbox/huge"), data_file=src)
        self.assertEqual(code, 413, body)
        self.assertIn(b"no space", body)
        _, listing, _ = api("GET", f"/api/sandboxes/{self.other}/files/list?path={q('/home/sandbox')}", expect=200)
        names = [e["name"] for e in listing["entries"]]
        self.assertNotIn("huge", names)
        self.assertFalse([n for n in names if "osb-upload" in n], names)
        # Space is back: a small upload works.
        small = os.path.join(self.tmp, "small")
        with open(small, "w") as f:
            f.write("ok")
        code, _ = curl(files_url(self.other, "/home/sandbox/small"), data_file=small)
        self.assertEqual(code, 200)

    def test_interrupted_upload_leaves_no_file(self):
        u = urllib.parse.urlparse(API)
        sock = socket.create_connection((u.hostname, u.port), timeout=30)
        path = "/home/sandbox/partial"
        head = (f"PUT /api/sandboxes/{self.sid}/files?path={q(path)} HTTP/1.1\r\nHost: x\r\n"
                f"X-API-Key: {KEY}\r\nContent-Length: {16 << 20}\r\n\r\n")
        sock.sendall(head.encode() + b"p" * (2 << 20))
        sock.close()
        deadline = time.monotonic() + 30
        while True:
            _, listing, _ = api("GET", f"/api/sandboxes/{self.sid}/files/list?path={q('/home/sandbox')}", expect=200)
            names = [e["name"] for e in listing["entries"]]
            leftovers = [n for n in names if "partial" in n]
            if not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # polling for the worker to notice the cancel, not synchronisation
        self.assertEqual(leftovers, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
