#!/usr/bin/env python3
"""Starts and stops the whole system for end-to-end tests (a ctest fixture).

    harness.py start DIR --osb BUILD/osb [--env-out FILE ...]
    harness.py stop DIR

start:
  * a TLS upstream (tests/support/upstream.py, its own test CA) in its own
    network namespace, reachable from the host at a private address that
    only exists on this machine's own veth pair;
  * mutual-TLS certificates for control plane <-> worker
    (scripts/gen-grpc-certs.sh);
  * `osb dev` as root with the worker in-process, told to trust the
    upstream's CA, to allow its private address, and to resolve the test
    names api.test / other.test to it;
  then writes DIR/env (and every --env-out) with NAME=VALUE lines:
    OPENSANDBOX_API_URL, OPENSANDBOX_API_KEY, OSB_TEST_UPSTREAM_URL,
    OSB_TEST_UPSTREAM_RECORD_DIR, OSB_E2E_DIR, OSB_E2E_UPSTREAM_ADDR,
    OSB_E2E_METRICS_URL (the proxy's Prometheus endpoint). DIR/state.json
    holds dev_pid, the osb dev process.
  Readiness is polled with a deadline; nothing sleeps blindly.
stop: ends every process it started and removes the namespace and veth.
crash-restart: kill -9 osb dev and start it again on the same ports and data
  (sandboxes survive and must keep working).
Exit 77 (skip) when not root: sandboxes need root.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE_S = 120


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def wait_for(what, predicate, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)  # polling interval for a readiness condition, not synchronisation
    raise SystemExit(f"harness: timed out waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dev(d, state):
    """Starts osb dev (appending to its log) and waits until its worker has
    registered with the control plane."""
    log_path = os.path.join(d, "osb-dev.log")
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    log = open(log_path, "a")
    dev = subprocess.Popen(state["dev_cmd"], stdout=log, stderr=subprocess.STDOUT, env=state["dev_env"],
                           start_new_session=True)
    state["pids"].append(dev.pid)
    state["dev_pid"] = dev.pid

    def ready():
        if dev.poll() is not None:
            raise SystemExit("harness: osb dev exited:\n" + open(log_path).read()[offset:])
        text = open(log_path).read()[offset:]
        return "API at " in text and "registered with the control plane" in text
    wait_for("osb dev and its worker", ready)
    url = open(log_path).read()[offset:].split("API at ", 1)[1].split()[0]
    urllib.request.urlopen(url + "/readyz", timeout=10).read()  # osb dev prints its URL once ready


def crash_restart(args):
    """kill -9 osb dev (control plane and worker die mid-flight, sandboxes
    keep running), then start it again with the same flags and data."""
    d = os.path.abspath(args.dir)
    state = json.load(open(os.path.join(d, "state.json")))
    # Only the process: its sandboxes' inits share its process group and
    # would die with a killpg, which is not what a crash does.
    os.kill(state["dev_pid"], signal.SIGKILL)
    wait_for("osb dev to die", lambda: not alive(state["dev_pid"]))
    start_dev(d, state)
    json.dump(state, open(os.path.join(d, "state.json"), "w"))
    return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as dead
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"


def names(dir_):
    n = os.getpid() % 200 + 20
    tag = f"{n}"
    return {"ns": f"osbe2e{tag}", "veth_host": f"osbe2e{tag}h", "veth_ns": f"osbe2e{tag}n",
            "host_addr": f"10.253.{n}.1", "up_addr": f"10.253.{n}.2", "cidr": f"10.253.{n}.0/30"}


def start(args):
    if os.geteuid() != 0:
        print("harness: needs root for sandboxes; skipping", file=sys.stderr)
        return 77
    d = os.path.abspath(args.dir)
    if os.path.exists(os.path.join(d, "state.json")):
        stop(args)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    net = names(d)
    state = {"net": net, "pids": []}
    save = lambda: json.dump(state, open(os.path.join(d, "state.json"), "w"))
    save()

    # The upstream's own namespace and veth.
    sh("ip", "netns", "add", net["ns"])
    sh("ip", "link", "add", net["veth_host"], "type", "veth", "peer", "name", net["veth_ns"])
    sh("ip", "link", "set", net["veth_ns"], "netns", net["ns"])
    sh("ip", "addr", "add", net["host_addr"] + "/30", "dev", net["veth_host"])
    sh("ip", "link", "set", net["veth_host"], "up")
    sh("ip", "-n", net["ns"], "addr", "add", net["up_addr"] + "/30", "dev", net["veth_ns"])
    sh("ip", "-n", net["ns"], "link", "set", net["veth_ns"], "up")
    sh("ip", "-n", net["ns"], "link", "set", "lo", "up")

    records = os.path.join(d, "records")
    os.makedirs(records)
    up_log = open(os.path.join(d, "upstream.log"), "w")
    up = subprocess.Popen(
        ["ip", "netns", "exec", net["ns"], sys.executable, os.path.join(SRC, "tests/support/upstream.py"),
         "--cert-dir", os.path.join(d, "upstream-certs"), "--port-file", os.path.join(d, "upstream.json"),
         "--record-dir", records, "--host", net["up_addr"], "--port", "443",
         "--names", "api.test,other.test,localhost"],
        stdout=up_log, stderr=subprocess.STDOUT, start_new_session=True)
    state["pids"].append(up.pid)
    save()
    wait_for("the upstream", lambda: os.path.exists(os.path.join(d, "upstream.json")))

    # osb dev makes its own gRPC CA and certificates (data/grpc-tls) and runs
    # mutual TLS between its control plane and worker.
    env = dict(os.environ)
    env.update({"HOME": os.path.join(d, "home"), "XDG_CONFIG_HOME": os.path.join(d, "home", ".config")})
    for k in ("OPENSANDBOX_API_KEY", "OPENSANDBOX_SECRET_ENCRYPTION_KEY", "OPENSANDBOX_SECRET_ENCRYPTION_KEY_FILE",
              "OPENSANDBOX_GRPC_TLS_CA", "OPENSANDBOX_GRPC_TLS_CERT", "OPENSANDBOX_GRPC_TLS_KEY"):
        env.pop(k, None)
    os.makedirs(env["HOME"])
    up_target = net["up_addr"] + ":443"
    # Fixed ports (picked free now) so a restarted osb dev listens where the
    # running sandboxes' nft rules point.
    ports = {name: free_port() for name in ("api", "grpc", "worker", "proxy", "tls", "http", "dns", "metrics")}
    state["dev_cmd"] = [
        args.osb, "dev", "--data-dir", os.path.join(d, "data"), "--listen", f"127.0.0.1:{ports['api']}",
        "--grpc-listen", f"localhost:{ports['grpc']}", "--worker-listen", f"localhost:{ports['worker']}",
        "--proxy-listen", f"127.0.0.1:{ports['proxy']}", "--transparent-listen", f"127.0.0.1:{ports['tls']}",
        "--transparent-http-listen", f"127.0.0.1:{ports['http']}", "--dns-listen", f"127.0.0.1:{ports['dns']}",
        "--address-pool", args.address_pool, "--name-prefix", args.name_prefix, "--run-dir", "/run/" + args.name_prefix,
        "--metrics-listen", f"127.0.0.1:{ports['metrics']}",
        "--audit-log", os.path.join(d, "audit.log"),
        "--upstream-ca", os.path.join(d, "upstream-certs", "ca.crt"), "--allow-private", net["cidr"],
        "--resolve", "api.test=" + up_target, "--resolve", "other.test=" + up_target]
    state["dev_env"] = env
    start_dev(d, state)
    save()
    log_path = os.path.join(d, "osb-dev.log")
    url = open(log_path).read().split("API at ", 1)[1].split()[0]
    api_key = open(os.path.join(d, "data", "api-key")).read().strip()

    lines = {"OPENSANDBOX_API_URL": url, "OPENSANDBOX_API_KEY": api_key,
             "OSB_TEST_UPSTREAM_URL": "https://api.test", "OSB_TEST_UPSTREAM_RECORD_DIR": records,
             "OSB_E2E_DIR": d, "OSB_E2E_UPSTREAM_ADDR": net["up_addr"],
             "OSB_E2E_METRICS_URL": f"http://127.0.0.1:{ports['metrics']}/metrics"}
    text = "".join(f"{k}={v}\n" for k, v in lines.items())
    for path in [os.path.join(d, "env")] + (args.env_out or []):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)
    print(f"harness: up: {url}, upstream {up_target}, logs in {d}")
    return 0


def stop(args):
    d = os.path.abspath(args.dir)
    try:
        state = json.load(open(os.path.join(d, "state.json")))
    except (OSError, ValueError):
        return 0
    for pid in reversed(state["pids"]):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    net = state["net"]
    sh("ip", "link", "del", net["veth_host"], check=False)
    sh("ip", "netns", "del", net["ns"], check=False)
    os.rename(os.path.join(d, "state.json"), os.path.join(d, "state.stopped.json"))
    for p in ("osb-dev.log", "audit.log"):
        path = os.path.join(d, p)
        if os.path.exists(path):
            print(f"harness: {path}: {os.path.getsize(path)} bytes")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["start", "stop", "crash-restart"])
    p.add_argument("dir")
    p.add_argument("--osb")
    p.add_argument("--env-out", action="append")
    # A second instance next to the shared one (the soak test) needs its own
    # host-object prefix and address pool: a worker reconciles its prefix.
    p.add_argument("--name-prefix", default="osbe")
    p.add_argument("--address-pool", default="10.201.0.0/16")
    args = p.parse_args()
    return {"start": start, "stop": stop, "crash-restart": crash_restart}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
