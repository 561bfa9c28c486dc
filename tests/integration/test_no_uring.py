#!/usr/bin/env python3
"""weir without io_uring (seccomp makes io_uring_setup fail, as in many
containers): a clear message naming the cause and exit status 1, never a
crash or a hang."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
import harness as h  # noqa: E402

NO_URING = os.environ.get("NO_URING_BIN")


def run(errname):
    port = h.free_port()
    p = subprocess.run([NO_URING, errname, os.environ["WEIR_BIN"], "--listen",
                        "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=20)
    if p.returncode == 77:
        print("SKIP: cannot install a seccomp filter here: %s" % p.stderr.strip())
        sys.exit(77)
    return p


def test_eperm(_):
    p = run("EPERM")
    h.check(p.returncode == 1, "exit status %d (want 1); stderr: %s" % (p.returncode, p.stderr))
    h.check("io_uring" in p.stderr and "io_uring_disabled" in p.stderr and "seccomp" in p.stderr,
            "message does not explain the cause: %r" % p.stderr)


def test_enosys(_):
    p = run("ENOSYS")
    h.check(p.returncode == 1, "exit status %d (want 1); stderr: %s" % (p.returncode, p.stderr))
    h.check("no io_uring" in p.stderr, "message does not explain the cause: %r" % p.stderr)


if __name__ == "__main__":
    if not NO_URING:
        print("SKIP: NO_URING_BIN not set")
        sys.exit(77)
    h.main([test_eperm, test_enosys], setup=lambda: None)
