"""Waiting for a test service to be ready, with a deadline (no sleeps as
synchronisation: the poll ends as soon as the condition holds)."""
import json
import os
import time


def wait_for_file(path, proc, deadline=30.0):
    """The JSON a starting process writes to `path` once it listens; fails
    at once if the process exits first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        if proc.poll() is not None:
            raise RuntimeError("process exited early: %s" % proc.args)
        time.sleep(0.05)  # polling a readiness condition, bounded by the deadline
    raise RuntimeError("timed out waiting for %s" % path)
