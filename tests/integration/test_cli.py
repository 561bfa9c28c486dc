#!/usr/bin/env python3
"""Command line without -c: the built-in welcome page, --upstream, --cpus."""

import os
import re
import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    return e


def test_welcome_page(e):
    port = h.free_port()
    w = h.start_weir(None, port=port, args=["--listen", "127.0.0.1:%d" % port])
    with h.Conn(port) as c:
        for target in ("/", "/anything?x=1"):
            r = c.request("GET", target)
            h.status(r, 200, "welcome page GET %s" % target)
            h.check(len(r.body) > 0, "welcome page GET %s: empty body" % target)
            h.check(r.get("X-Origin-Conn") is None, "welcome page came from an origin")
        r = c.request("HEAD", "/")
        h.status(r, 200, "welcome page HEAD /")
        h.eq(r.body, b"", "welcome page HEAD body")
    rc = w.proc.stop()
    h.eq(rc, 0, "weir (welcome page) exit status after SIGTERM")


def test_upstream_flag(e):
    port = h.free_port()
    w = h.start_weir(None, port=port, args=["--upstream", e.origin.addr, "--listen", "127.0.0.1:%d" % port])
    with h.Conn(port) as c:
        for target, n in (("/", 0), ("/any/path?size=100&sha=1", 100), ("/x?size=70000&chunked=1&sha=1", 70000)):
            r = c.request("GET", target)
            h.status(r, 200, "--upstream: GET %s" % target)
            h.check(r.get("X-Origin-Conn") is not None, "--upstream: GET %s not answered by the origin" % target)
            h.pattern_check(r.body, n, "--upstream: GET %s" % target)
        body = h.rand_bytes(5000, seed=1)
        r = c.request("POST", "/up", body=body)
        h.status(r, 200, "--upstream: POST")
        h.eq(r.get("X-Request-Sha256"), h.sha256(body), "--upstream: POST body sha256 at the origin")
    rc = w.proc.stop()
    h.eq(rc, 0, "weir (--upstream) exit status after SIGTERM")


def _threads_affinity(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                m = re.search(r"^Cpus_allowed_list:\s*(\S+)", f.read(), re.M)
            out[int(tid)] = m.group(1) if m else "?"
        except OSError:
            pass
    return out


def test_cpus_flag(e):
    aff = os.sched_getaffinity(0)
    cpu = str(min(aff))     # a CPU this process may use (not always 0)
    port = h.free_port()
    cfg = h.simple_config(
        upstreams={"app": {"servers": [e.origin.addr]}},
        routes=["{path_prefix: /, upstream: app}"])
    w = h.start_weir(cfg, port=port, args=["--cpus", cpu])
    for i in range(3):
        r = h.request(port, "GET", "/c?size=10&sha=1")
        h.status(r, 200, "--cpus %s: GET" % cpu)
        h.pattern_check(r.body, 10, "--cpus %s: GET" % cpu)
    time.sleep(0.1)
    threads = _threads_affinity(w.proc.pid)
    pinned0 = [t for t, a in threads.items() if a == cpu]
    others = {t: a for t, a in threads.items() if a != cpu and t != w.proc.pid}
    h.check(len(pinned0) >= 1, "--cpus %s: no thread pinned to CPU %s; threads' Cpus_allowed_list: %r" % (cpu, cpu, threads))
    if len(aff) > 1:
        pinned_elsewhere = {t: a for t, a in others.items() if "-" not in a and "," not in a}
        h.check(not pinned_elsewhere, "--cpus %s: threads pinned to other CPUs: %r" % (cpu, pinned_elsewhere))
    rc = w.proc.stop()
    h.eq(rc, 0, "weir --cpus %s exit status after SIGTERM" % cpu)


def test_bad_flags(e):
    rc, out, err = h.run_cli(["--no-such-flag"])
    h.check(rc != 0, "weir --no-such-flag exited 0 (stdout %r stderr %r)" % (out, err))


if __name__ == "__main__":
    h.main([test_welcome_page, test_upstream_flag, test_cpus_flag, test_bad_flags], setup=setup)
